// dtx serve, end to end. The dtx tool runs as a child process; real
// PostgreSQL clients talk to its admin console — psql (postgresql-client),
// libpq through libpqxx (extended protocol, parameters, cancel), psycopg2 —
// and a raw socket sends what no client would. Transactions crashed with
// failpoints on the real MariaDB and PostgreSQL are found in the views and
// settled with SQL; the real rows are checked afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <pqxx/pqxx>

#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/direct.h"
#include "support/process.h"
#include "support/recovery_runs.h"
#include "support/test_env.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::ChildRun;

constexpr int kAccounts = 10;
constexpr std::int64_t kInitialBalance = 100;
const char* kAdminPassword = "s3cret-Adm1n";

std::string psql_binary() {
  return fs::exists("/usr/lib/postgresql/15/bin/psql") ? "/usr/lib/postgresql/15/bin/psql" : "/usr/bin/psql";
}

using test::Direct;

// A running `dtx serve`, stopped with SIGTERM on destruction.
class Server {
 public:
  Server(const fs::path& config, const fs::path& dir, const std::string& tag) {
    std::fflush(nullptr);
    child_ = std::make_unique<test::Child>(test::dtx_binary(), std::vector<std::string>{"serve", "--config", config.string()},
                                           std::map<std::string, std::string>{{"DTX_TEST_ADMIN_PW", kAdminPassword}},
                                           dir, tag);
    const bool ready = test::eventually([&] {
      return child_->out().find("dtx serve: ready") != std::string::npos || child_->exited();
    }, 30s);
    std::string out = child_->out();
    if (!ready || out.find("dtx serve: ready") == std::string::npos)
      throw std::runtime_error("dtx serve did not start: " + out + child_->err());
    sql_port = port_after(out, "admin console on 127.0.0.1:");
    metrics_port = port_after(out, "metrics on http://127.0.0.1:");
  }
  ~Server() {
    if (child_ && !child_->exited()) {
      child_->kill(SIGTERM);
      child_->wait();
    }
  }
  test::ExitStatus stop() {
    child_->kill(SIGTERM);
    return child_->wait();
  }
  test::Child& child() { return *child_; }

  // The number after `prefix` in `text`, 0 if absent. (No std::regex: GCC 12
  // warns inside <regex> in sanitizer builds.)
  static int port_after(const std::string& text, const std::string& prefix) {
    const std::size_t at = text.find(prefix);
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + prefix.size());
  }

  int sql_port = 0;
  int metrics_port = 0;

 private:
  std::unique_ptr<test::Child> child_;
};

// A TCP connection to 127.0.0.1:port for what no client library sends.
class RawSocket {
 public:
  explicit RawSocket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  }
  ~RawSocket() { ::close(fd_); }
  void send(const std::string& bytes) { ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), ssize_t(bytes.size())); }
  // Everything until the peer closes, or `limit` passes (then `closed` is false).
  std::string read_until_closed(std::chrono::milliseconds limit, bool* closed) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + limit;
    *closed = false;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return got;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) {
        *closed = true;
        return got;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

std::string int32_be(std::int32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8) s[i] = static_cast<char>(v & 0xff);
  return s;
}

std::string startup_packet(const std::string& user) {
  std::string body = int32_be(196608) + "user" + std::string(1, '\0') + user + std::string(1, '\0') +
                     "database" + std::string(1, '\0') + "dtx" + std::string(2, '\0');
  return int32_be(static_cast<std::int32_t>(body.size() + 4)) + body;
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    tag_ = std::to_string(100000 + rd() % 900000);
    id_ = "sv" + tag_;
    dir_ = test::fresh_dir("serve");
    log_dir_ = dir_ / "log";
    acct_ = "sv_acct_" + tag_;
    for (Direct* d : {&my_, &pg_}) {
      d->run("DROP TABLE IF EXISTS " + acct_);
      d->run("CREATE TABLE " + acct_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" +
             (d->is_mysql() ? " ENGINE=InnoDB" : ""));
      std::string values;
      for (int i = 1; i <= kAccounts; ++i)
        values += (i > 1 ? ", (" : "(") + std::to_string(i) + ", " + std::to_string(kInitialBalance) + ")";
      d->run("INSERT INTO " + acct_ + " VALUES " + values);
    }
    exec_config_ = write_config("exec.toml", "");
  }

  void TearDown() override {
    if (HasFailure() && server_) {
      std::string err = server_->child().err();
      if (err.size() > 4000) err = "..." + err.substr(err.size() - 4000);
      std::cout << "dtx serve's stderr (the end):\n" << err << "\n";
    }
    server_.reset();
    for (Direct* d : {&my_, &pg_}) {
      try {
        for (const auto& p : d->prepared()) {
          if (!(p.is_dtx && p.xid.gtrid.starts_with(id_ + "."))) continue;
          ADD_FAILURE() << "left prepared on " << d->rm().name() << ": " << p.raw;
          test::eventually([&] {
            try {
              return d->rm().acquire()->rollback_prepared(p.xid).outcome != FinishOutcome::not_found;
            } catch (const Error&) {
              return true;
            }
          }, 10s);
        }
        d->run("DROP TABLE IF EXISTS " + acct_);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleaning up " << d->rm().name() << ": " << e.what();
      }
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A config with the two test databases and `extra` TOML appended.
  fs::path write_config(const std::string& name, const std::string& extra, int recovery_interval_s = 0) {
    fs::path file = dir_ / name;
    auto my = test::mysql_resource(), pg = test::postgres_resource();
    std::ofstream out(file);
    out << "[coordinator]\nid = \"" << id_ << "\"\nlog_dir = \"" << log_dir_.string()
        << "\"\nrecovery_interval_s = " << recovery_interval_s << "\n\n";
    for (const auto* r : {&my, &pg})
      out << "[resources." << r->name << "]\ntype = \"" << (r == &my ? "mysql" : "postgres") << "\"\nhost = \""
          << r->host << "\"\nport = " << r->port << "\nuser = \"" << r->user << "\"\npassword = \"" << r->password
          << "\"\ndatabase = \"" << r->database << "\"\n\n";
    out << extra;
    return file;
  }

  std::string admin_section(const std::string& more = "") {
    return "[admin]\nlisten = \"127.0.0.1:0\"\npassword_env = \"DTX_TEST_ADMIN_PW\"\n" + more +
           "\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
  }

  Server& start(const std::string& admin_more = "", const std::string& extra = "", int recovery_interval_s = 0) {
    fs::path config = write_config("serve" + std::to_string(servers_) + ".toml", admin_section(admin_more) + extra,
                                   recovery_interval_s);
    server_ = std::make_unique<Server>(config, dir_, "serve" + std::to_string(servers_++));
    return *server_;
  }

  // psql -c `sql`, unaligned, tuples only; stdout is the rows as a|b lines.
  ChildRun psql(const std::string& sql, const std::string& user = "dtx_admin",
                const std::string& password = kAdminPassword, bool verbose = false) {
    std::vector<std::string> args{"-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                                  std::to_string(server_->sql_port), "-U", user, "-d", "dtx", "-c", sql};
    if (verbose) args.insert(args.begin(), {"-v", "VERBOSITY=verbose"});
    std::fflush(nullptr);
    test::Child child(psql_binary(), args, {{"PGPASSWORD", password}, {"PGCONNECT_TIMEOUT", "10"}}, dir_,
                      "psql" + std::to_string(children_++));
    test::ExitStatus st = child.wait();
    return {st, child.out(), child.err()};
  }

  std::string conninfo(const std::string& password = kAdminPassword) {
    return "host=127.0.0.1 port=" + std::to_string(server_->sql_port) +
           " user=dtx_admin dbname=dtx connect_timeout=10 password=" + password;
  }

  ChildRun run_dtx(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    return test::run_dtx_child(dir_, "dtx" + std::to_string(children_++), args, env);
  }

  // `dtx exec` moving `amount` from account 1 on MariaDB to account 1 on PostgreSQL.
  std::vector<std::string> transfer(int account = 1, int amount = 10) {
    std::string where = " WHERE id = " + std::to_string(account);
    return {"exec", "--config", exec_config_.string(),
            "my=UPDATE " + acct_ + " SET balance = balance - " + std::to_string(amount) + where,
            "pg=UPDATE " + acct_ + " SET balance = balance + " + std::to_string(amount) + where};
  }

  std::int64_t balance(Direct& d, int id = 1) {
    return d.scalar("SELECT balance FROM " + acct_ + " WHERE id = " + std::to_string(id));
  }
  std::int64_t total() {
    return my_.scalar("SELECT SUM(balance) FROM " + acct_) + pg_.scalar("SELECT SUM(balance) FROM " + acct_);
  }
  std::size_t prepared_of_ours() {
    std::size_t n = 0;
    for (Direct* d : {&my_, &pg_})
      for (const auto& p : d->prepared()) n += p.is_dtx && p.xid.gtrid.starts_with(id_ + ".");
    return n;
  }

  // The gtrids of this test's in-doubt transactions, as the console lists them.
  std::vector<std::string> in_doubt_gtrids() {
    ChildRun r = psql("SELECT DISTINCT gtrid FROM in_doubt WHERE gtrid LIKE '" + id_ + ".%' ORDER BY gtrid");
    EXPECT_EQ(r.status.code, 0) << r.err;
    std::vector<std::string> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  }

  // Runs a settle command until MariaDB has let go of the killed client's
  // session (until then XA COMMIT answers 1397 and the command reports the
  // branch as busy). Returns the last run.
  ChildRun settle(const std::string& command) {
    ChildRun last;
    test::eventually([&] {
      last = psql(command, "dtx_admin", kAdminPassword, true);
      return last.status.code == 0 || last.err.find("busy") == std::string::npos;
    }, 20s);
    return last;
  }

  std::string tag_, id_, acct_;
  fs::path dir_, log_dir_, exec_config_;
  Direct my_{test::mysql_resource()};
  Direct pg_{test::postgres_resource()};
  std::unique_ptr<Server> server_;
  int servers_ = 0;
  int children_ = 0;
};

TEST_F(ServeTest, PsqlConnectsWithScramAndQueriesTheViews) {
  start();
  ChildRun r = psql("SELECT name, type, reachable FROM resources ORDER BY name");
  ASSERT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "my|mysql|t\npg|postgres|t\n");
  // Several statements in one query string; a comparison is SQLite's 1/0
  // (a boolean column of a view is t/f).
  r = psql("SELECT count(*) > 10 FROM help; -- a comment\n; SELECT 1 + 1");
  ASSERT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n2\n");
  // A newcomer's first query names every view.
  r = psql("SELECT DISTINCT name FROM help WHERE kind = 'view' ORDER BY name");
  ASSERT_EQ(r.status.code, 0) << r.err;
  for (const char* view : {"in_doubt", "transactions", "resources", "incarnations", "heuristics",
                           "recovery_passes", "at_branches", "global_locks"})
    EXPECT_NE(r.out.find(std::string(view) + "\n"), std::string::npos) << view << " missing from help:\n" << r.out;
}

TEST_F(ServeTest, WrongPasswordAndUnknownUserGetTheSameError) {
  start();
  ChildRun wrong = psql("SELECT 1", "dtx_admin", "not-the-password");
  EXPECT_EQ(wrong.status.code, 2);
  EXPECT_NE(wrong.err.find("password authentication failed for user \"dtx_admin\""), std::string::npos) << wrong.err;
  ChildRun unknown = psql("SELECT 1", "mallory", kAdminPassword);
  EXPECT_EQ(unknown.status.code, 2);
  EXPECT_NE(unknown.err.find("password authentication failed for user \"mallory\""), std::string::npos)
      << unknown.err;
  // The server still serves the right password.
  EXPECT_EQ(psql("SELECT 1").out, "1\n");
}

TEST_F(ServeTest, ErrorsHaveASqlstateAndTheSessionStaysUsable) {
  start();
  // psql without ON_ERROR_STOP goes on after the error, in the same session.
  std::vector<std::string> args{"-X", "-A", "-t", "-q", "-v", "VERBOSITY=verbose", "-h", "127.0.0.1", "-p",
                                std::to_string(server_->sql_port), "-U", "dtx_admin", "-d", "dtx"};
  fs::path script = dir_ / "errors.sql";
  std::ofstream(script) << "SELECT * FROM no_such_view;\nSELECT 42;\nDELETE FROM resources;\nSELECT 43;\n";
  args.insert(args.end(), {"-f", script.string()});
  test::Child child(psql_binary(), args, {{"PGPASSWORD", kAdminPassword}}, dir_, "psql-errors");
  test::ExitStatus st = child.wait();
  EXPECT_EQ(st.code, 0);
  EXPECT_EQ(child.out(), "42\n43\n");
  EXPECT_NE(child.err().find("42P01"), std::string::npos) << child.err();
  EXPECT_NE(child.err().find("25006"), std::string::npos) << child.err();
}

TEST_F(ServeTest, CrashedTransactionAppearsInDoubtAndCommitPreparedSettlesIt) {
  start();
  ChildRun exec = run_dtx(transfer(), {{"DTX_FAILPOINT", "after-decision"}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << exec.out << exec.err;
  ChildRun r = psql("SELECT resource, mode, decision, owner_alive, action FROM in_doubt WHERE gtrid LIKE '" + id_ +
                    ".%' ORDER BY resource");
  ASSERT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "my|xa|commit|f|would_commit\npg|xa|commit|f|would_commit\n");
  r = psql("SELECT branches, decision, owner_alive, action FROM transactions WHERE gtrid LIKE '" + id_ + ".%'");
  EXPECT_EQ(r.out, "2|commit|f|would_commit\n") << r.err;
  auto gtrids = in_doubt_gtrids();
  ASSERT_EQ(gtrids.size(), 1u);

  ChildRun commit = settle("COMMIT PREPARED '" + gtrids[0] + "'");
  ASSERT_EQ(commit.status.code, 0) << commit.out << commit.err;
  EXPECT_EQ(prepared_of_ours(), 0u);
  EXPECT_EQ(balance(my_), kInitialBalance - 10);
  EXPECT_EQ(balance(pg_), kInitialBalance + 10);
  EXPECT_TRUE(in_doubt_gtrids().empty());
}

TEST_F(ServeTest, RollbackPreparedRollsBackAnUndecidedTransaction) {
  start();
  ChildRun exec = run_dtx(transfer(), {{"DTX_FAILPOINT", "after-prepare"}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << exec.out << exec.err;
  ChildRun r = psql("SELECT DISTINCT decision, owner_alive FROM in_doubt WHERE gtrid LIKE '" + id_ + ".%'");
  EXPECT_EQ(r.out, "none|f\n") << r.err;
  auto gtrids = in_doubt_gtrids();
  ASSERT_EQ(gtrids.size(), 1u);
  ChildRun rollback = settle("ROLLBACK PREPARED '" + gtrids[0] + "'");
  ASSERT_EQ(rollback.status.code, 0) << rollback.out << rollback.err;
  EXPECT_EQ(prepared_of_ours(), 0u);
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_EQ(balance(pg_), kInitialBalance);
}

TEST_F(ServeTest, SettlingIsRefusedWhileTheOwnerLives) {
  start();
  std::fflush(nullptr);
  test::Child owner(test::dtx_binary(), transfer(), {{"DTX_FAILPOINT", "after-prepare:hang"}}, dir_, "owner");
  ASSERT_TRUE(test::eventually([&] { return prepared_of_ours() == 2; }, 30s));
  auto gtrids = in_doubt_gtrids();
  ASSERT_EQ(gtrids.size(), 1u);
  ChildRun r = psql("SELECT DISTINCT owner_alive, action FROM in_doubt WHERE gtrid = '" + gtrids[0] + "'");
  EXPECT_EQ(r.out, "t|left_owner_alive\n") << r.err;
  for (const char* command : {"COMMIT PREPARED", "ROLLBACK PREPARED", "ROLLBACK FORCE"}) {
    ChildRun refused = psql(std::string(command) + " '" + gtrids[0] + "'", "dtx_admin", kAdminPassword, true);
    EXPECT_NE(refused.status.code, 0) << command;
    EXPECT_NE(refused.err.find("55000"), std::string::npos) << command << ": " << refused.err;
    EXPECT_EQ(prepared_of_ours(), 2u) << command;
  }
  owner.kill();
  owner.wait();
  ChildRun rollback = settle("ROLLBACK PREPARED '" + gtrids[0] + "'");
  EXPECT_EQ(rollback.status.code, 0) << rollback.out << rollback.err;
  EXPECT_EQ(prepared_of_ours(), 0u);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
}

TEST_F(ServeTest, UnknownGtridIsAnError) {
  start();
  ChildRun r = psql("COMMIT PREPARED '" + id_ + ".nothing'", "dtx_admin", kAdminPassword, true);
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("42704"), std::string::npos) << r.err;
}

TEST_F(ServeTest, CallRecoverFinishesWhatWasDecided) {
  start();
  ASSERT_TRUE(run_dtx(transfer(1), {{"DTX_FAILPOINT", "after-decision"}}).status.killed_by(SIGKILL));
  ASSERT_TRUE(run_dtx(transfer(2), {{"DTX_FAILPOINT", "after-prepare"}}).status.killed_by(SIGKILL));
  ChildRun dry = psql("CALL recover(dry_run => true)");
  ASSERT_EQ(dry.status.code, 0) << dry.err;
  EXPECT_EQ(prepared_of_ours(), 4u) << "a dry run changed something:\n" << dry.out;
  ASSERT_TRUE(test::eventually([&] {
    psql("CALL recover()");
    return prepared_of_ours() == 0;
  }, 30s));
  EXPECT_EQ(balance(my_, 1), kInitialBalance - 10);
  EXPECT_EQ(balance(pg_, 1), kInitialBalance + 10);
  EXPECT_EQ(balance(my_, 2), kInitialBalance);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
  ChildRun passes = psql("SELECT count(*) >= 2, max(dry_run::int) FROM recovery_passes");
  EXPECT_EQ(passes.out, "1|1\n") << passes.err;
}

TEST_F(ServeTest, LibpqExtendedProtocolWithParameters) {
  start();
  pqxx::connection c(conninfo());
  {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params("SELECT name FROM resources WHERE type = $1 ORDER BY name", "postgres");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0][0].as<std::string>(), "pg");
    r = tx.exec_params("SELECT $1::int + 1, $2", 41, "text param");
    EXPECT_EQ(r[0][0].as<int>(), 42);
    EXPECT_EQ(r[0][1].as<std::string>(), "text param");
  }
  c.prepare("by_name", "SELECT type, port FROM resources WHERE name = $1");
  for (const char* name : {"my", "pg"}) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_prepared("by_name", name);
    ASSERT_EQ(r.size(), 1u) << name;
    EXPECT_EQ(r[0][0].as<std::string>(), std::string(name) == "my" ? "mysql" : "postgres");
    EXPECT_EQ(r.column_type(1), 20u) << "port is int8";
  }
  // An error, then the same connection goes on, in and out of a transaction block.
  {
    pqxx::nontransaction tx(c);
    try {
      tx.exec_params("SELECT * FROM no_such_view WHERE x = $1", 1);
      ADD_FAILURE() << "expected an error";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "42P01");
    }
  }
  pqxx::work tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM resources")[0].as<int>(), 2);
  tx.commit();
}

TEST_F(ServeTest, CancelRequestInterruptsARunningStatement) {
  start();
  pqxx::connection c(conninfo());
  std::atomic<bool> done{false};
  std::string sqlstate;
  std::thread runner([&] {
    try {
      pqxx::nontransaction tx(c);
      tx.exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n");
    } catch (const pqxx::sql_error& e) {
      sqlstate = e.sqlstate();
    } catch (const std::exception& e) {
      sqlstate = e.what();
    }
    done = true;
  });
  // The cancel is only heard while the statement runs: repeat until it ends.
  EXPECT_TRUE(test::eventually([&] {
    if (!done) c.cancel_query();
    return done.load();
  }, 20s));
  runner.join();
  EXPECT_EQ(sqlstate, "57014");
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT 7")[0].as<int>(), 7);
}

TEST_F(ServeTest, Psycopg2WithParametersAndAutocommit) {
  start();
  fs::path script = dir_ / "client.py";
  std::ofstream(script) << R"py(import sys, psycopg2
conn = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="dtx_admin", password=sys.argv[2], dbname="dtx")
cur = conn.cursor()
cur.execute("SELECT name, reachable FROM resources WHERE type = %s", ("mysql",))
print(cur.fetchall())
conn.rollback()
conn.autocommit = True
cur.execute("CALL recover(dry_run => true)")
cur.execute("SELECT count(*) FROM recovery_passes WHERE dry_run")
print(cur.fetchone()[0] >= 1)
try:
    cur.execute("SELECT * FROM nope")
except psycopg2.Error as e:
    print(e.pgcode)
cur.execute("SELECT %s::text", ("it's",))
print(cur.fetchone()[0])
)py";
  std::fflush(nullptr);
  test::Child child("/usr/bin/python3", {script.string(), std::to_string(server_->sql_port), kAdminPassword}, {},
                    dir_, "psycopg2");
  test::ExitStatus st = child.wait();
  ASSERT_EQ(st.code, 0) << child.err();
  EXPECT_EQ(child.out(), "[('my', True)]\nTrue\n42P01\nit's\n");
}

// pgjdbc: extended protocol throughout, named statements after its
// prepareThreshold, binary results for the types it knows.
TEST_F(ServeTest, JdbcClient) {
  start();
  const fs::path source = fs::path(DTX_SOURCE_DIR) / "tests" / "clients" / "JdbcClient.java";
  std::fflush(nullptr);
  test::Child child("/usr/bin/java",
                    {"-cp", "/usr/share/java/postgresql.jar", source.string(), std::to_string(server_->sql_port),
                     kAdminPassword},
                    {}, dir_, "jdbc");
  test::ExitStatus st = child.wait();
  ASSERT_EQ(st.code, 0) << child.out() << child.err();
  EXPECT_EQ(child.out(), "pg true true\n42P01\ntrue\ncalled\n");
}

// What a scrape shows: the Prometheus text format, with the admin console's
// own counters moved by what this test did.
TEST_F(ServeTest, MetricsAreScrapedOverHttp) {
  start();
  EXPECT_EQ(psql("SELECT 1").status.code, 0);
  EXPECT_EQ(psql("SELECT 1", "dtx_admin", "wrong").status.code, 2);
  RawSocket http(server_->metrics_port);
  http.send("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
  bool closed = false;
  std::string response = http.read_until_closed(10s, &closed);
  ASSERT_TRUE(closed);
  EXPECT_TRUE(response.starts_with("HTTP/1.0 200")) << response.substr(0, 200);
  EXPECT_NE(response.find("text/plain; version=0.0.4"), std::string::npos);
  auto value = [&](const std::string& name) -> double {
    const std::size_t at = response.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::strtod(response.c_str() + at + name.size() + 2, nullptr);
  };
  EXPECT_GE(value("dtx_admin_sessions_total"), 1) << response;
  EXPECT_GE(value("dtx_admin_auth_failures_total"), 1) << response;
  EXPECT_NE(response.find("dtx_recovery_passes_total"), std::string::npos);
  RawSocket other(server_->metrics_port);
  other.send("GET /nothing HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(other.read_until_closed(10s, &closed).starts_with("HTTP/1.0 404"));
}

// A malformed message ends that session only: the server goes on serving.
TEST_F(ServeTest, MalformedMessagesEndOnlyThatSession) {
  start("auth_timeout_s = 2\n");  // the cut packet waits for the rest until then
  const std::string garbage[] = {
      int32_be(3),                                  // a length shorter than itself
      int32_be(1 << 30),                            // a startup packet far over the limit
      startup_packet("dtx_admin").substr(0, 6) + std::string(20, '\xff'),  // cut, then noise
  };
  for (const std::string& bytes : garbage) {
    RawSocket s(server_->sql_port);
    s.send(bytes);
    bool closed = false;
    std::string answer = s.read_until_closed(15s, &closed);
    EXPECT_TRUE(closed) << "the server kept a connection that sent garbage";
  }
  // After authentication: a message with an unknown type.
  EXPECT_EQ(psql("SELECT 1").out, "1\n");
}

TEST_F(ServeTest, ViewsSayWhenADatabaseIsDown) {
  // A resource on a port nothing listens on, beside the two real ones.
  start("", "[resources.down]\ntype = \"postgres\"\nport = 1\nuser = \"x\"\npassword = \"x\"\ndatabase = \"x\"\n"
            "connect_timeout_s = 2\n");
  ChildRun r = psql("SELECT name, reachable FROM resources ORDER BY name");
  ASSERT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "down|f\nmy|t\npg|t\n");
  r = psql("SELECT count(*) >= 1 FROM problems WHERE message LIKE '%down%'");
  EXPECT_EQ(r.out, "1\n") << r.err;
  ASSERT_TRUE(run_dtx(transfer(), {{"DTX_FAILPOINT", "after-decision"}}).status.killed_by(SIGKILL));
  r = psql("SELECT count(*) FROM in_doubt WHERE gtrid LIKE '" + id_ + ".%'");
  EXPECT_EQ(r.out, "2\n") << "the reachable databases are still listed: " << r.err;
  ASSERT_TRUE(test::eventually([&] {
    psql("CALL recover()");
    return prepared_of_ours() == 0;
  }, 30s));
}

// A decision log damaged beyond what a crash leaves: the server (its timer
// running passes every second) keeps serving, the views say so, nothing is
// presumed aborted, and the DBA settles it by hand.
TEST_F(ServeTest, ADamagedDecisionLogIsShownAndNothingIsPresumedAborted) {
  start("", "", 1);
  ChildRun exec = run_dtx(transfer(), {{"DTX_FAILPOINT", "after-decision"}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << exec.out << exec.err;
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(log_dir_))
    if (e.path().extension() == ".log" && e.path().filename() != "heuristics.log" &&
        e.path().filename().string().find(id_) != std::string::npos && fs::file_size(e.path()) > 0)
      segments.push_back(e.path());
  ASSERT_FALSE(segments.empty());
  // Corrupt every byte after the header of the crashed process's segment.
  for (const fs::path& seg : segments) {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    std::string junk(static_cast<std::size_t>(fs::file_size(seg)), '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  // Several timer passes go by; the branches stay prepared, the views say why.
  ChildRun passes;
  ASSERT_TRUE(test::eventually([&] {
    passes = psql("SELECT count(*) >= 2 FROM recovery_passes WHERE trigger = 'timer'");
    return passes.out == "1\n";
  }, 20s)) << passes.out << passes.err;
  EXPECT_EQ(prepared_of_ours(), 2u);
  ChildRun r = psql("SELECT DISTINCT decision, action FROM in_doubt WHERE gtrid LIKE '" + id_ + ".%'");
  EXPECT_EQ(r.out, "none|left_log_damaged\n") << r.err;
  r = psql("SELECT count(*) >= 1 FROM problems WHERE source = 'decision log'");
  EXPECT_EQ(r.out, "1\n") << r.err;
  r = psql("SELECT DISTINCT damaged FROM incarnations WHERE coordinator_id = '" + id_ + "' AND NOT alive AND NOT this_process");
  EXPECT_EQ(r.out, "t\n") << r.err;
  auto gtrids = in_doubt_gtrids();
  ASSERT_EQ(gtrids.size(), 1u);
  ChildRun commit = settle("COMMIT PREPARED '" + gtrids[0] + "'");
  ASSERT_EQ(commit.status.code, 0) << commit.out << commit.err;
  EXPECT_EQ(prepared_of_ours(), 0u);
  EXPECT_EQ(balance(my_), kInitialBalance - 10);
  EXPECT_EQ(balance(pg_), kInitialBalance + 10);
}

TEST_F(ServeTest, IdleSessionsAreClosed) {
  start("idle_timeout_s = 1\n");
  pqxx::connection c(conninfo());
  EXPECT_EQ(pqxx::nontransaction(c).exec1("SELECT 1")[0].as<int>(), 1);
  // Idle: the server speaks first, a FATAL 57P05, and closes.
  const auto start_wait = std::chrono::steady_clock::now();
  pollfd p{c.sock(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the idle session was not closed";
  EXPECT_GE(std::chrono::steady_clock::now() - start_wait, 900ms);
  char buf[512];
  ssize_t n = ::recv(c.sock(), buf, sizeof buf, MSG_PEEK);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<std::size_t>(n)).find("57P05"), std::string::npos);
}

TEST_F(ServeTest, SigtermStopsCleanlyAndTellsIdleSessions) {
  start();
  pqxx::connection c(conninfo());
  EXPECT_EQ(pqxx::nontransaction(c).exec1("SELECT 1")[0].as<int>(), 1);
  test::ExitStatus st = server_->stop();
  EXPECT_EQ(st.code, 0) << server_->child().err();
  EXPECT_THROW(pqxx::nontransaction(c).exec("SELECT 1"), std::exception);
}

// The issue's load: 100 psql sessions at once, querying the views, while
// transfers crash at every failpoint and the server's recovery timer (every
// second) settles them. Every session must get every answer, and in the end
// nothing is left prepared and no money was made or lost.
TEST_F(ServeTest, HundredConcurrentPsqlSessionsWhileTransfersCrashAndRecoveryRuns) {
  start("max_sessions = 150\n", "", 1);
  constexpr int kSessions = 100;
  constexpr int kQueries = 10;
  fs::path script = dir_ / "load.sql";
  {
    std::ofstream out(script);
    for (int i = 0; i < kQueries; ++i)
      out << (i % 3 == 0   ? "SELECT count(*) >= 0 FROM in_doubt;\n"
              : i % 3 == 1 ? "SELECT count(*) >= 0 FROM transactions;\n"
                           : "SELECT count(*) = 2 FROM resources WHERE reachable;\n");
  }
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<test::Child>> sessions;
  std::fflush(nullptr);
  for (int i = 0; i < kSessions; ++i)
    sessions.push_back(std::make_unique<test::Child>(
        psql_binary(),
        std::vector<std::string>{"-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                                 std::to_string(server_->sql_port), "-U", "dtx_admin", "-d", "dtx", "-f",
                                 script.string()},
        std::map<std::string, std::string>{{"PGPASSWORD", kAdminPassword}, {"PGCONNECT_TIMEOUT", "30"}}, dir_,
        "load" + std::to_string(i)));
  // Crashed transfers meanwhile, one per account, at each failpoint in turn.
  const char* failpoints[] = {"after-prepare", "after-decision", "after-first-commit"};
  std::map<int, std::string> crashed;
  for (int account = 1; account <= 6; ++account) {
    const char* fp = failpoints[(account - 1) % 3];
    ChildRun exec = run_dtx(transfer(account), {{"DTX_FAILPOINT", fp}});
    EXPECT_TRUE(exec.status.killed_by(SIGKILL)) << exec.out << exec.err;
    crashed[account] = fp;
  }
  int failed = 0;
  for (int i = 0; i < kSessions; ++i) {
    test::ExitStatus st = sessions[i]->wait();
    std::string out = sessions[i]->out();
    std::string expected;
    for (int q = 0; q < kQueries; ++q) expected += "1\n";
    const bool ok = st.code == 0 && out == expected;
    if (!ok && ++failed <= 3) ADD_FAILURE() << "session " << i << " exit " << st.code << ": " << out << sessions[i]->err();
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  EXPECT_EQ(failed, 0);
  std::cout << kSessions << " concurrent psql sessions x " << kQueries << " queries: all answered in "
            << elapsed.count() << " ms while 6 transfers crashed\n";
  // The recovery timer settles everything.
  EXPECT_TRUE(test::eventually([&] { return prepared_of_ours() == 0; }, 60s));
  for (const auto& [account, fp] : crashed) {
    const std::int64_t moved = std::string(fp) == "after-prepare" ? 0 : 10;
    EXPECT_EQ(balance(my_, account), kInitialBalance - moved) << fp;
    EXPECT_EQ(balance(pg_, account), kInitialBalance + moved) << fp;
  }
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
}

}  // namespace
}  // namespace dtx
