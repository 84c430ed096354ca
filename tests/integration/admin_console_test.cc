// The admin console against the real MariaDB and PostgreSQL servers
// (scripts/db.sh): transactions crashed with failpoints are seen in the views
// with the right decision and owner, and settled with SQL commands.
//
// Every test runs under its own coordinator id ("ac" + random digits), its
// own tables (ac_*) and log_dir; it looks only at branches of its id and
// leaves none of them prepared. Crashes are real `dtx exec` children with
// DTX_FAILPOINT set; waits are bounded polls.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <latch>
#include <thread>
#include <fstream>
#include <random>
#include <set>

#include "admin/console.h"
#include "admin/statement.h"
#include "base/transaction_id.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/direct.h"
#include "support/process.h"
#include "support/recovery_runs.h"
#include "support/test_env.h"
#include "undo-log/at_session.h"

namespace dtx::admin {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Params = std::vector<std::optional<std::string>>;

constexpr std::int64_t kInitial = 100;

using test::Direct;

// A query's rows as text ("<null>" for NULL), one string per row, cells joined by '|'.
std::vector<std::string> rows_of(const StatementResult& r) {
  std::vector<std::string> out;
  for (const auto& row : r.rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) line += (i ? "|" : "") + row[i].value_or("<null>");
    out.push_back(line);
  }
  return out;
}

class AdminConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    tag_ = std::to_string(100000 + rd() % 900000);
    id_ = "ac" + tag_;
    dir_ = test::fresh_dir("admin");
    log_dir_ = dir_ / "log";
    acct_ = "ac_acct_" + tag_;
    for (Direct* d : {&my_, &pg_}) {
      d->run("DROP TABLE IF EXISTS " + acct_);
      d->run("CREATE TABLE " + acct_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" +
             (d->is_mysql() ? " ENGINE=InnoDB" : ""));
      d->run("INSERT INTO " + acct_ + " VALUES (1, " + std::to_string(kInitial) + "), (2, " +
             std::to_string(kInitial) + ")");
    }
    write_config();
  }

  void TearDown() override {
    session_.reset();
    console_.reset();
    bool keep = false;
    for (Direct* d : {&my_, &pg_}) {
      try {
        if (d->rm().name() == decisions_) d->run("DELETE FROM dtx_decision WHERE gtrid LIKE '" + id_ + ".%'");
        for (const auto& p : d->prepared()) {
          if (!ours(p)) continue;
          ADD_FAILURE() << "left prepared on " << d->rm().name() << ": " << p.raw;
          test::eventually([&] {
            try {
              return d->rm().acquire()->rollback_prepared(p.xid).outcome != FinishOutcome::not_found;
            } catch (const Error&) {
              return true;
            }
          }, 10s);
        }
        auto s = d->rm().acquire();
        s->execute(d->is_mysql() ? "SET SESSION lock_wait_timeout = 10" : "SET lock_timeout = '10s'", {});
        s->execute("DROP TABLE IF EXISTS " + acct_, {});
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleaning up " << d->rm().name() << ": " << e.what();
        keep = true;
      }
    }
    std::error_code ec;
    if (keep)
      std::cout << "kept " << dir_ << "\n";
    else
      fs::remove_all(dir_, ec);
  }

  // The config file: resources my (MariaDB) and pg (PostgreSQL, `pg_mode`),
  // plus `extra` TOML. With `decisions` (a resource), no log_dir: the
  // decisions are in that resource's dtx_decision.
  void write_config(BranchMode pg_mode = BranchMode::xa, const std::string& extra = "",
                    const std::string& decisions = "") {
    config_file_ = dir_ / "dtx.toml";
    decisions_ = decisions;
    auto my = test::mysql_resource(), pg = test::postgres_resource();
    std::ofstream out(config_file_);
    out << "[coordinator]\nid = \"" << id_ << "\"\n"
        << (decisions.empty() ? "log_dir = \"" + log_dir_.string() + "\"\n" : "decisions = \"" + decisions + "\"\n")
        << "recovery_interval_s = 0\n\n";
    for (const auto* r : {&my, &pg})
      out << "[resources." << r->name << "]\ntype = \"" << (r == &my ? "mysql" : "postgres") << "\"\nhost = \""
          << r->host << "\"\nport = " << r->port << "\nuser = \"" << r->user << "\"\npassword = \"" << r->password
          << "\"\ndatabase = \"" << r->database << "\"\nmode = \""
          << (r == &pg && pg_mode == BranchMode::at ? "at" : "xa") << "\"\n\n";
    out << extra;
  }

  Console& console() {
    if (!console_) {
      console_ = std::make_unique<Console>(load_config(config_file_), ConsoleOptions{.statement_timeout = 60s});
      session_ = console_->open_session("dba", "127.0.0.1:40000");
    }
    return *console_;
  }
  ConsoleSession& session() {
    console();
    return *session_;
  }
  StatementResult sql(const std::string& statement, const Params& params = {}) {
    return session().execute(statement, params);
  }
  std::vector<std::string> rows(const std::string& statement, const Params& params = {}) {
    return rows_of(sql(statement, params));
  }
  // The statement's error (fails the test if it succeeds).
  StatementError error_of(const std::string& statement) {
    try {
      sql(statement);
    } catch (const StatementError& e) {
      return e;
    }
    ADD_FAILURE() << statement << " succeeded";
    return StatementError("", "");
  }
  // A settle command, retried while MariaDB still ends the killed process's
  // session (the branch is then left_session_busy and the command says it
  // did not finish).
  StatementResult settle(const std::string& statement) {
    StatementResult r;
    std::string last;
    bool done = test::eventually([&] {
      try {
        r = sql(statement);
        return true;
      } catch (const StatementError& e) {
        last = e.sqlstate + " " + e.what() + "\n" + e.detail;
        if (e.sqlstate == "42704" && !r.tag.empty()) return true;  // finished by the previous try
        return !(e.sqlstate == "58000" && e.detail.find("left_session_busy") != std::string::npos);
      }
    }, 20s);
    EXPECT_TRUE(done) << last;
    EXPECT_FALSE(r.tag.empty()) << statement << ": " << last;
    return r;
  }

  bool ours(const PreparedXid& p) const { return p.is_dtx && p.xid.gtrid.starts_with(id_ + "."); }
  std::set<std::string> prepared_gtrids(Direct& d) {
    std::set<std::string> out;
    for (const auto& p : d.prepared())
      if (ours(p)) out.insert(p.xid.gtrid);
    return out;
  }
  std::int64_t balance(Direct& d, int account = 1) {
    return d.scalar("SELECT balance FROM " + acct_ + " WHERE id = " + std::to_string(account));
  }

  std::vector<std::string> transfer_args(int account) {
    const std::string where = " WHERE id = " + std::to_string(account);
    return {"exec", "--config", config_file_.string(), "my=UPDATE " + acct_ + " SET balance = balance - 10" + where,
            "pg=UPDATE " + acct_ + " SET balance = balance + 10" + where};
  }
  // A transfer of 10 on `account` killed at `failpoint`; returns its gtrid
  // (prepared on `on`, by default pg: with decisions in a resource, the
  // other one, as the branch on that resource is never prepared).
  std::string crash(const std::string& failpoint, int account = 1, Direct* on = nullptr) {
    Direct& d = on ? *on : pg_;
    auto before = prepared_gtrids(d);
    test::ChildRun run = test::run_dtx_child(dir_, "exec" + std::to_string(children_++), transfer_args(account),
                                             {{"DTX_FAILPOINT", failpoint}});
    EXPECT_TRUE(run.status.killed_by(SIGKILL)) << run.out << run.err;
    std::set<std::string> now = prepared_gtrids(d);
    for (const auto& g : before) now.erase(g);
    EXPECT_EQ(now.size(), 1u) << run.err;
    return now.empty() ? "" : *now.begin();
  }
  // A transfer hanging at `failpoint` (its process alive); returns the child.
  // Its gtrid is found on `on`: by default MariaDB, where the branch is
  // always XA (and prepared unless MariaDB holds the decisions).
  std::unique_ptr<test::Child> hang(const std::string& failpoint, int account, std::string* gtrid,
                                    Direct* on = nullptr) {
    Direct& d = on ? *on : my_;
    auto before = prepared_gtrids(d);
    auto child = std::make_unique<test::Child>(test::dtx_binary(), transfer_args(account),
                                               std::map<std::string, std::string>{{"DTX_FAILPOINT", failpoint + ":hang"}},
                                               dir_, "hang" + std::to_string(children_++));
    EXPECT_TRUE(test::eventually([&] {
      std::set<std::string> now = prepared_gtrids(d);
      for (const auto& g : before) now.erase(g);
      if (now.size() != 1) return false;
      *gtrid = *now.begin();
      return true;
    }, 30s)) << "the hanging transfer never prepared";
    return child;
  }

  // With decisions in `resource` (no log_dir): crashes before and after the
  // decision's commit are shown with what the table says and settled by SQL;
  // `incarnations` lists the owners known from the table and their liveness.
  void decisions_in_a_table_are_shown_and_settled(const std::string& resource);

  std::string tag_, id_, acct_, decisions_;
  fs::path dir_, log_dir_, config_file_;
  Direct my_{test::mysql_resource("my")};
  Direct pg_{test::postgres_resource("pg")};
  std::unique_ptr<Console> console_;
  std::unique_ptr<ConsoleSession> session_;
  int children_ = 0;
};

TEST_F(AdminConsoleTest, CrashedTransactionsAppearWithTheirDecisionAndAreSettledBySql) {
  const std::string undecided = crash("after-prepare", 1);
  const std::string decided = crash("after-decision", 2);
  ASSERT_FALSE(undecided.empty());
  ASSERT_FALSE(decided.empty());

  EXPECT_EQ(rows("SELECT resource, mode, owner_alive, decision, action, coordinator_id FROM in_doubt "
                 "WHERE gtrid = $1 ORDER BY resource",
                 {undecided}),
            (std::vector<std::string>{"my|xa|f|none|would_roll_back|" + id_, "pg|xa|f|none|would_roll_back|" + id_}));
  EXPECT_EQ(rows("SELECT resource, decision, action FROM in_doubt WHERE gtrid = $1 ORDER BY resource", {decided}),
            (std::vector<std::string>{"my|commit|would_commit", "pg|commit|would_commit"}));
  EXPECT_EQ(rows("SELECT branches, resources, decision, owner_alive, action FROM transactions WHERE gtrid = $1",
                 {decided}),
            (std::vector<std::string>{"2|my, pg|commit|f|would_commit"}));
  // PostgreSQL says when a branch was prepared; MariaDB does not.
  EXPECT_EQ(rows("SELECT resource, age_s >= 0, prepared_at IS NOT NULL FROM in_doubt WHERE gtrid = $1 ORDER BY resource",
                 {decided}),
            (std::vector<std::string>{"my|<null>|0", "pg|1|1"}));

  StatementResult commit = settle("COMMIT PREPARED " + quote_literal(decided));
  EXPECT_EQ(commit.tag, "COMMIT PREPARED");
  EXPECT_TRUE(commit.notices.empty()) << commit.notices.front();  // finished as decided: nothing to say
  EXPECT_EQ(balance(my_, 2), kInitial - 10);
  EXPECT_EQ(balance(pg_, 2), kInitial + 10);

  StatementResult rollback = settle("rollback prepared " + quote_literal(undecided));
  EXPECT_EQ(rollback.tag, "ROLLBACK PREPARED");
  EXPECT_TRUE(rollback.notices.empty()) << rollback.notices.front();
  EXPECT_EQ(balance(my_, 1), kInitial);
  EXPECT_EQ(balance(pg_, 1), kInitial);

  // Committing an undecided transaction is the operator's decision: allowed
  // (no decision is gone against), and the notice says what it could not see.
  const std::string second = crash("after-prepare", 1);
  ASSERT_FALSE(second.empty());
  StatementResult decide = settle("COMMIT PREPARED " + quote_literal(second));
  EXPECT_EQ(decide.tag, "COMMIT PREPARED");
  ASSERT_EQ(decide.notices.size(), 1u);
  EXPECT_NE(decide.notices[0].find("no logged decision was found for " + second), std::string::npos) << decide.notices[0];
  EXPECT_NE(decide.notices[0].find("found on my, pg."), std::string::npos) << decide.notices[0];
  EXPECT_EQ(balance(my_, 1), kInitial - 10);
  EXPECT_EQ(balance(pg_, 1), kInitial + 10);
  // The console's own incarnation logged that COMMIT and ended it: nothing
  // open, although its END may still wait in memory for a flush.
  EXPECT_EQ(rows("SELECT alive, open_decisions FROM incarnations WHERE this_process"),
            (std::vector<std::string>{"t|0"}));

  EXPECT_TRUE(prepared_gtrids(my_).empty());
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
  EXPECT_EQ(rows("SELECT count(*) FROM in_doubt WHERE coordinator_id = $1", {id_}), (std::vector<std::string>{"0"}));
}

TEST_F(AdminConsoleTest, SettlingIsRefusedWhileTheOwnerLives) {
  std::string gtrid;
  auto child = hang("after-prepare", 1, &gtrid);
  ASSERT_FALSE(gtrid.empty());
  EXPECT_EQ(rows("SELECT resource, owner_alive, decision, action FROM in_doubt WHERE gtrid = $1 ORDER BY resource",
                 {gtrid}),
            (std::vector<std::string>{"my|t|none|left_owner_alive", "pg|t|none|left_owner_alive"}));
  EXPECT_EQ(rows("SELECT alive FROM incarnations WHERE coordinator_id = $1 AND NOT this_process", {id_}),
            (std::vector<std::string>{"t"}));
  for (const char* verb : {"COMMIT PREPARED ", "ROLLBACK FORCE "}) {
    StatementError e = error_of(verb + quote_literal(gtrid));
    EXPECT_EQ(e.sqlstate, "55000") << e.what();
    EXPECT_NE(std::string(e.what()).find("alive"), std::string::npos) << e.what();
    EXPECT_NE(e.hint.find("FORCE does not override this"), std::string::npos) << e.hint;
  }
  EXPECT_EQ(prepared_gtrids(pg_), std::set<std::string>{gtrid});

  child->kill();
  child->wait();
  settle("ROLLBACK PREPARED " + quote_literal(gtrid));
  EXPECT_TRUE(prepared_gtrids(my_).empty());
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
  EXPECT_EQ(balance(my_), kInitial);
  EXPECT_EQ(balance(pg_), kInitial);
}

TEST_F(AdminConsoleTest, AHundredSessionsQueryingAtOnceShareAFewScans) {
  const std::string gtrid = crash("after-decision");
  ASSERT_FALSE(gtrid.empty());
  console();
  std::vector<std::unique_ptr<ConsoleSession>> sessions;
  for (int i = 0; i < 100; ++i) sessions.push_back(console_->open_session("dba" + std::to_string(i), "peer"));
  const std::size_t before = console_->scans_started();
  std::latch start(100);
  std::atomic<int> saw{0};
  std::vector<std::thread> threads;
  for (auto& s : sessions)
    threads.emplace_back([&, session = s.get()] {
      start.arrive_and_wait();
      Params p{gtrid};
      StatementResult r = session->execute("SELECT action FROM in_doubt WHERE gtrid = $1", p);
      if (r.rows.size() == 2 && *r.rows[0][0] == "would_commit") ++saw;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(saw, 100);
  const std::size_t scans = console_->scans_started() - before;
  std::cout << "100 concurrent statements on in_doubt: " << scans << " scans\n";
  EXPECT_LE(scans, 10u);  // 2 here: the first, and the one all the others queued for
  settle("COMMIT PREPARED " + quote_literal(gtrid));
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
}

TEST_F(AdminConsoleTest, AnUnknownGtridIsAnUndefinedObject) {
  StatementError e = error_of("COMMIT PREPARED '" + id_ + ".nothing'");
  EXPECT_EQ(e.sqlstate, "42704");
  EXPECT_EQ(std::string(e.what()), "prepared transaction with identifier \"" + id_ + ".nothing\" does not exist");
}

TEST_F(AdminConsoleTest, RollingBackADecidedTransactionNeedsForceAndIsRecordedAsHeuristic) {
  const std::string gtrid = crash("after-decision");
  ASSERT_FALSE(gtrid.empty());
  StatementError refused = error_of("ROLLBACK PREPARED " + quote_literal(gtrid));
  EXPECT_EQ(refused.sqlstate, "55000");
  EXPECT_NE(refused.hint.find("ROLLBACK FORCE " + quote_literal(gtrid) + " rolls back anyway (recorded as heuristic)"),
            std::string::npos)
      << refused.hint;
  EXPECT_EQ(prepared_gtrids(pg_), std::set<std::string>{gtrid});

  StatementResult forced = settle("ROLLBACK FORCE " + quote_literal(gtrid));
  EXPECT_EQ(forced.tag, "ROLLBACK FORCE");
  EXPECT_FALSE(forced.notices.empty());
  EXPECT_EQ(balance(my_), kInitial);
  EXPECT_EQ(balance(pg_), kInitial);
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
  EXPECT_EQ(rows("SELECT resource, decision, outcome, by FROM heuristics WHERE gtrid = $1 ORDER BY resource", {gtrid}),
            (std::vector<std::string>{"my|commit|rolled_back|operator", "pg|commit|rolled_back|operator"}));
}

TEST_F(AdminConsoleTest, CallRecoverPlansThenFinishes) {
  const std::string undecided = crash("after-prepare", 1);
  const std::string decided = crash("after-first-commit", 2);
  ASSERT_FALSE(undecided.empty());
  ASSERT_FALSE(decided.empty());

  StatementResult plan = sql("CALL recover(dry_run => true)");
  EXPECT_EQ(plan.tag, "CALL");
  std::set<std::string> planned;
  for (const auto& row : rows_of(plan))
    if (row.starts_with(id_)) planned.insert(row.substr(0, row.find('|', row.find('|') + 1)) + " " + row.substr(row.rfind("|would")));
  EXPECT_EQ(planned.size(), 3u) << ::testing::PrintToString(rows_of(plan));
  // Other coordinators' branches (other tests, earlier runs) are only counted.
  for (const auto& row : rows_of(plan)) EXPECT_TRUE(row.starts_with(id_)) << row;
  EXPECT_EQ(prepared_gtrids(pg_), (std::set<std::string>{undecided, decided}));  // nothing done

  std::map<std::string, std::string> actions;  // "resource gtrid" -> first definite action
  EXPECT_TRUE(test::eventually([&] {
    StatementResult r = sql("CALL recover()");
    bool busy = false;
    for (const auto& row : r.rows) {
      if (!row[0] || !row[0]->starts_with(id_)) continue;
      if (*row[4] == "left_session_busy") busy = true;
      else actions.emplace(*row[1] + " " + *row[0], *row[4]);
    }
    return !busy;
  }, 20s));
  EXPECT_EQ(actions, (std::map<std::string, std::string>{{"my " + undecided, "rolled_back"},
                                                         {"pg " + undecided, "rolled_back"},
                                                         {"pg " + decided, "committed"}}));
  EXPECT_TRUE(prepared_gtrids(my_).empty());
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
  EXPECT_EQ(balance(my_, 2), kInitial - 10);
  EXPECT_EQ(balance(pg_, 2), kInitial + 10);
  EXPECT_EQ(balance(pg_, 1), kInitial);
  auto passes = rows("SELECT trigger, dry_run FROM recovery_passes ORDER BY started_at LIMIT 2");
  EXPECT_EQ(passes, (std::vector<std::string>{"admin dba|t", "admin dba|f"}));
}

TEST_F(AdminConsoleTest, ResourcesShowsReachabilityVersionsAndSettings) {
  auto noprep = test::postgres_noprep_resource();
  write_config(BranchMode::xa, "[resources.noprep]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = " +
                                   std::to_string(noprep.port) + "\nuser = \"" + noprep.user + "\"\npassword = \"" +
                                   noprep.password + "\"\ndatabase = \"dtx_test\"\n\n"
                                   "[resources.closed]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\n"
                                   "user = \"dtx\"\npassword = \"dtx\"\ndatabase = \"dtx_test\"\nconnect_timeout_s = 2\n");
  auto r = rows("SELECT name, type, reachable, max_prepared_transactions, server_version IS NOT NULL, error IS NULL "
                "FROM resources ORDER BY name");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0], "closed|postgres|f|<null>|0|0");
  EXPECT_EQ(r[1], "my|mysql|t|<null>|1|1");
  EXPECT_EQ(r[2], "noprep|postgres|t|0|1|1");
  EXPECT_TRUE(r[3].starts_with("pg|postgres|t|")) << r[3];
  EXPECT_NE(r[3], "pg|postgres|t|0|1|1");
  EXPECT_NE(rows("SELECT server_version FROM resources WHERE name = 'my'")[0].find("MariaDB"), std::string::npos);
  // Settings under which the server can lose what it acknowledged are named.
  // scripts/db.sh's MariaDB runs with the default sync_binlog=0; its
  // PostgreSQL with fsync and synchronous_commit on.
  const std::string sync_binlog = std::to_string(my_.scalar("SELECT @@sync_binlog"));
  const std::string my_durability = rows("SELECT durability FROM resources WHERE name = 'my'")[0];
  if (sync_binlog == "1") {
    EXPECT_EQ(my_durability.find("sync_binlog"), std::string::npos) << my_durability;
  } else {
    EXPECT_NE(my_durability.find("sync_binlog=" + sync_binlog + ": "), std::string::npos) << my_durability;
    EXPECT_NE(my_durability.find("set sync_binlog=1"), std::string::npos) << my_durability;
  }
  EXPECT_EQ(rows("SELECT durability FROM resources WHERE name = 'pg'"), (std::vector<std::string>{"<null>"}));
  // The views keep answering with a resource down, and say so.
  EXPECT_EQ(rows("SELECT count(*) > 0 FROM problems WHERE source = 'resources' AND message LIKE '%closed%'"),
            (std::vector<std::string>{"1"}));
  EXPECT_NO_THROW(sql("SELECT * FROM in_doubt"));
}

TEST_F(AdminConsoleTest, ADamagedDecisionLogIsShown) {
  const std::string gtrid = crash("after-decision");
  ASSERT_FALSE(gtrid.empty());
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(log_dir_))
    if (e.path().extension() == ".log" && e.path().filename() != "heuristics.log") segments.push_back(e.path());
  ASSERT_EQ(segments.size(), 1u);
  fs::resize_file(segments[0], 0);  // emptied: the COMMIT decision is gone, which a crash cannot do

  EXPECT_EQ(rows("SELECT resource, decision, action FROM in_doubt WHERE gtrid = $1 ORDER BY resource", {gtrid}),
            (std::vector<std::string>{"my|none|left_log_damaged", "pg|none|left_log_damaged"}));
  EXPECT_EQ(rows("SELECT count(*) > 0 FROM problems WHERE source = 'decision log' AND message LIKE $1",
                 {"%" + segments[0].filename().string() + "%"}),
            (std::vector<std::string>{"1"}));
  EXPECT_EQ(rows("SELECT alive, damaged, open_decisions FROM incarnations WHERE coordinator_id = $1", {id_}),
            (std::vector<std::string>{"f|t|0"}));
  // The operator knows it was decided, and commits it.
  settle("COMMIT PREPARED " + quote_literal(gtrid));
  EXPECT_EQ(balance(my_), kInitial - 10);
  EXPECT_EQ(balance(pg_), kInitial + 10);
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
}

void AdminConsoleTest::decisions_in_a_table_are_shown_and_settled(const std::string& resource) {
  write_config(BranchMode::xa, "", resource);
  Direct& decider = resource == "my" ? my_ : pg_;
  Direct& other = resource == "my" ? pg_ : my_;
  const std::string other_name = other.rm().name();
  const std::string undecided = crash("before-decision-commit", 1, &other);
  const std::string decided = crash("after-decision-commit", 2, &other);
  ASSERT_FALSE(undecided.empty());
  ASSERT_FALSE(decided.empty());
  EXPECT_TRUE(prepared_gtrids(decider).empty()) << "the branch on " << resource << " was prepared";
  const std::string undecided_inc = parse_gtrid(undecided)->incarnation;
  const std::string decided_inc = parse_gtrid(decided)->incarnation;
  auto our_rows = [&](const std::string& where) {
    return decider.scalar("SELECT count(*) FROM dtx_decision WHERE gtrid LIKE '" + id_ + ".%' AND " + where);
  };
  EXPECT_EQ(our_rows("gtrid = '" + decided + "' AND outcome = 1"), 1);
  EXPECT_EQ(our_rows("gtrid = '" + undecided + "'"), 0);

  // The killed processes' liveness locks go with their sessions, which the
  // server ends once it sees the connection closed.
  std::vector<std::string> incarnations;
  const std::vector<std::string> gone{undecided_inc + "|f|0|1|f", decided_inc + "|f|1|1|f"};
  EXPECT_TRUE(test::eventually([&] {
    incarnations = rows("SELECT incarnation, alive, open_decisions, damaged IS NULL, this_process FROM incarnations "
                        "WHERE coordinator_id = $1 ORDER BY open_decisions",
                        {id_});
    return incarnations == gone;
  }, 20s)) << ::testing::PrintToString(incarnations);
  EXPECT_EQ(rows("SELECT resource, owner_alive, decision, action FROM in_doubt WHERE gtrid = $1", {decided}),
            (std::vector<std::string>{other_name + "|f|commit|would_commit"}));
  EXPECT_EQ(rows("SELECT resource, owner_alive, decision, action FROM in_doubt WHERE gtrid = $1", {undecided}),
            (std::vector<std::string>{other_name + "|f|none|would_roll_back"}));
  EXPECT_EQ(rows("SELECT branches, resources, decision, owner_alive, action FROM transactions WHERE gtrid = $1",
                 {decided}),
            (std::vector<std::string>{"1|" + other_name + "|commit|f|would_commit"}));
  EXPECT_EQ(rows("SELECT count(*) FROM problems"), (std::vector<std::string>{"0"}));

  // The committed branch on the decider is there already; the other comes with the settle.
  EXPECT_EQ(balance(decider, 2), kInitial + (resource == "my" ? -10 : 10));
  EXPECT_EQ(balance(other, 2), kInitial);
  StatementResult commit = settle("COMMIT PREPARED " + quote_literal(decided));
  EXPECT_EQ(commit.tag, "COMMIT PREPARED");
  EXPECT_EQ(balance(my_, 2), kInitial - 10);
  EXPECT_EQ(balance(pg_, 2), kInitial + 10);
  StatementResult rollback = settle("ROLLBACK PREPARED " + quote_literal(undecided));
  EXPECT_EQ(rollback.tag, "ROLLBACK PREPARED");
  EXPECT_EQ(balance(my_, 1), kInitial);
  EXPECT_EQ(balance(pg_, 1), kInitial);
  // The rollback fenced the gtrid: its ABORT row stays (kAbortRowRetention).
  EXPECT_EQ(our_rows("gtrid = '" + undecided + "' AND outcome = 2"), 1);

  // A live owner: listed from its prepared branch alone (no row yet), alive.
  std::string hung;
  auto child = hang("before-decision-commit", 1, &hung, &other);
  ASSERT_FALSE(hung.empty());
  const std::string hung_inc = parse_gtrid(hung)->incarnation;
  EXPECT_EQ(rows("SELECT alive, open_decisions FROM incarnations WHERE incarnation = $1", {hung_inc}),
            (std::vector<std::string>{"t|0"}));
  EXPECT_EQ(rows("SELECT resource, owner_alive, decision, action FROM in_doubt WHERE gtrid = $1", {hung}),
            (std::vector<std::string>{other_name + "|t|none|left_owner_alive"}));
  EXPECT_EQ(error_of("ROLLBACK PREPARED " + quote_literal(hung)).sqlstate, "55000");
  child->kill();
  child->wait();
  EXPECT_TRUE(test::eventually([&] {
    return rows("SELECT alive FROM incarnations WHERE incarnation = $1", {hung_inc}) ==
           std::vector<std::string>{"f"};
  }, 20s)) << "the killed owner's liveness lock stayed held";
  settle("ROLLBACK PREPARED " + quote_literal(hung));

  // Everything settled: nothing prepared. The settled COMMIT row goes with
  // the next recovery pass (dtx serve's timer, here CALL recover()); the
  // incarnations left are those of the ABORT rows (kept 25 h).
  EXPECT_EQ(sql("CALL recover()").tag, "CALL");
  EXPECT_TRUE(prepared_gtrids(my_).empty());
  EXPECT_TRUE(prepared_gtrids(pg_).empty());
  EXPECT_EQ(balance(my_, 1), kInitial);
  EXPECT_EQ(balance(pg_, 1), kInitial);
  EXPECT_EQ(our_rows("outcome = 1"), 0) << "a settled transaction's COMMIT row is left in " << resource;
  EXPECT_EQ(rows("SELECT count(*) FROM in_doubt WHERE coordinator_id = $1", {id_}), (std::vector<std::string>{"0"}));
  std::vector<std::string> left = rows("SELECT incarnation, alive, open_decisions FROM incarnations "
                                       "WHERE coordinator_id = $1 ORDER BY incarnation", {id_});
  std::vector<std::string> expected{undecided_inc + "|f|0", hung_inc + "|f|0"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(left, expected);
}

TEST_F(AdminConsoleTest, DecisionsInPostgresAreShownAndSettledBySql) {
  decisions_in_a_table_are_shown_and_settled("pg");
}

TEST_F(AdminConsoleTest, DecisionsInMariadbAreShownAndSettledBySql) {
  decisions_in_a_table_are_shown_and_settled("my");
}

TEST_F(AdminConsoleTest, AtBranchesAndTheirGlobalLocksAreListed) {
  write_config(BranchMode::at);
  {
    // The AT tables exist before the transfer (as after any AT use).
    ResourceConfig rc = test::postgres_resource("pg");
    rc.mode = BranchMode::at;
    (void)undo::make_at_resource_manager(rc)->acquire()->recover();
  }
  std::string gtrid;
  auto child = hang("after-prepare", 1, &gtrid);
  ASSERT_FALSE(gtrid.empty());
  EXPECT_EQ(rows("SELECT resource, mode, owner_alive FROM in_doubt WHERE gtrid = $1 ORDER BY resource", {gtrid}),
            (std::vector<std::string>{"my|xa|t", "pg|at|t"}));
  EXPECT_EQ(rows("SELECT resource, owner_alive, decision, action, locks FROM at_branches WHERE gtrid = $1", {gtrid}),
            (std::vector<std::string>{"pg|t|none|left_owner_alive|1"}));
  EXPECT_EQ(rows("SELECT resource, table_name LIKE $2, row_key, branch FROM global_locks WHERE gtrid = $1",
                 {gtrid, "%" + acct_}),
            (std::vector<std::string>{"pg|1|[\"1\"]|pg"}));  // the key as its text image

  child->kill();
  child->wait();
  settle("ROLLBACK PREPARED " + quote_literal(gtrid));
  EXPECT_EQ(balance(pg_), kInitial);  // undone from the undo record
  EXPECT_EQ(balance(my_), kInitial);
  EXPECT_EQ(rows("SELECT count(*) FROM global_locks WHERE gtrid = $1", {gtrid}), (std::vector<std::string>{"0"}));
  EXPECT_EQ(rows("SELECT count(*) FROM at_branches WHERE gtrid = $1", {gtrid}), (std::vector<std::string>{"0"}));
}

}  // namespace
}  // namespace dtx::admin
