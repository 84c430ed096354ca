// Frames record payloads for the end of one segment (see log_format.h).
//
// The writer holds no file: append() adds the framed bytes of a record to a
// caller's buffer, so that the decision log can frame a whole group-commit
// batch and hand it to one write() and one fdatasync(). The writer tracks
// only where the segment ends inside its current block, so every byte it
// produces must reach the file, in order, before more is appended.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "decision-log/log_format.h"

namespace dtx::log {

class LogWriter {
 public:
  // `segment_size`: length of the segment the framed bytes will follow.
  explicit LogWriter(std::uint64_t segment_size = 0) : segment_size_(segment_size) {}

  // Appends the framing of one record with `payload` (possibly empty) to *out.
  void append(std::string_view payload, std::string* out);

  // Segment length once everything appended so far is written.
  std::uint64_t segment_size() const { return segment_size_; }

 private:
  void append_fragment(FragmentType type, std::string_view fragment, std::string* out);

  std::uint64_t segment_size_;
};

}  // namespace dtx::log
