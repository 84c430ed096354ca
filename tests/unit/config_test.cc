#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "dtx/config.h"
#include "dtx/error.h"
#include "support/test_env.h"

namespace dtx {
namespace {

constexpr const char* kGood = R"(
[coordinator]
id = "node1"
log_dir = "/tmp/dtx-log"

[resources.bank1]
type = "mysql"
host = "127.0.0.1"
port = 3306
user = "root"
password = ""
database = "bank1"

[resources.bank2]
type = "postgres"
port = 5432
user = "app"
password_env = "DTX_CONFIG_TEST_PW"
database = "bank2"
pool_size = 3
)";

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "dtx.toml");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::config);
    return e.what();
  }
  ADD_FAILURE() << "expected a config error";
  return {};
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(Config, ParsesAGoodFile) {
  ::setenv("DTX_CONFIG_TEST_PW", "s3cret", 1);
  Config c = parse_config(kGood);
  EXPECT_EQ(c.coordinator.id, "node1");
  EXPECT_EQ(c.coordinator.log_dir, "/tmp/dtx-log");
  ASSERT_EQ(c.resources.size(), 2u);
  EXPECT_EQ(c.resource("bank1").type, ResourceType::mysql);
  EXPECT_EQ(c.resource("bank2").type, ResourceType::postgres);
  EXPECT_EQ(c.resource("bank2").host, "127.0.0.1");
  EXPECT_EQ(c.resource("bank2").password, "s3cret");
  EXPECT_EQ(c.resource("bank2").pool_size, 3);
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  std::string m = error_of(replace(kGood, "port = 3306", "prot = 3306"));
  EXPECT_NE(m.find("dtx.toml:9"), std::string::npos) << m;
  EXPECT_NE(m.find("resources.bank1.prot"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown key"), std::string::npos) << m;
}

TEST(Config, WrongTypeNamesTheKey) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  std::string m = error_of(replace(kGood, "port = 3306", "port = \"3306\""));
  EXPECT_NE(m.find("dtx.toml:9"), std::string::npos) << m;
  EXPECT_NE(m.find("resources.bank1.port"), std::string::npos) << m;
  EXPECT_NE(m.find("expected an integer"), std::string::npos) << m;
}

TEST(Config, UnknownResourceTypeIsRejected) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  std::string m = error_of(replace(kGood, "type = \"mysql\"", "type = \"oracle\""));
  EXPECT_NE(m.find("resources.bank1.type"), std::string::npos) << m;
  EXPECT_NE(m.find("oracle"), std::string::npos) << m;
}

TEST(Config, BadCoordinatorIdIsRejected) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  EXPECT_NE(error_of(replace(kGood, "\"node1\"", "\"this-id-is-far-too-long\"")).find("coordinator.id"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kGood, "\"node1\"", "\"no spaces\"")).find("coordinator.id"),
            std::string::npos);
}

TEST(Config, MissingPieces) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  EXPECT_NE(error_of("[resources.a]\ntype='mysql'\nuser='u'\ndatabase='d'\n").find("coordinator"),
            std::string::npos);
  EXPECT_NE(error_of("[coordinator]\nid='a'\nlog_dir='/tmp'\n").find("resources"), std::string::npos);
  EXPECT_NE(error_of(replace(kGood, "database = \"bank1\"", "")).find("resources.bank1.database"),
            std::string::npos);
}

// [coordinator] decisions names a configured resource; log_dir is then
// optional (a coordinator with no local disk).
TEST(Config, DecisionsInAResourceMakeLogDirOptional) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  Config c = parse_config(replace(kGood, "log_dir = \"/tmp/dtx-log\"", "decisions = \"bank2\""));
  EXPECT_EQ(c.coordinator.decisions, "bank2");
  EXPECT_TRUE(c.coordinator.log_dir.empty());
  Config both = parse_config(replace(kGood, "log_dir = ", "decisions = \"bank1\"\nlog_dir = "));
  EXPECT_EQ(both.coordinator.decisions, "bank1");
  EXPECT_EQ(both.coordinator.log_dir, "/tmp/dtx-log");
  EXPECT_TRUE(parse_config(kGood).coordinator.decisions.empty());

  std::string m = error_of(replace(kGood, "log_dir = \"/tmp/dtx-log\"", "decisions = \"bank3\""));
  EXPECT_NE(m.find("coordinator.decisions"), std::string::npos) << m;
  EXPECT_NE(m.find("bank3"), std::string::npos) << m;
  EXPECT_NE(m.find("bank1, bank2"), std::string::npos) << m;
  m = error_of(replace(kGood, "log_dir = \"/tmp/dtx-log\"", "decisions = \"\""));
  EXPECT_NE(m.find("coordinator.decisions"), std::string::npos) << m;
  m = error_of(replace(kGood, "log_dir = \"/tmp/dtx-log\"", ""));
  EXPECT_NE(m.find("log_dir"), std::string::npos) << m;
}

TEST(Config, UnsetPasswordEnvIsAnError) {
  ::unsetenv("DTX_CONFIG_TEST_PW");
  std::string m = error_of(kGood);
  EXPECT_NE(m.find("DTX_CONFIG_TEST_PW"), std::string::npos) << m;
}

TEST(Config, SyntaxErrorNamesTheLine) {
  std::string m = error_of("[coordinator]\nid = \n");
  EXPECT_NE(m.find("dtx.toml:2"), std::string::npos) << m;
}

TEST(Config, UnknownResourceLookupListsTheKnownOnes) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  Config c = parse_config(kGood);
  try {
    c.resource("bank3");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bank3"), std::string::npos) << m;
    EXPECT_NE(m.find("bank1, bank2"), std::string::npos) << m;
  }
}

TEST(Config, LoadConfigReportsAMissingFile) {
  try {
    load_config("/nonexistent/dtx.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::config);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dtx.toml"), std::string::npos) << e.what();
  }
}


// A relative log_dir means the same directory to every process that reads the
// file, whatever its working directory: the config file's folder's.
TEST(Config, RelativeLogDirIsResolvedAgainstTheConfigFilesFolder) {
  const std::filesystem::path dir = test::fresh_dir("cfg");
  std::filesystem::create_directories(dir / "etc");
  const std::string text = replace(kGood, "log_dir = \"/tmp/dtx-log\"", "log_dir = \"../var/log\"");
  std::ofstream(dir / "etc" / "dtx.toml") << text;
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir / "etc");
  const Config from_etc = load_config("dtx.toml");
  std::filesystem::current_path(dir);
  const Config from_dir = load_config("etc/dtx.toml");
  std::filesystem::current_path(cwd);
  EXPECT_EQ(from_etc.coordinator.log_dir, dir / "var" / "log");
  EXPECT_EQ(from_dir.coordinator.log_dir, dir / "var" / "log");
  // An absolute one is kept as written.
  std::ofstream(dir / "etc" / "abs.toml") << kGood;
  EXPECT_EQ(load_config(dir / "etc" / "abs.toml").coordinator.log_dir, "/tmp/dtx-log");
  std::filesystem::remove_all(dir);
}

// Config text has no folder to be relative to: a relative log_dir would
// depend on the working directory, so it is refused.
TEST(Config, RelativeLogDirInConfigTextIsRefused) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  const std::string m = error_of(replace(kGood, "log_dir = \"/tmp/dtx-log\"", "log_dir = \"log\""));
  EXPECT_NE(m.find("coordinator.log_dir"), std::string::npos) << m;
  EXPECT_NE(m.find("absolute"), std::string::npos) << m;
}
}  // namespace
}  // namespace dtx

namespace dtx {
namespace {

// Two resources on one database can wait for each other's row locks: a cycle
// the database cannot see as a deadlock (one session may wait for another of
// the same transaction), which only the transaction timeout ends.
TEST(Config, TwoResourcesOnTheSameDatabaseGetAWarning) {
  ::setenv("DTX_CONFIG_TEST_PW", "x", 1);
  const std::string again = std::string(kGood) +
                            "\n[resources.bank1_again]\ntype = \"mariadb\"\nhost = \"localhost\"\n"
                            "user = \"other\"\ndatabase = \"bank1\"\n";
  const std::vector<std::string> warnings = config_warnings(parse_config(again));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("'bank1'"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("'bank1_again'"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("same database"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("timeout"), std::string::npos) << warnings[0];

  EXPECT_TRUE(config_warnings(parse_config(kGood)).empty());
  const std::string other_database = replace(again, "database = \"bank1\"", "database = \"bank3\"");
  EXPECT_TRUE(config_warnings(parse_config(other_database)).empty());
  const std::string other_port = replace(again, "host = \"localhost\"", "port = 3307");
  EXPECT_TRUE(config_warnings(parse_config(other_port)).empty());
}

// [admin] and [metrics] (dtx serve).
std::string with_admin(const std::string& admin) {
  ::setenv("DTX_CONFIG_TEST_PW", "s3cret", 1);
  return std::string(kGood) + "\n[admin]\n" + admin;
}

TEST(Config, AdminAndMetricsAreOptional) {
  ::setenv("DTX_CONFIG_TEST_PW", "s3cret", 1);
  Config c = parse_config(kGood);
  EXPECT_FALSE(c.admin);
  EXPECT_FALSE(c.metrics);
}

TEST(Config, AdminSectionWithScram) {
  ::setenv("DTX_CONFIG_TEST_ADMIN_PW", "adm1n", 1);
  Config c = parse_config(with_admin("listen = \"127.0.0.1:7433\"\nuser = \"dba\"\npassword_env = "
                                     "\"DTX_CONFIG_TEST_ADMIN_PW\"\nidle_timeout_s = 60\n") +
                          "[metrics]\nlisten = \"[::1]:9465\"\n");
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->listen.host, "127.0.0.1");
  EXPECT_EQ(c.admin->listen.port, 7433);
  EXPECT_EQ(c.admin->user, "dba");
  EXPECT_EQ(c.admin->password, "adm1n");
  EXPECT_EQ(c.admin->auth, AdminConfig::Auth::scram_sha_256);
  EXPECT_EQ(c.admin->idle_timeout_s, 60);
  ASSERT_TRUE(c.metrics);
  EXPECT_EQ(c.metrics->listen.host, "::1");
  EXPECT_EQ(c.metrics->listen.port, 9465);
  EXPECT_EQ(c.metrics->listen.to_string(), "[::1]:9465");
  EXPECT_TRUE(c.metrics->listen.is_loopback());
}

TEST(Config, AdminDefaultsListenOnLoopback) {
  Config c = parse_config(with_admin("auth = \"trust\"\n"));
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->listen.to_string(), "127.0.0.1:7432");
  EXPECT_EQ(c.admin->auth, AdminConfig::Auth::trust);
}

TEST(Config, TrustIsRefusedOnANonLoopbackAddress) {
  std::string e = error_of(with_admin("listen = \"0.0.0.0:7432\"\nauth = \"trust\"\n"));
  EXPECT_NE(e.find("not a loopback address"), std::string::npos) << e;
  EXPECT_NE(e.find("0.0.0.0:7432"), std::string::npos) << e;
}

TEST(Config, ScramNeedsAPassword) {
  EXPECT_NE(error_of(with_admin("auth = \"scram-sha-256\"\n")).find("password_env"), std::string::npos);
  ::unsetenv("DTX_CONFIG_TEST_UNSET_PW");
  EXPECT_NE(error_of(with_admin("password_env = \"DTX_CONFIG_TEST_UNSET_PW\"\n")).find("not set"),
            std::string::npos);
}

TEST(Config, BadListenAddressesAreRefused) {
  for (const char* bad : {"7432", "127.0.0.1:", "127.0.0.1:99999", "db.example.com:7432", "::1:7432",
                          "[::1]7432", "127.0.0.1:7x"}) {
    std::string e = error_of(with_admin("auth = \"trust\"\nlisten = \"" + std::string(bad) + "\"\n"));
    EXPECT_NE(e.find("admin.listen"), std::string::npos) << bad << ": " << e;
  }
}

TEST(Config, UnknownAdminKeyIsRefused) {
  EXPECT_NE(error_of(with_admin("auth = \"trust\"\nport = 1\n")).find("unknown key"), std::string::npos);
  EXPECT_NE(error_of(with_admin("auth = \"md5\"\n")).find("unknown method"), std::string::npos);
}

}  // namespace
}  // namespace dtx
