#include <gtest/gtest.h>

#include "dtx/error.h"
#include "dtx/value.h"

namespace dtx {
namespace {

TEST(Param, TextForms) {
  EXPECT_EQ(Param(nullptr).to_text(), std::nullopt);
  EXPECT_EQ(Param(42).to_text(), "42");
  EXPECT_EQ(Param(-7LL).to_text(), "-7");
  EXPECT_EQ(Param(true).to_text(), "1");
  EXPECT_EQ(Param(0.1).to_text(), "0.1");
  EXPECT_EQ(Param(1e300).to_text(), "1e+300");
  EXPECT_EQ(Param("it's").to_text(), "it's");
  EXPECT_EQ(Param(std::optional<int>{}).to_text(), std::nullopt);
  EXPECT_EQ(Param(std::optional<int>{5}).to_text(), "5");
}

TEST(Param, UnsignedAbove64BitSignedRangeIsExactNotWrapped) {
  const std::uint64_t big = 18446744073709551615ull;
  Param p(big);
  ASSERT_TRUE(std::holds_alternative<std::uint64_t>(p.storage()));
  EXPECT_EQ(std::get<std::uint64_t>(p.storage()), big);
  EXPECT_EQ(p.to_text(), "18446744073709551615");
  EXPECT_EQ(Param(std::uint64_t{9223372036854775808ull}).to_text(), "9223372036854775808");
  EXPECT_EQ(Param(7u).to_text(), "7");
  EXPECT_EQ(Param(std::int64_t{-9223372036854775807 - 1}).to_text(), "-9223372036854775808");
}

TEST(Row, TypedAccessors) {
  Row r({std::string("12"), std::nullopt, std::string("2.5"), std::string("x")});
  EXPECT_EQ(r.as_int64(0), 12);
  EXPECT_TRUE(r.is_null(1));
  EXPECT_DOUBLE_EQ(r.as_double(2), 2.5);
  EXPECT_EQ(r.text(3), "x");
  EXPECT_THROW(r.as_int64(1), Error);
  EXPECT_THROW(r.as_int64(3), Error);
  EXPECT_THROW(r.text(1), Error);
  EXPECT_THROW(r.cell(9), std::out_of_range);
}

TEST(Error, MessageCarriesEverythingAUserNeeds) {
  Error e({.code = Errc::sql,
           .resource = "bank2",
           .gtrid = "node1.ab.1",
           .server_code = 1146,
           .sqlstate = "42S02",
           .server_message = "Table 'x' doesn't exist",
           .hint = "check the statement"},
          "statement failed");
  std::string m = e.what();
  for (const char* part : {"statement failed", "bank2", "node1.ab.1", "1146", "42S02", "doesn't exist",
                           "check the statement"})
    EXPECT_NE(m.find(part), std::string::npos) << part << " missing from: " << m;
  Error c = Error({.code = Errc::sql}, "x").with_context("g1", "r1");
  EXPECT_EQ(c.gtrid(), "g1");
  EXPECT_EQ(c.resource(), "r1");
}

}  // namespace
}  // namespace dtx
