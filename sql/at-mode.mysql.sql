-- dtx AT mode's tables on MariaDB / MySQL, schema version 1 (docs/undo-record.md).
--
-- dtx creates them itself, in the resource's configured database, the first
-- time an AT resource is used, if the resource's user may create tables. If
-- it may not, a DBA runs this file in that database instead:
--   mariadb -h HOST -P PORT -u ADMIN -p DATABASE < sql/at-mode.mysql.sql
-- and grants the resource's user SELECT, INSERT, UPDATE, DELETE on the three
-- tables. Every statement is idempotent: running the file again changes
-- nothing, and never lowers the recorded version.
-- Each statement ends with a ';' at the end of a line; dtx runs them one by
-- one, in this order (undo-log/at_schema.cc).

-- One row per AT branch that reached phase 1 or was rolled back before it.
CREATE TABLE IF NOT EXISTS dtx_undo_log (
  gtrid   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,  -- global transaction id
  branch  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,  -- the xid's bqual: the resource's name
  kind    TINYINT NOT NULL,  -- 0 undo record (phase 1), 1 rollback marker (no record)
  created DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),            -- UTC
  record  LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,    -- the JSON record; NULL for a marker
  PRIMARY KEY (gtrid, branch),
  CONSTRAINT dtx_undo_log_kind CHECK (kind IN (0, 1))
) ENGINE = InnoDB;

-- One row per row changed by an unfinished AT branch: the global row lock.
CREATE TABLE IF NOT EXISTS dtx_global_lock (
  table_name VARCHAR(192) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,  -- schema.table
  row_key    VARCHAR(768) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,      -- JSON array of the primary key's images
  gtrid      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,       -- holder
  branch     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created    DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),                  -- UTC
  PRIMARY KEY (table_name, row_key),
  KEY dtx_global_lock_holder (gtrid, branch)
) ENGINE = InnoDB;

-- The schema version of the two tables above: one row, id = 1.
CREATE TABLE IF NOT EXISTS dtx_at_schema (
  id      TINYINT NOT NULL,
  version INT NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT dtx_at_schema_one_row CHECK (id = 1)
) ENGINE = InnoDB;

INSERT INTO dtx_at_schema (id, version) VALUES (1, 1) ON DUPLICATE KEY UPDATE id = id;
