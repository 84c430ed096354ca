// What the tests that kill database servers share: scripts/db.sh run on the
// servers the test variables name (DTX_TEST_MYSQL_PORT, DTX_TEST_PG_PORT,
// DTX_DB_DIR, inherited by its runs), and statements on fresh connections,
// which survive a server's restart.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "drivers/resource_manager.h"
#include "support/process.h"
#include "support/recovery_runs.h"

namespace dtx::test {

inline constexpr auto kServerStartLimit = std::chrono::seconds(90);

// The source tree holding scripts/db.sh: DTX_SOURCE_DIR if set, else the tree
// this test was built from (DTX_TEST_SOURCE_DIR, set by tests/CMakeLists.txt).
inline std::filesystem::path source_dir() {
  if (const char* s = std::getenv("DTX_SOURCE_DIR"); s && *s) return s;
  return DTX_TEST_SOURCE_DIR;
}

// One statement on a connection of its own.
inline Result fresh_sql(const ResourceConfig& rc, const std::string& statement) {
  auto rm = make_resource_manager(rc);
  return rm->acquire()->execute(statement, {});
}

inline bool reachable(const ResourceConfig& rc) {
  try {
    fresh_sql(rc, "SELECT 1");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The dtx branches prepared on `rc` whose gtrid belongs to `coordinator_id`.
inline std::vector<PreparedXid> prepared_of_coordinator(const ResourceConfig& rc, const std::string& coordinator_id) {
  auto rm = make_resource_manager(rc);
  std::vector<PreparedXid> ours;
  for (auto& p : rm->acquire()->recover())
    if (p.is_dtx && p.xid.gtrid.starts_with(coordinator_id + ".")) ours.push_back(std::move(p));
  return ours;
}

// Kills and starts the MariaDB ("mariadb") and PostgreSQL ("postgres") test
// servers; outputs of db.sh go to `dir`. kill() and start() assert: callers
// wrap them in ASSERT_NO_FATAL_FAILURE.
class DbServers {
 public:
  DbServers(std::filesystem::path dir, ResourceConfig my, ResourceConfig pg)
      : dir_(std::move(dir)), my_(std::move(my)), pg_(std::move(pg)) {}

  // Whether a test killed a server (TearDown then starts both).
  bool touched() const noexcept { return touched_; }

  ChildRun db(const std::string& command, const std::string& server) {
    if (command == "kill") touched_ = true;
    std::fflush(nullptr);
    Child child("/bin/bash", {(source_dir() / "scripts" / "db.sh").string(), command, server}, {}, dir_,
                "db" + std::to_string(++runs_));
    ExitStatus status = child.wait();
    return {status, child.out(), child.err()};
  }
  void kill(const std::string& server) {
    ChildRun r = db("kill", server);
    ASSERT_EQ(r.status.code, 0) << r.out << r.err;
    EXPECT_FALSE(reachable(of(server))) << server << " still answers after kill";
  }
  void start(const std::string& server) {
    ChildRun r = db("start", server);
    ASSERT_EQ(r.status.code, 0) << r.out << r.err;
    ASSERT_TRUE(eventually([&] { return reachable(of(server)); }, kServerStartLimit))
        << server << " does not accept connections after start";
  }
  void start_all() {
    for (const char* server : {"mariadb", "postgres"}) {
      ChildRun r = db("start", server);
      EXPECT_EQ(r.status.code, 0) << r.out << r.err;
    }
    EXPECT_TRUE(eventually([&] { return reachable(my_) && reachable(pg_); }, kServerStartLimit));
  }

 private:
  const ResourceConfig& of(const std::string& server) const { return server == "mariadb" ? my_ : pg_; }

  std::filesystem::path dir_;
  ResourceConfig my_, pg_;
  bool touched_ = false;
  int runs_ = 0;
};

}  // namespace dtx::test
