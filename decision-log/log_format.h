// Framing of decision-log segments; docs/log-format.md describes it in full.
//
// A segment is a sequence of 32 KiB blocks. A record payload is cut into
// fragments so that no fragment crosses a block boundary; each fragment is
//
//   masked crc32c (4, LE) | length (2, LE) | type (1) | payload (length)
//
// with the CRC taken over the type byte and the payload. A block tail too
// short for a header is zero-filled and skipped.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dtx::log {

enum class FragmentType : std::uint8_t {
  zero = 0,    // never written; what a preallocated or zero-filled tail reads as
  full = 1,    // a whole record
  first = 2,   // first fragment of a record that continues in the next block
  middle = 3,  // neither first nor last
  last = 4,    // last fragment of a record
};
inline constexpr std::uint8_t kMaxFragmentType = 4;

inline constexpr std::size_t kBlockSize = 32768;
inline constexpr std::size_t kHeaderSize = 4 + 2 + 1;

}  // namespace dtx::log
