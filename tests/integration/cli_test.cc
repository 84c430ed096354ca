// The dtx command-line tool and the bank example, run as real processes
// against the real databases.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "base/transaction_id.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/process.h"
#include "support/test_env.h"

namespace dtx {
namespace {

struct Outcome {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A database of one test's own on each server, with a resource manager
// connected to it; dropped on destruction. For what must not meet other
// processes' tables: dtx bench's dtx_bench_accounts.
struct ScratchDatabases {
  ScratchDatabases(ResourceManager& admin_my, ResourceManager& admin_pg, std::string my_name,
                   std::string pg_name)
      : admin_my_(admin_my), admin_pg_(admin_pg), my_db(std::move(my_name)), pg_db(std::move(pg_name)) {
    admin_my_.acquire()->execute("CREATE DATABASE " + my_db, {});
    admin_pg_.acquire()->execute("CREATE DATABASE " + pg_db, {});
    my = make_resource_manager(test::mysql_resource("bank1", my_db));
    pg = make_resource_manager(test::postgres_resource("bank2", pg_db));
  }
  ~ScratchDatabases() {
    my.reset();
    pg.reset();  // their connections closed before the databases are dropped
    admin_my_.acquire()->execute("DROP DATABASE IF EXISTS " + my_db, {});
    admin_pg_.acquire()->execute("DROP DATABASE IF EXISTS " + pg_db, {});
  }

  ResourceManager &admin_my_, &admin_pg_;
  const std::string my_db, pg_db;
  std::unique_ptr<ResourceManager> my, pg;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    tag_ = std::to_string(rd() % 1000000);
    dir_ = test::fresh_dir("cli");
    table_ = "cli_" + tag_;
    my_ = make_resource_manager(test::mysql_resource());
    pg_ = make_resource_manager(test::postgres_resource());
    for (auto* rm : {my_.get(), pg_.get()}) {
      run_sql(*rm, "CREATE TABLE " + table_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))");
      run_sql(*rm, "INSERT INTO " + table_ + " VALUES (1, 100)");
    }
    write_config(dir_ / "dtx.toml", "dtx_test", "dtx_test");
  }
  void TearDown() override {
    for (auto* rm : {my_.get(), pg_.get()}) run_sql(*rm, "DROP TABLE IF EXISTS " + table_);
    std::filesystem::remove_all(dir_);
  }

  static Result run_sql(ResourceManager& rm, const std::string& sql) {
    return rm.acquire()->execute(sql, {});
  }
  std::int64_t balance(ResourceManager& rm) {
    return run_sql(rm, "SELECT balance FROM " + table_ + " WHERE id = 1")[0].as_int64(0);
  }

  void write_config(const std::filesystem::path& file, const std::string& my_db, const std::string& pg_db) {
    auto my = test::mysql_resource(), pg = test::postgres_resource();
    std::ofstream out(file);
    out << "[coordinator]\nid = \"cli" << tag_ << "\"\nlog_dir = \"" << (dir_ / "log").string() << "\"\n\n"
        << "[resources.bank1]\ntype = \"mysql\"\nhost = \"127.0.0.1\"\nport = " << my.port
        << "\nuser = \"" << my.user << "\"\npassword = \"" << my.password << "\"\ndatabase = \"" << my_db
        << "\"\n\n"
        << "[resources.bank2]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = " << pg.port
        << "\nuser = \"" << pg.user << "\"\npassword = \"" << pg.password << "\"\ndatabase = \"" << pg_db
        << "\"\n";
  }

  Outcome run(const std::string& program, const std::vector<std::string>& args) {
    std::string cmd = quote((test::binary_dir() / program).string());
    for (const auto& a : args) cmd += " " + quote(a);
    auto out = dir_ / "stdout", err = dir_ / "stderr";
    cmd += " >" + quote(out.string()) + " 2>" + quote(err.string()) + " </dev/null";
    Outcome r;
    int raw = std::system(cmd.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  Outcome dtx(std::vector<std::string> args) { return run("dtx", args); }
  std::string config() const { return (dir_ / "dtx.toml").string(); }
  std::string upd(const std::string& delta) const {
    return "UPDATE " + table_ + " SET balance = balance + (" + delta + ") WHERE id = 1";
  }

  std::string tag_, table_;
  std::filesystem::path dir_;
  std::unique_ptr<ResourceManager> my_, pg_;
};

TEST_F(CliTest, ExecCommitsAcrossBothDatabases) {
  Outcome r = dtx({"exec", "--config", config(), "bank1=" + upd("-30"), "bank2=" + upd("30")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("committed cli" + tag_ + ".")) << r.out;
  EXPECT_EQ(balance(*my_), 70);
  EXPECT_EQ(balance(*pg_), 130);
}

TEST_F(CliTest, ExecFailureRollsBackAndNamesResourceStatementAndServerError) {
  Outcome r = dtx({"exec", "--config", config(), "bank1=" + upd("-30"),
               "bank2=UPDATE " + table_ + " SET nope = 1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("statement 2 on bank2 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;           // the server's message
  EXPECT_NE(r.err.find("SQLSTATE 42703"), std::string::npos) << r.err;  // undefined_column
  EXPECT_NE(r.err.find("rolled back cli" + tag_ + "."), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("committed"), std::string::npos);
  EXPECT_EQ(balance(*my_), 100);
  EXPECT_EQ(balance(*pg_), 100);
}

TEST_F(CliTest, ExecConstraintViolationOnBank1RollsBackBank2) {
  Outcome r = dtx({"exec", "--config", config(), "bank2=" + upd("500"), "bank1=" + upd("-500")});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.err.find("on bank1 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(balance(*my_), 100);
  EXPECT_EQ(balance(*pg_), 100);
}

TEST_F(CliTest, ExecRunsStatementsOnOneResourceInOrder) {
  Outcome r = dtx({"exec", "--config", config(), "bank1=" + upd("-10"), "bank1=" + upd("-20"),
               "bank2=" + upd("30"), "bank1=SELECT balance FROM " + table_ + " WHERE id = 1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("70\ncommitted ")) << r.out;
  EXPECT_EQ(balance(*my_), 70);
  EXPECT_EQ(balance(*pg_), 130);
}

TEST_F(CliTest, ExecWithOneResourceCommits) {
  Outcome r = dtx({"exec", "--config", config(), "bank2=" + upd("1")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(balance(*pg_), 101);
}

TEST_F(CliTest, ConcurrentExecProcessesShareOneLogDir) {
  constexpr int kProcesses = 8;
  std::vector<std::thread> threads;
  std::vector<Outcome> runs(kProcesses);
  for (int i = 0; i < kProcesses; ++i)
    threads.emplace_back([&, i] {
      // Each process writes its own stdout/stderr files.
      std::string cmd = quote((test::binary_dir() / "dtx").string()) + " exec --config " +
                        quote(config()) + " " + quote("bank1=" + upd("-1")) + " " + quote("bank2=" + upd("1"));
      auto out = dir_ / ("out" + std::to_string(i)), err = dir_ / ("err" + std::to_string(i));
      int raw = std::system((cmd + " >" + quote(out.string()) + " 2>" + quote(err.string())).c_str());
      runs[i] = {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(out), slurp(err)};
    });
  for (auto& t : threads) t.join();
  for (const Outcome& r : runs) {
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("committed ")) << r.out;
  }
  EXPECT_EQ(balance(*my_), 100 - kProcesses);
  EXPECT_EQ(balance(*pg_), 100 + kProcesses);
  // Every process finished its decisions, so each removed its own log files.
  std::size_t leftover = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "log")) {
    ++leftover;
    ADD_FAILURE() << "left in log_dir: " << entry.path();
  }
  EXPECT_EQ(leftover, 0u);
}

TEST_F(CliTest, UsageAndConfigErrorsExitTwo) {
  Outcome no_eq = dtx({"exec", "--config", config(), "bank1 UPDATE x"});
  EXPECT_EQ(no_eq.status, 2);
  EXPECT_NE(no_eq.err.find("RESOURCE=SQL"), std::string::npos) << no_eq.err;

  Outcome unknown = dtx({"exec", "--config", config(), "bank9=" + upd("1")});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("bank9"), std::string::npos) << unknown.err;

  std::ofstream(dir_ / "bad.toml") << "[coordinator]\nid = \"x\"\nlog_dir = \"/tmp\"\nbogus = 1\n";
  Outcome bad = dtx({"exec", "--config", (dir_ / "bad.toml").string(), "bank1=" + upd("1")});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("bad.toml:4"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("coordinator.bogus"), std::string::npos) << bad.err;

  Outcome missing = dtx({"exec", "--config", config()});
  EXPECT_EQ(missing.status, 2);
  Outcome nothing = dtx({});
  EXPECT_EQ(nothing.status, 2);
  EXPECT_EQ(balance(*my_), 100);
}

// PostgreSQL: dtx ends a branch's block itself; a COMMIT among the statements
// is refused (not run), and the whole transaction rolls back.
TEST_F(CliTest, ExecRefusesTransactionControlInsideTheTransaction) {
  Outcome r = dtx({"exec", "--config", config(), "bank1=" + upd("-30"), "bank2=" + upd("30"),
                   "bank2=COMMIT"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("statement 3 on bank2 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("COMMIT cannot run inside a branch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rolled back cli" + tag_ + "."), std::string::npos) << r.err;
  EXPECT_EQ(balance(*my_), 100);
  EXPECT_EQ(balance(*pg_), 100);
}

// dtx bench against the test databases: every variant measured, the keys the
// issue names, and no transaction lost or half-applied (each variant adds 1
// to one row on each database per transaction, so the two sums stay equal).
TEST_F(CliTest, BenchMeasuresEveryVariantAndKeepsTheDatabasesEqual) {
  ScratchDatabases db(*my_, *pg_, "cli_bench1_" + tag_, "cli_bench2_" + tag_);
  write_config(dir_ / "bench.toml", db.my_db, db.pg_db);
  Outcome r = dtx({"bench", "--config", (dir_ / "bench.toml").string(), "--clients", "2", "--duration", "0.5",
                   "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"non_atomic_tps", "raw_xa_tps", "dtx_tps", "dtx_p50_ms", "dtx_p99_ms",
                          "raw_xa_p50_ms", "raw_xa_p99_ms", "dtx_vs_raw_xa"}) {
    ASSERT_TRUE(j.contains(key)) << key << " missing: " << r.out;
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
  EXPECT_EQ(j["clients"], 2);
  EXPECT_EQ(j["duration_s"].get<double>(), 0.5);
  for (const char* key : {"non_atomic_errors", "raw_xa_errors", "dtx_errors"})
    EXPECT_EQ(j[key], 0) << key << "\n" << r.err;
  EXPECT_LE(j["dtx_p50_ms"].get<double>(), j["dtx_p99_ms"].get<double>());
  Result my = run_sql(*db.my, "SELECT count(*), CAST(sum(balance) AS SIGNED) FROM dtx_bench_accounts");
  Result pg = run_sql(*db.pg, "SELECT count(*), CAST(sum(balance) AS BIGINT) FROM dtx_bench_accounts");
  EXPECT_EQ(my[0].as_int64(0), 10000);
  EXPECT_EQ(pg[0].as_int64(0), 10000);
  EXPECT_GT(my[0].as_int64(1), 0);
  EXPECT_EQ(my[0].as_int64(1), pg[0].as_int64(1));
  EXPECT_EQ(run_sql(*db.pg, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()")[0]
                .as_int64(0),
            0);
}

// dtx bench --decisions R: dtx's decisions in R's dtx_decision, on each
// database; every transaction applied on both, none left prepared, and every
// decision row deleted once the forget threads drained. --null-rm stays on the
// file log and says so; an unknown resource is a usage error.
TEST_F(CliTest, BenchWithDecisionsInEachDatabase) {
  ScratchDatabases db(*my_, *pg_, "cli_benchdec1_" + tag_, "cli_benchdec2_" + tag_);
  write_config(dir_ / "bench.toml", db.my_db, db.pg_db);
  const std::string file = (dir_ / "bench.toml").string();
  for (const auto& [resource, type] : {std::pair{"bank1", "mysql"}, std::pair{"bank2", "postgres"}}) {
    SCOPED_TRACE(resource);
    Outcome r = dtx({"bench", "--config", file, "--decisions", resource, "--variants", "raw_xa,dtx", "--clients",
                     "2", "--duration", "0.5", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["decisions"], resource);
    EXPECT_EQ(j["decisions_type"], type);
    EXPECT_GT(j["dtx_tps"].get<double>(), 0);
    EXPECT_EQ(j["dtx_errors"], 0) << r.err;
    EXPECT_FALSE(j.contains("dtx_log_syncs")) << r.out;  // no file log
    EXPECT_EQ(j["decision_rows_left"], 0) << r.out;
    EXPECT_GT(j["dtx_vs_raw_xa"].get<double>(), 0);
    Result my = run_sql(*db.my, "SELECT CAST(sum(balance) AS SIGNED) FROM dtx_bench_accounts");
    Result pg = run_sql(*db.pg, "SELECT CAST(sum(balance) AS BIGINT) FROM dtx_bench_accounts");
    EXPECT_EQ(my[0].as_int64(0), pg[0].as_int64(0));
    EXPECT_EQ(run_sql(*db.pg, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()")[0]
                  .as_int64(0),
              0);
  }
  EXPECT_EQ(run_sql(*db.my, "SELECT count(*) FROM dtx_decision")[0].as_int64(0), 0);
  EXPECT_EQ(run_sql(*db.pg, "SELECT count(*) FROM dtx_decision")[0].as_int64(0), 0);

  Outcome null_rm = dtx({"bench", "--null-rm", "--config", file, "--decisions", "bank2", "--clients", "1",
                         "--duration", "0.2", "--json"});
  ASSERT_EQ(null_rm.status, 0) << null_rm.err;
  nlohmann::json n = nlohmann::json::parse(null_rm.out);
  EXPECT_EQ(n["decisions"], "file");
  EXPECT_EQ(n["decisions_set_aside"], "bank2");
  EXPECT_NE(null_rm.err.find("measures the file log only"), std::string::npos) << null_rm.err;
  Outcome unknown = dtx({"bench", "--config", file, "--decisions", "bank9", "--duration", "0.2"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("bank9"), std::string::npos) << unknown.err;
}

TEST_F(CliTest, BenchNullRmAndChosenVariants) {
  Outcome null_rm = dtx({"bench", "--null-rm", "--clients", "2", "--duration", "0.3", "--json"});
  ASSERT_EQ(null_rm.status, 0) << null_rm.err;
  nlohmann::json j = nlohmann::json::parse(null_rm.out);
  EXPECT_GT(j["dtx_tps"].get<double>(), 0);
  EXPECT_EQ(j["dtx_errors"], 0);
  EXPECT_TRUE(j["null_rm"].get<bool>());
  EXPECT_FALSE(j.contains("raw_xa_tps"));
  // Every two-branch transaction forced a COMMIT record: some fdatasyncs, each
  // covering at least one transaction.
  EXPECT_GT(j["dtx_log_syncs"].get<std::uint64_t>(), 0u);
  EXPECT_GE(j["dtx_per_log_sync"].get<double>(), 1.0);
  // Beside it, the decision log's own group-commit ceiling in the same run and
  // log_dir, and dtx's share of it.
  EXPECT_GT(j["log_ceiling_tps"].get<double>(), 0) << null_rm.out;
  EXPECT_EQ(j["log_ceiling_errors"], 0);
  EXPECT_GT(j["log_ceiling_log_syncs"].get<std::uint64_t>(), 0u);
  EXPECT_NEAR(j["dtx_vs_log_ceiling"].get<double>(),
              j["dtx_tps"].get<double>() / j["log_ceiling_tps"].get<double>(), 1e-9);
  EXPECT_GT(j["dtx_vs_log_ceiling_round_median"].get<double>(), 0);

  Outcome table = dtx({"bench", "--null-rm", "--clients", "1", "--duration", "0.2"});
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("null resource managers"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\ndtx "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\nlog_ceiling "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("dtx / log_ceiling = "), std::string::npos) << table.out;

  Outcome bogus = dtx({"bench", "--config", config(), "--variants", "dtx,bogus"});
  EXPECT_EQ(bogus.status, 2);
  EXPECT_NE(bogus.err.find("bogus"), std::string::npos) << bogus.err;
  Outcome no_clients = dtx({"bench", "--null-rm", "--clients", "0"});
  EXPECT_EQ(no_clients.status, 2);
  EXPECT_NE(no_clients.err.find("--clients"), std::string::npos) << no_clients.err;
  Outcome no_config = dtx({"bench", "--clients", "1"});
  EXPECT_EQ(no_config.status, 2);
  EXPECT_NE(no_config.err.find("--config"), std::string::npos) << no_config.err;
}

// dtx bench drops and recreates dtx_bench_accounts; a table of that name it
// did not create is the user's: the bench refuses (exit 2, naming the
// resource and the table) before touching any database, and the rows survive.
TEST_F(CliTest, BenchNeverDropsATableItDidNotCreate) {
  ScratchDatabases db(*my_, *pg_, "cli_benchown1_" + tag_, "cli_benchown2_" + tag_);
  write_config(dir_ / "own.toml", db.my_db, db.pg_db);
  const std::vector<std::string> bench = {"bench", "--config", (dir_ / "own.toml").string(), "--clients", "1",
                                          "--duration", "0.2", "--variants", "dtx"};
  auto count = [](ResourceManager& rm, const std::string& query) { return run_sql(rm, query)[0].as_int64(0); };
  const std::string my_has = "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                             "AND TABLE_NAME = 'dtx_bench_accounts'";
  const std::string pg_has = "SELECT count(*) FROM pg_class WHERE oid = to_regclass('dtx_bench_accounts')";

  // The user's table on the first resource: refused, nothing created on the second.
  run_sql(*db.my, "CREATE TABLE dtx_bench_accounts (id INT PRIMARY KEY, owner VARCHAR(20))");
  run_sql(*db.my, "INSERT INTO dtx_bench_accounts VALUES (1, 'alice'), (2, 'bob')");
  Outcome first = dtx(bench);
  EXPECT_EQ(first.status, 2) << first.out << first.err;
  EXPECT_NE(first.err.find("resource 'bank1'"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("dtx_bench_accounts that dtx bench did not create"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("scratch database"), std::string::npos) << first.err;
  EXPECT_EQ(count(*db.my, "SELECT count(*) FROM dtx_bench_accounts WHERE owner IN ('alice', 'bob')"), 2);
  EXPECT_EQ(count(*db.pg, pg_has), 0);

  // On the second resource: refused before the first one's table (none
  // there now) is created.
  run_sql(*db.my, "DROP TABLE dtx_bench_accounts");
  run_sql(*db.pg, "CREATE TABLE dtx_bench_accounts (id INT PRIMARY KEY, owner TEXT)");
  run_sql(*db.pg, "INSERT INTO dtx_bench_accounts VALUES (1, 'carol')");
  Outcome second = dtx(bench);
  EXPECT_EQ(second.status, 2) << second.out << second.err;
  EXPECT_NE(second.err.find("resource 'bank2'"), std::string::npos) << second.err;
  EXPECT_EQ(run_sql(*db.pg, "SELECT owner FROM dtx_bench_accounts")[0].text(0), "carol");
  EXPECT_EQ(count(*db.my, my_has), 0);

  // Its own tables, marked when created, it drops and recreates on the next run.
  run_sql(*db.pg, "DROP TABLE dtx_bench_accounts");
  for (int run = 0; run < 2; ++run) {
    Outcome ours = dtx(bench);
    EXPECT_EQ(ours.status, 0) << ours.out << ours.err;
  }
  EXPECT_EQ(count(*db.my, "SELECT count(*) FROM dtx_bench_accounts"), 10000);
  EXPECT_EQ(count(*db.pg, "SELECT count(*) FROM dtx_bench_accounts"), 10000);
}

TEST_F(CliTest, HelpDescribesTheCommands) {
  Outcome top = dtx({"--help"});
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("exec"), std::string::npos) << top.out;
  Outcome exec = dtx({"exec", "--help"});
  EXPECT_EQ(exec.status, 0);
  EXPECT_NE(exec.out.find("RESOURCE=SQL"), std::string::npos) << exec.out;
  EXPECT_NE(exec.out.find("--config"), std::string::npos) << exec.out;
}

// examples/bank_transfer with its three scenarios, on its own bank databases.
TEST_F(CliTest, BankExampleScenarios) {
  std::string my_db = "cli_bank1_" + tag_, pg_db = "cli_bank2_" + tag_;
  run_sql(*my_, "CREATE DATABASE " + my_db);
  run_sql(*pg_, "CREATE DATABASE " + pg_db);
  auto my_bank = make_resource_manager(test::mysql_resource("bank1", my_db));
  auto pg_bank = make_resource_manager(test::postgres_resource("bank2", pg_db));
  run_sql(*my_bank,
          "CREATE TABLE account_info (id BIGINT PRIMARY KEY AUTO_INCREMENT, account_name VARCHAR(100), "
          "account_no VARCHAR(100), account_password VARCHAR(100), account_balance DOUBLE, "
          "CHECK (account_balance >= 0)) ENGINE=InnoDB");
  run_sql(*my_bank, "INSERT INTO account_info VALUES (2, 'Zhang San', '1', '', 10000)");
  run_sql(*pg_bank,
          "CREATE TABLE account_info (id BIGINT PRIMARY KEY, account_name VARCHAR(100), "
          "account_no VARCHAR(100), account_password VARCHAR(100), account_balance DOUBLE PRECISION "
          "CHECK (account_balance >= 0))");
  run_sql(*pg_bank, "INSERT INTO account_info VALUES (3, 'Li Si', '2', NULL, 0)");
  write_config(dir_ / "bank.toml", my_db, pg_db);

  for (const char* scenario : {"success", "bank2-fails", "bank1-fails"}) {
    Outcome r = run("bank_transfer", {"--config", (dir_ / "bank.toml").string(), "--scenario", scenario,
                                  "--amount", "100"});
    EXPECT_EQ(r.status, 0) << scenario << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("as expected"), std::string::npos) << r.out;
  }
  auto money = [&](ResourceManager& rm) {
    return run_sql(rm, "SELECT account_balance FROM account_info")[0].as_double(0);
  };
  EXPECT_EQ(money(*my_bank), 9900);
  EXPECT_EQ(money(*pg_bank), 100);
  my_bank.reset();
  pg_bank.reset();  // close its connections before dropping the database
  run_sql(*my_, "DROP DATABASE " + my_db);
  run_sql(*pg_, "DROP DATABASE " + pg_db);
}


// ---- Issue 8, §8: what the tool says in the cases users found confusing ----

// `dtx exec` as a child process of its own, so that the test can signal it.
std::unique_ptr<test::Child> start_exec(const std::filesystem::path& dir, const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& env = {}) {
  static int n = 0;
  return std::make_unique<test::Child>(test::binary_dir() / "dtx", args, env, dir, "exec" + std::to_string(n++));
}

// Interrupted while a statement waits for a row lock: nothing is prepared,
// the database rolls the branches back when the connections close. The tool
// says so and exits 128 + the signal, instead of dying silently.
TEST_F(CliTest, SignalWhileRunningStatementsSaysNothingIsLeft) {
  for (int sig : {SIGINT, SIGTERM}) {
    SessionLease holder = pg_->acquire();
    holder->begin(Xid::make("cli" + tag_ + "-holder-" + std::to_string(sig), "h"));
    holder->execute(upd("0"), {});  // holds the row lock
    auto exec = start_exec(dir_, {"exec", "--config", config(), "bank1=" + upd("-5"), "bank2=" + upd("5")});
    ASSERT_TRUE(test::eventually([&] {
      return run_sql(*pg_, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%" +
                               table_ + "%'")[0].as_int64(0) > 0;
    })) << "dtx exec never waited for the lock";
    exec->kill(sig);
    test::ExitStatus st = exec->wait();
    holder->rollback();
    EXPECT_EQ(st.code, 128 + sig) << "signal " << sig << ": " << exec->err();
    EXPECT_NE(exec->err().find("nothing was prepared"), std::string::npos) << exec->err();
    EXPECT_NE(exec->err().find("rolled back cli" + tag_ + "."), std::string::npos) << exec->err();
    EXPECT_EQ(balance(*my_), 100);
    EXPECT_EQ(balance(*pg_), 100);
  }
}

// Interrupted during the commit (here: every branch prepared, the process
// stopped at a failpoint): branches may be prepared, and the tool says to
// run `dtx recover`, which then finishes them.
TEST_F(CliTest, SignalDuringTheCommitSaysToRunRecover) {
  auto exec = start_exec(dir_, {"exec", "--config", config(), "bank1=" + upd("-5"), "bank2=" + upd("5")},
                         {{"DTX_FAILPOINT", "after-prepare:hang"}});
  auto ours_prepared = [&] {
    std::size_t n = 0;
    for (auto* rm : {my_.get(), pg_.get()})
      for (const auto& p : rm->acquire()->recover())
        if (p.is_dtx && p.xid.gtrid.starts_with("cli" + tag_ + ".")) ++n;
    return n;
  };
  ASSERT_TRUE(test::eventually([&] { return ours_prepared() == 2; })) << exec->err();
  exec->kill(SIGTERM);
  test::ExitStatus st = exec->wait();
  EXPECT_EQ(st.code, 128 + SIGTERM) << exec->err();
  EXPECT_NE(exec->err().find("dtx recover"), std::string::npos) << exec->err();
  EXPECT_NE(exec->err().find("cli" + tag_ + "."), std::string::npos) << exec->err();
  Outcome rec;
  EXPECT_TRUE(test::eventually([&] {
    rec = dtx({"recover", "--config", config()});
    return rec.status == 0;
  })) << rec.out << rec.err;
  EXPECT_EQ(ours_prepared(), 0u);
  EXPECT_EQ(balance(*my_), 100);
  EXPECT_EQ(balance(*pg_), 100);
}

// Resources that cannot be listed: the tool must not say "no prepared
// branches". (Both are down, so that no branch of another test on the shared
// servers fills the table.)
TEST_F(CliTest, RecoverDoesNotClaimNoPreparedBranchesWhenAResourceCannotBeListed) {
  std::string text = slurp(config());
  for (int port : {test::mysql_resource().port, test::postgres_resource().port}) {
    const std::string line = "port = " + std::to_string(port);
    ASSERT_NE(text.find(line), std::string::npos);
    text.replace(text.find(line), line.size(), "port = 1");
  }
  std::ofstream(dir_ / "down.toml") << text;
  for (const char* command : {"recover", "in-doubt"}) {
    Outcome r = dtx({command, "--config", (dir_ / "down.toml").string()});
    EXPECT_EQ(r.status, 1) << command << ": " << r.out << r.err;
    EXPECT_EQ(r.out.find("no prepared branches\n"), std::string::npos) << command << ": " << r.out;
    EXPECT_NE(r.out.find("bank2"), std::string::npos) << command << ": " << r.out;
  }
}

// Prepared branches of this coordinator id and no log_dir at all: nobody can
// tell whether their owner lives or what it decided. Reported as a missing
// log, not as "owner alive".
TEST_F(CliTest, MissingLogDirIsReportedAsSuchNotAsOwnerAlive) {
  const std::string gtrid = "cli" + tag_ + "." + new_incarnation() + ".1";
  const Xid xid = Xid::make(gtrid, "bank2");
  {
    SessionLease s = pg_->acquire();
    s->begin(xid);
    s->execute(upd("1"), {});
    s->prepare();
    s.discard();
  }
  ASSERT_FALSE(std::filesystem::exists(dir_ / "log"));
  Outcome r = dtx({"recover", "--config", config(), "--json"});
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  std::string action, detail;
  if (j.is_object())
    for (const auto& b : j["branches"])
      if (b["gtrid"] == gtrid) {
        action = b["action"];
        detail = b["detail"];
      }
  EXPECT_EQ(action, "left_log_damaged") << r.out;
  EXPECT_NE(detail.find((dir_ / "log").string()), std::string::npos) << detail;
  EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
  EXPECT_EQ(pg_->acquire()->rollback_prepared(xid).outcome, FinishOutcome::done);
}

// Settled decisions whose files cannot be deleted (an immutable log_dir) are
// not counted as dropped; the pass says why, and a later pass drops them.
TEST_F(CliTest, DecisionsDroppedCountsOnlyDeletedLogs) {
  Outcome crash = dtx({"exec", "--config", config(), "bank1=" + upd("-5"), "bank2=" + upd("5")});
  ASSERT_EQ(crash.status, 0) << crash.err;  // creates log_dir
  auto exec = start_exec(dir_, {"exec", "--config", config(), "bank1=" + upd("-5"), "bank2=" + upd("5")},
                         {{"DTX_FAILPOINT", "after-decision"}});
  EXPECT_TRUE(exec->wait().killed_by(SIGKILL)) << exec->err();
  const std::string log_dir = (dir_ / "log").string();
  if (std::system(("chattr +i " + quote(log_dir) + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "chattr +i is not available here";
  Outcome first;
  test::eventually([&] {  // MariaDB ends the killed process's session a moment later
    first = dtx({"recover", "--config", config(), "--json"});
    return first.out.find("left_session_busy") == std::string::npos;
  });
  std::system(("chattr -i " + quote(log_dir)).c_str());
  nlohmann::json j = nlohmann::json::parse(first.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << first.out << first.err;
  EXPECT_EQ(j["decisions_dropped"], 0) << first.out;
  EXPECT_FALSE(j["errors"].empty()) << first.out;
  EXPECT_EQ(balance(*my_), 90);
  EXPECT_EQ(balance(*pg_), 110);
  Outcome second = dtx({"recover", "--config", config(), "--json"});
  EXPECT_EQ(second.status, 0) << second.out << second.err;
  j = nlohmann::json::parse(second.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << second.out;
  EXPECT_EQ(j["decisions_dropped"], 1) << second.out;
}

// A log_dir that cannot be a directory is a configuration error: exit 2.
TEST_F(CliTest, UncreatableLogDirIsAConfigError) {
  std::ofstream(dir_ / "afile") << "x";
  std::string text = slurp(config());
  const std::string line = "log_dir = \"" + (dir_ / "log").string() + "\"";
  ASSERT_NE(text.find(line), std::string::npos);
  text.replace(text.find(line), line.size(), "log_dir = \"" + (dir_ / "afile" / "log").string() + "\"");
  std::ofstream(dir_ / "badlog.toml") << text;
  Outcome exec = dtx({"exec", "--config", (dir_ / "badlog.toml").string(), "bank1=" + upd("-5"), "bank2=" + upd("5")});
  EXPECT_EQ(exec.status, 2) << exec.err;
  EXPECT_NE(exec.err.find((dir_ / "afile").string()), std::string::npos) << exec.err;
  for (const char* command : {"recover", "in-doubt"}) {
    Outcome r = dtx({command, "--config", (dir_ / "badlog.toml").string()});
    EXPECT_EQ(r.status, 2) << command << ": " << r.out << r.err;
    EXPECT_NE(r.err.find((dir_ / "afile").string()), std::string::npos) << command << ": " << r.err;
  }
  EXPECT_EQ(balance(*my_), 100);
}
}  // namespace
}  // namespace dtx
