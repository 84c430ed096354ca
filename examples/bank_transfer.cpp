// The classic bank transfer: Zhang San (bank1, MySQL/MariaDB)
// pays Li Si (bank2, PostgreSQL). Both changes happen or neither does.
//
//   bank_transfer --config dtx.toml [--scenario success|bank2-fails|bank1-fails] [--amount N]
//
//   success      debit bank1, credit bank2, commit.
//   bank2-fails  debit bank1, then the credit on bank2 finds no account: the
//                application throws and the Transaction's destructor rolls
//                bank1 back.
//   bank1-fails  credit bank2 first, then the debit overdraws bank1 (its CHECK
//                constraint fails): commit is impossible, bank2 is rolled back.
//
// Exits 0 when the scenario ended as expected (committed, or rolled back with
// both balances unchanged), 1 otherwise.
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include "dtx/dtx.h"

namespace {

struct Balances {
  double zhang_san;
  double li_si;
};

double balance(dtx::Coordinator& coord, const std::string& bank, const std::string& name) {
  dtx::Transaction tx = coord.begin();
  dtx::Result r = tx.execute(bank, "SELECT account_balance FROM account_info WHERE account_name = ?",
                             {name});
  tx.commit();
  if (r.empty()) throw std::runtime_error("no account " + name + " on " + bank);
  return r[0].as_double(0);
}

Balances balances(dtx::Coordinator& coord) {
  return {balance(coord, "bank1", "Zhang San"), balance(coord, "bank2", "Li Si")};
}

void print(const char* when, const Balances& b) {
  std::cout << "  " << when << ": Zhang San (bank1) = " << b.zhang_san
            << ", Li Si (bank2) = " << b.li_si << "\n";
}

// Debit or credit one account; an account that is not there is a business error.
void adjust(dtx::Transaction& tx, const std::string& bank, const std::string& name, double delta) {
  dtx::Result r = tx.execute(
      bank, "UPDATE account_info SET account_balance = account_balance + ? WHERE account_name = ?",
      {delta, name});
  if (r.affected_rows() != 1)
    throw std::runtime_error("account '" + name + "' not found on " + bank);
}

void transfer(dtx::Coordinator& coord, const std::string& scenario, double amount) {
  dtx::Transaction tx = coord.begin();
  std::cout << "  global transaction " << tx.id() << "\n";
  if (scenario == "success") {
    adjust(tx, "bank1", "Zhang San", -amount);
    adjust(tx, "bank2", "Li Si", amount);
  } else if (scenario == "bank2-fails") {
    adjust(tx, "bank1", "Zhang San", -amount);
    adjust(tx, "bank2", "Li Si (closed account)", amount);  // throws: no such account
  } else {  // bank1-fails
    adjust(tx, "bank2", "Li Si", amount);
    adjust(tx, "bank1", "Zhang San", -1'000'000'000.0);  // overdraft: CHECK fails on bank1
  }
  tx.commit();
  std::cout << "  committed " << tx.id() << "\n";
}  // on any exception above, ~Transaction rolls every branch back

}  // namespace

int main(int argc, char** argv) {
  std::string config_file, scenario = "success";
  double amount = 100;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_file = argv[++i];
    else if (a == "--scenario" && i + 1 < argc) scenario = argv[++i];
    else if (a == "--amount" && i + 1 < argc) amount = std::atof(argv[++i]);
    else {
      std::cerr << "usage: bank_transfer --config FILE [--scenario success|bank2-fails|bank1-fails]"
                   " [--amount N]\n";
      return 2;
    }
  }
  if (config_file.empty() ||
      (scenario != "success" && scenario != "bank2-fails" && scenario != "bank1-fails")) {
    std::cerr << "bank_transfer: need --config FILE and a known --scenario\n";
    return 2;
  }

  try {
    dtx::Coordinator coord(dtx::load_config(config_file));
    std::cout << "scenario " << scenario << ": transfer " << amount << " from Zhang San to Li Si\n";
    Balances before = balances(coord);
    print("before", before);
    bool committed = false;
    try {
      transfer(coord, scenario, amount);
      committed = true;
    } catch (const std::exception& e) {
      std::cout << "  rolled back: " << e.what() << "\n";
    }
    Balances after = balances(coord);
    print("after ", after);
    bool expected = scenario == "success"
                        ? committed && after.zhang_san == before.zhang_san - amount &&
                              after.li_si == before.li_si + amount
                        : !committed && after.zhang_san == before.zhang_san &&
                              after.li_si == before.li_si;
    std::cout << (expected ? "  as expected\n" : "  UNEXPECTED OUTCOME\n");
    return expected ? 0 : 1;
  } catch (const dtx::Error& e) {
    std::cerr << "bank_transfer: " << e.what() << "\n";
    return 1;
  }
}
