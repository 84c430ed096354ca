-- dtx AT mode's tables on PostgreSQL, schema version 1 (docs/undo-record.md).
--
-- dtx creates them itself the first time an AT resource is used, if the
-- resource's user may create tables: in the resource's database, in the
-- first schema of the user's search_path (current_schema()), under unqualified
-- names. If it may not, a DBA runs this file there instead, with the same
-- search_path the resource's user has (here: schema SCHEMA):
--   PGOPTIONS=-csearch_path=SCHEMA psql -h HOST -p PORT -U ADMIN -d DATABASE -v ON_ERROR_STOP=1 -f sql/at-mode.postgres.sql
-- and grants the resource's user SELECT, INSERT, UPDATE, DELETE on the three
-- tables. Every statement is idempotent: running the file again changes
-- nothing, and never lowers the recorded version.
-- Each statement ends with a ';' at the end of a line; dtx runs them one by
-- one, in this order (undo-log/at_schema.cc).

-- One row per AT branch that reached phase 1 or was rolled back before it.
CREATE TABLE IF NOT EXISTS dtx_undo_log (
  gtrid   varchar(64) COLLATE "C" NOT NULL,  -- global transaction id
  branch  varchar(64) COLLATE "C" NOT NULL,  -- the xid's bqual: the resource's name
  kind    smallint NOT NULL,                  -- 0 undo record (phase 1), 1 rollback marker (no record)
  created timestamptz NOT NULL DEFAULT now(),
  record  text,                               -- the JSON record; NULL for a marker
  PRIMARY KEY (gtrid, branch),
  CONSTRAINT dtx_undo_log_kind CHECK (kind IN (0, 1))
);

-- One row per row changed by an unfinished AT branch: the global row lock.
CREATE TABLE IF NOT EXISTS dtx_global_lock (
  table_name varchar(192) COLLATE "C" NOT NULL,  -- schema.table
  row_key    varchar(768) COLLATE "C" NOT NULL,  -- JSON array of the primary key's images
  gtrid      varchar(64) COLLATE "C" NOT NULL,   -- holder
  branch     varchar(64) COLLATE "C" NOT NULL,
  created    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, row_key)
);

CREATE INDEX IF NOT EXISTS dtx_global_lock_holder ON dtx_global_lock (gtrid, branch);

-- The schema version of the two tables above: one row, id = 1.
CREATE TABLE IF NOT EXISTS dtx_at_schema (
  id      smallint NOT NULL,
  version integer NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT dtx_at_schema_one_row CHECK (id = 1)
);

INSERT INTO dtx_at_schema (id, version) VALUES (1, 1) ON CONFLICT (id) DO NOTHING;
