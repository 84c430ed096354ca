-- dtx's commit decisions on PostgreSQL ([coordinator] decisions = "<resource>",
-- docs/decisions-in-database.md).
--
-- dtx creates the table itself the first time it uses the resource, if the
-- resource's user may create tables (in the first schema of its search_path,
-- under an unqualified name). If it may not, a DBA runs this file there:
--   PGOPTIONS=-csearch_path=SCHEMA psql -h HOST -p PORT -U ADMIN -d DATABASE -v ON_ERROR_STOP=1 -f sql/decisions.postgres.sql
-- and grants the resource's user SELECT, INSERT, DELETE on dtx_decision (and
-- SELECT on the view). Every statement is idempotent.
-- Each statement ends with a ';' at the end of a line; dtx runs them one by
-- one, in this order (decision-table/decision_table.cc).

-- One row per global transaction that was decided here. The primary key is
-- the fence: whoever inserts a gtrid's row first decides it, and the other
-- insert waits for the first transaction to end, then fails on the key.
CREATE TABLE IF NOT EXISTS dtx_decision (
  gtrid    varchar(64) COLLATE "C" NOT NULL PRIMARY KEY,  -- <coordinator id>.<incarnation>.<seq>
  outcome  smallint NOT NULL,          -- 1 commit (the coordinator), 2 abort (recovery's fence)
  branches text,                       -- commit: the resources of its branches, comma-separated
  created  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dtx_decision_outcome CHECK (outcome IN (1, 2))
);

-- For DBAs: every prepared dtx branch of this database beside the decision
-- kept for it here (if this database holds the decisions of its coordinator).
-- decision: commit, abort, or none (no row: presumed abort once the owner is
-- gone). A gid of dtx reads dtx:<gtrid>:<branch>.
CREATE OR REPLACE VIEW dtx_prepared_decisions AS
  SELECT p.gid,
         split_part(p.gid, ':', 2) AS gtrid,
         split_part(p.gid, ':', 3) AS branch,
         p.prepared,
         p.owner,
         p.database,
         CASE d.outcome WHEN 1 THEN 'commit' WHEN 2 THEN 'abort' ELSE 'none' END AS decision,
         d.created AS decided
    FROM pg_prepared_xacts p
    LEFT JOIN dtx_decision d ON d.gtrid = split_part(p.gid, ':', 2)
   WHERE p.gid LIKE 'dtx:%';
