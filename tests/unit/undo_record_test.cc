// The undo record's JSON form (undo-log/undo_record.h, docs/undo-record.md):
// exact round trips, every kind of damage decode() must refuse, and the
// global lock's canonical row key.
#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "dtx/error.h"
#include "support/error_from.h"
#include "undo-log/undo_record.h"

namespace dtx::undo {
namespace {

using json = nlohmann::json;
using test::error_from;
using namespace std::string_literals;

TableImage accounts() {
  return {"bank1", "account_info", {"id", "name", "balance"}, {0}};
}

// A composite key in an order other than the columns'.
TableImage order_lines() {
  return {"shop", "order_line", {"line", "qty", "order_id"}, {2, 0}};
}

UndoRecord sample() {
  UndoRecord r;
  r.gtrid = "node1.0000000000000001";
  r.branch = "bank1";
  r.tables = {accounts(), order_lines()};
  r.rows = {
      {0, Image{"2", "5A68616E672053616E", "10000"}, Image{"2", "5A68616E672053616E", "9900"}},
      {1, std::nullopt, Image{"1", "5", "77"}},
      {0, Image{"3", std::nullopt, "0"}, std::nullopt},
  };
  return r;
}

UndoRecord round_trip(const UndoRecord& r) { return decode(encode(r), r.gtrid, r.branch); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(UndoRecord, RoundTripsASample) {
  const UndoRecord r = sample();
  EXPECT_EQ(round_trip(r), r);
}

TEST(UndoRecord, RoundTripsAnEmptyRecord) {
  UndoRecord r;
  r.gtrid = "g";
  r.branch = "b";
  EXPECT_EQ(round_trip(r), r);
  // One line, no spaces, fields in the documented order.
  EXPECT_EQ(encode(r), R"({"version":1,"gtrid":"g","branch":"b","tables":[],"rows":[]})");
}

TEST(UndoRecord, KeepsNulBytesFourByteCharactersAndEmptyStringsApartFromNull) {
  UndoRecord r;
  r.gtrid = "g1";
  r.branch = "pg";
  r.tables = {{"public", "t", {"id", "a", "b", "c", "d"}, {0}}};
  const std::string with_nul = "a\0b\0"s;
  const std::string emoji = "\xF0\x9F\x98\x80 \xE4\xB8\xAD \xC3\xBC";  // 😀 中 ü
  const std::string controls = "\t\n\r\x01\x1F\"\\/";
  r.rows = {{0, Image{"1", with_nul, "", std::nullopt, emoji},
             Image{"1", controls, std::nullopt, "", "\x7F"}}};
  const UndoRecord back = round_trip(r);
  ASSERT_EQ(back, r);
  EXPECT_EQ(back.rows[0].before->at(1)->size(), 4u);
  EXPECT_TRUE(back.rows[0].before->at(2).has_value());   // '' stays ''
  EXPECT_FALSE(back.rows[0].before->at(3).has_value());  // NULL stays NULL
  // Valid UTF-8 is written as itself, readable in the database's client.
  EXPECT_TRUE(contains(encode(r), emoji));
}

TEST(UndoRecord, BytesThatAreNotUtf8RoundTripAsHex) {
  UndoRecord r;
  r.gtrid = "g1";
  r.branch = "pg";
  r.tables = {{"public", "t\xFF", {"id", "v"}, {0}}};
  const std::vector<std::string> odd = {
      "\xFF",              // never in UTF-8
      "\xC3",              // truncated sequence
      "\xC0\xAF",          // overlong '/'
      "\xED\xA0\x80",      // a surrogate
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "ok\x80" "ok",       // a stray continuation byte
  };
  for (const std::string& v : odd) r.rows.push_back({0, Image{"1", v}, Image{"1", "x"}});
  const std::string text = encode(r);
  EXPECT_TRUE(json::accept(text));  // valid JSON, so valid UTF-8
  EXPECT_TRUE(contains(text, R"({"hex":"ff"})")) << text;
  EXPECT_TRUE(contains(text, R"({"hex":"6f6b806f6b"})")) << text;
  EXPECT_TRUE(contains(text, R"("name":{"hex":"74ff"})")) << text;
  EXPECT_EQ(decode(text, "g1", "pg"), r);
}

TEST(UndoRecord, ReadsUpperCaseHex) {
  const std::string text =
      R"({"version":1,"gtrid":"g","branch":"b","tables":[{"schema":"s","name":"t",)"
      R"("columns":["id"],"primary_key":[0]}],"rows":[{"table":0,"before":[{"hex":"FF00"}],"after":null}]})";
  const UndoRecord r = decode(text, "g", "b");
  EXPECT_EQ(r.rows.at(0).before->at(0), "\xFF\0"s);
}

TEST(UndoRecord, RoundTripsManyRowsInOrder) {
  UndoRecord r = sample();
  r.rows.clear();
  for (int i = 0; i < 5000; ++i) {
    const std::string id = std::to_string(i);
    if (i % 3 == 0) r.rows.push_back({1, std::nullopt, Image{id, std::to_string(i * 7), "9"}});
    else r.rows.push_back({0, Image{id, "4E", std::nullopt}, Image{id, "4F", std::to_string(i)}});
  }
  const UndoRecord back = round_trip(r);
  ASSERT_EQ(back.rows.size(), 5000u);
  EXPECT_EQ(back, r);
}

TEST(UndoRecord, TheJsonHasTheDocumentedShape) {
  const json j = json::parse(encode(sample()));
  EXPECT_EQ(j.at("version"), 1);
  EXPECT_EQ(j.at("gtrid"), "node1.0000000000000001");
  EXPECT_EQ(j.at("branch"), "bank1");
  EXPECT_EQ(j.at("tables").at(1),
            json::parse(R"({"schema":"shop","name":"order_line","columns":["line","qty","order_id"],)"
                        R"("primary_key":[2,0]})"));
  EXPECT_EQ(j.at("rows").at(1), json::parse(R"({"table":1,"before":null,"after":["1","5","77"]})"));
  EXPECT_EQ(j.at("rows").at(2).at("before"), json::parse(R"(["3",null,"0"])"));
}

TEST(UndoRecord, EncodeRefusesARecordWhosePartsDoNotFit) {
  UndoRecord r = sample();
  r.rows[1].after->pop_back();
  const Error e = error_from([&] { encode(r); });
  EXPECT_EQ(e.code(), Errc::usage);
  EXPECT_TRUE(contains(e.what(), "rows[1]")) << e.what();
  EXPECT_EQ(e.gtrid(), r.gtrid);
}

// ---- damage: each case names the gtrid, the branch and what is wrong ----

// decode() of the sample after `change` to its JSON must fail as damaged,
// saying `expected`.
void expect_damage(const std::function<void(json&)>& change, const std::string& expected) {
  json j = json::parse(encode(sample()));
  change(j);
  const Error e = error_from([&] { decode(j.dump(), "node1.0000000000000001", "bank1"); });
  EXPECT_EQ(e.code(), Errc::damaged) << e.what();
  EXPECT_EQ(e.gtrid(), "node1.0000000000000001");
  EXPECT_TRUE(contains(e.what(), "gtrid node1.0000000000000001, branch bank1")) << e.what();
  EXPECT_TRUE(contains(e.what(), expected)) << "expected \"" << expected << "\" in: " << e.what();
}

void expect_text_damage(const std::string& text, const std::string& expected) {
  const Error e = error_from([&] { decode(text, "g7", "b7"); });
  EXPECT_EQ(e.code(), Errc::damaged) << e.what();
  EXPECT_TRUE(contains(e.what(), "gtrid g7, branch b7")) << e.what();
  EXPECT_TRUE(contains(e.what(), expected)) << "expected \"" << expected << "\" in: " << e.what();
}

TEST(UndoRecordDamage, NotJson) {
  expect_text_damage("", "not valid JSON");
  expect_text_damage("{\"version\":1,", "not valid JSON");
  expect_text_damage("undo", "not valid JSON");
  expect_text_damage("{\"version\":1} trailing", "not valid JSON");
  expect_text_damage("\"\xFF\"", "not valid JSON");  // invalid UTF-8 inside the JSON text
  expect_text_damage("[1,2]", "the record is not a JSON object");
}

TEST(UndoRecordDamage, WrongOrMissingVersion) {
  expect_damage([](json& j) { j.erase("version"); }, "has no \"version\" field");
  expect_damage([](json& j) { j["version"] = 2; }, "format version 2, this dtx reads version 1");
  expect_damage([](json& j) { j["version"] = 0; }, "format version 0");
  expect_damage([](json& j) { j["version"] = "1"; }, "\"version\" is not an integer");
  expect_damage([](json& j) { j["version"] = 1.0; }, "\"version\" is not an integer");
}

TEST(UndoRecordDamage, MissingFields) {
  for (const char* f : {"gtrid", "branch", "tables", "rows"})
    expect_damage([&](json& j) { j.erase(f); }, "has no \""s + f + "\" field");
  for (const char* f : {"schema", "name", "columns", "primary_key"})
    expect_damage([&](json& j) { j["tables"][0].erase(f); }, "tables[0] has no \""s + f + "\" field");
  for (const char* f : {"table", "before", "after"})
    expect_damage([&](json& j) { j["rows"][2].erase(f); }, "rows[2] has no \""s + f + "\" field");
}

TEST(UndoRecordDamage, FieldsOfTheWrongType) {
  expect_damage([](json& j) { j["tables"] = json::object(); }, "\"tables\" is not an array");
  expect_damage([](json& j) { j["rows"][0] = 5; }, "rows[0] is not a JSON object");
  expect_damage([](json& j) { j["rows"][0]["table"] = -1; }, "rows[0].table is negative");
  expect_damage([](json& j) { j["rows"][0]["table"] = "0"; }, "rows[0].table is not a non-negative integer");
  expect_damage([](json& j) { j["rows"][0]["before"] = "2"; }, "rows[0].before is not an array");
  expect_damage([](json& j) { j["rows"][0]["after"][1] = 7; },
                "rows[0].after[1] is neither a string, null nor {\"hex\": ...}");
  expect_damage([](json& j) { j["tables"][0]["columns"][0] = nullptr; }, "tables[0].columns[0] is null");
  expect_damage([](json& j) { j["rows"][0]["after"][1] = json{{"hex", "abc"}}; }, "odd number of digits");
  expect_damage([](json& j) { j["rows"][0]["after"][1] = json{{"hex", "zz"}}; }, "not a hex digit");
  expect_damage([](json& j) { j["rows"][0]["after"][1] = json{{"hex", "00"}, {"b64", "AA=="}}; },
                "unknown field \"b64\"");
}

TEST(UndoRecordDamage, UnknownFields) {
  expect_damage([](json& j) { j["extra"] = 1; }, "the record has an unknown field \"extra\"");
  expect_damage([](json& j) { j["tables"][1]["x"] = 1; }, "tables[1] has an unknown field \"x\"");
  expect_damage([](json& j) { j["rows"][1]["x"] = 1; }, "rows[1] has an unknown field \"x\"");
}

TEST(UndoRecordDamage, ImageArityMismatch) {
  expect_damage([](json& j) { j["rows"][0]["after"].erase(0); },
                "rows[0]: the after image has 2 values but table bank1.account_info has 3 columns");
  expect_damage([](json& j) { j["rows"][2]["before"].push_back("x"); },
                "rows[2]: the before image has 4 values");
  expect_damage([](json& j) { j["tables"][1]["columns"].push_back("extra"); },
                "rows[1]: the after image has 3 values but table shop.order_line has 4 columns");
}

TEST(UndoRecordDamage, TableIndexOutOfRange) {
  expect_damage([](json& j) { j["rows"][1]["table"] = 2; },
                "rows[1] names table 2 but the record has 2 tables");
  expect_damage([](json& j) { j["tables"] = json::array(); },
                "rows[0] names table 0 but the record has 0 tables");
}

TEST(UndoRecordDamage, RowWithNeitherImage) {
  expect_damage([](json& j) { j["rows"][1]["after"] = nullptr; },
                "rows[1] has neither a before nor an after image");
}

TEST(UndoRecordDamage, PrimaryKeyIndexOutOfRangeOrMissing) {
  expect_damage([](json& j) { j["tables"][1]["primary_key"][0] = 3; },
                "tables[1] (shop.order_line): primary_key[0] is column 3 but the table has 3 columns");
  expect_damage([](json& j) { j["tables"][0]["primary_key"] = json::array(); },
                "tables[0] (bank1.account_info) has no primary key");
  expect_damage([](json& j) { j["tables"][1]["primary_key"] = {0, 0}; },
                "column 0 appears twice in the primary key");
  expect_damage([](json& j) { j["tables"][0]["columns"] = json::array(); },
                "tables[0] (bank1.account_info) has no columns");
}

TEST(UndoRecordDamage, BeforeAndAfterWithDifferentKeys) {
  expect_damage([](json& j) { j["rows"][0]["after"][0] = "5"; },
                "rows[0]: the before and after images have different primary keys");
}

TEST(UndoRecordDamage, RecordOfAnotherBranch) {
  const std::string text = encode(sample());
  const Error e = error_from([&] { decode(text, "node1.0000000000000001", "bank2"); });
  EXPECT_EQ(e.code(), Errc::damaged);
  EXPECT_TRUE(contains(e.what(), "belongs to gtrid node1.0000000000000001, branch bank1")) << e.what();
  EXPECT_EQ(error_from([&] { decode(text, "node1.2", "bank1"); }).code(), Errc::damaged);
}

// ---- keys and lock keys ----

TEST(UndoRecordKeys, KeyOfTakesTheKeyColumnsInKeyOrder) {
  EXPECT_EQ(key_of(order_lines(), Image{"1", "5", "77"}), (Image{"77", "1"}));
  EXPECT_EQ(key_of(accounts(), Image{"2", std::nullopt, "0"}), (Image{"2"}));
  EXPECT_EQ(error_from([] { key_of(order_lines(), Image{"1"}); }).code(), Errc::usage);
}

TEST(UndoRecordKeys, LockKeyIsACanonicalJsonArray) {
  EXPECT_EQ(lock_key({"2"}, "bank1.account_info"), R"(["2"])");
  EXPECT_EQ(lock_key({"77", "1"}, "shop.order_line"), R"(["77","1"])");
  EXPECT_EQ(lock_key({std::nullopt, ""}, "s.t"), R"([null,""])");
  EXPECT_EQ(lock_key({"a\"b\\c", "x,y"}, "s.t"), R"(["a\"b\\c","x,y"])");
  // ASCII only: characters past U+007F are escaped, odd bytes written as hex.
  EXPECT_EQ(lock_key({"\xC3\xBC", "\xF0\x9F\x98\x80"}, "s.t"), R"(["\u00fc","\ud83d\ude00"])");
  EXPECT_EQ(lock_key({"\xFF\x00"s}, "s.t"), R"([{"hex":"ff00"}])");
  EXPECT_EQ(lock_key({"\0"s}, "s.t"), R"(["\u0000"])");
  // Different keys never share a lock key.
  EXPECT_NE(lock_key({"1", "23"}, "s.t"), lock_key({"12", "3"}, "s.t"));
  EXPECT_NE(lock_key({"1"}, "s.t"), lock_key({std::nullopt}, "s.t"));
  EXPECT_NE(lock_key({"null"}, "s.t"), lock_key({std::nullopt}, "s.t"));
}

TEST(UndoRecordKeys, LockKeyLongerThanTheLimitIsRefusedNamingTheTable) {
  // ["<764 x>"] is 768 bytes: exactly at the limit.
  const std::string at_limit = lock_key({std::string(764, 'x')}, "s.t");
  EXPECT_EQ(at_limit.size(), kMaxLockKeyBytes);
  const Error e = error_from([] { lock_key({std::string(765, 'x')}, "bank1.long_keys"); });
  EXPECT_EQ(e.code(), Errc::usage);
  EXPECT_TRUE(contains(e.what(), "bank1.long_keys")) << e.what();
  EXPECT_TRUE(contains(e.what(), "769 bytes")) << e.what();
  EXPECT_TRUE(contains(e.what(), "mode = \"xa\"")) << e.what();
  // Escapes count: 128 characters of 2 bytes each become 6-byte \u escapes.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xC3\xBC";
  EXPECT_EQ(error_from([&] { lock_key({wide}, "s.t"); }).code(), Errc::usage);
}

}  // namespace
}  // namespace dtx::undo
