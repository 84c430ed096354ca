// Where the test databases are. scripts/db.sh starts them and exports these
// variables; the defaults match it, so a test binary run by hand finds the
// servers of the last `scripts/db.sh start`.
//
//   DTX_TEST_MYSQL_PORT        MariaDB with binlog            (default 13306)
//   DTX_TEST_PG_PORT           PostgreSQL, prepared xacts on  (default 15432)
//   DTX_TEST_PG_NOPREP_PORT    PostgreSQL, max_prepared_transactions = 0 (15433)
//   DTX_TEST_USER / DTX_TEST_PASSWORD                         (dtx / dtx)
//   database dtx_test on every server.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "dtx/config.h"

namespace dtx::test {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

inline ResourceConfig mysql_resource(std::string name = "my", std::string database = "dtx_test") {
  ResourceConfig r;
  r.name = std::move(name);
  r.type = ResourceType::mysql;
  r.host = "127.0.0.1";
  r.port = std::stoi(env_or("DTX_TEST_MYSQL_PORT", "13306"));
  r.user = env_or("DTX_TEST_USER", "dtx");
  r.password = env_or("DTX_TEST_PASSWORD", "dtx");
  r.database = std::move(database);
  return r;
}

inline ResourceConfig postgres_resource(std::string name = "pg", std::string database = "dtx_test") {
  ResourceConfig r;
  r.name = std::move(name);
  r.type = ResourceType::postgres;
  r.host = "127.0.0.1";
  r.port = std::stoi(env_or("DTX_TEST_PG_PORT", "15432"));
  r.user = env_or("DTX_TEST_USER", "dtx");
  r.password = env_or("DTX_TEST_PASSWORD", "dtx");
  r.database = std::move(database);
  return r;
}

inline ResourceConfig postgres_noprep_resource(std::string name = "pg_noprep") {
  ResourceConfig r = postgres_resource(std::move(name));
  r.port = std::stoi(env_or("DTX_TEST_PG_NOPREP_PORT", "15433"));
  return r;
}

// A fresh directory under the system temp dir, removed by the caller if wanted.
inline std::filesystem::path fresh_dir(const std::string& tag) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("dtx-" + tag + "-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

// The build directory, where the dtx tool is: DTX_BINARY_DIR (set by ctest),
// else the build directory this test binary is in (<build>/tests/<test>).
inline std::filesystem::path binary_dir() {
  if (const char* v = std::getenv("DTX_BINARY_DIR"); v && *v) return v;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && std::filesystem::exists(exe.parent_path().parent_path() / "dtx", ec))
    return exe.parent_path().parent_path();
  return "build";
}

}  // namespace dtx::test
