// The coordinator's durable decision log (presumed abort).
//
// Only COMMIT decisions are forced: a record naming the global id and every
// branch (resource, bqual) is fdatasync'ed before the first phase-2 commit.
// END records ("every branch acknowledged") are appended lazily, unflushed;
// they ride along with the next flush or the close. No record = abort.
//
// Files. Each process incarnation writes its own log under log_dir:
//   <coordinator_id>-<incarnation>.lock          held with flock(LOCK_EX) while
//                                                the incarnation lives; holds
//                                                the segment claim (below)
//   <coordinator_id>-<incarnation>-<seq>.log     segments, seq = 000001, ...
// so several processes share one log_dir without sharing a file, and recovery
// can tell a dead incarnation (its lock can be taken) from a live one.
//
// Damage. A crash leaves at worst a torn last record inside a segment's
// preallocated zeros: a segment is durable, zeros and all, before a decision
// is written to it, and a crashed process deletes nothing. The lock file
// names the current segment and the length it was made durable with (the
// segment claim), so a reader can tell a segment cut short, emptied or
// deleted — damage, which may have taken a COMMIT with it — from a torn tail
// (find_log_damage). A clean close removes the lock file first: no file left.
//
// Framing follows LevelDB's log format (see docs/log-format.md): 32 KiB
// blocks, each record framed as crc32c(4, masked) | length(2) | type(1) with
// FULL/FIRST/MIDDLE/LAST fragments. A reader stops cleanly at a torn or
// corrupt tail and reports where.
//
// Group commit: concurrent log_commit() callers queue; one of them (the
// leader) writes everything queued in one write() and one fdatasync(), then
// wakes the others whose records that flush covered. Segments are
// preallocated with written zeros (DecisionLogOptions::preallocate_bytes) so
// that these fdatasyncs never have to persist a size or allocation change; a
// reader takes the zero-filled rest of a segment as its clean end.
//
// Compaction: when the current segment passes max_segment_bytes, a new
// segment is started holding the still-open decisions (COMMIT without END);
// once that is durable the older segments are deleted. Closing a log whose
// decisions are all ended deletes its files and lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

struct BranchRef {
  std::string resource;  // config name of the resource
  std::string bqual;     // the branch qualifier; xid = (kDtxFormatId, gtrid, bqual)
  friend bool operator==(const BranchRef&, const BranchRef&) = default;
};

enum class RecordType : std::uint8_t { commit = 1, end = 2 };

struct DecisionRecord {
  RecordType type = RecordType::commit;
  std::string gtrid;
  std::vector<BranchRef> branches;  // empty for END
  friend bool operator==(const DecisionRecord&, const DecisionRecord&) = default;
};

// Payload encoding of one record (inside the framing). Exposed for tests.
std::string encode_record(const DecisionRecord& record);
// nullopt if `payload` is not a well-formed record.
std::optional<DecisionRecord> decode_record(std::string_view payload);

struct DecisionLogOptions {
  std::uint64_t max_segment_bytes = 16u << 20;
  bool sync = true;  // false only for tests/benchmarks that measure without fdatasync
  // Zero-filled space kept ahead of the last record, so that a group-commit
  // fdatasync never has to persist a new file size or block allocation: a
  // segment is created with this many zero bytes (written, not just
  // allocated) and extended by as many once less than half of them is left.
  // 0 = grow the file with every write.
  std::uint64_t preallocate_bytes = 1u << 20;
  // Tests only: called by the thread holding the flush role after it took the
  // queue and before it writes, without the log's lock, so that a test can
  // hold a flush while other committers queue behind it (queued_records()).
  std::function<void()> before_flush;
};

class DecisionLog {
 public:
  // Creates log_dir if missing, takes the incarnation's lock and opens its
  // first segment. Throws dtx::Error(Errc::log) naming the path and errno.
  static std::unique_ptr<DecisionLog> open(const std::filesystem::path& log_dir,
                                           std::string_view coordinator_id,
                                           std::string_view incarnation,
                                           DecisionLogOptions options = {});
  // Flushes pending END records. If no decision is open, deletes this
  // incarnation's segments and lock file; otherwise leaves them for recovery.
  ~DecisionLog();

  // Appends a COMMIT record and returns once it is durable. Thread-safe.
  // Throws dtx::Error(Errc::log) if it could not be made durable — then the
  // decision must be treated as not taken (abort).
  void log_commit(std::string_view gtrid, std::span<const BranchRef> branches);

  // Appends an END record for a committed gtrid without waiting for a flush.
  // Thread-safe, never throws (an I/O failure here only delays compaction).
  void log_end(std::string_view gtrid) noexcept;

  // Decisions logged and not yet ended.
  std::size_t open_decisions() const;
  // Not synchronized with a rollover that a concurrent log_commit() may do.
  const std::filesystem::path& current_segment() const;
  // Group-commit flushes so far (each one write() and, with options.sync, one
  // fdatasync()); for tests and benchmarks of batching.
  std::uint64_t sync_count() const;
  // Records (COMMIT and END) queued for the next flush; for tests of batching.
  std::size_t queued_records() const;

 private:
  class Impl;
  explicit DecisionLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- Reading, for recovery and tools ----

struct LogIncarnation {
  std::string coordinator_id;
  std::string incarnation;
  std::filesystem::path lock_file;
  std::vector<std::filesystem::path> segments;  // in seq order
};

// Every incarnation with a lock file or segment in log_dir.
std::vector<LogIncarnation> list_incarnations(const std::filesystem::path& log_dir);

// True if the incarnation's lock is held by a live process (tested with a
// non-blocking flock that is released at once). False if there is no lock
// file. Throws dtx::Error(Errc::log) if the lock file cannot be opened.
bool incarnation_alive(const LogIncarnation& incarnation);

struct SegmentReadResult {
  std::vector<DecisionRecord> records;
  std::uint64_t valid_bytes = 0;  // offset just past the last good record
  // False if the tail was torn or corrupt. A zero-filled (preallocated) rest
  // of the file after the last record is clean.
  bool clean = true;
  std::string problem;  // what was wrong with the tail, for reports; a crash's
                        // trace starts with "torn tail"
};

// Reads one segment, stopping at the first torn or corrupt fragment.
SegmentReadResult read_segment(const std::filesystem::path& segment);

// What the lock file of an incarnation says about its log: the newest
// segment whose creation finished, and how many bytes it was made durable
// with before any decision was written to it (its preallocation, updated
// after each extension). A segment is never shorter than that unless
// something other than a crash cut it. docs/log-format.md, "The segment claim".
struct SegmentClaim {
  std::uint32_t seq = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const SegmentClaim&, const SegmentClaim&) = default;
};
// The lock file's text for `claim` (fixed width, rewritten in place).
std::string encode_segment_claim(const SegmentClaim& claim);
// nullopt for an empty lock file (dtx before this claim existed, or one a
// recovery pass created for a cleanly closed incarnation) or a missing one.
// Throws dtx::Error(Errc::log) if the file cannot be read or holds something
// that is not a claim.
std::optional<SegmentClaim> read_segment_claim(const std::filesystem::path& lock_file);

// The damage of a dead incarnation's log that a crash cannot cause, one
// message per problem, each naming the file and what is left to do; empty if
// none. Damage: a segment corrupt before its end; the claimed segment shorter
// than its claim, or missing; an unreadable claim. A short or missing
// segment that holds no record is a crash while the log was being opened
// unless `owns_prepared_branches` (a decision may have been lost), and a
// segment newer than the claim is a creation that never finished (a crash
// during compaction): neither is damage. Call only while holding the
// incarnation's lock (its files then cannot change).
std::vector<std::string> find_log_damage(const LogIncarnation& incarnation, bool owns_prepared_branches);

// The still-open COMMIT decisions of an incarnation (COMMIT records without a
// matching END), across all its segments in order.
std::vector<DecisionRecord> open_decisions(const LogIncarnation& incarnation);

}  // namespace dtx
