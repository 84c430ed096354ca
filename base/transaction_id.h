// Global transaction ids (gtrids).
//
//   <coordinator id>.<incarnation>.<sequence>
//   node1.65a1f3c29d04b7e1.1f
//
// coordinator id: from the config, [A-Za-z0-9_-]{1,16};
// incarnation:    16 lowercase hex digits, unique to one process start
//                 (seconds since the epoch in the high 32 bits, random low bits
//                 of which the highest says where the incarnation keeps its
//                 commit decisions: 0 its file log, 1 a database table);
// sequence:       hex counter within the incarnation, from 1.
// At most 16+1+16+1+16 = 50 bytes, inside XA's 64. The bqual of a branch is
// the resource's config name. See docs/transaction-ids.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dtx {

struct GtridParts {
  std::string coordinator_id;
  std::string incarnation;
  std::uint64_t sequence = 0;
};

// Where an incarnation keeps its commit decisions, for the life of the
// process: its decision log's files, or a resource's dtx_decision table
// ([coordinator] decisions). Recovery reads it from the gtrid.
enum class DecisionStore { file, database };

// A fresh incarnation id: 16 lowercase hex digits, marked with `store`.
std::string new_incarnation(DecisionStore store = DecisionStore::file);
// The store an incarnation id is marked with (file for malformed ids).
DecisionStore decision_store_of(std::string_view incarnation) noexcept;

// nullopt if `gtrid` is not shaped like a dtx gtrid.
std::optional<GtridParts> parse_gtrid(std::string_view gtrid);

class TransactionIdGenerator {
 public:
  // Precondition: coordinator_id is valid (is_valid_coordinator_id).
  TransactionIdGenerator(const std::string& coordinator_id, std::string incarnation);

  std::string next();
  const std::string& incarnation() const noexcept { return incarnation_; }

 private:
  std::string prefix_;  // "<id>.<incarnation>."
  std::string incarnation_;
  std::atomic<std::uint64_t> sequence_{0};
};

}  // namespace dtx
