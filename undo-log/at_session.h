// AT mode's resource manager: branches that commit locally in phase 1 with an
// undo record and global row locks, and are forgotten or undone in phase 2.
// The mechanism is described at the top of at_session.cc; the user's view in
// docs/at-mode.md.
//
// An AT resource is a ResourceManager like any other: the coordinator,
// recovery and the operator commands drive its sessions through the Session
// interface, and an AT branch maps onto it as
//
//   begin               START TRANSACTION / BEGIN (a local transaction)
//   execute             recognized (sql/recognizer.h); row images taken, global
//                       locks taken, the change made — all in the local transaction
//   prepare  (phase 1)  the undo record inserted, then COMMIT
//   commit   (phase 2)  the undo record and the locks deleted
//   rollback (phase 2)  after phase 1: the rows compared with the after images
//                       and restored from the before images, the record and
//                       the locks deleted; before it: ROLLBACK
//   recover             the undo records present (with the driver's XA branches)
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "drivers/resource_manager.h"

namespace dtx::undo {

// The resource manager of an AT-mode resource, whose sessions wrap the
// driver's (`driver`, or make_driver_connector(config) when empty).
std::unique_ptr<ResourceManager> make_at_resource_manager(const ResourceConfig& config,
                                                          ResourceManager::Connector driver = {});

// Phase 2 commit of several AT branches of `session`'s resource at once: their
// undo records and global locks deleted in one local transaction. `session`
// must come from an AT resource manager and hold no branch. Throws dtx::Error
// on failure (nothing is then deleted).
void forget_branches(Session& session, std::span<const Xid> branches);

// One row of dtx_global_lock: a row held by an unfinished AT branch.
struct GlobalLock {
  std::string table_name;  // schema.table
  std::string row_key;     // JSON array of the primary key's images
  std::string gtrid;       // the holder
  std::string branch;      // its bqual (the resource's name)
  std::optional<std::chrono::system_clock::time_point> created;
};

// The global locks held on `session`'s database (an AT session holding no
// branch), oldest first. Throws dtx::Error like Session::execute().
std::vector<GlobalLock> list_global_locks(Session& session);

// Whether `session` is an AT session.
bool is_at_session(const Session& session) noexcept;

// Lets go of the prepared AT branch of `session` without finishing it: its
// undo record and locks stay for forget_branches() (or recovery) to delete,
// and the session can go back to the pool. No-op for other sessions.
void release_prepared(Session& session) noexcept;

// The resource manager a configured resource gets: the driver's for mode
// "xa", make_at_resource_manager's for mode "at".
std::unique_ptr<ResourceManager> make_configured_resource_manager(const ResourceConfig& config);

}  // namespace dtx::undo
