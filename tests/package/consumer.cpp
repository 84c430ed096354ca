// Links against an installed dtx and exercises the public API without a database.
#include <dtx/dtx.h>

#include <iostream>
#include <string>

int main() {
  // The metrics need prometheus-cpp at link time: find_package(dtx) must bring it.
  if (dtx::metrics_text().find("dtx_transactions_total") == std::string::npos) return 1;
  try {
    dtx::parse_config("[coordinator]\nid = 'x'\nlog_dir = '/tmp'\n[resources.a]\ntype = 'oracle'\n", "consumer.toml");
  } catch (const dtx::Error& e) {
    std::cout << "dtx " << dtx::kVersion << ": " << e.what() << "\n";
    return e.code() == dtx::Errc::config ? 0 : 1;
  }
  return 1;
}
