// dtx configuration, read from TOML:
//
//   [coordinator]
//   id = "node1"              # [A-Za-z0-9_-]{1,16}; part of every global id
//   log_dir = "/var/lib/dtx"  # decision logs; created if missing. A relative
//                             # path is relative to the config file's folder
//   # optional: threads, default_timeout_ms, recovery_interval_s
//
//   [resources.bank1]         # name: [A-Za-z0-9_-]{1,48}
//   type = "mysql"            # or "postgres"
//   host = "127.0.0.1"
//   port = 3306
//   user = "root"
//   password = ""
//   database = "bank1"
//   # optional: pool_size, connect_timeout_s, password_env,
//   # mode = "xa" (default) or "at", lock_wait_timeout_ms (AT mode)
//
//   [admin]                   # dtx serve: the SQL admin console (optional;
//   listen = "127.0.0.1:7432" #   without it no SQL port is opened)
//   user = "dtx_admin"
//   password_env = "DTX_ADMIN_PASSWORD"
//   auth = "scram-sha-256"    # or "trust" (only on a loopback address)
//   # optional: max_sessions, idle_timeout_s, auth_timeout_s, statement_timeout_ms
//
//   [metrics]                 # dtx serve: Prometheus text format at /metrics (optional)
//   listen = "127.0.0.1:9464"
//
// Unknown keys, wrong types and bad values are errors naming file, line and key.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dtx {

enum class ResourceType { mysql, postgres };

const char* to_string(ResourceType type) noexcept;

// How a resource's branches run (docs/at-mode.md):
//   xa  XA two-phase commit: the database prepares the branch and holds its
//       row locks until the global outcome;
//   at  AT mode: the branch commits locally in phase 1 with an undo record
//       and global row locks in the same database; phase 2 forgets the
//       record or undoes the changes from it.
enum class BranchMode { xa, at };

const char* to_string(BranchMode mode) noexcept;

struct ResourceConfig {
  std::string name;  // the key under [resources]
  ResourceType type = ResourceType::mysql;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user;
  std::string password;  // resolved from password_env when that is set
  std::string database;
  int pool_size = 8;          // connections kept idle per resource
  int connect_timeout_s = 5;  // per connection attempt
  BranchMode mode = BranchMode::xa;
  // AT mode: how long a statement waits for a row held by another global
  // transaction's lock before failing with Errc::lock_conflict (also bounded
  // by the transaction's own deadline).
  std::chrono::milliseconds lock_wait_timeout{10'000};
};

struct CoordinatorConfig {
  std::string id;
  // The decision log's directory. Optional with `decisions` (then only
  // heuristics.log goes there, if set); required without.
  std::filesystem::path log_dir;
  // The resource whose database keeps the commit decisions (table
  // dtx_decision, docs/decisions-in-database.md); empty = the file log in
  // log_dir. Every process of a coordinator id must use the same setting.
  std::string decisions;
  int threads = 0;  // most fan-out threads ever started (they start on demand); 0 = automatic
  std::chrono::milliseconds default_timeout{60'000};
  // A live Coordinator runs a recovery pass when it starts and then every
  // this many seconds, in a background thread. 0 = never (dtx exec; or when
  // `dtx recover` runs from a timer instead).
  int recovery_interval_s = 30;
};

// An address to listen on: an IP literal or "localhost", and a port.
struct ListenAddress {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (the one bound is printed at start)
  bool is_loopback() const noexcept;  // 127.0.0.0/8, ::1 or localhost
  std::string to_string() const;      // host:port ([host]:port for IPv6)
};

// dtx serve's SQL admin console (docs/admin-console.md).
struct AdminConfig {
  enum class Auth { scram_sha_256, trust };
  ListenAddress listen{"127.0.0.1", 7432};
  std::string user = "dtx_admin";
  std::string password;  // resolved from password_env; required for scram-sha-256
  Auth auth = Auth::scram_sha_256;
  int max_sessions = 200;           // connections beyond this are refused (53300)
  int idle_timeout_s = 900;         // an idle session is closed after this; 0 = never
  int auth_timeout_s = 10;          // the startup and authentication must finish within this
  std::chrono::milliseconds statement_timeout{30'000};  // one admin statement, scans included
};

// dtx serve's Prometheus endpoint (docs/metrics.md).
struct MetricsConfig {
  ListenAddress listen{"127.0.0.1", 9464};
};

struct Config {
  CoordinatorConfig coordinator;
  std::map<std::string, ResourceConfig, std::less<>> resources;
  std::optional<AdminConfig> admin;      // [admin]: absent = no SQL port
  std::optional<MetricsConfig> metrics;  // [metrics]: absent = no /metrics endpoint
  std::filesystem::path source;  // file it was read from, if any

  // Throws dtx::Error(Errc::config) naming the resource when it is not configured.
  const ResourceConfig& resource(std::string_view name) const;
};

// Parse a config file. A relative log_dir is resolved against the file's
// folder. Throws dtx::Error(Errc::config) naming the file, line and key.
Config load_config(const std::filesystem::path& file);
// Parse config text; `source_name` is used in error messages. A relative
// log_dir is refused here (Errc::config): text has no folder to be relative to.
Config parse_config(std::string_view toml_text, const std::string& source_name = "<config>");

// What in `config` is allowed but probably a mistake, one sentence per
// finding: two resources on the same database (same type and port, the same
// host or both loopback, same database name), whose branches can wait for
// each other's row locks in a cycle the database does not see, which only
// the transaction timeout ends. load_config and parse_config log these as
// warnings; a program building its Config in code can call this itself.
std::vector<std::string> config_warnings(const Config& config);

// Validation shared with the CLI and the API.
bool is_valid_coordinator_id(std::string_view id) noexcept;
bool is_valid_resource_name(std::string_view name) noexcept;

}  // namespace dtx
