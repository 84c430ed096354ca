// CRC-32C (Castagnoli), the checksum of every decision-log fragment.
//
// Computed with the SSE4.2 crc32 instruction when the CPU has it (checked
// once at run time) and with Boost.CRC's table otherwise; both give the same
// values (tests/unit/log_test.cc compares them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dtx::crc32c {

// The CRC-32C of concat(A, data), where `crc` is the CRC-32C of some string A.
// extend(0, data) is the CRC-32C of `data`.
std::uint32_t extend(std::uint32_t crc, std::string_view data);

inline std::uint32_t value(std::string_view data) { return extend(0, data); }

// A stored CRC is masked (rotated, plus a constant): the CRC of a string
// that itself contains CRCs, such as a whole segment, is then not trivially
// related to the CRCs inside it.
inline constexpr std::uint32_t kMaskDelta = 0x9e3779b9;  // 2^32 / golden ratio

inline std::uint32_t mask(std::uint32_t crc) { return ((crc >> 17) | (crc << 15)) + kMaskDelta; }

inline std::uint32_t unmask(std::uint32_t masked) {
  const std::uint32_t rotated = masked - kMaskDelta;
  return (rotated >> 15) | (rotated << 17);
}

// The two implementations behind extend(), exposed for tests and benchmarks.
namespace detail {
std::uint32_t extend_portable(std::uint32_t crc, std::string_view data);
// Requires hardware_available().
std::uint32_t extend_hardware(std::uint32_t crc, std::string_view data);
bool hardware_available() noexcept;
}  // namespace detail

}  // namespace dtx::crc32c
