#include "drivers/null_driver.h"

namespace dtx {

namespace {

class NullSession final : public Session {
 public:
  Result execute(std::string_view, std::span<const Param>) override { return Result({}, {}, 1); }
  void begin(const Xid& xid) override {
    xid_ = xid;
    state_ = BranchState::active;
  }
  void prepare() override { state_ = BranchState::prepared; }
  FinishResult commit() override {
    state_ = BranchState::none;
    return {};
  }
  void commit_one_phase() override { state_ = BranchState::none; }
  void rollback() override { state_ = BranchState::none; }
  BranchState state() const noexcept override { return state_; }
  const Xid* current_xid() const noexcept override { return state_ == BranchState::none ? nullptr : &xid_; }
  FinishResult commit_prepared(const Xid&) override { return {}; }
  FinishResult rollback_prepared(const Xid&) override { return {}; }
  std::vector<PreparedXid> recover() override { return {}; }
  bool broken() const noexcept override { return false; }

 private:
  Xid xid_;
  BranchState state_ = BranchState::none;
};

}  // namespace

std::unique_ptr<ResourceManager> make_null_resource_manager(const ResourceConfig& config) {
  return std::make_unique<ResourceManager>(config, [] { return std::make_unique<NullSession>(); });
}

}  // namespace dtx
