// The admin console server in-process (server/admin_server.h), with no
// database: many libpq clients at once on the views that need none (help,
// recovery_passes), cancel, and stop. Run by the ThreadSanitizer build too,
// which is what it is for: the sessions' strands, the work pool, the cancel
// path and shutdown all cross threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <libpq-fe.h>

#include "admin/console.h"
#include "server/admin_server.h"
#include "support/test_env.h"

namespace dtx::server {
namespace {

// The one value `r` holds (its error into *failure), and frees it.
long scalar(PGconn* conn, PGresult* r, std::string* failure) {
  long v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    v = std::atol(PQgetvalue(r, 0, 0));
  else
    *failure = PQerrorMessage(conn);
  PQclear(r);
  return v;
}

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::fresh_dir("admin-server");
    Config config;
    config.coordinator.id = "as";
    config.coordinator.log_dir = dir_ / "log";
    ResourceConfig nowhere;
    nowhere.name = "nowhere";
    nowhere.type = ResourceType::postgres;
    nowhere.port = 1;  // nothing listens there; no test here reads a database view
    nowhere.user = nowhere.database = "x";
    nowhere.connect_timeout_s = 1;
    config.resources.emplace(nowhere.name, nowhere);
    AdminConfig admin;
    admin.listen = {"127.0.0.1", 0};
    admin.auth = AdminConfig::Auth::trust;
    admin.statement_timeout = std::chrono::milliseconds(20'000);
    config.admin = admin;
    console_ = std::make_unique<admin::Console>(config);
    server_ = std::make_unique<AdminServer>(io_, work_, *console_, admin);
    port_ = server_->start().port;
    for (int i = 0; i < 2; ++i) io_threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    server_->stop();
    for (auto& t : io_threads_) t.join();  // returns once every session has ended
    work_.join();
    server_.reset();
    console_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=dtx_admin dbname=dtx connect_timeout=10";
  }

  std::filesystem::path dir_;
  boost::asio::io_context io_;
  boost::asio::thread_pool work_{4};
  std::unique_ptr<admin::Console> console_;
  std::unique_ptr<AdminServer> server_;
  std::vector<std::thread> io_threads_;
  int port_ = 0;
};

TEST_F(AdminServerTest, ManyClientsAtOnce) {
  constexpr int kClients = 16;
  constexpr int kRounds = 20;
  std::atomic<int> answered{0};
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      PGconn* conn = PQconnectdb(conninfo().c_str());
      if (PQstatus(conn) != CONNECTION_OK) failures[c] = PQerrorMessage(conn);
      for (int r = 0; r < kRounds && failures[c].empty(); ++r) {
        // Simple protocol, then extended with a parameter.
        const long all = scalar(conn, PQexec(conn, "SELECT count(*) FROM help"), &failures[c]);
        const char* view = "view";
        const long some = scalar(conn,
                                 PQexecParams(conn, "SELECT count(*) FROM help WHERE kind = $1", 1, nullptr, &view,
                                              nullptr, nullptr, 0),
                                 &failures[c]);
        if (all > some && some >= 8) ++answered;
      }
      PQfinish(conn);
    });
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
  EXPECT_EQ(answered, kClients * kRounds);
}

// libpq directly: its cancel handle is made before the statement starts and
// PQcancel is thread-safe, while a libpqxx connection may not be touched
// from two threads at once.
TEST_F(AdminServerTest, CancelReachesTheRightSession) {
  PGconn* busy = PQconnectdb(conninfo().c_str());
  ASSERT_EQ(PQstatus(busy), CONNECTION_OK) << PQerrorMessage(busy);
  PGcancel* cancel = PQgetCancel(busy);
  PGconn* bystander = PQconnectdb(conninfo().c_str());
  ASSERT_EQ(PQstatus(bystander), CONNECTION_OK) << PQerrorMessage(bystander);
  std::atomic<bool> done{false};
  std::string sqlstate;
  std::thread runner([&] {
    PGresult* r =
        PQexec(busy, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n");
    if (const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE)) sqlstate = state;
    PQclear(r);
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    char err[256];
    PQcancel(cancel, err, sizeof err);
    // The other session is untouched by the cancels.
    std::string failure;
    EXPECT_EQ(scalar(bystander, PQexec(bystander, "SELECT 5"), &failure), 5) << failure;
  }
  runner.join();
  EXPECT_EQ(sqlstate, "57014");
  PQfreeCancel(cancel);
  PQfinish(busy);
  PQfinish(bystander);
}

TEST_F(AdminServerTest, StopEndsIdleSessions) {
  PGconn* c = PQconnectdb(conninfo().c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  std::string failure;
  EXPECT_EQ(scalar(c, PQexec(c, "SELECT 1"), &failure), 1) << failure;
  server_->stop();
  // The session is told and closed; the next statement fails.
  bool failed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!failed && std::chrono::steady_clock::now() < deadline) {
    PGresult* r = PQexec(c, "SELECT 1");
    failed = PQresultStatus(r) != PGRES_TUPLES_OK;
    PQclear(r);
    if (!failed) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval while the stop lands
  }
  EXPECT_TRUE(failed);
  PQfinish(c);
  PGconn* late = PQconnectdb(conninfo().c_str());
  EXPECT_NE(PQstatus(late), CONNECTION_OK) << "no new connection after stop";
  PQfinish(late);
}

}  // namespace
}  // namespace dtx::server
