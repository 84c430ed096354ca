// Autocommit access to one test database, outside any global transaction:
// setting up tables, reading balances, listing prepared branches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drivers/resource_manager.h"

namespace dtx::test {

class Direct {
 public:
  explicit Direct(const ResourceConfig& rc) : rm_(make_resource_manager(rc)) {}
  ResourceManager& rm() { return *rm_; }
  bool is_mysql() const { return rm_->config().type == ResourceType::mysql; }
  Result run(const std::string& sql) { return rm_->acquire()->execute(sql, {}); }
  std::int64_t scalar(const std::string& sql) { return run(sql)[0].as_int64(0); }
  std::vector<PreparedXid> prepared() { return rm_->acquire()->recover(); }

 private:
  std::unique_ptr<ResourceManager> rm_;
};

}  // namespace dtx::test
