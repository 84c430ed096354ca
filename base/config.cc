// TOML configuration: parsing and validation (see include/dtx/config.h).
#include <algorithm>
#include <cstdlib>
#include <set>

#include <toml++/toml.h>

#include "base/logging.h"
#include "dtx/config.h"
#include "dtx/error.h"

namespace dtx {

const char* to_string(ResourceType type) noexcept {
  return type == ResourceType::mysql ? "mysql" : "postgres";
}

const char* to_string(BranchMode mode) noexcept { return mode == BranchMode::xa ? "xa" : "at"; }

bool is_valid_coordinator_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 16) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

bool is_valid_resource_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 48) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

const ResourceConfig& Config::resource(std::string_view name) const {
  auto it = resources.find(name);
  if (it == resources.end()) {
    std::string known;
    for (const auto& [n, _] : resources) known += (known.empty() ? "" : ", ") + n;
    throw Error({.code = Errc::config,
                 .resource = std::string(name),
                 .hint = "configured resources: " + (known.empty() ? "none" : known)},
                "unknown resource '" + std::string(name) + "'" +
                    (source.empty() ? "" : " (not in " + source.string() + ")"));
  }
  return it->second;
}

namespace {

// Reads one table, remembering which keys were consumed so that leftovers can
// be reported as unknown keys.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, const std::string& file)
      : table_(table), path_(std::move(path)), file_(file) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& key, const std::string& what) const {
    std::string where = file_;
    const auto& src = node ? node->source() : table_.source();
    if (src.begin.line > 0) where += ":" + std::to_string(src.begin.line);
    throw Error({.code = Errc::config}, where + ": " + qualified(key) + ": " + what);
  }

  std::string qualified(const std::string& key) const {
    return "key '" + (path_.empty() ? key : path_ + "." + key) + "'";
  }

  const toml::node* get(const std::string& key) {
    seen_.insert(key);
    return table_.get(key);
  }

  std::optional<std::string> string(const std::string& key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) fail(n, key, std::string("expected a string, found ") + type_name(*n));
    return n->as_string()->get();
  }

  std::string required_string(const std::string& key) {
    auto v = string(key);
    if (!v) fail(nullptr, key, "missing (required)");
    return *v;
  }

  std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (!n->is_integer()) fail(n, key, std::string("expected an integer, found ") + type_name(*n));
    std::int64_t v = n->as_integer()->get();
    if (v < min || v > max)
      fail(n, key, std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                       std::to_string(max) + "]");
    return v;
  }

  void reject_unknown(std::initializer_list<const char*> allowed) const {
    for (const auto& [k, node] : table_) {
      std::string key(k.str());
      if (seen_.count(key)) continue;
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(&node, key, "unknown key (allowed here: " + list + ")");
    }
  }

 private:
  static const char* type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::table: return "a table";
      case toml::node_type::array: return "an array";
      default: return "a date/time";
    }
  }

  const toml::table& table_;
  std::string path_;
  const std::string& file_;
  std::set<std::string> seen_;
};

const toml::table& as_table(TableReader& parent, const toml::node* node, const std::string& key) {
  if (!node->is_table()) parent.fail(node, key, "expected a table");
  return *node->as_table();
}

// `config_dir`: the folder of the config file, against which a relative
// log_dir is resolved; empty for config text, where a relative log_dir would
// depend on the working directory of each process (and split transactions
// between the logs of two directories), so it is refused.
CoordinatorConfig read_coordinator(TableReader& top, const std::string& file,
                                   const std::filesystem::path& config_dir) {
  const toml::node* node = top.get("coordinator");
  if (!node) top.fail(nullptr, "coordinator", "missing [coordinator] table");
  TableReader t(as_table(top, node, "coordinator"), "coordinator", file);
  CoordinatorConfig c;
  c.id = t.required_string("id");
  if (!is_valid_coordinator_id(c.id))
    t.fail(t.get("id"), "id", "'" + c.id + "' must be 1-16 characters of [A-Za-z0-9_-]");
  if (auto v = t.string("decisions")) {
    c.decisions = *v;
    if (c.decisions.empty())
      t.fail(t.get("decisions"), "decisions", "must name a resource (or leave the key out for the file log)");
  }
  if (c.decisions.empty() || t.get("log_dir")) {
    c.log_dir = t.required_string("log_dir");
    if (c.log_dir.empty()) t.fail(t.get("log_dir"), "log_dir", "must not be empty");
  }
  if (!c.log_dir.empty() && c.log_dir.is_relative()) {
    if (config_dir.empty())
      t.fail(t.get("log_dir"), "log_dir",
             "'" + c.log_dir.string() +
                 "' is relative, but this config is not read from a file it could be relative to: "
                 "give an absolute path");
    c.log_dir = (config_dir / c.log_dir).lexically_normal();
  }
  // It need not exist yet, but it must be able to: its nearest existing
  // ancestor must be a directory.
  for (std::filesystem::path p = c.log_dir; !c.log_dir.empty() && !p.empty(); p = p.parent_path()) {
    std::error_code ec;
    const auto status = std::filesystem::status(p, ec);
    if (status.type() == std::filesystem::file_type::not_found) {
      if (p == p.parent_path()) break;
      continue;
    }
    if (ec) break;  // cannot look (permissions): DecisionLog::open says why
    if (status.type() != std::filesystem::file_type::directory)
      t.fail(t.get("log_dir"), "log_dir",
             "'" + c.log_dir.string() + "' cannot be a directory: " + p.string() + " is not a directory");
    break;
  }
  if (auto v = t.integer("threads", 0, 1024)) c.threads = static_cast<int>(*v);
  if (auto v = t.integer("default_timeout_ms", 1, 24LL * 3600 * 1000))
    c.default_timeout = std::chrono::milliseconds(*v);
  if (auto v = t.integer("recovery_interval_s", 0, 24LL * 3600)) c.recovery_interval_s = static_cast<int>(*v);
  t.reject_unknown({"id", "log_dir", "decisions", "threads", "default_timeout_ms", "recovery_interval_s"});
  return c;
}

ResourceConfig read_resource(TableReader& parent, const std::string& name, const toml::node* node,
                             const std::string& file) {
  if (!is_valid_resource_name(name))
    parent.fail(node, name, "resource name must be 1-48 characters of [A-Za-z0-9_-]");
  TableReader t(as_table(parent, node, name), "resources." + name, file);
  ResourceConfig r;
  r.name = name;
  std::string type = t.required_string("type");
  if (type == "mysql" || type == "mariadb") {
    r.type = ResourceType::mysql;
    r.port = 3306;
  } else if (type == "postgres" || type == "postgresql") {
    r.type = ResourceType::postgres;
    r.port = 5432;
  } else {
    t.fail(t.get("type"), "type", "unknown type '" + type + "' (expected \"mysql\" or \"postgres\")");
  }
  if (auto v = t.string("host")) r.host = *v;
  if (auto v = t.integer("port", 1, 65535)) r.port = static_cast<int>(*v);
  r.user = t.required_string("user");
  r.database = t.required_string("database");
  auto password = t.string("password");
  auto password_env = t.string("password_env");
  if (password && password_env)
    t.fail(t.get("password_env"), "password_env", "give either password or password_env, not both");
  if (password_env) {
    const char* value = std::getenv(password_env->c_str());
    if (!value)
      t.fail(t.get("password_env"), "password_env",
             "environment variable " + *password_env + " is not set");
    r.password = value;
  } else if (password) {
    r.password = *password;
  }
  if (auto v = t.integer("pool_size", 1, 4096)) r.pool_size = static_cast<int>(*v);
  if (auto v = t.integer("connect_timeout_s", 1, 3600)) r.connect_timeout_s = static_cast<int>(*v);
  if (auto mode = t.string("mode")) {
    if (*mode == "xa")
      r.mode = BranchMode::xa;
    else if (*mode == "at")
      r.mode = BranchMode::at;
    else
      t.fail(t.get("mode"), "mode", "unknown mode '" + *mode + "' (expected \"xa\" or \"at\")");
  }
  if (auto v = t.integer("lock_wait_timeout_ms", 0, 3'600'000))
    r.lock_wait_timeout = std::chrono::milliseconds(*v);
  t.reject_unknown({"type", "host", "port", "user", "password", "password_env", "database",
                    "pool_size", "connect_timeout_s", "mode", "lock_wait_timeout_ms"});
  return r;
}

// "host:port", "[v6]:port" or ":port" (loopback). The host must be an IP
// literal or localhost: a name would be resolved at each start, and whether
// it is loopback could not be told here.
ListenAddress read_listen(TableReader& t, const ListenAddress& fallback) {
  auto text = t.string("listen");
  if (!text) return fallback;
  const toml::node* node = t.get("listen");
  auto bad = [&](const std::string& why) {
    t.fail(node, "listen", "'" + *text + "' " + why + " (expected \"127.0.0.1:7432\" or \"[::1]:7432\")");
  };
  ListenAddress a;
  std::string_view s = *text;
  std::size_t colon;
  if (s.starts_with("[")) {
    std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') bad("is not [address]:port");
    a.host = std::string(s.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string_view::npos) bad("has no port");
    a.host = std::string(s.substr(0, colon));
    if (a.host.empty()) a.host = "127.0.0.1";
    if (a.host.find(':') != std::string::npos) bad("has an IPv6 address without brackets");
  }
  std::string_view port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
    bad("has no valid port");
  a.port = std::stoi(std::string(port));
  if (a.port > 65535) bad("has a port out of range [0, 65535]");  // 0: any free port
  const bool ipv4 = a.host.find_first_not_of("0123456789.") == std::string::npos &&
                    std::count(a.host.begin(), a.host.end(), '.') == 3;
  const bool ipv6 = a.host.find(':') != std::string::npos &&
                    a.host.find_first_not_of("0123456789abcdefABCDEF:.") == std::string::npos;
  if (!ipv4 && !ipv6 && a.host != "localhost") bad("must name an IP address or localhost");
  return a;
}

AdminConfig read_admin(TableReader& top, const toml::node* node, const std::string& file) {
  TableReader t(as_table(top, node, "admin"), "admin", file);
  AdminConfig a;
  a.listen = read_listen(t, a.listen);
  if (auto v = t.string("user")) a.user = *v;
  if (a.user.empty() || a.user.size() > 63) t.fail(t.get("user"), "user", "must be 1-63 characters");
  if (auto auth = t.string("auth")) {
    if (*auth == "scram-sha-256")
      a.auth = AdminConfig::Auth::scram_sha_256;
    else if (*auth == "trust")
      a.auth = AdminConfig::Auth::trust;
    else
      t.fail(t.get("auth"), "auth", "unknown method '" + *auth + "' (expected \"scram-sha-256\" or \"trust\")");
  }
  if (a.auth == AdminConfig::Auth::trust && !a.listen.is_loopback())
    t.fail(t.get("auth"), "auth",
           "\"trust\" lets anyone who can connect administer every database; it is refused on " +
               a.listen.to_string() + ", which is not a loopback address: use \"scram-sha-256\" "
               "with password_env, or listen on 127.0.0.1");
  auto password_env = t.string("password_env");
  if (password_env) {
    const char* value = std::getenv(password_env->c_str());
    if (!value || !*value)
      t.fail(t.get("password_env"), "password_env",
             "environment variable " + *password_env + " is not set or empty");
    a.password = value;
  } else if (a.auth == AdminConfig::Auth::scram_sha_256) {
    t.fail(nullptr, "password_env",
           "missing: auth \"scram-sha-256\" needs the name of an environment variable holding the "
           "admin password");
  }
  if (auto v = t.integer("max_sessions", 1, 100'000)) a.max_sessions = static_cast<int>(*v);
  if (auto v = t.integer("idle_timeout_s", 0, 7 * 24 * 3600)) a.idle_timeout_s = static_cast<int>(*v);
  if (auto v = t.integer("auth_timeout_s", 1, 600)) a.auth_timeout_s = static_cast<int>(*v);
  if (auto v = t.integer("statement_timeout_ms", 1, 24LL * 3600 * 1000))
    a.statement_timeout = std::chrono::milliseconds(*v);
  t.reject_unknown({"listen", "user", "password_env", "auth", "max_sessions", "idle_timeout_s",
                    "auth_timeout_s", "statement_timeout_ms"});
  return a;
}

MetricsConfig read_metrics(TableReader& top, const toml::node* node, const std::string& file) {
  TableReader t(as_table(top, node, "metrics"), "metrics", file);
  MetricsConfig m;
  m.listen = read_listen(t, m.listen);
  t.reject_unknown({"listen"});
  return m;
}

Config build(const toml::table& root, const std::string& source_name,
             const std::filesystem::path& config_dir) {
  TableReader top(root, "", source_name);
  Config config;
  config.coordinator = read_coordinator(top, source_name, config_dir);
  const toml::node* resources = top.get("resources");
  if (!resources) top.fail(nullptr, "resources", "missing: configure at least one [resources.<name>]");
  TableReader rt(as_table(top, resources, "resources"), "resources", source_name);
  for (const auto& [k, node] : as_table(top, resources, "resources")) {
    std::string name(k.str());
    rt.get(name);
    config.resources.emplace(name, read_resource(rt, name, &node, source_name));
  }
  if (config.resources.empty())
    top.fail(resources, "resources", "no resource configured: add a [resources.<name>] table");
  if (!config.coordinator.decisions.empty() && !config.resources.count(config.coordinator.decisions)) {
    std::string names;
    for (const auto& [name, _] : config.resources) names += (names.empty() ? "" : ", ") + name;
    TableReader ct(as_table(top, top.get("coordinator"), "coordinator"), "coordinator", source_name);
    ct.fail(ct.get("decisions"), "decisions",
            "'" + config.coordinator.decisions + "' is not a configured resource (configured: " + names + ")");
  }
  if (const toml::node* admin = top.get("admin")) config.admin = read_admin(top, admin, source_name);
  if (const toml::node* metrics = top.get("metrics"))
    config.metrics = read_metrics(top, metrics, source_name);
  top.reject_unknown({"coordinator", "resources", "admin", "metrics"});
  return config;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace

bool ListenAddress::is_loopback() const noexcept { return dtx::is_loopback(host); }

std::string ListenAddress::to_string() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::vector<std::string> config_warnings(const Config& config) {
  std::vector<std::string> out;
  for (auto a = config.resources.begin(); a != config.resources.end(); ++a)
    for (auto b = std::next(a); b != config.resources.end(); ++b) {
      const ResourceConfig& x = a->second;
      const ResourceConfig& y = b->second;
      const bool same_host = x.host == y.host || (is_loopback(x.host) && is_loopback(y.host));
      if (x.type != y.type || x.port != y.port || !same_host || x.database != y.database) continue;
      out.push_back("resources '" + x.name + "' and '" + y.name + "' are the same database (" +
                    to_string(x.type) + " " + x.host + ":" + std::to_string(x.port) + ", database '" +
                    x.database + "'): a transaction using both can wait for its own row locks, "
                    "which the database does not see as a deadlock and only the transaction "
                    "timeout ends; configure the database once unless this is intended");
    }
  return out;
}

namespace {

void log_warnings(const Config& config) {
  for (const std::string& w : config_warnings(config)) logger().warn("{}", w);
}

}  // namespace

Config parse_config(std::string_view text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw Error({.code = Errc::config},
                source_name + ":" + std::to_string(e.source().begin.line) + ": " +
                    std::string(e.description()));
  }
  Config config = build(root, source_name, {});
  log_warnings(config);
  return config;
}

Config load_config(const std::filesystem::path& file) {
  toml::table root;
  try {
    root = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    std::string msg(e.description());
    if (e.source().begin.line == 0)  // could not read the file at all
      throw Error({.code = Errc::config, .hint = "pass --config with a readable TOML file"},
                  "cannot read config " + file.string() + ": " + msg);
    throw Error({.code = Errc::config},
                file.string() + ":" + std::to_string(e.source().begin.line) + ": " + msg);
  }
  Config config = build(root, file.string(), std::filesystem::absolute(file).parent_path());
  config.source = file;
  log_warnings(config);
  return config;
}

}  // namespace dtx
