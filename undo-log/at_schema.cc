// Creating AT mode's tables when they are missing, and refusing tables of
// another schema version.
//
// ensure_at_schema() costs one round trip when all is in place: one query
// tells the database / schema unqualified names resolve to, the user, and how
// many of the three tables are there. When all three are, the version row is
// read and compared. Otherwise the shipped script runs, statement by
// statement in autocommit (DDL commits implicitly on MariaDB anyway), under a
// named lock held by this connection — GET_LOCK('dtx_at_schema') on MariaDB
// (server-wide), pg_advisory_lock(kAdvisoryLockKey) on PostgreSQL (per
// database) — because PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe
// against a concurrent one (two creators can collide on the catalog's unique
// indexes). Every statement is idempotent and the version row comes last, so
// a creation cut short by a crash is finished by the next one. The version is
// read again afterwards: a concurrent creator of another version is refused
// like a stale table.
//
// Privileges: on MariaDB a refusal (1142 / 1044 / 1227) of any of these
// steps becomes Errc::misconfigured saying how a DBA creates the tables and
// what to grant. On PostgreSQL the first query also asks whether the user may
// create tables in the schema and use the tables there (has_schema_privilege,
// has_table_privilege), because the driver does not keep the SQLSTATE of the
// refusal (libpqxx 6.4 throws insufficient_privilege without it); 42501 is
// still recognised should it come.
#include "undo-log/at_schema.h"

#include <optional>

#include "drivers/sql_words.h"
#include "dtx/error.h"

namespace dtx::undo {

namespace {

// The shipped scripts, read from sql/ by CMake (CMakeLists.txt, dtx_undo).
#include "at_schema_ddl.inc"

// "DTXATSCH" as a bigint: the PostgreSQL advisory lock of the creators.
constexpr const char* kAdvisoryLockKey = "4923657330233656136";
constexpr int kMysqlLockWaitSeconds = 60;

constexpr bool is_mysql(sql::Dialect d) { return d == sql::Dialect::mysql; }

Error misconfigured(const std::string& resource, std::string what, std::string hint,
                    const Error* said = nullptr) {
  Error::Details d;
  if (said) d = said->details();
  d.code = Errc::misconfigured;
  d.resource = resource;
  d.hint = std::move(hint);
  return Error(std::move(d), std::move(what));
}

bool is_privilege_error(const Error& e) {
  const int c = e.server_code();
  return c == 1142 || c == 1044 || c == 1227 || e.sqlstate() == "42501";
}

// Where unqualified names go, who we are, and how many AT tables are there.
struct Place {
  std::string database;
  std::string schema;  // PostgreSQL only
  std::string user;
  int tables = 0;
  // PostgreSQL, asked in advance (its driver does not keep the SQLSTATE of a
  // refusal): whether the user may create tables in the schema, and on how
  // many of the AT tables it may SELECT, INSERT, UPDATE and DELETE.
  bool can_create = true;
  int usable = 3;

  std::string describe(sql::Dialect d) const {
    return is_mysql(d) ? "database " + database
                       : "database " + database + ", schema " + schema;
  }
};

Place locate(Session& s, sql::Dialect d, const std::string& resource) {
  const Result r = s.execute(
      is_mysql(d)
          ? "SELECT DATABASE(), '', CURRENT_USER(), (SELECT COUNT(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN "
            "('dtx_undo_log', 'dtx_global_lock', 'dtx_at_schema')), 1, 3"
          : "SELECT current_database(), current_schema(), current_user, count(c.oid), "
            "has_schema_privilege(current_schema(), 'CREATE'), "
            "count(c.oid) FILTER (WHERE has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')) "
            "FROM (SELECT 1) AS one LEFT JOIN (pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace AND n.nspname = current_schema()) "
            "ON c.relkind IN ('r', 'p') AND c.relname IN "
            "('dtx_undo_log', 'dtx_global_lock', 'dtx_at_schema')",
      {});
  const Row& row = r[0];
  if (row.is_null(0))
    throw misconfigured(resource, "AT mode keeps its tables in the resource's database, and "
                                  "the session has none",
                        "set `database` in the resource's configuration");
  if (row.is_null(1))
    throw misconfigured(resource,
                        "AT mode keeps its tables in the first schema of the search_path, and no "
                        "schema of the user's search_path exists in database " + row.text(0),
                        "create the schema, or set the user's search_path to an existing one "
                        "(ALTER ROLE ... SET search_path = ...)");
  const std::string can_create = row.text(4);
  return Place{row.text(0), row.text(1), row.text(2), static_cast<int>(row.as_int64(3)),
               can_create == "1" || can_create == "t", static_cast<int>(row.as_int64(5))};
}

std::string grant_hint(const Place& p) {
  return "grant " + p.user + " SELECT, INSERT, UPDATE, DELETE on dtx_undo_log, dtx_global_lock "
         "and dtx_at_schema (docs/undo-record.md)";
}

std::string dba_hint(sql::Dialect d, const Place& p) {
  const std::string file(at_schema_file(d));
  const std::string run =
      is_mysql(d) ? "mariadb -h HOST -P PORT -u ADMIN -p " + p.database + " < " + file
                  : "PGOPTIONS=-csearch_path=" + p.schema + " psql -h HOST -p PORT -U ADMIN -d " +
                        p.database + " -v ON_ERROR_STOP=1 -f " + file;
  return "have a DBA create the tables by running " + file + " in " + p.describe(d) + " (" + run +
         ") and " + grant_hint(p);
}

// The version row, or nullopt if the table has none.
std::optional<int> read_version(Session& s, sql::Dialect d, const std::string& resource,
                                const Place& p) {
  try {
    const Result r = s.execute("SELECT version FROM dtx_at_schema WHERE id = 1", {});
    if (r.empty() || r[0].is_null(0)) return std::nullopt;
    return static_cast<int>(r[0].as_int64(0));
  } catch (const Error& e) {
    if (!is_privilege_error(e)) throw;
    throw misconfigured(resource,
                        "the user " + p.user + " may not read AT mode's table dtx_at_schema in " +
                            p.describe(d),
                        "have a DBA " + grant_hint(p), &e);
  }
}

void check_version(int found, sql::Dialect d, const std::string& resource, const Place& p) {
  if (found == kAtSchemaVersion) return;
  const std::string what = "AT mode's tables in " + p.describe(d) + " have schema version " +
                           std::to_string(found) + ", this dtx uses version " +
                           std::to_string(kAtSchemaVersion);
  const std::string start_over =
      "or finish every AT transaction on the resource with the dtx that created them (`dtx "
      "in-doubt` lists none), have a DBA drop dtx_undo_log, dtx_global_lock and dtx_at_schema "
      "there, and let this dtx create them again (or run " + std::string(at_schema_file(d)) + ")";
  throw misconfigured(resource, what,
                      found > kAtSchemaVersion
                          ? "a newer dtx created them: use a dtx that knows version " +
                                std::to_string(found) + " for this resource, " + start_over
                          : "an older dtx created them: upgrade them as that release's notes "
                            "say, " + start_over);
}

// Holds the creators' named lock on `s` while alive.
class CreatorLock {
 public:
  CreatorLock(Session& s, sql::Dialect d, const std::string& resource) : s_(s), d_(d) {
    if (!is_mysql(d)) {
      s_.execute(std::string("SELECT pg_advisory_lock(") + kAdvisoryLockKey + ")", {});
      return;
    }
    const Result r = s_.execute(
        "SELECT GET_LOCK('dtx_at_schema', " + std::to_string(kMysqlLockWaitSeconds) + ")", {});
    if (r[0].is_null(0) || r[0].as_int64(0) != 1) {
      Error::Details det;
      det.code = Errc::unavailable;
      det.resource = resource;
      det.hint = "another process holds the lock while creating the tables; try again";
      throw Error(std::move(det), "waited " + std::to_string(kMysqlLockWaitSeconds) +
                                      " s for the lock 'dtx_at_schema' to create AT mode's tables");
    }
  }
  ~CreatorLock() {
    if (s_.broken()) return;  // the connection's end released it
    try {
      s_.execute(is_mysql(d_) ? std::string("SELECT RELEASE_LOCK('dtx_at_schema')")
                              : std::string("SELECT pg_advisory_unlock(") + kAdvisoryLockKey + ")",
                 {});
    } catch (const Error&) {
      // Released when the connection ends; nothing else to do here.
    }
  }
  CreatorLock(const CreatorLock&) = delete;
  CreatorLock& operator=(const CreatorLock&) = delete;

 private:
  Session& s_;
  sql::Dialect d_;
};

Error may_not_create(sql::Dialect d, const std::string& resource, const Place& p,
                     const Error* said = nullptr) {
  return misconfigured(resource,
                       "AT mode's tables are missing in " + p.describe(d) + " and the user " +
                           p.user + " may not create them",
                       dba_hint(d, p), said);
}

void create(Session& s, sql::Dialect d, const std::string& resource, const Place& p) {
  if (!p.can_create) throw may_not_create(d, resource, p);
  try {
    CreatorLock lock(s, d, resource);
    for (const std::string& statement : at_schema_statements(d)) s.execute(statement, {});
  } catch (const Error& e) {
    if (!is_privilege_error(e)) throw;
    throw may_not_create(d, resource, p, &e);
  }
}

}  // namespace

std::string_view at_schema_file(sql::Dialect dialect) {
  return is_mysql(dialect) ? "sql/at-mode.mysql.sql" : "sql/at-mode.postgres.sql";
}

std::string_view at_schema_script(sql::Dialect dialect) {
  return is_mysql(dialect) ? kMysqlScript : kPostgresScript;
}

std::vector<std::string> at_schema_statements(sql::Dialect dialect) {
  return sql_script_statements(at_schema_script(dialect), is_mysql(dialect) ? SqlDialect::mysql : SqlDialect::postgres);
}

void ensure_at_schema(Session& session, sql::Dialect dialect, const std::string& resource) {
  if (session.state() != BranchState::none)
    throw Error({.code = Errc::usage, .resource = resource},
                "AT mode's tables are checked on a session without a branch");
  const Place place = locate(session, dialect, resource);
  if (place.tables == 3) {
    if (place.usable < 3)
      throw misconfigured(resource,
                          "the user " + place.user + " may not use AT mode's tables in " +
                              place.describe(dialect) +
                              " (it needs SELECT, INSERT, UPDATE and DELETE on all three)",
                          "have a DBA " + grant_hint(place));
    if (std::optional<int> v = read_version(session, dialect, resource, place)) {
      check_version(*v, dialect, resource, place);
      return;
    }
  }
  create(session, dialect, resource, place);
  const std::optional<int> v = read_version(session, dialect, resource, place);
  if (!v)
    throw misconfigured(resource,
                        "dtx_at_schema in " + place.describe(dialect) +
                            " holds no version row right after dtx created it",
                        dba_hint(dialect, place));
  check_version(*v, dialect, resource, place);
}

}  // namespace dtx::undo
