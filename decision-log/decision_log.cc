// The decision log: record encoding, the group-commit writer, compaction, and
// the read side used by recovery. docs/log-format.md is the format reference.
//
// Writing. log_commit() encodes its COMMIT record outside any lock, then
// queues it under mu_ and takes a ticket (a sequence number); the record
// belongs to batch batches_ + 1, the next flush to take the queue. log_end()
// queues its END the same way but never waits. A committer whose record is
// not yet durable either sleeps until its batch is flushed or, if no flush is
// running, becomes the leader: it takes the whole queue, drops mu_, frames the
// batch with the LogWriter, issues one pwrite() at the segment's logical end
// and one fdatasync(), retakes mu_, publishes `durable_` = the last ticket of
// the batch and wakes the batch's committers. There is no log thread: whoever
// finds the log idle does the I/O, so a lone committer pays one fdatasync and
// N concurrent committers share a few.
//
// Waking. Committers sleep on a futex word per batch (two words, by parity:
// while batch b is flushed only batches b and b+1 have waiters), not on a
// condition variable. A flush wakes exactly its batch's committers, and they
// return after reading the atomic durable_, without retaking mu_; when the
// flush role is given back with records queued, one committer of the next
// batch is woken to lead it, and the others sleep on. (With one condition
// variable, notify_all() woke every waiter and all of them queued up on mu_
// just to find out whether they were covered: on 2 cores, at 16-32 threads,
// that cost about half the throughput.)
//
// Measured and rejected (2 cores, 1-32 threads): spinning a few microseconds
// before sleeping (the spinners take the CPU the others need: -25% at 8 and
// 32 threads); adding records that arrive while a batch is framed (framing
// takes a microsecond: no difference); a leader that waits, up to half a
// flush time, until the committers of the last batch have queued again
// (more commits per fdatasync, 7.2 instead of 5.8 at 8 threads, but no more
// commits per second in long paired runs, and 3-11% fewer at 2-4 threads).
//
// Failure. A failed write() or fdatasync() leaves the on-disk state unknown
// (and after a failed fdatasync Linux may drop the dirty pages, so a retry
// could "succeed" without the data). The log is poisoned: every waiter of the
// failed batch and every later log_commit() throws, naming the file, so no
// decision is ever claimed durable when it might not be. The files are kept.
//
// Preallocation. A segment is created with options.preallocate_bytes of
// written zeros after its records (rounded up to whole blocks; the first
// segment of a fresh log gets only 64 KiB, so opening a log stays cheap for
// short-lived processes), made durable with the file's creation; the directory is fsync'ed once. Records then
// overwrite those zeros in place, so a commit's fdatasync() persists data
// only: no new file size and no block allocation. (ftruncate leaves a hole
// and fallocate unwritten extents: both need metadata again on first write.)
// Once less than half of the zeros is left, the leader — after waking the
// waiters of its batch, still holding the flush role, as for compaction —
// writes and fdatasyncs the next preallocate_bytes of zeros. A failed
// extension only costs speed: a batch that runs past the preallocated end
// grows the file, and its fdatasync persists the new size. The reader treats
// a zero-filled rest of the file as a clean end, and a fragment cut off by
// zeros (a crash during a write) as a torn tail.
//
// The segment claim. The lock file holds "segment <seq> was made durable with
// <n> bytes", rewritten in place (fixed width) once a new segment is durable
// (before the older ones are unlinked) and after each durable extension. It
// never claims more than is on disk, so a segment found shorter than its
// claim, or missing, was damaged after the fact (find_log_damage).
//
// Open decisions. `open_` holds the COMMITs that are durable and not yet
// ended: a COMMIT enters it when its flush succeeds, leaves it in log_end().
// It is what compaction carries forward and what the destructor looks at.
//
// Compaction. After a flush that leaves the segment over its rollover size
// the leader, still holding the flush role (flushing_), snapshots `open_`,
// writes those COMMITs to segment seq+1, syncs it and the directory, claims
// it in the lock file, switches to it and unlinks the older segments. Waiters of the batch are woken before
// this; newcomers queue and are flushed to the new segment. A COMMIT whose
// END is still queued is not carried: log_end() is the caller's word that
// every branch is finished, so the record is no longer needed even if the END
// never reaches the disk. If compaction fails, the old segment stays current
// and complete; it is retried after a later flush.
//
// Reopening an incarnation that has segments (a process that closed with open
// decisions and was started again with the same incarnation) adopts them: the
// open decisions are read back and carried into a fresh segment, so nothing is
// ever appended after a possibly torn tail.

#include "decision-log/decision_log.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/logging.h"
#include "decision-log/incarnation_lock.h"
#include "decision-log/log_reader.h"
#include "decision-log/log_writer.h"
#include "dtx/config.h"
#include "dtx/error.h"
#include "metrics/metrics.h"

namespace dtx {

namespace fs = std::filesystem;

namespace {

// Zeros written when a fresh log is opened (see Preallocation above).
constexpr std::uint64_t kFirstChunkBytes = 64u << 10;

constexpr std::size_t kIncarnationChars = 16;  // lowercase hex
constexpr std::size_t kSeqDigits = 6;
constexpr std::uint32_t kMaxSeq = 999'999;

// ---- Record payload encoding ----

void put_varint32(std::uint32_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool get_varint32(std::string_view* in, std::uint32_t* v) {
  std::uint32_t result = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    if (shift == 28 && byte > 0x0f) return false;  // more than 32 bits
    result |= std::uint32_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;  // truncated, or a fifth byte with its continuation bit
}

void put_string(std::string_view s, std::string* out) {
  put_varint32(static_cast<std::uint32_t>(s.size()), out);
  out->append(s);
}

bool get_string(std::string_view* in, std::string* s) {
  std::uint32_t n = 0;
  if (!get_varint32(in, &n) || n > in->size()) return false;
  s->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

// ---- Files ----

[[noreturn]] void throw_io_error(const std::string& action, const fs::path& path,
                                 std::string hint) {
  throw Error({.code = Errc::log, .hint = std::move(hint)},
              "cannot " + action + " " + path.string() + ": " + std::strerror(errno));
}

constexpr const char* kDiskHint =
    "check the disk and the permissions of the log directory; no decision of this batch was "
    "confirmed durable";

// Writes all of `data` at `offset`.
void write_all(int fd, std::string_view data, std::uint64_t offset, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io_error("write decision log", path, kDiskHint);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

// Fills [from, to) with zeros: real written blocks, not a hole or an
// fallocate'd (unwritten) extent, whose first write would again need a
// metadata update in the fdatasync of a commit.
void write_zeros(int fd, std::uint64_t from, std::uint64_t to, const fs::path& path) {
  static constexpr std::size_t kZeroChunk = 256 << 10;
  static const std::string zeros(kZeroChunk, '\0');
  while (from < to) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(to - from, kZeroChunk));
    write_all(fd, std::string_view(zeros).substr(0, n), from, path);
    from += n;
  }
}

void sync_file(int fd, const fs::path& path) {
  if (::fdatasync(fd) != 0) throw_io_error("fdatasync decision log", path, kDiskHint);
}

// Makes the creation of a file in `dir` durable.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_io_error("open decision log directory", dir, kDiskHint);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  errno = err;
  if (rc != 0) throw_io_error("fsync decision log directory", dir, kDiskHint);
}

// ---- Waiting ----

// A futex word: waiters sleep while it holds the value they saw, wakers
// change it and wake them. Unlike a condition variable, a woken thread does
// not need the mutex, so waking a batch's committers causes no stampede on it.
using FutexWord = std::atomic<std::uint32_t>;
static_assert(sizeof(FutexWord) == sizeof(std::uint32_t) && FutexWord::is_always_lock_free);

// Sleeps while *word == seen; returns early on any wake-up or signal
// (callers re-check their condition).
void futex_wait(FutexWord& word, std::uint32_t seen) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr,
            nullptr, 0);
}

// Changes *word and wakes up to `n` of its sleepers.
void futex_bump_and_wake(FutexWord& word, int n) {
  word.fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, n, nullptr,
            nullptr, 0);
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_valid_incarnation(std::string_view s) {
  return s.size() == kIncarnationChars && std::all_of(s.begin(), s.end(), is_lower_hex);
}

std::string segment_file_name(std::string_view id, std::string_view incarnation,
                              std::uint32_t seq) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%06u", seq);
  return std::string(id) + "-" + std::string(incarnation) + "-" + digits + ".log";
}

constexpr const char* kClaimFormat =
    "dtx decision log 1: segment %06u was made durable with %020llu bytes\n";

// Removes "-<n characters accepted by ok>" from the end of *stem; false if
// the stem does not end that way.
bool take_field(std::string_view* stem, std::size_t n, bool (*ok)(char), std::string_view* field) {
  if (stem->size() < n + 1 || (*stem)[stem->size() - n - 1] != '-') return false;
  *field = stem->substr(stem->size() - n);
  if (!std::all_of(field->begin(), field->end(), ok)) return false;
  stem->remove_suffix(n + 1);
  return true;
}

struct LogFileName {
  std::string_view id;
  std::string_view incarnation;
  std::optional<std::uint32_t> seq;  // set for a segment, empty for the lock file
};

// Parses "<id>-<incarnation>.lock" and "<id>-<incarnation>-<seq>.log". Ids
// may contain '-', so the fixed-width fields are taken from the right.
std::optional<LogFileName> parse_log_file_name(std::string_view name) {
  LogFileName parsed;
  std::string_view stem = name;
  if (stem.ends_with(".lock")) {
    stem.remove_suffix(5);
  } else if (stem.ends_with(".log")) {
    stem.remove_suffix(4);
    std::string_view seq;
    if (!take_field(&stem, kSeqDigits, is_digit, &seq)) return std::nullopt;
    parsed.seq = static_cast<std::uint32_t>(std::stoul(std::string(seq)));
  } else {
    return std::nullopt;
  }
  if (!take_field(&stem, kIncarnationChars, is_lower_hex, &parsed.incarnation)) return std::nullopt;
  if (!is_valid_coordinator_id(stem)) return std::nullopt;
  parsed.id = stem;
  return parsed;
}

}  // namespace

// ---- Record payloads ----

std::string encode_record(const DecisionRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(record.type));
  put_string(record.gtrid, &out);
  if (record.type == RecordType::commit) {
    put_varint32(static_cast<std::uint32_t>(record.branches.size()), &out);
    for (const BranchRef& branch : record.branches) {
      put_string(branch.resource, &out);
      put_string(branch.bqual, &out);
    }
  }
  return out;
}

std::optional<DecisionRecord> decode_record(std::string_view payload) {
  if (payload.empty()) return std::nullopt;
  DecisionRecord record;
  const auto type = static_cast<unsigned char>(payload.front());
  payload.remove_prefix(1);
  if (type != static_cast<unsigned char>(RecordType::commit) &&
      type != static_cast<unsigned char>(RecordType::end)) {
    return std::nullopt;
  }
  record.type = static_cast<RecordType>(type);
  if (!get_string(&payload, &record.gtrid)) return std::nullopt;
  if (record.type == RecordType::commit) {
    std::uint32_t count = 0;
    if (!get_varint32(&payload, &count)) return std::nullopt;
    // Each branch takes at least two bytes: do not trust `count` further.
    if (count > payload.size() / 2) return std::nullopt;
    record.branches.resize(count);
    for (BranchRef& branch : record.branches) {
      if (!get_string(&payload, &branch.resource) || !get_string(&payload, &branch.bqual)) {
        return std::nullopt;
      }
    }
  }
  if (!payload.empty()) return std::nullopt;  // trailing bytes
  return record;
}

// ---- The writer ----

class DecisionLog::Impl {
 public:
  Impl(fs::path dir, std::string_view id, std::string_view incarnation, DecisionLogOptions options)
      : dir_(std::move(dir)),
        id_(id),
        incarnation_(incarnation),
        options_(options),
        lock_path_(incarnation_lock_file(dir_, id, incarnation)) {}
  ~Impl();

  // Takes the incarnation's lock and starts its first segment.
  void open();
  void log_commit(std::string_view gtrid, std::span<const BranchRef> branches);
  void log_end(std::string_view gtrid) noexcept;

  std::size_t open_decisions() const {
    std::lock_guard lock(mu_);
    return open_.size();
  }
  const fs::path& current_segment() const { return segment_path_; }
  std::uint64_t sync_count() const {
    std::lock_guard lock(mu_);
    return sync_count_;
  }
  std::size_t queued_records() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

 private:
  struct QueuedRecord {
    std::string payload;  // encode_record(record)
    DecisionRecord record;
  };

  void lock();
  void adopt_existing_segments();
  // The group commit; see the top of this file.
  void flush(std::unique_lock<std::mutex>& lock, bool may_extend = true);
  FutexWord& batch_word(std::uint64_t batch) { return batch_words_[batch % 2].word; }
  void start_segment(const std::vector<DecisionRecord>& carried);
  void extend_segment() noexcept;
  // The preallocated size of a segment whose records end at `size`, with
  // `bytes` of zeros after them, rounded up to whole blocks.
  std::uint64_t preallocation_end(std::uint64_t size, std::uint64_t bytes) const;
  [[noreturn]] void throw_poisoned() const;
  // Rewrites the segment claim in the lock file and makes it durable.
  void write_claim(std::uint32_t seq, std::uint64_t bytes);

  const fs::path dir_;
  const std::string id_;
  const std::string incarnation_;
  const DecisionLogOptions options_;
  const fs::path lock_path_;
  int lock_fd_ = -1;
  bool opened_ = false;  // open() succeeded: the files are ours to delete

  // Touched only by the thread holding the flush role (flushing_), or during
  // construction and destruction.
  int segment_fd_ = -1;
  std::uint32_t segment_seq_ = 0;
  fs::path segment_path_;
  std::vector<fs::path> segments_;  // every segment on disk, current last
  log::LogWriter writer_;
  std::uint64_t rollover_at_ = 0;  // segment size that triggers compaction
  std::uint64_t file_end_ = 0;     // [writer_.segment_size(), file_end_) is durable zeros
  std::uint64_t extend_at_ = 0;    // segment size that triggers the next preallocation

  mutable std::mutex mu_;
  bool flushing_ = false;            // some thread holds the flush role
  std::vector<QueuedRecord> queue_;  // taken whole by the next flush
  std::uint64_t queued_ = 0;         // ticket of the last record queued
  std::uint64_t batches_ = 0;        // flushes that took the queue; the queue is batch batches_ + 1
  // Every ticket <= durable_ is on disk. Written under mu_; a woken waiter
  // reads it without mu_.
  std::atomic<std::uint64_t> durable_{0};
  std::optional<Error> failure_;  // set once a flush failed: poisoned
  std::unordered_map<std::string, std::vector<BranchRef>> open_;
  std::uint64_t sync_count_ = 0;

  // Waiters of batch b sleep on batch_word(b). Two words are enough: while
  // batch b is flushed, only batches b and b + 1 have waiters.
  struct alignas(64) PaddedWord {
    FutexWord word{0};
  };
  PaddedWord batch_words_[2];
};

void DecisionLog::Impl::open() {
  lock();
  adopt_existing_segments();
  opened_ = true;
}

// The lock file must never be seen unlocked by anyone who lists the
// directory: recovery tests liveness by taking the lock of every lock file it
// finds (incarnation_alive, adopt_incarnation), and a probe landing between
// our open and our flock would make our own flock fail. So a new lock file is
// made under a private name, locked, and linked into place already locked.
// If the name exists (a prober created it for an incarnation it adopted, or
// this incarnation is being reopened), it is taken over like
// adopt_incarnation does, retrying for up to kLockPatience while a probe
// holds it: probes hold it for a moment, a live owner for good. The lock
// file's creation is made durable with the first segment's (start_segment
// syncs the directory), before its claim is written.
void DecisionLog::Impl::lock() {
  constexpr auto kLockPatience = std::chrono::seconds(2);
  const fs::path staging = lock_path_.string() + "." + std::to_string(::getpid()) + ".new";
  ::unlink(staging.c_str());  // left by a crashed process that had our pid
  const int fd = ::open(staging.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw_io_error("create decision log lock file", staging, "check that the log directory is writable");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::link(staging.c_str(), lock_path_.c_str()) == 0) {
    ::unlink(staging.c_str());
    lock_fd_ = fd;
    return;
  }
  const int link_err = errno;
  ::unlink(staging.c_str());
  ::close(fd);
  if (link_err != EEXIST) {
    errno = link_err;
    throw_io_error("create decision log lock file", lock_path_, "check that the log directory is writable");
  }
  const auto deadline = std::chrono::steady_clock::now() + kLockPatience;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    lock_fd_ = ::open(lock_path_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) {
      throw_io_error("create decision log lock file", lock_path_, "check that the log directory is writable");
    }
    int err = 0;
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      err = errno;
    } else {
      // Locked, but perhaps a file its releaser unlinked meanwhile.
      struct stat by_fd {}, by_name {};
      if (::fstat(lock_fd_, &by_fd) == 0 && ::stat(lock_path_.c_str(), &by_name) == 0 &&
          by_fd.st_ino == by_name.st_ino && by_fd.st_dev == by_name.st_dev)
        return;
      err = EWOULDBLOCK;
    }
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
      errno = err;
      throw_io_error("lock decision log", lock_path_,
                     err == EWOULDBLOCK
                         ? "another live process uses incarnation " + incarnation_ + " of coordinator " +
                               id_ + "; every process needs its own incarnation"
                         : std::string());
    }
    std::this_thread::sleep_for(pause);  // flock has no timed wait
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

void DecisionLog::Impl::adopt_existing_segments() {
  std::vector<DecisionRecord> carried;
  for (const LogIncarnation& found : list_incarnations(dir_)) {
    if (found.coordinator_id != id_ || found.incarnation != incarnation_) continue;
    segments_ = found.segments;
    if (!segments_.empty()) {
      segment_seq_ = parse_log_file_name(segments_.back().filename().string())->seq.value();
    }
    carried = dtx::open_decisions(found);
  }
  for (DecisionRecord& record : carried) open_[record.gtrid] = record.branches;
  start_segment(carried);
}

DecisionLog::Impl::~Impl() {
  std::unique_lock lock(mu_);
  if (opened_ && !failure_ && !queue_.empty()) {  // the pending ENDs
    flushing_ = true;
    flush(lock, /*may_extend=*/false);
  }
  const bool remove = opened_ && !failure_ && open_.empty();
  lock.unlock();
  if (segment_fd_ >= 0) ::close(segment_fd_);
  if (remove) {
    // The lock file (and its segment claim) first, while still holding its
    // lock, then the segments: a crash in between leaves segments without a
    // claim, which read as before, never a claim whose segment is gone,
    // which is the trace of damage (see find_log_damage).
    ::unlink(lock_path_.c_str());
    for (const fs::path& segment : segments_) ::unlink(segment.c_str());
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

[[noreturn]] void DecisionLog::Impl::throw_poisoned() const {
  throw Error(
      {.code = Errc::log,
       .hint = "no decision can be made durable in this process: restart the coordinator; "
               "recovery will finish the decisions already logged"},
      "decision log " + segment_path_.string() + " failed earlier (" + failure_->summary() + ")");
}

void DecisionLog::Impl::log_commit(std::string_view gtrid, std::span<const BranchRef> branches) {
  QueuedRecord queued{.record = {.type = RecordType::commit,
                                 .gtrid = std::string(gtrid),
                                 .branches = {branches.begin(), branches.end()}}};
  queued.payload = encode_record(queued.record);

  std::unique_lock lock(mu_);
  if (failure_) throw_poisoned();
  queue_.push_back(std::move(queued));
  const std::uint64_t ticket = ++queued_;
  FutexWord& batch_done = batch_word(batches_ + 1);
  for (;;) {
    if (durable_.load(std::memory_order_relaxed) >= ticket) return;
    if (failure_) throw *failure_;
    if (!flushing_) {
      flushing_ = true;
      flush(lock);
      continue;
    }
    // Read under mu_, before the flush that covers this record (or a failure,
    // or the need for a new leader) can change anything: whoever changes it
    // bumps the word afterwards, so the wake-up is not lost.
    const std::uint32_t seen = batch_done.load(std::memory_order_acquire);
    lock.unlock();
    futex_wait(batch_done, seen);
    // A covered committer returns without touching mu_.
    if (durable_.load(std::memory_order_acquire) >= ticket) return;
    lock.lock();
  }
}

void DecisionLog::Impl::log_end(std::string_view gtrid) noexcept {
  try {
    QueuedRecord queued{.record = {.type = RecordType::end, .gtrid = std::string(gtrid)}};
    queued.payload = encode_record(queued.record);
    std::lock_guard lock(mu_);
    // An END for a decision that is not open (never logged, or ended twice)
    // would change nothing on recovery.
    if (failure_ || open_.erase(queued.record.gtrid) == 0) return;
    queue_.push_back(std::move(queued));
    ++queued_;
  } catch (const std::exception& e) {
    // Out of memory: the END is lost, which only keeps the COMMIT alive longer.
    logger().warn("{}: could not queue END record: {}", gtrid, e.what());
  }
}

// Called by the holder of the flush role with mu_ held; gives the role back
// and returns with mu_ held. Drops mu_ while doing I/O.
void DecisionLog::Impl::flush(std::unique_lock<std::mutex>& lock, bool may_extend) {
  std::vector<QueuedRecord> batch;
  batch.swap(queue_);
  const std::uint64_t last_ticket = queued_;
  const std::uint64_t batch_no = ++batches_;
  lock.unlock();

  // Nothing below may throw past here: the flush role must be given back.
  std::optional<Error> error;
  std::chrono::nanoseconds took{0};  // the write and the fdatasync
  try {
    if (options_.before_flush) options_.before_flush();
    const auto started = std::chrono::steady_clock::now();
    const std::uint64_t offset = writer_.segment_size();
    std::string framed;
    for (const QueuedRecord& queued : batch) writer_.append(queued.payload, &framed);
    write_all(segment_fd_, framed, offset, segment_path_);
    if (options_.sync) sync_file(segment_fd_, segment_path_);
    took = std::chrono::steady_clock::now() - started;
  } catch (const Error& e) {
    error = e;
  } catch (const std::exception& e) {  // out of memory while framing
    error = Error({.code = Errc::log, .hint = kDiskHint},
                  "cannot write decision log " + segment_path_.string() + ": " + e.what());
  }

  lock.lock();
  ++sync_count_;
  const bool failed = error.has_value();
  std::vector<DecisionRecord> carried;
  bool compact = false;
  bool extend = false;
  std::size_t decisions = 0;
  if (failed) {
    logger().error("{}", error->what());
    failure_ = std::move(error);
  } else {
    durable_.store(last_ticket, std::memory_order_release);
    for (QueuedRecord& queued : batch) {
      if (queued.record.type == RecordType::commit) {
        open_[std::move(queued.record.gtrid)] = std::move(queued.record.branches);
        ++decisions;
      }
    }
    compact = writer_.segment_size() > rollover_at_ && segment_seq_ < kMaxSeq;
    try {
      if (compact) {
        carried.reserve(open_.size());
        for (const auto& [gtrid, branches] : open_) {
          carried.push_back({.type = RecordType::commit, .gtrid = gtrid, .branches = branches});
        }
      }
    } catch (const std::exception&) {
      compact = false;  // out of memory: retried after a later flush
    }
    extend = !compact && may_extend && options_.preallocate_bytes > 0 &&
             writer_.segment_size() >= extend_at_;
  }
  lock.unlock();
  // This batch's waiters need not wait for compaction. After a failure every
  // waiter, of this batch or queued since, must wake up and see it.
  futex_bump_and_wake(batch_word(batch_no), INT_MAX);
  if (failed) futex_bump_and_wake(batch_word(batch_no + 1), INT_MAX);
  if (!failed) metrics::decisions_flushed(decisions, took);

  if (compact) {
    try {
      start_segment(carried);
    } catch (const std::exception& e) {
      logger().warn("decision log compaction failed, {} stays current: {}", segment_path_.string(),
                    e.what());
      rollover_at_ = writer_.segment_size() + options_.max_segment_bytes;  // retry later
    }
  } else if (extend) {
    extend_segment();
  }
  lock.lock();
  flushing_ = false;
  // Records queued meanwhile (batch_no + 1) need a leader: wake one of their
  // committers. The others sleep on until that flush is done.
  if (!queue_.empty() && !failed) futex_bump_and_wake(batch_word(batch_no + 1), 1);
}

// Creates segment seq+1 holding `carried`, makes it durable, switches to it
// and deletes the older segments. On failure the current segment stays.
void DecisionLog::Impl::start_segment(const std::vector<DecisionRecord>& carried) {
  const std::uint32_t seq = segment_seq_ + 1;
  if (seq > kMaxSeq) {
    throw Error({.code = Errc::log, .hint = "start the coordinator with a new incarnation"},
                "decision log of incarnation " + incarnation_ + " has used every segment number");
  }
  const fs::path path = dir_ / segment_file_name(id_, incarnation_, seq);
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) throw_io_error("create decision log segment", path, kDiskHint);
  log::LogWriter writer;
  std::uint64_t file_end = 0;
  std::uint64_t extend_at = 0;
  bool claimed = false;
  try {
    if (options_.sync) sync_dir(dir_);
    std::string framed;
    for (const DecisionRecord& record : carried) writer.append(encode_record(record), &framed);
    write_all(fd, framed, 0, path);
    file_end = writer.segment_size();
    // A fresh log starts with a small chunk: a short-lived process (dtx exec)
    // pays a few KiB at start, not a MiB; the leader extends by whole
    // preallocate_bytes once commits really flow.
    const std::uint64_t chunk =
        carried.empty() ? std::min<std::uint64_t>(options_.preallocate_bytes, kFirstChunkBytes)
                        : options_.preallocate_bytes;
    extend_at = file_end + chunk / 2;
    if (chunk > 0) {
      try {  // as in extend_segment(), a failure only costs speed
        write_zeros(fd, file_end, preallocation_end(file_end, chunk), path);
        file_end = preallocation_end(file_end, chunk);
        extend_at = file_end - chunk / 2;
      } catch (const Error& e) {
        logger().warn("cannot preallocate space in decision log {}: {}", path.string(), e.what());
      }
    }
    if (file_end > 0 && options_.sync) sync_file(fd, path);
    // Only now, with the segment durable, may the lock file name it.
    claimed = true;
    write_claim(seq, file_end);
  } catch (...) {
    ::close(fd);
    ::unlink(path.c_str());
    if (claimed && segment_fd_ >= 0) {  // name the segment that stays current again
      try {
        write_claim(segment_seq_, file_end_);
      } catch (const std::exception& e) {
        logger().warn("{}", e.what());
      }
    }
    throw;
  }

  if (segment_fd_ >= 0) ::close(segment_fd_);
  segment_fd_ = fd;
  segment_seq_ = seq;
  segment_path_ = path;
  writer_ = writer;
  file_end_ = file_end;
  extend_at_ = extend_at;
  // Open decisions alone may exceed max_segment_bytes; compact again only
  // once the segment has doubled, so compaction stays amortized.
  rollover_at_ = std::max(options_.max_segment_bytes, 2 * writer.segment_size());
  for (const fs::path& old : segments_) {
    if (::unlink(old.c_str()) != 0 && errno != ENOENT) {
      logger().warn("cannot delete old decision log segment {}: {}", old.string(),
                    std::strerror(errno));
    }
  }
  segments_.assign(1, path);
}

void DecisionLog::Impl::write_claim(std::uint32_t seq, std::uint64_t bytes) {
  const std::string text = encode_segment_claim({.seq = seq, .bytes = bytes});
  write_all(lock_fd_, text, 0, lock_path_);
  if (options_.sync && ::fdatasync(lock_fd_) != 0)
    throw_io_error("fdatasync decision log lock file", lock_path_, kDiskHint);
}

std::uint64_t DecisionLog::Impl::preallocation_end(std::uint64_t size, std::uint64_t bytes) const {
  const std::uint64_t end = size + bytes;
  return (end + log::kBlockSize - 1) / log::kBlockSize * log::kBlockSize;
}

// Called in the flush role without mu_. Zero-fills the next
// preallocate_bytes after the last record and makes them durable. A failure
// only costs speed: records then extend the file (and each fdatasync
// persists the new size) until a later extension succeeds.
void DecisionLog::Impl::extend_segment() noexcept {
  const std::uint64_t size = writer_.segment_size();
  const std::uint64_t to = preallocation_end(size, options_.preallocate_bytes);
  try {
    write_zeros(segment_fd_, std::max(file_end_, size), to, segment_path_);
    if (options_.sync) sync_file(segment_fd_, segment_path_);
    file_end_ = to;
    extend_at_ = to - options_.preallocate_bytes / 2;
    // A claim below the real length is always true: if this fails, a cut
    // past the old claim merely goes unnoticed.
    write_claim(segment_seq_, to);
  } catch (const std::exception& e) {
    logger().warn("cannot preallocate space in decision log {}: {}", segment_path_.string(),
                  e.what());
    extend_at_ = size + options_.preallocate_bytes / 2;  // retry later
  }
}

// ---- DecisionLog ----

std::unique_ptr<DecisionLog> DecisionLog::open(const fs::path& log_dir,
                                               std::string_view coordinator_id,
                                               std::string_view incarnation,
                                               DecisionLogOptions options) {
  if (!is_valid_coordinator_id(coordinator_id) || !is_valid_incarnation(incarnation)) {
    throw Error({.code = Errc::usage},
                "bad decision log name '" + std::string(coordinator_id) + "-" +
                    std::string(incarnation) +
                    "': the coordinator id must be 1-16 characters of [A-Za-z0-9_-] and the "
                    "incarnation 16 lowercase hex digits");
  }
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  if (ec) {
    throw Error({.code = Errc::config, .hint = "check the log_dir setting and its permissions"},
                "cannot create decision log directory " + log_dir.string() + ": " + ec.message());
  }
  auto impl = std::make_unique<Impl>(log_dir, coordinator_id, incarnation, options);
  impl->open();
  return std::unique_ptr<DecisionLog>(new DecisionLog(std::move(impl)));
}

DecisionLog::DecisionLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DecisionLog::~DecisionLog() = default;

void DecisionLog::log_commit(std::string_view gtrid, std::span<const BranchRef> branches) {
  impl_->log_commit(gtrid, branches);
}
void DecisionLog::log_end(std::string_view gtrid) noexcept { impl_->log_end(gtrid); }
std::size_t DecisionLog::open_decisions() const { return impl_->open_decisions(); }
const fs::path& DecisionLog::current_segment() const { return impl_->current_segment(); }
std::uint64_t DecisionLog::sync_count() const { return impl_->sync_count(); }
std::size_t DecisionLog::queued_records() const { return impl_->queued_records(); }

// ---- Reading ----

std::vector<LogIncarnation> list_incarnations(const fs::path& log_dir) {
  std::map<std::pair<std::string, std::string>, LogIncarnation> found;
  std::map<std::pair<std::string, std::string>, std::map<std::uint32_t, fs::path>> segments;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(log_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::optional<LogFileName> parsed = parse_log_file_name(name);
    if (!parsed) continue;
    const std::pair<std::string, std::string> key(parsed->id, parsed->incarnation);
    LogIncarnation& incarnation = found[key];
    incarnation.coordinator_id = key.first;
    incarnation.incarnation = key.second;
    incarnation.lock_file = incarnation_lock_file(log_dir, key.first, key.second);
    if (parsed->seq) segments[key][*parsed->seq] = entry.path();
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw Error({.code = Errc::log},
                "cannot list decision log directory " + log_dir.string() + ": " + ec.message());
  }
  std::vector<LogIncarnation> result;
  for (auto& [key, incarnation] : found) {
    for (auto& [seq, path] : segments[key]) incarnation.segments.push_back(std::move(path));
    result.push_back(std::move(incarnation));
  }
  return result;
}

bool incarnation_alive(const LogIncarnation& incarnation) {
  const int fd = ::open(incarnation.lock_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    throw_io_error("open decision log lock file", incarnation.lock_file,
                   "recovery cannot tell whether this incarnation is alive");
  }
  const int rc = ::flock(fd, LOCK_SH | LOCK_NB);
  const int err = errno;
  ::close(fd);  // also releases the shared lock if we got it
  if (rc == 0) return false;
  if (err == EWOULDBLOCK) return true;
  errno = err;
  throw_io_error("test the lock of decision log lock file", incarnation.lock_file,
                 "recovery cannot tell whether this incarnation is alive");
}

SegmentReadResult read_segment(const fs::path& segment) {
  log::LogReader reader = log::LogReader::from_file(segment);
  SegmentReadResult result;
  std::string payload;
  while (reader.read(&payload)) {
    std::optional<DecisionRecord> record = decode_record(payload);
    if (!record) {
      // Framing intact but the payload is not a record: corrupt, stop here.
      result.clean = false;
      result.problem = "malformed record at offset " + std::to_string(reader.record_offset());
      return result;
    }
    result.records.push_back(std::move(*record));
    result.valid_bytes = reader.valid_bytes();
  }
  result.clean = reader.clean();
  result.problem = reader.problem();
  return result;
}

std::string encode_segment_claim(const SegmentClaim& claim) {
  char text[128];
  std::snprintf(text, sizeof text, kClaimFormat, claim.seq, static_cast<unsigned long long>(claim.bytes));
  return text;
}

std::optional<SegmentClaim> read_segment_claim(const fs::path& lock_file) {
  const int fd = ::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io_error("open decision log lock file", lock_file, "check the permissions of the log directory");
  }
  char text[128] = {};
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  const int err = errno;
  ::close(fd);
  errno = err;
  if (n < 0) throw_io_error("read decision log lock file", lock_file, "check the disk");
  if (n == 0) return std::nullopt;
  unsigned seq = 0;
  unsigned long long bytes = 0;
  if (std::sscanf(text, kClaimFormat, &seq, &bytes) != 2 ||
      std::string_view(text, static_cast<std::size_t>(n)) !=
          encode_segment_claim({.seq = seq, .bytes = bytes})) {
    throw Error({.code = Errc::log, .hint = "the file was changed by something other than dtx"},
                "decision log lock file " + lock_file.string() + " does not hold a segment claim");
  }
  return SegmentClaim{.seq = seq, .bytes = bytes};
}

std::vector<std::string> find_log_damage(const LogIncarnation& incarnation, bool owns_prepared_branches) {
  const std::string left = "; the undecided branches of incarnation " + incarnation.incarnation +
                           " are left for an operator (dtx commit / dtx rollback)";
  std::vector<std::string> problems;
  std::optional<SegmentClaim> claim;
  try {
    claim = read_segment_claim(incarnation.lock_file);
  } catch (const Error& e) {
    problems.push_back(std::string(e.what()) + left);
  }
  bool has_records = false;
  std::optional<std::string> short_claimed;  // the claimed segment's shortfall
  bool claimed_found = false;
  for (const fs::path& segment : incarnation.segments) {
    const std::uint32_t seq = parse_log_file_name(segment.filename().string())->seq.value();
    // Newer than the claim: its creation never finished (a crash during
    // compaction or a reopen); the older segments hold every decision.
    if (claim && seq > claim->seq) continue;
    const SegmentReadResult read = read_segment(segment);
    has_records = has_records || !read.records.empty();
    if (!read.clean && !read.problem.starts_with("torn tail"))
      problems.push_back("decision log " + segment.string() + " is damaged: " + read.problem + left);
    if (claim && seq == claim->seq) {
      claimed_found = true;
      std::error_code ec;
      const std::uint64_t size = fs::file_size(segment, ec);
      if (!ec && size < claim->bytes)
        short_claimed = "decision log " + segment.string() + " is damaged: it is " + std::to_string(size) +
                        " bytes long, shorter than the " + std::to_string(claim->bytes) +
                        " bytes it was made durable with before any decision was written to it "
                        "(cut or emptied; a crash cannot do that)" + left;
    }
  }
  const bool may_have_lost_a_decision = has_records || owns_prepared_branches;
  if (short_claimed && may_have_lost_a_decision) problems.push_back(*short_claimed);
  if (claim && !claimed_found && may_have_lost_a_decision) {
    const fs::path missing = incarnation.lock_file.parent_path() /
                             segment_file_name(incarnation.coordinator_id, incarnation.incarnation, claim->seq);
    problems.push_back("decision log " + missing.string() + " is missing: the lock file " +
                       incarnation.lock_file.string() +
                       " of a process that did not close its log names it (deleted? a crash "
                       "cannot remove it)" + left);
  }
  return problems;
}

std::vector<DecisionRecord> open_decisions(const LogIncarnation& incarnation) {
  std::vector<std::optional<DecisionRecord>> in_order;  // ended ones reset
  std::unordered_map<std::string, std::size_t> position;
  for (const fs::path& segment : incarnation.segments) {
    for (DecisionRecord& record : read_segment(segment).records) {
      const auto it = position.find(record.gtrid);
      if (record.type == RecordType::end) {
        if (it != position.end()) {
          in_order[it->second].reset();
          position.erase(it);
        }
      } else if (it == position.end()) {  // a repeat (carried by compaction) changes nothing
        position.emplace(record.gtrid, in_order.size());
        in_order.push_back(std::move(record));
      }
    }
  }
  std::vector<DecisionRecord> result;
  for (std::optional<DecisionRecord>& record : in_order) {
    if (record) result.push_back(std::move(*record));
  }
  return result;
}

}  // namespace dtx
