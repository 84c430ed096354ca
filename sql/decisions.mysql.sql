-- dtx's commit decisions on MariaDB / MySQL ([coordinator] decisions =
-- "<resource>", docs/decisions-in-database.md).
--
-- dtx creates the table itself the first time it uses the resource, if the
-- resource's user may create tables (in the resource's configured database).
-- If it may not, a DBA runs this file there:
--   mariadb -h HOST -P PORT -u ADMIN -p DATABASE < sql/decisions.mysql.sql
-- and grants the resource's user SELECT, INSERT, DELETE on dtx_decision.
-- Every statement is idempotent. (MariaDB lists prepared branches only with
-- XA RECOVER, which cannot be joined: `dtx in-doubt` shows both together.)
-- Each statement ends with a ';' at the end of a line; dtx runs them one by
-- one, in this order (decision-table/decision_table.cc).

-- One row per global transaction that was decided here. The primary key is
-- the fence: whoever inserts a gtrid's row first decides it, and the other
-- insert waits for the first transaction to end, then fails on the key.
CREATE TABLE IF NOT EXISTS dtx_decision (
  gtrid    varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  outcome  smallint NOT NULL,          -- 1 commit (the coordinator), 2 abort (recovery's fence)
  branches text,                       -- commit: the resources of its branches, comma-separated
  created  timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  CONSTRAINT dtx_decision_outcome CHECK (outcome IN (1, 2))
) ENGINE=InnoDB;
