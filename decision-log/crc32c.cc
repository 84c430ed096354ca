#include "decision-log/crc32c.h"

#include <boost/crc.hpp>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace dtx::crc32c {
namespace detail {

namespace {

using BoostCrc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

std::uint32_t reverse_bits(std::uint32_t v) {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    r = (r << 1) | (v & 1);
    v >>= 1;
  }
  return r;
}

}  // namespace

std::uint32_t extend_portable(std::uint32_t crc, std::string_view data) {
  // Boost's checksum() is reflect(remainder) ^ final_xor, so resuming from a
  // finished CRC means undoing both to get the interim remainder back.
  BoostCrc32c engine(reverse_bits(crc ^ 0xFFFFFFFFu));
  engine.process_bytes(data.data(), data.size());
  return engine.checksum();
}

#if defined(__x86_64__)

__attribute__((target("sse4.2"))) std::uint32_t extend_hardware(std::uint32_t crc,
                                                                std::string_view data) {
  const char* p = data.data();
  std::size_t n = data.size();
  std::uint64_t state = ~crc;
  for (; n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0; --n) {
    state = _mm_crc32_u8(static_cast<std::uint32_t>(state), static_cast<std::uint8_t>(*p++));
  }
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    state = _mm_crc32_u64(state, word);
  }
  for (; n > 0; --n) {
    state = _mm_crc32_u8(static_cast<std::uint32_t>(state), static_cast<std::uint8_t>(*p++));
  }
  return ~static_cast<std::uint32_t>(state);
}

bool hardware_available() noexcept {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}

#else

std::uint32_t extend_hardware(std::uint32_t crc, std::string_view data) {
  return extend_portable(crc, data);
}

bool hardware_available() noexcept { return false; }

#endif

}  // namespace detail

std::uint32_t extend(std::uint32_t crc, std::string_view data) {
  return detail::hardware_available() ? detail::extend_hardware(crc, data)
                                      : detail::extend_portable(crc, data);
}

}  // namespace dtx::crc32c
