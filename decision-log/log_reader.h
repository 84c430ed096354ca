// Splits a decision-log segment back into record payloads (see log_format.h).
//
// A segment's tail may be torn by a crash (a partial header or payload at the
// end of the file, or — in a preallocated segment — a partial fragment with
// only zeros after it) or, rarely, corrupt. A zero-filled rest of the file
// after the last record is a clean end. The reader never throws for bad data:
// it stops at the first fragment it cannot trust and says where and why.
// Everything it returned before that is intact; nothing after it is used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace dtx::log {

class LogReader {
 public:
  explicit LogReader(std::string contents) : contents_(std::move(contents)) {}

  // Reads a whole segment file. Throws dtx::Error(Errc::log) naming the path
  // and errno if it cannot be opened or read.
  static LogReader from_file(const std::filesystem::path& path);

  // Sets *payload to the next record's payload and returns true. Returns
  // false at the end of the data or at the first torn or corrupt fragment,
  // and from then on.
  bool read(std::string* payload);

  // Offset just past the last record read() returned.
  std::uint64_t valid_bytes() const { return valid_bytes_; }
  // Offset of the first fragment of the last record read() returned.
  std::uint64_t record_offset() const { return record_offset_; }
  // After read() returned false: true if every byte of the data belongs to a
  // complete record, a block trailer or a zero-filled tail, that is, every
  // byte from valid_bytes() on is zero.
  bool clean() const { return problem_.empty(); }
  // What stopped the reader, with its offset; empty if clean(). The trace of
  // a crash during a write starts with "torn tail"; anything else is damage.
  const std::string& problem() const { return problem_; }

 private:
  bool stop(std::string problem);
  // Offset from which every byte of the data is zero.
  std::uint64_t zero_tail_start();

  std::string contents_;
  std::uint64_t pos_ = 0;
  std::uint64_t valid_bytes_ = 0;
  std::uint64_t record_offset_ = 0;
  std::string problem_;
  std::optional<std::uint64_t> zero_tail_start_;
};

}  // namespace dtx::log
