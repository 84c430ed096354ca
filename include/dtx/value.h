// Statement parameters and results.
//
// Parameters are bound by the driver, never spliced into SQL text. Write `?`
// as the placeholder for every database; the PostgreSQL driver renumbers them
// to $1, $2, ... (outside quotes and comments).
// Results come back as text (NULL-aware) with typed accessors, which is what
// both databases' text protocols deliver.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace dtx {

class Param {
 public:
  // Signed integers travel as int64, unsigned ones as uint64 (exact up to
  // 2^64-1, for MariaDB's BIGINT UNSIGNED; never wrapped to negative).
  using Storage = std::variant<std::monostate, std::int64_t, std::uint64_t, double, std::string>;

  Param(std::nullptr_t) {}
  Param(std::nullopt_t) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && std::is_signed_v<T>, int> = 0>
  Param(T v) : v_(static_cast<std::int64_t>(v)) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && std::is_unsigned_v<T> &&
                                             !std::is_same_v<T, bool>, int> = 0>
  Param(T v) : v_(static_cast<std::uint64_t>(v)) {}
  Param(bool v) : v_(static_cast<std::int64_t>(v ? 1 : 0)) {}
  Param(double v) : v_(v) {}
  Param(std::string v) : v_(std::move(v)) {}
  Param(std::string_view v) : v_(std::string(v)) {}
  Param(const char* v) : v_(std::string(v)) {}
  template <typename T>
  Param(const std::optional<T>& v) {
    if (v) *this = Param(*v);
  }

  bool is_null() const noexcept { return v_.index() == 0; }
  const Storage& storage() const noexcept { return v_; }
  // Text form as sent over a text protocol; nullopt for NULL. Doubles use the
  // shortest form that round-trips.
  std::optional<std::string> to_text() const;

 private:
  Storage v_;
};

class Row {
 public:
  Row() = default;
  explicit Row(std::vector<std::optional<std::string>> cells) : cells_(std::move(cells)) {}

  std::size_t size() const noexcept { return cells_.size(); }
  bool is_null(std::size_t i) const { return !cells_.at(i).has_value(); }
  // Throw dtx::Error(usage) on NULL or on text that does not parse.
  const std::string& text(std::size_t i) const;
  std::int64_t as_int64(std::size_t i) const;
  double as_double(std::size_t i) const;
  const std::optional<std::string>& cell(std::size_t i) const { return cells_.at(i); }

 private:
  std::vector<std::optional<std::string>> cells_;
};

class Result {
 public:
  Result() = default;
  Result(std::vector<std::string> columns, std::vector<Row> rows, std::uint64_t affected)
      : columns_(std::move(columns)), rows_(std::move(rows)), affected_(affected) {}

  const std::vector<std::string>& columns() const noexcept { return columns_; }
  std::size_t size() const noexcept { return rows_.size(); }
  bool empty() const noexcept { return rows_.empty(); }
  const Row& operator[](std::size_t i) const { return rows_.at(i); }
  auto begin() const noexcept { return rows_.begin(); }
  auto end() const noexcept { return rows_.end(); }
  // Rows changed by INSERT/UPDATE/DELETE; 0 for other statements.
  std::uint64_t affected_rows() const noexcept { return affected_; }

 private:
  std::vector<std::string> columns_;
  std::vector<Row> rows_;
  std::uint64_t affected_ = 0;
};

}  // namespace dtx
