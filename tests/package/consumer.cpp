// Links against an installed dtx and exercises the public API without a database.
#include <dtx/dtx.h>

#include <iostream>

int main() {
  try {
    dtx::parse_config("[coordinator]\nid = 'x'\nlog_dir = '/tmp'\n[resources.a]\ntype = 'oracle'\n", "consumer.toml");
  } catch (const dtx::Error& e) {
    std::cout << "dtx " << dtx::kVersion << ": " << e.what() << "\n";
    return e.code() == dtx::Errc::config ? 0 : 1;
  }
  return 1;
}
