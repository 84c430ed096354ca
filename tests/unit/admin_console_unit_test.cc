// The admin console without a database: statement splitting and parsing,
// read-only refusals, help, transaction blocks, parameters, timeouts.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>
#include <atomic>
#include <thread>

#include "admin/catalog.h"
#include "admin/console.h"
#include "admin/statement.h"
#include "dtx/logging.h"

namespace dtx::admin {
namespace {

namespace fs = std::filesystem;
using Params = std::vector<std::optional<std::string>>;

class ConsoleUnit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dtx_admin_unit_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Config config;
    config.coordinator.id = "acunit";
    config.coordinator.log_dir = dir_;
    console_ = std::make_unique<Console>(config, ConsoleOptions{.statement_timeout = std::chrono::seconds(5)});
    session_ = console_->open_session("alice", "127.0.0.1:5555");
  }
  void TearDown() override {
    session_.reset();
    console_.reset();
    fs::remove_all(dir_);
  }
  StatementResult run(std::string_view sql, const Params& params = {}, std::vector<uint32_t> oids = {}) {
    return session_->execute(sql, params, oids);
  }
  // The SQLSTATE `sql` fails with ("" if it does not fail).
  std::string state_of(std::string_view sql) {
    try {
      run(sql);
    } catch (const StatementError& e) {
      return e.sqlstate;
    }
    return "";
  }
  std::string one(std::string_view sql, const Params& params = {}, std::vector<uint32_t> oids = {}) {
    StatementResult r = run(sql, params, oids);
    EXPECT_EQ(r.rows.size(), 1u) << sql;
    if (r.rows.empty() || r.rows[0].empty() || !r.rows[0][0]) return "<null>";
    return *r.rows[0][0];
  }

  fs::path dir_;
  std::unique_ptr<Console> console_;
  std::unique_ptr<ConsoleSession> session_;
};

TEST(ConsoleSplit, CutsAtSemicolonsOutsideQuotesAndComments) {
  auto parts = ConsoleSession::split(
      "SELECT 'a;b'; SELECT \"x;y\" FROM t -- c;omment\n; /* a /* nested; */ still; */ SELECT $q$ ; $q$;;  ; "
      "SELECT E'it\\'s;'");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0], "SELECT 'a;b'");
  EXPECT_EQ(parts[1], " SELECT \"x;y\" FROM t -- c;omment\n");
  EXPECT_EQ(parts[2], " /* a /* nested; */ still; */ SELECT $q$ ; $q$");
  EXPECT_EQ(parts[3], " SELECT E'it\\'s;'");
}

TEST(ConsoleSplit, DropsEmptyAndCommentOnlyStatements) {
  EXPECT_TRUE(ConsoleSession::split("  ;; -- nothing\n ; /* x */").empty());
  EXPECT_EQ(ConsoleSession::split("SELECT 1").size(), 1u);
  EXPECT_EQ(ConsoleSession::split("SELECT $1; SELECT a$b$c FROM t").size(), 2u);  // $1 and a$b$ are no quotes
}

TEST(ConsoleParse, SettleCommandsTakeAQuotedGtridWithDoubledQuotes) {
  ParsedStatement p = parse_statement("commit   Prepared 'dtx:n1:a''b:7'");
  EXPECT_EQ(p.kind, StatementKind::settle);
  EXPECT_TRUE(p.commit);
  EXPECT_FALSE(p.force);
  EXPECT_EQ(p.gtrid, "dtx:n1:a'b:7");
  EXPECT_EQ(p.verb, "COMMIT PREPARED");

  p = parse_statement("ROLLBACK FORCE 'g1';");
  EXPECT_EQ(p.kind, StatementKind::settle);
  EXPECT_FALSE(p.commit);
  EXPECT_TRUE(p.force);
  EXPECT_EQ(p.gtrid, "g1");

  Params params = {std::string("from-param")};
  p = parse_statement("ROLLBACK PREPARED $1", params);
  EXPECT_EQ(p.gtrid, "from-param");

  p = parse_statement("CALL accept_current('g2')");
  EXPECT_TRUE(p.accept_current);
  EXPECT_EQ(p.gtrid, "g2");
}

TEST(ConsoleParse, RecoverTakesDryRunByNameOrPosition) {
  EXPECT_FALSE(parse_statement("CALL recover()").dry_run);
  EXPECT_EQ(parse_statement("call RECOVER()").kind, StatementKind::recover);
  EXPECT_TRUE(parse_statement("CALL recover(dry_run => true)").dry_run);
  EXPECT_TRUE(parse_statement("CALL recover(dry_run := TRUE)").dry_run);
  EXPECT_TRUE(parse_statement("CALL recover(true)").dry_run);
  EXPECT_FALSE(parse_statement("CALL recover(dry_run => false)").dry_run);
}

TEST(ConsoleParse, MalformedCommandsAreSyntaxErrorsWithUsage) {
  for (const char* bad : {"COMMIT PREPARED", "COMMIT PREPARED g1", "ROLLBACK PREPARED 'a' 'b'", "CALL recover(",
                          "CALL recover(dry_run => maybe)"}) {
    try {
      parse_statement(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const StatementError& e) {
      EXPECT_EQ(e.sqlstate, "42601") << bad;
      EXPECT_FALSE(e.hint.empty()) << bad;
    }
  }
  try {
    parse_statement("CALL drop_everything()");
    ADD_FAILURE();
  } catch (const StatementError& e) {
    EXPECT_EQ(e.sqlstate, "42883");
  }
}

TEST(ConsoleParse, TransactionWordsAreNotCommands) {
  EXPECT_EQ(parse_statement("COMMIT").kind, StatementKind::commit);
  EXPECT_EQ(parse_statement("end work").kind, StatementKind::commit);
  EXPECT_EQ(parse_statement("ROLLBACK TRANSACTION").kind, StatementKind::rollback);
  EXPECT_EQ(parse_statement("abort").kind, StatementKind::rollback);
  EXPECT_EQ(parse_statement("ROLLBACK TO SAVEPOINT s1").kind, StatementKind::rollback_to);
  EXPECT_EQ(parse_statement("START TRANSACTION ISOLATION LEVEL SERIALIZABLE").kind, StatementKind::begin);
  EXPECT_EQ(parse_statement("insert into in_doubt values (1)").kind, StatementKind::write);
}

TEST(ConsoleParse, PostgresSpellingsAreRewrittenForSqlite) {
  EXPECT_EQ(parse_statement("SELECT age_s::int, x::character varying(10) FROM t").sql, "SELECT age_s, x FROM t");
  EXPECT_EQ(parse_statement("SELECT current_user, current_user()").sql, "SELECT current_user(), current_user()");
  EXPECT_EQ(parse_statement("SELECT E'a\\nb', $$it's$$").sql, "SELECT 'a\nb', 'it''s'");
}

TEST_F(ConsoleUnit, WritesAreRefusedAsReadOnlyAndTheSessionStaysUsable) {
  for (const char* sql : {"INSERT INTO in_doubt (gtrid) VALUES ('x')", "CREATE TABLE t (a int)",
                          "ATTACH DATABASE '/tmp/x.db' AS x", "PRAGMA writable_schema = 1", "DROP TABLE help",
                          "VACUUM INTO '/tmp/x.db'", "WITH a AS (SELECT 1) DELETE FROM help",
                          "DELETE FROM help", "UPDATE help SET kind = 'x'", "REPLACE INTO help VALUES (1,2,3,4,5)"}) {
    try {
      run(sql);
      ADD_FAILURE() << sql << " was accepted";
    } catch (const StatementError& e) {
      EXPECT_EQ(e.sqlstate, "25006") << sql << ": " << e.what();
      EXPECT_NE(e.hint.find("COMMIT PREPARED"), std::string::npos) << sql;
    }
  }
  EXPECT_EQ(one("SELECT 1 + 1"), "2");
  EXPECT_EQ(session_->transaction_status(), 'I');
}

TEST_F(ConsoleUnit, HelpListsEveryViewColumnAndCommand) {
  EXPECT_EQ(one("SELECT count(*) FROM help WHERE kind = 'view'"), std::to_string(views().size()));
  for (const auto& v : views()) {
    StatementResult r = run("SELECT column_name, type FROM help WHERE kind = 'column' AND name = $1",
                            {std::string(v.name)});
    ASSERT_EQ(r.rows.size(), v.columns.size()) << v.name;
    for (std::size_t i = 0; i < v.columns.size(); ++i) EXPECT_EQ(*r.rows[i][0], v.columns[i].name);
  }
  StatementResult commands = run("SELECT name FROM help WHERE kind = 'command'");
  std::string all;
  for (const auto& row : commands.rows) all += *row[0] + "\n";
  for (const char* c : {"COMMIT PREPARED 'gtrid'", "ROLLBACK PREPARED 'gtrid'", "COMMIT FORCE 'gtrid'",
                        "ROLLBACK FORCE 'gtrid'", "CALL recover()", "CALL recover(dry_run => true)"})
    EXPECT_NE(all.find(c), std::string::npos) << c;
}

TEST_F(ConsoleUnit, ErrorsNameTheViews) {
  try {
    run("SELECT * FROM pg_prepared_xacts");
    ADD_FAILURE();
  } catch (const StatementError& e) {
    EXPECT_EQ(e.sqlstate, "42P01");
    EXPECT_NE(e.hint.find("in_doubt"), std::string::npos);
    EXPECT_NE(e.hint.find("SELECT * FROM help"), std::string::npos);
  }
  EXPECT_EQ(state_of("SELECT no_such_column FROM help"), "42703");
  EXPECT_EQ(state_of("SELEC 1"), "42601");
  EXPECT_EQ(state_of("SELECT 1; SELECT 2"), "42601");  // one statement at a time (split() first)
  EXPECT_EQ(state_of("SELECT nosuchfunction(1)"), "42883");
  EXPECT_EQ(one("SELECT 1"), "1");
}

TEST_F(ConsoleUnit, TransactionBlocksFollowPostgres) {
  EXPECT_EQ(run("BEGIN").tag, "BEGIN");
  EXPECT_EQ(session_->transaction_status(), 'T');
  EXPECT_EQ(one("SELECT count(*) FROM help WHERE kind = 'view'"), std::to_string(views().size()));
  EXPECT_EQ(session_->transaction_status(), 'T');
  EXPECT_EQ(state_of("SELECT * FROM nothing_here"), "42P01");
  EXPECT_EQ(session_->transaction_status(), 'E');
  EXPECT_EQ(state_of("SELECT 1"), "25P02");
  EXPECT_EQ(session_->transaction_status(), 'E');
  EXPECT_EQ(run("COMMIT").tag, "ROLLBACK");  // a failed block only rolls back
  EXPECT_EQ(session_->transaction_status(), 'I');

  EXPECT_EQ(run("START TRANSACTION").tag, "BEGIN");
  EXPECT_EQ(state_of("COMMIT PREPARED 'g'"), "25001");
  EXPECT_EQ(session_->transaction_status(), 'E');
  EXPECT_EQ(run("ROLLBACK").tag, "ROLLBACK");
  run("BEGIN");
  try {
    run("CALL recover()");
    ADD_FAILURE();
  } catch (const StatementError& e) {
    EXPECT_EQ(e.sqlstate, "25001");
    EXPECT_NE(e.hint.find("autocommit"), std::string::npos);
  }
  EXPECT_EQ(run("ROLLBACK TO SAVEPOINT s1").tag, "ROLLBACK");
  EXPECT_EQ(session_->transaction_status(), 'T');
  EXPECT_EQ(run("END").tag, "COMMIT");
  EXPECT_EQ(session_->transaction_status(), 'I');
  StatementResult outside = run("COMMIT");
  EXPECT_EQ(outside.notices.size(), 1u);  // there is no transaction in progress
  EXPECT_EQ(state_of("SAVEPOINT s1"), "25P01");
}

TEST_F(ConsoleUnit, AnEmptyStatementHasAnEmptyTag) {
  StatementResult r = run("-- nothing but a comment\n /* and another */");
  EXPECT_EQ(r.tag, "");  // EmptyQueryResponse
  EXPECT_FALSE(r.has_rows);
  EXPECT_FALSE(session_->describe("  ").columns);
}

TEST_F(ConsoleUnit, SetShowAndFunctions) {
  EXPECT_EQ(run("SET application_name = 'psql test'").tag, "SET");
  EXPECT_EQ(one("SHOW application_name"), "psql test");
  EXPECT_EQ(one("SELECT current_setting('application_name')"), "psql test");
  EXPECT_EQ(one("SHOW server_version"), server_version());
  EXPECT_EQ(one("SHOW client_encoding"), "UTF8");
  EXPECT_EQ(run("SET extra_float_digits TO 3").tag, "SET");
  EXPECT_EQ(state_of("SHOW no_such_setting"), "42704");
  EXPECT_EQ(state_of("SET client_encoding = 'LATIN1'"), "22023");
  EXPECT_EQ(run("RESET ALL").tag, "RESET");
  EXPECT_EQ(one("SHOW application_name"), "");
  EXPECT_EQ(run("DISCARD ALL").tag, "DISCARD ALL");
  EXPECT_EQ(one("SELECT current_user"), "alice");
  EXPECT_EQ(one("SELECT current_database()"), "acunit");
  EXPECT_EQ(one("SELECT version()").rfind("PostgreSQL ", 0), 0u);
  EXPECT_EQ(one("SELECT now() IS NOT NULL"), "1");
  EXPECT_EQ(one("SELECT 2.5::float8"), "2.5");
  EXPECT_GT(run("SHOW ALL").rows.size(), 5u);
}

TEST_F(ConsoleUnit, ParametersBindAsIntegersOrText) {
  EXPECT_EQ(one("SELECT typeof($1)", {std::string("41")}), "integer");           // unknown type, integer text
  EXPECT_EQ(one("SELECT typeof($1)", {std::string("41")}, {25}), "text");        // declared text
  EXPECT_EQ(one("SELECT typeof($1)", {std::string("41")}, {23}), "integer");     // int4
  EXPECT_EQ(one("SELECT typeof($1)", {std::string("abc")}), "text");
  EXPECT_EQ(one("SELECT $2 || $1", {std::string("b"), std::string("a")}), "ab");
  EXPECT_EQ(one("SELECT $1 IS NULL", {std::nullopt}), "1");
  EXPECT_EQ(state_of("SELECT $3"), "08P01");
  EXPECT_EQ(state_of("SELECT ?"), "42601");
  EXPECT_EQ(state_of("COMMIT PREPARED $99999999999999999999"), "42601");
}

TEST_F(ConsoleUnit, DescribeGivesTypedColumnsWithoutRunning) {
  const uint32_t text_oid = 25;
  Description d = session_->describe("SELECT gtrid, owner_alive, age_s FROM in_doubt WHERE resource = $1",
                                     std::span<const uint32_t>(&text_oid, 1));
  ASSERT_EQ(d.params.size(), 1u);
  EXPECT_EQ(d.params[0], ColumnType::text);
  ASSERT_TRUE(d.columns);
  ASSERT_EQ(d.columns->size(), 3u);
  EXPECT_EQ((*d.columns)[0].type, ColumnType::text);
  EXPECT_EQ((*d.columns)[1].type, ColumnType::boolean);
  EXPECT_EQ((*d.columns)[2].type, ColumnType::integer);
  EXPECT_FALSE(session_->describe("BEGIN").columns);
  EXPECT_EQ(session_->describe("COMMIT PREPARED $1").params.size(), 1u);
  ASSERT_TRUE(session_->describe("CALL recover()").columns);
  EXPECT_EQ(postgres_type_oid(ColumnType::boolean), 16u);
  EXPECT_EQ(postgres_type_oid(ColumnType::integer), 20u);
}

constexpr const char* kEndless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

TEST_F(ConsoleUnit, StatementTimeoutCancelsARunawayQuery) {
  run("SET statement_timeout = 300");
  const auto started = std::chrono::steady_clock::now();
  try {
    run(kEndless);
    ADD_FAILURE();
  } catch (const StatementError& e) {
    EXPECT_EQ(e.sqlstate, "57014");
    EXPECT_NE(std::string(e.what()).find("statement timeout"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(one("SELECT 1"), "1");
}

TEST_F(ConsoleUnit, AResultTooLargeFailsInsteadOfExhaustingMemory) {
  Config config = console_->config();
  Console small(config, ConsoleOptions{.statement_timeout = std::chrono::seconds(30), .max_result_bytes = 1 << 20});
  auto s = small.open_session("bob", "peer");
  try {
    s->execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c");
    ADD_FAILURE();
  } catch (const StatementError& e) {
    EXPECT_EQ(e.sqlstate, "54000");
  }
  EXPECT_EQ(s->execute("SELECT count(*) FROM (SELECT 1 UNION ALL SELECT 2)").rows.size(), 1u);
}

TEST_F(ConsoleUnit, InterruptCancelsTheRunningStatementOnly) {
  run("SET statement_timeout = 20000");  // ends it anyway if interrupt() did not
  std::string state;
  std::atomic<bool> done{false};
  std::thread runner([&] {
    try {
      session_->execute(kEndless);
    } catch (const StatementError& e) {
      state = e.sqlstate + " " + e.what();
    }
    done = true;
  });
  // An interrupt that comes before the statement starts is lost (by design:
  // it cancels only a running statement), so it is repeated until the
  // statement ends.
  while (!done) {
    session_->interrupt();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  runner.join();
  EXPECT_EQ(state, "57014 canceling statement due to user request");
  EXPECT_EQ(one("SELECT 1"), "1");  // later statements are not affected
}

TEST_F(ConsoleUnit, RecoveryPassesAreListedWithTheirTrigger) {
  console_->recovery_pass(true, "startup");
  console_->recovery_pass(false, "timer");
  StatementResult r = run("SELECT trigger, dry_run, branches, errors FROM recovery_passes ORDER BY started_at");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(*r.rows[0][0], "startup");
  EXPECT_EQ(*r.rows[0][1], "t");
  EXPECT_EQ(*r.rows[1][0], "timer");
  EXPECT_EQ(*r.rows[1][1], "f");
  EXPECT_EQ(*r.rows[1][2], "0");
  EXPECT_EQ(r.columns[1].type, ColumnType::boolean);
  StatementResult call = run("CALL recover(dry_run => true)");
  EXPECT_EQ(call.tag, "CALL");
  EXPECT_TRUE(call.has_rows);
  EXPECT_EQ(one("SELECT trigger FROM recovery_passes ORDER BY started_at DESC LIMIT 1"), "admin alice");
}

TEST_F(ConsoleUnit, CommandsAreLoggedWithUserPeerStatementAndOutcome) {
  std::vector<std::string> lines;
  std::mutex mu;
  set_log_handler(
      [&](LogLevel, std::string_view line) {
        std::lock_guard lock(mu);
        lines.emplace_back(line);
      },
      LogLevel::info);
  run("CALL recover(dry_run => true)");
  try {
    run("ROLLBACK PREPARED 'nothing-here'");
  } catch (const StatementError&) {
  }
  set_log_handler(nullptr);
  auto logged = [&](const std::string& what) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find("user alice from 127.0.0.1:5555: " + what) != std::string::npos;
    });
  };
  EXPECT_TRUE(logged("CALL recover(dry_run => true) -> recover (dry run)")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(logged("ROLLBACK PREPARED 'nothing-here' -> refused (42704)")) << ::testing::PrintToString(lines);
}

TEST_F(ConsoleUnit, ADamagedHeuristicsLineIsShownNotHidden) {
  {
    std::ofstream out(dir_ / "heuristics.log");
    out << R"({"time":"2026-01-01T00:00:00Z","gtrid":"g1","resource":"r1","decision":"commit","outcome":"rolled_back","by":"operator","detail":"x"})"
        << "\n{\"time\":\"2026-01-\x01garbage\n";
  }
  StatementResult r = run("SELECT gtrid, outcome FROM heuristics ORDER BY gtrid NULLS LAST");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(*r.rows[0][0], "g1");
  EXPECT_EQ(*r.rows[0][1], "rolled_back");
  EXPECT_EQ(*r.rows[1][1], "damaged_line");
  EXPECT_EQ(one("SELECT count(*) FROM problems WHERE source = 'heuristics'"), "1");
}

TEST_F(ConsoleUnit, EmptyStateGivesEmptyViews) {
  EXPECT_EQ(run("SELECT * FROM in_doubt").tag, "SELECT 0");
  EXPECT_EQ(run("SELECT * FROM transactions").tag, "SELECT 0");
  EXPECT_EQ(run("SELECT * FROM resources").tag, "SELECT 0");
  EXPECT_EQ(run("SELECT * FROM incarnations").tag, "SELECT 0");
  EXPECT_EQ(run("SELECT * FROM global_locks").tag, "SELECT 0");
  try {
    run("COMMIT PREPARED 'dtx-unknown'");
    ADD_FAILURE();
  } catch (const StatementError& e) {
    EXPECT_EQ(e.sqlstate, "42704");
    EXPECT_EQ(std::string(e.what()), "prepared transaction with identifier \"dtx-unknown\" does not exist");
  }
}

TEST_F(ConsoleUnit, CatalogQueriesOfPostgresClientsFailCleanly) {
  // What psql's \d and \l, and drivers' metadata calls send: a clean error
  // (the views are no PostgreSQL catalog), and the session stays usable.
  const char* queries[] = {
      "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' THEN 'table' END as "
      "\"Type\",\n  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM pg_catalog.pg_class c\n     LEFT JOIN "
      "pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relkind IN ('r','p','v','m','S','f','')\n      "
      "AND n.nspname <> 'pg_catalog'\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;",
      "SELECT d.datname as \"Name\", pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\" FROM "
      "pg_catalog.pg_database d ORDER BY 1;",
      "SELECT typname, oid FROM pg_type WHERE typname = ANY($1)",
      "select oid, typbasetype from pg_type where typname = 'lo'",
      "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = 'hstore'",
      "SELECT 1 FROM in_doubt WHERE gtrid ~ 'x'",
      "SELECT 'a' ILIKE 'A'",
      "SELECT * FROM information_schema.tables",
  };
  for (const char* q : queries) {
    for (const std::string& piece : ConsoleSession::split(q)) {
      try {
        run(piece, {std::string("{x}")});
        ADD_FAILURE() << piece << " succeeded";
      } catch (const StatementError& e) {
        EXPECT_TRUE(e.sqlstate == "42P01" || e.sqlstate == "42601") << piece << ": " << e.sqlstate << " " << e.what();
      }
    }
  }
  EXPECT_EQ(one("SELECT 1"), "1");
  EXPECT_EQ(session_->transaction_status(), 'I');
}

TEST_F(ConsoleUnit, EachStatementReadsAScanStartedAfterItArrived) {
  const std::size_t before = console_->scans_started();
  run("SELECT * FROM in_doubt");
  EXPECT_EQ(console_->scans_started(), before + 1);
  run("SELECT * FROM in_doubt");  // the previous scan started before this statement: a new one
  EXPECT_EQ(console_->scans_started(), before + 2);
  // One statement reads each source once, however many views of it it names.
  run("SELECT * FROM in_doubt a JOIN in_doubt b USING (gtrid) JOIN transactions USING (gtrid), at_branches");
  EXPECT_EQ(console_->scans_started(), before + 3);
  // Views of other sources start no scan.
  run("SELECT * FROM help, recovery_passes, heuristics, incarnations");
  EXPECT_EQ(console_->scans_started(), before + 3);
}

TEST_F(ConsoleUnit, ConcurrentStatementsShareOneFreshScan) {
  // Many sessions reading the same source at once: all answer, none fails.
  std::vector<std::unique_ptr<ConsoleSession>> sessions;
  for (int i = 0; i < 16; ++i) sessions.push_back(console_->open_session("u" + std::to_string(i), "peer"));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (auto& s : sessions)
    threads.emplace_back([&ok, &s] {
      for (int k = 0; k < 5; ++k)
        if (s->execute("SELECT count(*) FROM in_doubt JOIN transactions USING (gtrid)").tag == "SELECT 1") ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 80);
  EXPECT_LE(console_->scans_started(), 80u);
}

TEST(ConsoleReference, TheDocsListEveryViewColumnAndCommand) {
  std::ifstream in(fs::path(DTX_SOURCE_DIR) / "docs" / "admin-console.md");
  ASSERT_TRUE(in) << "docs/admin-console.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (const auto& v : views()) {
    const std::size_t at = doc.find("### `" + std::string(v.name) + "`");
    ASSERT_NE(at, std::string::npos) << "no section for view " << v.name;
    const std::size_t end = doc.find("\n### ", at + 1);
    const std::string section = doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
    for (const auto& c : v.columns)
      EXPECT_NE(section.find("| `" + std::string(c.name) + "` | " + to_string(c.type) + " |"), std::string::npos)
          << v.name << "." << c.name << " is not in its section of docs/admin-console.md";
  }
  for (const auto& c : commands()) {
    if (std::string_view(c.syntax).find('\'') == std::string_view::npos) continue;
    EXPECT_NE(doc.find(std::string(c.syntax)), std::string::npos) << c.syntax;
  }
}

}  // namespace
}  // namespace dtx::admin
