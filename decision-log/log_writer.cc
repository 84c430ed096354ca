#include "decision-log/log_writer.h"

#include <algorithm>

#include "decision-log/crc32c.h"

namespace dtx::log {

void LogWriter::append(std::string_view payload, std::string* out) {
  std::size_t block_left = kBlockSize - segment_size_ % kBlockSize;
  if (block_left < kHeaderSize) {
    out->append(block_left, '\0');  // a block tail too short for a header
    segment_size_ += block_left;
  }
  // A FIRST or MIDDLE fragment fills its block to the end, so only a record's
  // start can meet a short tail. An empty payload still gets a FULL fragment.
  for (bool first = true;; first = false) {
    block_left = kBlockSize - segment_size_ % kBlockSize;
    const std::size_t n = std::min(payload.size(), block_left - kHeaderSize);
    const bool last = n == payload.size();
    const FragmentType type = first && last ? FragmentType::full
                              : first       ? FragmentType::first
                              : last        ? FragmentType::last
                                            : FragmentType::middle;
    append_fragment(type, payload.substr(0, n), out);
    if (last) return;
    payload.remove_prefix(n);
  }
}

void LogWriter::append_fragment(FragmentType type, std::string_view fragment, std::string* out) {
  const char type_byte = static_cast<char>(type);
  const std::uint32_t crc =
      crc32c::mask(crc32c::extend(crc32c::value(std::string_view(&type_byte, 1)), fragment));
  const std::size_t length = fragment.size();
  const char header[kHeaderSize] = {
      static_cast<char>(crc & 0xff),
      static_cast<char>((crc >> 8) & 0xff),
      static_cast<char>((crc >> 16) & 0xff),
      static_cast<char>((crc >> 24) & 0xff),
      static_cast<char>(length & 0xff),
      static_cast<char>((length >> 8) & 0xff),
      type_byte,
  };
  out->append(header, kHeaderSize);
  out->append(fragment);
  segment_size_ += kHeaderSize + length;
}

}  // namespace dtx::log
