#include "base/transaction_id.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <random>

#include "dtx/config.h"

namespace dtx {

namespace {

bool all_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return !s.empty();
}

}  // namespace

constexpr std::uint32_t kDatabaseStoreBit = 0x80000000u;

std::string new_incarnation(DecisionStore store) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  std::random_device rd;
  std::uint32_t low = static_cast<std::uint32_t>(rd()) & ~kDatabaseStoreBit;
  if (store == DecisionStore::database) low |= kDatabaseStoreBit;
  std::uint64_t value = (static_cast<std::uint64_t>(seconds) << 32) | low;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

DecisionStore decision_store_of(std::string_view incarnation) noexcept {
  if (incarnation.size() != 16 || !all_hex(incarnation)) return DecisionStore::file;
  const char c = incarnation[8];  // the highest hex digit of the low 32 bits
  const int digit = c <= '9' ? c - '0' : c - 'a' + 10;
  return (digit & 0x8) ? DecisionStore::database : DecisionStore::file;
}

std::optional<GtridParts> parse_gtrid(std::string_view gtrid) {
  auto last = gtrid.rfind('.');
  if (last == std::string_view::npos) return std::nullopt;
  auto mid = gtrid.rfind('.', last - 1);
  if (mid == std::string_view::npos || last == 0) return std::nullopt;
  std::string_view id = gtrid.substr(0, mid);
  std::string_view inc = gtrid.substr(mid + 1, last - mid - 1);
  std::string_view seq = gtrid.substr(last + 1);
  if (!is_valid_coordinator_id(id) || inc.size() != 16 || !all_hex(inc) || seq.size() > 16 ||
      !all_hex(seq))
    return std::nullopt;
  return GtridParts{std::string(id), std::string(inc), std::stoull(std::string(seq), nullptr, 16)};
}

TransactionIdGenerator::TransactionIdGenerator(const std::string& coordinator_id, std::string incarnation)
    : prefix_(coordinator_id + "." + incarnation + "."), incarnation_(std::move(incarnation)) {}

std::string TransactionIdGenerator::next() {
  std::uint64_t seq = sequence_.fetch_add(1, std::memory_order_relaxed) + 1;
  char buf[16];
  auto end = std::to_chars(buf, buf + sizeof buf, seq, 16).ptr;  // lowercase hex
  std::string id;
  id.reserve(prefix_.size() + (end - buf));
  id.append(prefix_).append(buf, end);
  return id;
}

}  // namespace dtx
