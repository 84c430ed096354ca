// The SQL surface of `dtx serve`: read-only views over a fresh scan of every
// resource and decision log, plus the settle commands, for any PostgreSQL
// client (the network server in server/ speaks the wire protocol and calls
// this). The mechanism is described at the top of console.cc; the reference
// of views, columns and commands is docs/admin-console.md.
//
// Not part of libdtx: it embeds SQLite (kept out of this header).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dtx/config.h"
#include "recovery/recovery.h"

namespace dtx::admin {

// A result column's type; the server maps them to PostgreSQL type OIDs
// bool 16, int8 20, float8 701, text 25.
enum class ColumnType { boolean, integer, real, text };

const char* to_string(ColumnType type) noexcept;       // "boolean", "integer", "real", "text"
uint32_t postgres_type_oid(ColumnType type) noexcept;  // 16, 20, 701, 25

struct Column {
  std::string name;
  ColumnType type = ColumnType::text;
};

using Row = std::vector<std::optional<std::string>>;  // nullopt = NULL

struct StatementResult {
  // Empty for a statement of only comments (send EmptyQueryResponse).
  // Otherwise the CommandComplete tag: "SELECT 3", "COMMIT PREPARED", "ROLLBACK PREPARED",
  // "CALL", "BEGIN", "COMMIT", "ROLLBACK", "SET", "SHOW", "RESET", "DISCARD ALL".
  std::string tag;
  bool has_rows = false;  // send RowDescription + DataRows (else no row description)
  std::vector<Column> columns;
  // Text format as PostgreSQL prints it: booleans "t"/"f", integers in
  // decimal, reals round-trippable (%.17g).
  std::vector<Row> rows;
  std::vector<std::string> notices;  // NoticeResponse, sent before CommandComplete
};

// A failed statement. what() is safe to show a client.
struct StatementError : std::runtime_error {
  StatementError(std::string sqlstate_, const std::string& message, std::string detail_ = {},
                 std::string hint_ = {})
      : std::runtime_error(message), sqlstate(std::move(sqlstate_)), detail(std::move(detail_)),
        hint(std::move(hint_)) {}
  std::string sqlstate;  // five characters, e.g. "42P01"
  std::string detail;    // may be empty
  std::string hint;      // may be empty
};

struct Description {
  std::vector<ColumnType> params;              // one per $n, in order
  std::optional<std::vector<Column>> columns;  // nullopt: returns no rows (NoData)
};

struct ConsoleOptions {
  std::chrono::milliseconds statement_timeout{30'000};  // 0 = none
  std::size_t recent_passes = 100;                      // kept in recovery_passes
  // A query whose result grows past this fails with 54000 (a runaway
  // recursive CTE must not exhaust the server's memory before its timeout).
  std::size_t max_result_bytes = 256u << 20;
};

// The server_version the console reports (ParameterStatus, SHOW
// server_version): PostgreSQL-like, "15.0" (the psql of Debian 12 warns about any other major), so clients parse it.
std::string server_version();
// What the SQL function version() returns: "PostgreSQL 15.0 (dtx admin console <version>)".
std::string version_string();

class ConsoleSession;

// One per server process; thread-safe.
class Console {
 public:
  // Builds the resource managers (undo::make_configured_resource_manager) and
  // opens this process's own DecisionLog incarnation lazily, the first time an
  // operator commits a transaction that has no logged decision.
  explicit Console(Config config, ConsoleOptions options = {});
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  const Config& config() const noexcept;
  const ConsoleOptions& options() const noexcept;

  // One recovery pass, recorded in the recovery_passes view with its trigger
  // ("timer", "startup", "admin <user>"). Passes never overlap (one waits for
  // the other). Never throws for database or log problems (they are in the
  // report's errors).
  RecoveryReport recovery_pass(bool dry_run, std::string trigger);

  std::unique_ptr<ConsoleSession> open_session(std::string user, std::string peer);

  // Dry-run scans started so far for in_doubt & co. (tests of freshness and
  // sharing; a metric if wanted).
  std::size_t scans_started() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// One per client connection; used by one thread at a time, except interrupt().
class ConsoleSession {
 public:
  ~ConsoleSession();
  ConsoleSession(const ConsoleSession&) = delete;
  ConsoleSession& operator=(const ConsoleSession&) = delete;

  // Splits a simple-query string into statements at ';' outside quotes
  // ('..', "..", $tag$..$tag$) and comments (-- and nested /* */). Empty
  // statements are dropped; the ';' is not kept.
  static std::vector<std::string> split(std::string_view query);

  // Parse + Describe: the parameters' types and the result's columns, without
  // reading any view. `param_type_oids` as the client sent them (0 = unknown).
  // Throws StatementError.
  Description describe(std::string_view statement, std::span<const uint32_t> param_type_oids = {});

  // Runs one statement. Parameters are $1..$n in text format (nullopt =
  // NULL); one binds as an integer when its type OID says integer (20, 21,
  // 23), or, when the OID is 0/absent, when the text is an integer literal;
  // else as text. Throws StatementError (and then the transaction block, if
  // any, is failed: 'E').
  StatementResult execute(std::string_view statement, std::span<const std::optional<std::string>> params = {},
                          std::span<const uint32_t> param_type_oids = {});

  // 'I' idle, 'T' in a transaction block, 'E' in a failed block (ReadyForQuery).
  char transaction_status() const noexcept;

  // Thread-safe (CancelRequest): the statement running now, if any, fails
  // with 57014. No effect on later statements.
  void interrupt() noexcept;

  const std::string& user() const noexcept;
  const std::string& peer() const noexcept;

  struct Impl;
  explicit ConsoleSession(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx::admin
