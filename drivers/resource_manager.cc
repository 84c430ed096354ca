// The session pool every driver shares, and the choice of driver by type.
//
// The pool keeps at most config.pool_size idle sessions; it never limits how
// many are live (the coordinator bounds concurrency, not the pool). A session
// comes back only in a known-good state: not broken and holding no branch.
// Anything else is closed, which makes the server roll back an active branch
// and keep a prepared one for recovery.
#include "drivers/resource_manager.h"

#include <exception>
#include <utility>

#include "drivers/mysql_driver.h"
#include "drivers/postgres_driver.h"
#include "dtx/error.h"

namespace dtx {

namespace {

// The one message for "cannot connect", whatever the driver: where we tried
// and what the server or client library said. Never the password.
Error connect_failure(const ResourceConfig& c, Error::Details d) {
  d.code = Errc::unavailable;
  d.resource = c.name;
  d.hint = "check that the database is running and reachable, and the [resources." + c.name +
           "] settings";
  return Error(std::move(d), std::string("cannot connect to ") + to_string(c.type) + " resource '" +
                                 c.name + "' at " + c.host + ":" + std::to_string(c.port) +
                                 ", database '" + c.database + "'");
}

}  // namespace

SessionLease& SessionLease::operator=(SessionLease&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    session_ = std::move(other.session_);
  }
  return *this;
}

SessionLease::~SessionLease() { release(); }

void SessionLease::release() noexcept {
  if (!session_) return;
  if (owner_ && !session_->broken() && session_->state() == BranchState::none)
    owner_->give_back(std::move(session_));
  session_.reset();
}

ResourceManager::ResourceManager(ResourceConfig config, Connector connect)
    : config_(std::move(config)), connect_(std::move(connect)) {}

SessionLease ResourceManager::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Session> s = std::move(idle_.back());
      idle_.pop_back();
      return SessionLease(this, std::move(s));
    }
  }
  try {
    return SessionLease(this, connect_());
  } catch (const Error& e) {
    if (e.code() != Errc::unavailable) throw;
    throw connect_failure(config_, e.details());
  } catch (const std::exception& e) {
    throw connect_failure(config_, {.server_message = e.what()});
  }
}

std::size_t ResourceManager::idle_count() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

void ResourceManager::give_back(std::unique_ptr<Session> session) noexcept {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < static_cast<std::size_t>(config_.pool_size)) {
      idle_.push_back(std::move(session));
      return;
    }
  }
  session.reset();  // closed outside the lock: closing waits for the server
}

std::unique_ptr<ResourceManager> make_resource_manager(const ResourceConfig& config) {
  ResourceManager::Connector connect;
  switch (config.type) {
    case ResourceType::mysql:
      connect = [config] { return connect_mysql(config); };
      break;
    case ResourceType::postgres:
      connect = [config] { return connect_postgres(config); };
      break;
  }
  return std::make_unique<ResourceManager>(config, std::move(connect));
}

}  // namespace dtx
