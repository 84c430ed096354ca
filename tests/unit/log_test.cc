// The decision log: CRC, record codec, block framing, torn and corrupt tails,
// group commit, compaction, file lifetime and incarnation liveness.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "decision-log/crc32c.h"
#include "decision-log/decision_log.h"
#include "decision-log/incarnation_lock.h"
#include "decision-log/log_format.h"
#include "decision-log/log_reader.h"
#include "decision-log/log_writer.h"
#include "dtx/error.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using namespace std::string_view_literals;

constexpr std::string_view kIncarnation = "0123456789abcdef";

DecisionRecord commit_record(std::string gtrid,
                             std::vector<BranchRef> branches = {{"bank1", "b1"}, {"bank2", "b2"}}) {
  return {.type = RecordType::commit, .gtrid = std::move(gtrid), .branches = std::move(branches)};
}

DecisionRecord end_record(std::string gtrid) {
  return {.type = RecordType::end, .gtrid = std::move(gtrid), .branches = {}};
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The framed bytes of `records`, as a fresh segment holds them.
std::string frame(const std::vector<DecisionRecord>& records) {
  log::LogWriter writer;
  std::string out;
  for (const DecisionRecord& record : records) writer.append(encode_record(record), &out);
  return out;
}

std::vector<std::string> read_payloads(std::string bytes, log::LogReader* reader_out = nullptr) {
  log::LogReader reader(std::move(bytes));
  std::vector<std::string> payloads;
  std::string payload;
  while (reader.read(&payload)) payloads.push_back(payload);
  EXPECT_TRUE(reader.clean()) << reader.problem();
  if (reader_out) *reader_out = std::move(reader);
  return payloads;
}

std::set<std::string> gtrids(const std::vector<DecisionRecord>& records) {
  std::set<std::string> result;
  for (const DecisionRecord& record : records) result.insert(record.gtrid);
  return result;
}

// A fresh log directory under the system temp dir, removed afterwards.
class LogDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("dtx-log-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<DecisionLog> open_log(DecisionLogOptions options = {},
                                        std::string_view incarnation = kIncarnation) {
    return DecisionLog::open(dir_, "node-1", incarnation, options);
  }

  // The one incarnation in dir_ (the test fails if there is not exactly one).
  LogIncarnation only_incarnation() const {
    std::vector<LogIncarnation> found = list_incarnations(dir_);
    EXPECT_EQ(found.size(), 1u);
    return found.empty() ? LogIncarnation{} : found.front();
  }

  fs::path dir_;
};

// ---- CRC-32C ----

TEST(Crc32c, MatchesKnownVectors) {
  EXPECT_EQ(crc32c::value("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c::value(""), 0u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c::value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c::value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c::value(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c::value(descending), 0x113FDB5Cu);
}

TEST(Crc32c, ExtendEqualsCrcOfConcatenation) {
  const std::string data = "the quick brown fox jumps over the lazy dog";
  for (std::size_t split = 0; split <= data.size(); ++split) {
    const std::string_view a = std::string_view(data).substr(0, split);
    const std::string_view b = std::string_view(data).substr(split);
    EXPECT_EQ(crc32c::extend(crc32c::value(a), b), crc32c::value(data));
  }
}

TEST(Crc32c, HardwareAndPortableAgree) {
  if (!crc32c::detail::hardware_available()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937 random(42);
  std::string data(4096 + 64, '\0');
  for (char& c : data) c = static_cast<char>(random());
  for (std::size_t offset = 0; offset < 16; ++offset) {
    for (std::size_t length : {0, 1, 7, 8, 9, 63, 64, 1000, 4096}) {
      const std::string_view piece = std::string_view(data).substr(offset, length);
      EXPECT_EQ(crc32c::detail::extend_hardware(0x12345678, piece),
                crc32c::detail::extend_portable(0x12345678, piece))
          << "offset " << offset << " length " << length;
    }
  }
}

TEST(Crc32c, MaskIsReversibleAndChangesTheValue) {
  for (std::uint32_t crc : {0u, 1u, 0xE3069283u, 0xffffffffu, 0x80000000u}) {
    EXPECT_NE(crc32c::mask(crc), crc);
    EXPECT_NE(crc32c::mask(crc32c::mask(crc)), crc);
    EXPECT_EQ(crc32c::unmask(crc32c::mask(crc)), crc);
  }
}

// ---- Record payloads ----

TEST(RecordCodec, RoundTripsCommitAndEnd) {
  const std::vector<DecisionRecord> records = {
      commit_record("node1.42"),
      commit_record("no-branches", {}),
      commit_record(std::string(300, 'g'), {{std::string(200, 'r'), std::string(129, 'q')}}),
      commit_record("", {{"", ""}}),
      end_record("node1.42"),
  };
  for (const DecisionRecord& record : records) {
    const std::optional<DecisionRecord> decoded = decode_record(encode_record(record));
    ASSERT_TRUE(decoded.has_value()) << record.gtrid;
    EXPECT_EQ(*decoded, record);
  }
}

TEST(RecordCodec, RejectsMalformedPayloads) {
  const std::string commit = encode_record(commit_record("node1.7"));
  const std::string end = encode_record(end_record("node1.7"));
  // Every proper prefix is truncated somewhere.
  for (const std::string& whole : {commit, end}) {
    for (std::size_t n = 0; n < whole.size(); ++n) {
      EXPECT_FALSE(decode_record(whole.substr(0, n))) << "prefix of " << n << " bytes";
    }
  }
  EXPECT_FALSE(decode_record(commit + "x")) << "trailing byte";
  EXPECT_FALSE(decode_record(end + std::string(1, '\0'))) << "END carrying a branch count";
  EXPECT_FALSE(decode_record("\x03\x01g"sv)) << "unknown record type";
  EXPECT_FALSE(decode_record("\x00\x01g"sv)) << "record type zero";
  EXPECT_FALSE(decode_record("\x02\x05gt"sv)) << "gtrid length past the end";
  EXPECT_FALSE(decode_record("\x02\xff\xff\xff\xff\x7f"sv)) << "varint over 32 bits";
  EXPECT_FALSE(decode_record("\x02\x80\x80\x80\x80\x80\x01"sv)) << "varint over five bytes";
  EXPECT_FALSE(decode_record("\x01\x01g\xff\xff\xff\xff\x0f"sv)) << "absurd branch count";
  EXPECT_FALSE(decode_record("\x01\x01g\x02\x00\x00"sv)) << "fewer branches than counted";
  EXPECT_TRUE(decode_record("\x01\x01g\x01\x00\x00"sv)) << "the same with one branch is fine";
}

// ---- Framing ----

TEST(LogFraming, RecordsLargerThanABlockSpanBlocks) {
  const std::vector<std::size_t> sizes = {
      0, 1, 100, 2 * log::kBlockSize + 123, 5, log::kBlockSize * 3, 77};
  std::vector<std::string> payloads;
  log::LogWriter writer;
  std::string bytes;
  for (std::size_t size : sizes) {
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + (i + size) % 26);
    writer.append(payload, &bytes);
    payloads.push_back(std::move(payload));
  }
  EXPECT_EQ(writer.segment_size(), bytes.size());
  log::LogReader reader("");
  EXPECT_EQ(read_payloads(bytes, &reader), payloads);
  EXPECT_EQ(reader.valid_bytes(), bytes.size());
}

// The first record leaves `tail` bytes in block 0, for every tail around the
// header size: 0 (exact fit), 1..6 (zero-filled trailer), 7 (a FIRST fragment
// of length 0) and more.
TEST(LogFraming, RecordsAroundBlockBoundaries) {
  for (std::size_t tail = 0; tail <= log::kHeaderSize + 2; ++tail) {
    SCOPED_TRACE("tail " + std::to_string(tail));
    const std::vector<std::string> payloads = {
        std::string(log::kBlockSize - log::kHeaderSize - tail, 'a'), std::string(50, 'b'),
        std::string(log::kBlockSize - log::kHeaderSize, 'c'), "d"};
    log::LogWriter writer;
    std::string bytes;
    for (const std::string& payload : payloads) writer.append(payload, &bytes);
    if (tail < log::kHeaderSize) {
      EXPECT_EQ(bytes.substr(log::kBlockSize - tail, tail), std::string(tail, '\0'));
    } else {
      EXPECT_EQ(static_cast<log::FragmentType>(bytes[log::kBlockSize - tail + 6]),
                log::FragmentType::first);
    }
    EXPECT_EQ(read_payloads(bytes), payloads);
  }
}

TEST(LogFraming, EmptyDataIsClean) {
  log::LogReader reader("");
  std::string payload;
  EXPECT_FALSE(reader.read(&payload));
  EXPECT_TRUE(reader.clean());
  EXPECT_EQ(reader.valid_bytes(), 0u);
}

// ---- Torn and corrupt segments ----

class SegmentTest : public LogDirTest {
 protected:
  void SetUp() override {
    LogDirTest::SetUp();
    fs::create_directories(dir_);
    // The first record pads block 0 so that the third spans blocks 0 and 1.
    records_ = {commit_record("pad", {{"bank1", std::string(log::kBlockSize - 200, 'p')}}),
                commit_record("second"),
                commit_record("third", {{"bank1", std::string(300, 't')}})};
    bytes_ = frame(records_);
    second_end_ = frame({records_[0], records_[1]}).size();
    ASSERT_GT(bytes_.size(), log::kBlockSize);
    ASSERT_LT(second_end_, log::kBlockSize);
  }

  std::vector<DecisionRecord> records_;
  std::string bytes_;
  std::size_t second_end_ = 0;
};

TEST_F(SegmentTest, TornTailAtEveryOffsetKeepsEarlierRecords) {
  const fs::path segment = dir_ / "torn.log";
  for (std::size_t size = second_end_; size < bytes_.size(); ++size) {
    write_file(segment, std::string_view(bytes_).substr(0, size));
    SegmentReadResult result;
    ASSERT_NO_THROW(result = read_segment(segment)) << "size " << size;
    ASSERT_EQ(result.records.size(), 2u) << "size " << size;
    EXPECT_EQ(result.records[1], records_[1]);
    EXPECT_EQ(result.valid_bytes, second_end_);
    if (size == second_end_) {
      EXPECT_TRUE(result.clean);
    } else {
      EXPECT_FALSE(result.clean) << "size " << size;
      EXPECT_NE(result.problem.find("torn tail"), std::string::npos) << result.problem;
    }
  }
  write_file(segment, bytes_);
  const SegmentReadResult whole = read_segment(segment);
  EXPECT_TRUE(whole.clean) << whole.problem;
  EXPECT_EQ(whole.records, records_);
  EXPECT_EQ(whole.valid_bytes, bytes_.size());
}

TEST_F(SegmentTest, FlippedByteInMiddleRecordStopsThere) {
  const std::size_t first_end = frame({records_[0]}).size();
  const fs::path segment = dir_ / "corrupt.log";
  std::string bytes = bytes_;
  bytes[(first_end + second_end_) / 2] ^= 0x20;
  write_file(segment, bytes);
  const SegmentReadResult result = read_segment(segment);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0], records_[0]);
  EXPECT_EQ(result.valid_bytes, first_end);
  EXPECT_FALSE(result.clean);
  EXPECT_NE(result.problem.find("checksum mismatch"), std::string::npos) << result.problem;
  EXPECT_NE(result.problem.find(std::to_string(first_end)), std::string::npos) << result.problem;
}

TEST_F(SegmentTest, BadFragmentTypeLengthAndOrderAreReported) {
  const auto problem_of = [&](const std::string& bytes) {
    write_file(dir_ / "damaged.log", bytes);
    const SegmentReadResult result = read_segment(dir_ / "damaged.log");
    EXPECT_FALSE(result.clean);
    return result.problem;
  };
  const std::size_t first_end = frame({records_[0]}).size();
  std::string bytes = bytes_;
  bytes[first_end + 6] = '\x09';  // type byte of the second record
  EXPECT_NE(problem_of(bytes).find("bad fragment type 9"), std::string::npos);

  bytes = bytes_;
  bytes[first_end + 5] = '\x7f';  // high byte of its length
  EXPECT_NE(problem_of(bytes).find("past the end of its block"), std::string::npos);

  bytes = bytes_;
  std::fill_n(bytes.begin(), log::kHeaderSize, '\0');
  EXPECT_NE(problem_of(bytes).find("type ZERO at offset 0"), std::string::npos);

  // Zeros in the middle of the data, with records after them, are damage.
  bytes = bytes_.substr(0, second_end_) + std::string(100, '\0') + frame({records_[1]});
  EXPECT_NE(problem_of(bytes).find("type ZERO at offset " + std::to_string(second_end_)),
            std::string::npos);

  // A damaged last record that ends in non-zero bytes is not a torn tail,
  // even with a zero-filled (preallocated) rest of the file after it.
  bytes = bytes_ + std::string(log::kBlockSize, '\0');
  bytes[bytes_.size() - 10] ^= 0x01;
  EXPECT_EQ(problem_of(bytes).find("checksum mismatch in the fragment at offset " +
                                   std::to_string(log::kBlockSize)),
            0u);

  // The third record's second fragment on its own.
  EXPECT_NE(problem_of(bytes_.substr(log::kBlockSize)).find("LAST fragment at offset 0 without"),
            std::string::npos);
}

// A preallocated segment: the records, then zeros to the end of the file.
TEST_F(SegmentTest, ZeroFilledTailAfterARecordIsClean) {
  for (const std::size_t zeros : {std::size_t{1}, std::size_t{6}, std::size_t{7}, std::size_t{100},
                                  log::kBlockSize - second_end_, 3 * log::kBlockSize}) {
    write_file(dir_ / "zeros.log", bytes_.substr(0, second_end_) + std::string(zeros, '\0'));
    const SegmentReadResult result = read_segment(dir_ / "zeros.log");
    EXPECT_TRUE(result.clean) << zeros << " zeros: " << result.problem;
    EXPECT_EQ(result.records, (std::vector<DecisionRecord>{records_[0], records_[1]}));
    EXPECT_EQ(result.valid_bytes, second_end_);
  }
  // The whole data, then zeros from the next block on.
  write_file(dir_ / "zeros.log", bytes_ + std::string(2 * log::kBlockSize, '\0'));
  const SegmentReadResult whole = read_segment(dir_ / "zeros.log");
  EXPECT_TRUE(whole.clean) << whole.problem;
  EXPECT_EQ(whole.records, records_);
  EXPECT_EQ(whole.valid_bytes, bytes_.size());
}

// A crash while writing into a preallocated segment leaves the written part
// and zeros after it: the analogue of a file cut at every byte.
TEST_F(SegmentTest, ZeroedTailAtEveryOffsetIsATornTail) {
  const std::size_t file_size = 3 * log::kBlockSize;
  std::string bytes = bytes_ + std::string(file_size - bytes_.size(), '\0');
  for (std::size_t cut = second_end_; cut <= bytes_.size(); ++cut) {
    if (cut > second_end_) bytes[cut - 1] = bytes_[cut - 1];
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(cut), bytes.end(), '\0');
    write_file(dir_ / "torn.log", bytes);
    const SegmentReadResult result = read_segment(dir_ / "torn.log");
    const bool whole = cut == second_end_ || cut == bytes_.size();
    ASSERT_EQ(result.records.size(), cut == bytes_.size() ? 3u : 2u) << "cut " << cut;
    EXPECT_EQ(result.records[1], records_[1]);
    EXPECT_EQ(result.clean, whole) << "cut " << cut << ": " << result.problem;
    if (!whole) {
      EXPECT_EQ(result.valid_bytes, second_end_);
      EXPECT_TRUE(result.problem.starts_with("torn tail")) << "cut " << cut << ": "
                                                           << result.problem;
    }
  }
}

TEST_F(SegmentTest, UndecodablePayloadIsCorrupt) {
  log::LogWriter writer;
  std::string bytes;
  writer.append(encode_record(records_[1]), &bytes);
  const std::size_t good_end = bytes.size();
  writer.append("\x07not a record", &bytes);
  write_file(dir_ / "junk.log", bytes);
  const SegmentReadResult result = read_segment(dir_ / "junk.log");
  EXPECT_EQ(result.records, std::vector<DecisionRecord>{records_[1]});
  EXPECT_EQ(result.valid_bytes, good_end);
  EXPECT_FALSE(result.clean);
  EXPECT_NE(result.problem.find("malformed record"), std::string::npos) << result.problem;
}

TEST_F(SegmentTest, UnreadableSegmentThrows) {
  try {
    read_segment(dir_ / "missing.log");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::log);
    EXPECT_NE(std::string(e.what()).find("missing.log"), std::string::npos) << e.what();
  }
}

// ---- The decision log ----

// 16 threads commit 200 decisions each; all are durable, in each thread's
// order, and share flushes.
void commit_concurrently_and_recover(DecisionLog* log, const LogIncarnation& incarnation) {
  constexpr int kThreads = 16;
  constexpr int kCommitsPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCommitsPerThread; ++i) {
        const std::string gtrid = "node-1." + std::to_string(t) + "." + std::to_string(i);
        const BranchRef branches[] = {{"bank1", "b" + std::to_string(i)}, {"bank2", "c"}};
        log->log_commit(gtrid, branches);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  constexpr int kCommits = kThreads * kCommitsPerThread;
  const std::uint64_t syncs = log->sync_count();
  std::printf("[ sync ratio ] %d commits, %llu fdatasyncs: %.1f commits per sync\n", kCommits,
              static_cast<unsigned long long>(syncs), double(kCommits) / double(syncs));
  EXPECT_LT(syncs, static_cast<std::uint64_t>(kCommits));
  EXPECT_EQ(log->open_decisions(), static_cast<std::size_t>(kCommits));

  const std::vector<DecisionRecord> recovered = open_decisions(incarnation);
  ASSERT_EQ(recovered.size(), static_cast<std::size_t>(kCommits));
  EXPECT_EQ(gtrids(recovered).size(), static_cast<std::size_t>(kCommits));
  // Each thread's commits are in its own order in the log.
  std::vector<int> next(kThreads, 0);
  for (const DecisionRecord& record : recovered) {
    int t = 0, i = 0;
    ASSERT_EQ(std::sscanf(record.gtrid.c_str(), "node-1.%d.%d", &t, &i), 2);
    EXPECT_EQ(i, next[t]++);
    EXPECT_EQ(record.branches[0].bqual, "b" + std::to_string(i));
  }
  for (const DecisionRecord& record : recovered) log->log_end(record.gtrid);
}

TEST_F(LogDirTest, ConcurrentCommitsShareFlushesAndAreAllRecovered) {
  auto log = open_log();
  commit_concurrently_and_recover(log.get(), only_incarnation());
}

TEST_F(LogDirTest, ConcurrentCommitsWithoutPreallocation) {
  auto log = open_log({.preallocate_bytes = 0});
  commit_concurrently_and_recover(log.get(), only_incarnation());
}

TEST_F(LogDirTest, EndRecordsHideDecisions) {
  auto log = open_log();
  log->log_commit("g1", std::vector<BranchRef>{{"bank1", "a"}});
  log->log_commit("g2", std::vector<BranchRef>{{"bank1", "b"}});
  log->log_end("g1");
  EXPECT_EQ(log->open_decisions(), 1u);
  // The END is lazy: it reaches the disk with the next flush.
  EXPECT_EQ(open_decisions(only_incarnation()).size(), 2u);
  log->log_commit("g3", std::vector<BranchRef>{{"bank2", "c"}});
  const std::vector<DecisionRecord> open = open_decisions(only_incarnation());
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0], commit_record("g2", {{"bank1", "b"}}));
  EXPECT_EQ(open[1], commit_record("g3", {{"bank2", "c"}}));
  log->log_end("g2");
  log->log_end("g3");
}

TEST_F(LogDirTest, RecordLargerThanABlockIsRecovered) {
  std::vector<BranchRef> branches;
  for (int i = 0; i < 1000; ++i)
    branches.push_back({"resource-" + std::to_string(i), std::string(60, 'q')});
  auto log = open_log();
  log->log_commit("big", branches);
  log->log_commit("small", std::vector<BranchRef>{{"r", "s"}});
  const std::vector<DecisionRecord> open = open_decisions(only_incarnation());
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0], commit_record("big", branches));
  EXPECT_GT(fs::file_size(log->current_segment()), 2 * log::kBlockSize);
}

TEST_F(LogDirTest, RolloverKeepsOpenDecisionsAndDeletesOlderSegments) {
  auto log = open_log({.max_segment_bytes = 4096});
  const fs::path first_segment = log->current_segment();
  std::set<std::string> kept;
  // The last commit is kept, so every END before it is on disk.
  for (int i = 0; i <= 500; ++i) {
    const std::string gtrid = "g" + std::to_string(i);
    log->log_commit(gtrid, std::vector<BranchRef>{{"bank1", "x" + std::to_string(i)}});
    if (i % 10 == 0) {
      kept.insert(gtrid);
    } else {
      log->log_end(gtrid);
    }
  }
  EXPECT_NE(log->current_segment(), first_segment);
  EXPECT_FALSE(fs::exists(first_segment));
  const LogIncarnation incarnation = only_incarnation();
  ASSERT_EQ(incarnation.segments.size(), 1u);
  EXPECT_EQ(incarnation.segments[0], log->current_segment());
  EXPECT_LT(read_segment(log->current_segment()).valid_bytes, 3 * 4096u);
  const std::vector<DecisionRecord> open = open_decisions(incarnation);
  EXPECT_EQ(gtrids(open), kept);
  for (const DecisionRecord& record : open) {
    EXPECT_EQ(record.branches, (std::vector<BranchRef>{{"bank1", "x" + record.gtrid.substr(1)}}));
  }
  EXPECT_EQ(log->open_decisions(), kept.size());
}

TEST_F(LogDirTest, RolloverUnderConcurrentCommitsLosesNoOpenDecision) {
  constexpr int kThreads = 8;
  constexpr int kCommitsPerThread = 200;
  auto log = open_log({.max_segment_bytes = 2048});
  const fs::path first_segment = log->current_segment();
  std::vector<std::set<std::string>> kept(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCommitsPerThread; ++i) {
        const std::string gtrid = "g" + std::to_string(t) + "." + std::to_string(i);
        log->log_commit(gtrid, std::vector<BranchRef>{{"bank1", gtrid}});
        if (i % 7 == 0) {
          kept[t].insert(gtrid);
        } else {
          log->log_end(gtrid);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  log->log_commit("last", std::vector<BranchRef>{{"bank1", "last"}});  // flushes the ENDs
  std::set<std::string> expected = {"last"};
  for (const std::set<std::string>& some : kept) expected.insert(some.begin(), some.end());

  const LogIncarnation incarnation = only_incarnation();
  EXPECT_EQ(incarnation.segments.size(), 1u);
  EXPECT_NE(incarnation.segments.back(), first_segment) << "no rollover happened";
  EXPECT_EQ(gtrids(open_decisions(incarnation)), expected);
  EXPECT_EQ(log->open_decisions(), expected.size());
}

TEST_F(LogDirTest, CloseDeletesFilesWhenEveryDecisionEnded) {
  {
    auto log = open_log();
    log->log_commit("g1", std::vector<BranchRef>{{"bank1", "a"}});
    log->log_end("g1");
  }
  EXPECT_TRUE(list_incarnations(dir_).empty());
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(LogDirTest, CloseKeepsFilesWhileADecisionIsOpen) {
  {
    auto log = open_log();
    log->log_commit("g1", std::vector<BranchRef>{{"bank1", "a"}});
    log->log_commit("g2", std::vector<BranchRef>{{"bank1", "b"}});
    log->log_end("g1");  // flushed by the close
  }
  const LogIncarnation incarnation = only_incarnation();
  EXPECT_EQ(incarnation.coordinator_id, "node-1");
  EXPECT_EQ(incarnation.incarnation, kIncarnation);
  EXPECT_TRUE(fs::exists(incarnation.lock_file));
  EXPECT_EQ(incarnation.segments.size(), 1u);
  EXPECT_FALSE(incarnation_alive(incarnation));
  const std::vector<DecisionRecord> open = open_decisions(incarnation);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].gtrid, "g2");
}

TEST_F(LogDirTest, ReopenAdoptsOpenDecisionsOfTheIncarnation) {
  {
    auto log = open_log();
    log->log_commit("g1", std::vector<BranchRef>{{"bank1", "a"}});
  }
  {
    auto log = open_log();
    EXPECT_EQ(log->open_decisions(), 1u);
    const LogIncarnation incarnation = only_incarnation();
    EXPECT_EQ(incarnation.segments, std::vector<fs::path>{log->current_segment()});
    EXPECT_EQ(open_decisions(incarnation),
              std::vector<DecisionRecord>{commit_record("g1", {{"bank1", "a"}})});
    log->log_end("g1");
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(LogDirTest, SecondOpenOfALiveIncarnationFails) {
  auto log = open_log();
  try {
    open_log();
    FAIL() << "second open succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::log);
    EXPECT_NE(std::string(e.what()).find(".lock"), std::string::npos) << e.what();
  }
  // The failed open left the live incarnation's files alone.
  EXPECT_TRUE(incarnation_alive(only_incarnation()));
  EXPECT_NO_THROW(open_log({}, "fedcba9876543210"));
}

// Recovery tests an incarnation's liveness by taking the lock of every lock
// file it lists (incarnation_alive, adopt_incarnation). A process starting at
// that moment must not lose its own lock to such a probe: the lock file
// appears in the directory already locked. (dtx serve's frequent scans made
// `dtx exec` fail with "another live process uses incarnation" before.)
TEST_F(LogDirTest, LivenessProbesNeverStopAnIncarnationFromStarting) {
  fs::create_directories(dir_);
  constexpr int kStarts = 300;
  for (int i = 0; i < kStarts; ++i) {
    char incarnation[17];
    std::snprintf(incarnation, sizeof incarnation, "%016x", 0xabc000 + i);
    LogIncarnation probed{.coordinator_id = "node-1", .incarnation = incarnation,
                          .lock_file = dir_ / ("node-1-" + std::string(incarnation) + ".lock")};
    std::atomic<bool> stop{false};
    std::thread prober([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        (void)incarnation_alive(probed);
        IncarnationLock adopted = adopt_incarnation(dir_, "node-1", incarnation);
      }
    });
    try {
      auto log = open_log({.preallocate_bytes = 0}, incarnation);
      EXPECT_TRUE(incarnation_alive(probed));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "start " << i << ": " << e.what();
    }
    stop = true;
    prober.join();
    if (HasFailure()) break;
  }
  EXPECT_TRUE(list_incarnations(dir_).empty());
}

TEST_F(LogDirTest, BadNamesAreRejected) {
  for (auto [id, incarnation] :
       {std::pair{"", "0123456789abcdef"}, std::pair{"node/1", "0123456789abcdef"},
        std::pair{"node1", "0123456789ABCDEF"}, std::pair{"node1", "0123"}}) {
    try {
      DecisionLog::open(dir_, id, incarnation);
      FAIL() << id << "-" << incarnation;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage);
    }
  }
}

TEST_F(LogDirTest, IncarnationAliveWhileOpen) {
  auto log = open_log();
  log->log_commit("g1", std::vector<BranchRef>{{"bank1", "a"}});
  EXPECT_TRUE(incarnation_alive(only_incarnation()));
  log.reset();
  EXPECT_FALSE(incarnation_alive(only_incarnation()));
  LogIncarnation missing = only_incarnation();
  missing.lock_file = dir_ / "node-1-ffffffffffffffff.lock";
  EXPECT_FALSE(incarnation_alive(missing));
}

TEST_F(LogDirTest, KilledProcessIncarnationIsDead) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto log = open_log();
    log->log_commit("child-decision", std::vector<BranchRef>{{"bank1", "a"}});
    const char ok = 'k';
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);

  const LogIncarnation incarnation = only_incarnation();
  EXPECT_TRUE(incarnation_alive(incarnation));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(incarnation_alive(incarnation));
  EXPECT_EQ(gtrids(open_decisions(incarnation)), std::set<std::string>{"child-decision"});
}

// log_commit("failing") with a bqual of `bqual_size` bytes under a file size
// limit just past the end of the current segment file; the Errc::log error
// it threw ("" if none).
std::string commit_past_size_limit(DecisionLog& log, std::size_t bqual_size) {
  rlimit saved{};
  EXPECT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = fs::file_size(log.current_segment()) + 10;
  EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string error;
  try {
    log.log_commit("failing", std::vector<BranchRef>{{"bank1", std::string(bqual_size, 'f')}});
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::log);
    error = e.what();
  }
  EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, old_handler);
  return error;
}

TEST_F(LogDirTest, WriteFailurePoisonsTheLog) {
  // Without preallocation, so that the next write grows the file.
  auto log = open_log({.preallocate_bytes = 0});
  log->log_commit("before", std::vector<BranchRef>{{"bank1", "a"}});
  const std::string first_error = commit_past_size_limit(*log, 100);
  std::string later_error;
  try {
    log->log_commit("after", std::vector<BranchRef>{{"bank1", "c"}});
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::log);
    later_error = e.what();
  }
  const std::string segment = log->current_segment().string();
  EXPECT_NE(first_error.find("cannot write decision log " + segment), std::string::npos)
      << first_error;
  EXPECT_NE(later_error.find("failed earlier"), std::string::npos) << later_error;
  EXPECT_NE(later_error.find(segment), std::string::npos) << later_error;
  EXPECT_EQ(log->open_decisions(), 1u);
  log->log_end("before");
  log.reset();
  // A poisoned log keeps its files for recovery.
  EXPECT_EQ(only_incarnation().segments.size(), 1u);
}

// Committers of the failing batch and of the batch queued behind it all wake
// up with the error; every commit that returned is in the log.
TEST_F(LogDirTest, WriteFailureWakesEveryConcurrentCommitter) {
  constexpr int kThreads = 8;
  auto log = open_log({.preallocate_bytes = 0});
  std::vector<std::vector<std::string>> committed(kThreads);
  std::vector<std::string> errors(kThreads);
  std::atomic<int> committing{0};  // threads whose first commit returned
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0;; ++i) {
          const std::string gtrid = "g" + std::to_string(t) + "." + std::to_string(i);
          log->log_commit(gtrid, std::vector<BranchRef>{{"bank1", std::string(50, 'x')}});
          committed[t].push_back(gtrid);
          if (i == 0) ++committing;
        }
      } catch (const Error& e) {
        errors[t] = e.what();
      }
    });
  }
  // Every thread in its commit loop before the file stops growing.
  while (committing < kThreads) std::this_thread::yield();
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = fs::file_size(log->current_segment()) + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, old_handler);

  std::set<std::string> returned;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_FALSE(errors[t].empty()) << "thread " << t;
    returned.insert(committed[t].begin(), committed[t].end());
  }
  EXPECT_GT(returned.size(), 0u);
  log.reset();  // poisoned: the files stay
  const std::set<std::string> on_disk = gtrids(open_decisions(only_incarnation()));
  for (const std::string& gtrid : returned) EXPECT_EQ(on_disk.count(gtrid), 1u) << gtrid;
}

// A batch larger than the preallocated rest of the segment is written past its
// end; when that fails, it poisons the log like any write failure.
TEST_F(LogDirTest, WriteFailurePastThePreallocatedEndPoisonsTheLog) {
  auto log = open_log({.preallocate_bytes = 64 << 10});
  log->log_commit("before", std::vector<BranchRef>{{"bank1", "a"}});
  EXPECT_EQ(fs::file_size(log->current_segment()), 2 * log::kBlockSize);
  const std::string error = commit_past_size_limit(*log, 100 << 10);
  EXPECT_NE(error.find("cannot write decision log"), std::string::npos) << error;
  EXPECT_THROW(log->log_commit("after", std::vector<BranchRef>{{"bank1", "c"}}), Error);
  log->log_end("before");
  log.reset();
  const LogIncarnation incarnation = only_incarnation();
  ASSERT_EQ(incarnation.segments.size(), 1u);
  EXPECT_EQ(open_decisions(incarnation),
            std::vector<DecisionRecord>{commit_record("before", {{"bank1", "a"}})});
}

// ---- Preallocated segments ----

// Every byte of `path` from `offset` on is zero.
bool zero_from(const fs::path& path, std::uint64_t offset) {
  const std::string bytes = read_file(path);
  return offset <= bytes.size() &&
         std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end(),
                     [](char c) { return c == '\0'; });
}

TEST_F(LogDirTest, PreallocatedSegmentReadsBackExactlyItsRecords) {
  std::vector<DecisionRecord> written;
  fs::path segment;
  {
    auto log = open_log();  // the default preallocation
    segment = log->current_segment();
    // Created with zero-filled space before any record: a small first chunk
    // (opening a log must stay cheap for short-lived processes).
    EXPECT_GE(fs::file_size(segment), 64u << 10);
    EXPECT_TRUE(zero_from(segment, 0));
    for (int i = 0; i < 50; ++i) {
      const std::string gtrid = "g" + std::to_string(i);
      const std::vector<BranchRef> branches{{"bank1", "b" + std::to_string(i)}, {"bank2", "c"}};
      log->log_commit(gtrid, branches);
      written.push_back(commit_record(gtrid, branches));
      if (i < 49) {  // each END is flushed with the next COMMIT
        log->log_end(gtrid);
        written.push_back(end_record(gtrid));
      }
    }
  }
  // g49 stays open, so the close kept the segment.
  EXPECT_EQ(fs::file_size(segment) % log::kBlockSize, 0u);
  const SegmentReadResult result = read_segment(segment);
  EXPECT_TRUE(result.clean) << result.problem;
  EXPECT_EQ(result.records, written);
  EXPECT_EQ(result.valid_bytes, frame(written).size());
  EXPECT_LT(result.valid_bytes, fs::file_size(segment));
  EXPECT_TRUE(zero_from(segment, result.valid_bytes));

  // A crash while the last record was written: zeros from any byte inside it.
  const std::string bytes = read_file(segment);
  const std::size_t last_start = frame({written.begin(), written.end() - 1}).size();
  for (std::size_t cut = last_start; cut < result.valid_bytes; ++cut) {
    std::string torn = bytes;
    std::fill(torn.begin() + static_cast<std::ptrdiff_t>(cut), torn.end(), '\0');
    write_file(segment, torn);
    const SegmentReadResult read = read_segment(segment);
    ASSERT_EQ(read.records.size(), written.size() - 1) << "cut " << cut;
    EXPECT_EQ(read.valid_bytes, last_start);
    EXPECT_EQ(read.clean, cut == last_start) << read.problem;
    if (cut > last_start) {
      EXPECT_TRUE(read.problem.starts_with("torn tail")) << read.problem;
    }
  }

  // Reopening the incarnation adopts the open decision from the preallocated
  // segment, and closing it with nothing open deletes everything.
  write_file(segment, bytes);
  {
    auto log = open_log();
    EXPECT_EQ(log->open_decisions(), 1u);
    EXPECT_FALSE(fs::exists(segment));
    log->log_end("g49");
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(LogDirTest, SegmentIsExtendedPastItsFirstChunk) {
  constexpr std::uint64_t kChunk = 64 << 10;
  auto log = open_log({.preallocate_bytes = kChunk});
  const fs::path segment = log->current_segment();
  EXPECT_EQ(fs::file_size(segment), kChunk);
  std::set<std::string> expected;
  std::vector<std::uint64_t> sizes{kChunk};
  for (int i = 0; i < 3000; ++i) {
    const std::string gtrid = "g" + std::to_string(i);
    log->log_commit(gtrid, std::vector<BranchRef>{{"bank1", std::string(40, 'x')}});
    expected.insert(gtrid);
    if (fs::file_size(segment) != sizes.back()) sizes.push_back(fs::file_size(segment));
    // Never less than half a chunk of zeros ahead of the records.
    if (i % 16 == 0) {
      const std::uint64_t valid = read_segment(segment).valid_bytes;
      ASSERT_GE(fs::file_size(segment), valid + kChunk / 2) << "commit " << i;
    }
  }
  // A record larger than the whole chunk goes past the preallocated end;
  // the space after it is zero-filled again.
  const std::vector<BranchRef> big{{"bank1", std::string(3 * kChunk, 'y')}};
  log->log_commit("big", big);
  expected.insert("big");
  log->log_commit("after-big", std::vector<BranchRef>{{"bank1", "z"}});
  expected.insert("after-big");
  EXPECT_EQ(log->current_segment(), segment) << "no rollover expected";

  EXPECT_GE(sizes.size(), 4u) << "the segment was extended " << sizes.size() - 1 << " times";
  for (std::size_t i = 1; i < sizes.size(); ++i) {
    EXPECT_GT(sizes[i], sizes[i - 1]);
    EXPECT_EQ(sizes[i] % log::kBlockSize, 0u);
  }
  const SegmentReadResult result = read_segment(segment);
  EXPECT_TRUE(result.clean) << result.problem;
  EXPECT_EQ(result.records.size(), expected.size());
  EXPECT_EQ(result.records[result.records.size() - 2], commit_record("big", big));
  EXPECT_GE(fs::file_size(segment), result.valid_bytes + kChunk / 2);
  EXPECT_TRUE(zero_from(segment, result.valid_bytes));
  EXPECT_EQ(gtrids(open_decisions(only_incarnation())), expected);
  for (const std::string& gtrid : expected) log->log_end(gtrid);
}

TEST_F(LogDirTest, RolloverPreallocatesTheNewSegment) {
  constexpr std::uint64_t kChunk = 64 << 10;
  auto log = open_log({.max_segment_bytes = 4096, .preallocate_bytes = kChunk});
  const fs::path first_segment = log->current_segment();
  for (int i = 0; i < 200; ++i) {
    const std::string gtrid = "g" + std::to_string(i);
    log->log_commit(gtrid, std::vector<BranchRef>{{"bank1", gtrid}});
    if (i != 7) log->log_end(gtrid);
  }
  log->log_commit("last", std::vector<BranchRef>{{"bank1", "last"}});  // flushes the ENDs
  ASSERT_NE(log->current_segment(), first_segment);
  EXPECT_EQ(fs::file_size(log->current_segment()) % log::kBlockSize, 0u);
  EXPECT_GE(fs::file_size(log->current_segment()), kChunk);
  const LogIncarnation incarnation = only_incarnation();
  ASSERT_EQ(incarnation.segments.size(), 1u);
  const SegmentReadResult result = read_segment(incarnation.segments[0]);
  EXPECT_TRUE(result.clean) << result.problem;
  EXPECT_EQ(gtrids(open_decisions(incarnation)), (std::set<std::string>{"g7", "last"}));
  log->log_end("g7");
  log->log_end("last");
}

TEST_F(LogDirTest, ListIncarnationsParsesNamesFromTheRight) {
  fs::create_directories(dir_);
  for (const char* name :
       {"a-b-c-0123456789abcdef.lock", "a-b-c-0123456789abcdef-000002.log",
        "a-b-c-0123456789abcdef-000010.log", "a-b-c-0123456789abcdef-000001.log",
        "x-fedcba9876543210-000001.log",  // segments without a lock file
        // not ours:
        "notes.txt", "a-0123456789ABCDEF.lock", "a-0123456789abcde.lock",
        "a-0123456789abcdef-00001.log", "a-0123456789abcdef-0000001.log", "0123456789abcdef.lock",
        "-0123456789abcdef.lock", "a_very_long_coordinator-0123456789abcdef.lock",
        "a.b-0123456789abcdef.lock", "a-0123456789abcdef.lock.tmp"}) {
    write_file(dir_ / name, "");
  }
  const std::vector<LogIncarnation> found = list_incarnations(dir_);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].coordinator_id, "a-b-c");
  EXPECT_EQ(found[0].incarnation, "0123456789abcdef");
  EXPECT_EQ(found[0].lock_file, dir_ / "a-b-c-0123456789abcdef.lock");
  EXPECT_EQ(found[0].segments, (std::vector<fs::path>{dir_ / "a-b-c-0123456789abcdef-000001.log",
                                                      dir_ / "a-b-c-0123456789abcdef-000002.log",
                                                      dir_ / "a-b-c-0123456789abcdef-000010.log"}));
  EXPECT_EQ(found[1].coordinator_id, "x");
  EXPECT_EQ(found[1].segments.size(), 1u);
  EXPECT_FALSE(incarnation_alive(found[1]));
  EXPECT_TRUE(list_incarnations(dir_ / "does-not-exist").empty());
}


// ---- Damage a crash cannot cause (issue 8) ----

// A dead incarnation with two open decisions in its one segment, as a crash
// after the second decision leaves it.
class LogDamageTest : public LogDirTest {
 protected:
  void SetUp() override {
    LogDirTest::SetUp();
    auto log = open_log();
    log->log_commit("g1", std::vector<BranchRef>{{"bank1", "b1"}});
    log->log_commit("g2", std::vector<BranchRef>{{"bank1", "b2"}});
    segment_ = log->current_segment();
  }  // closed with open decisions: the files stay, the lock is free
  bool names_segment(const std::vector<std::string>& problems) const {
    for (const std::string& p : problems)
      if (p.find(segment_.string()) != std::string::npos) return true;
    return false;
  }
  fs::path segment_;
};

TEST_F(LogDamageTest, WholeSegmentWithATornTailInsideItsPreallocationIsNotDamage) {
  EXPECT_TRUE(find_log_damage(only_incarnation(), true).empty());
  // The second record half written, the preallocated zeros after it.
  const SegmentReadResult whole = read_segment(segment_);
  ASSERT_EQ(whole.records.size(), 2u);
  std::string bytes = read_file(segment_);
  const std::size_t first_end = frame({whole.records[0]}).size();
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(first_end + (whole.valid_bytes - first_end) / 2),
            bytes.end(), '\0');
  write_file(segment_, bytes);
  const SegmentReadResult torn = read_segment(segment_);
  EXPECT_TRUE(torn.problem.starts_with("torn tail")) << torn.problem;
  EXPECT_EQ(torn.records.size(), 1u);
  const std::vector<std::string> problems = find_log_damage(only_incarnation(), true);
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST_F(LogDamageTest, SegmentCutShortInTheMiddleOfARecordIsDamage) {
  const SegmentReadResult whole = read_segment(segment_);
  fs::resize_file(segment_, whole.valid_bytes - 3);
  // The reader alone sees a torn tail ...
  EXPECT_TRUE(read_segment(segment_).problem.starts_with("torn tail"));
  // ... but the segment is shorter than it was made before any record.
  const std::vector<std::string> problems = find_log_damage(only_incarnation(), true);
  ASSERT_FALSE(problems.empty());
  EXPECT_TRUE(names_segment(problems)) << problems.front();
  EXPECT_NE(problems.front().find("shorter"), std::string::npos) << problems.front();
  // It holds a record: damage even if nothing of the incarnation is prepared.
  EXPECT_FALSE(find_log_damage(only_incarnation(), false).empty());
}

TEST_F(LogDamageTest, EmptiedSegmentIsDamage) {
  fs::resize_file(segment_, 0);
  EXPECT_TRUE(read_segment(segment_).clean);  // no record, nothing torn
  const std::vector<std::string> problems = find_log_damage(only_incarnation(), true);
  ASSERT_FALSE(problems.empty());
  EXPECT_TRUE(names_segment(problems)) << problems.front();
  // With nothing prepared there is nothing left to decide: no report (a crash
  // while the log was opened looks the same).
  EXPECT_TRUE(find_log_damage(only_incarnation(), false).empty());
}

TEST_F(LogDamageTest, DeletedSegmentOfACrashedIncarnationIsDamage) {
  fs::remove(segment_);
  const LogIncarnation incarnation = only_incarnation();  // its lock file is left
  EXPECT_TRUE(incarnation.segments.empty());
  const std::vector<std::string> problems = find_log_damage(incarnation, true);
  ASSERT_FALSE(problems.empty());
  EXPECT_TRUE(names_segment(problems)) << problems.front();
}

// A cleanly closed log leaves no file, and a lock file without a segment
// claim (dtx before issue 8, or one a recovery pass created) asks nothing.
TEST_F(LogDirTest, LogsThatClaimNoSegmentAreNotDamage) {
  { auto log = open_log(); }
  EXPECT_TRUE(fs::is_empty(dir_));
  write_file(dir_ / ("node-1-" + std::string(kIncarnation) + ".lock"), "");
  EXPECT_TRUE(find_log_damage(only_incarnation(), true).empty());
}

// Compaction and extension keep the claim current: the segment the lock
// file names is the current one, and a cut after an extension is caught.
TEST_F(LogDirTest, ClaimFollowsRollover) {
  auto log = open_log({.max_segment_bytes = 4096, .sync = false, .preallocate_bytes = 64 << 10});
  const fs::path first = log->current_segment();
  for (int i = 0; i < 200; ++i) {
    const std::string gtrid = "g" + std::to_string(i);
    log->log_commit(gtrid, std::vector<BranchRef>{{"bank1", gtrid}});
    if (i != 7) log->log_end(gtrid);
  }
  log->log_commit("last", std::vector<BranchRef>{{"bank1", "last"}});
  ASSERT_NE(log->current_segment(), first);
  const fs::path segment = log->current_segment();
  log.reset();  // open decisions: the files stay
  EXPECT_TRUE(find_log_damage(only_incarnation(), true).empty());
  fs::remove(segment);
  const std::vector<std::string> problems = find_log_damage(only_incarnation(), true);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().find(segment.string()), std::string::npos) << problems.front();
}

TEST_F(LogDirTest, ClaimFollowsExtension) {
  constexpr std::uint64_t kChunk = 64 << 10;
  auto log = open_log({.sync = false, .preallocate_bytes = kChunk});
  const fs::path segment = log->current_segment();
  for (int i = 0; i < 3000; ++i)
    log->log_commit("g" + std::to_string(i), std::vector<BranchRef>{{"bank1", std::string(40, 'x')}});
  const std::uint64_t size = fs::file_size(segment);
  ASSERT_GT(size, 2 * kChunk) << "no extension happened";
  log.reset();
  EXPECT_TRUE(find_log_damage(only_incarnation(), true).empty());
  fs::resize_file(segment, size - log::kBlockSize);  // within the zeros, past the first chunk
  EXPECT_FALSE(find_log_damage(only_incarnation(), true).empty());
}
}  // namespace
}  // namespace dtx
