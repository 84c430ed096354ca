#include <charconv>
#include <system_error>

#include "dtx/error.h"
#include "dtx/value.h"

namespace dtx {

std::optional<std::string> Param::to_text() const {
  struct Visitor {
    std::optional<std::string> operator()(std::monostate) const { return std::nullopt; }
    std::optional<std::string> operator()(std::int64_t v) const { return std::to_string(v); }
    std::optional<std::string> operator()(std::uint64_t v) const { return std::to_string(v); }
    std::optional<std::string> operator()(double v) const {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
      return std::string(buf, end);
    }
    std::optional<std::string> operator()(const std::string& v) const { return v; }
  };
  return std::visit(Visitor{}, v_);
}

namespace {

[[noreturn]] void bad_cell(std::size_t i, const std::string& why) {
  throw Error({.code = Errc::usage}, "result column " + std::to_string(i) + " " + why);
}

template <typename T>
T parse_number(const std::optional<std::string>& cell, std::size_t i, const char* type) {
  if (!cell) bad_cell(i, std::string("is NULL, expected ") + type);
  T value{};
  const char* first = cell->data();
  const char* last = first + cell->size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last) bad_cell(i, "'" + *cell + "' is not " + type);
  return value;
}

}  // namespace

const std::string& Row::text(std::size_t i) const {
  const auto& c = cells_.at(i);
  if (!c) bad_cell(i, "is NULL");
  return *c;
}

std::int64_t Row::as_int64(std::size_t i) const {
  return parse_number<std::int64_t>(cells_.at(i), i, "an integer");
}

double Row::as_double(std::size_t i) const {
  return parse_number<double>(cells_.at(i), i, "a number");
}

}  // namespace dtx
