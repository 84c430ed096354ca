// The undo record's JSON form (docs/undo-record.md) and the global lock's row
// key.
//
// Values. A value is written as a JSON string when its bytes are valid UTF-8
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), which
// MariaDB's images (hex) and PostgreSQL's (text of a UTF8 database) always
// are; NUL and other control bytes are ordinary JSON escapes (\u0000). Any
// other bytes — possible only from a PostgreSQL database whose encoding is
// SQL_ASCII — are written as {"hex": "<lower-case hex of the bytes>"}, so
// every byte string survives exactly and JSON text never holds invalid UTF-8.
// SQL NULL is JSON null. Names (gtrid, branch, schema, table, columns) are
// written the same way, never null.
//
// Reading is strict: one check, check_parts(), says what does not fit
// together in a record; decode() reports it as damage (Errc::damaged), and
// encode() refuses to write such a record (Errc::usage), so a record encode()
// wrote always decodes. Unknown fields are damage too: any change of the
// format changes kFormatVersion.
#include "undo-log/undo_record.h"

#include <nlohmann/json.hpp>

#include "dtx/error.h"

namespace dtx::undo {

namespace {

using json = nlohmann::ordered_json;  // keys in the documented order

constexpr char kHexDigits[] = "0123456789abcdef";

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

json value_to_json(const std::optional<std::string>& v) {
  if (!v) return nullptr;
  if (valid_utf8(*v)) return *v;
  std::string hex;
  hex.reserve(v->size() * 2);
  for (unsigned char c : *v) {
    hex += kHexDigits[c >> 4];
    hex += kHexDigits[c & 0xF];
  }
  return json{{"hex", std::move(hex)}};
}

// Names are written like values, so odd bytes in them survive too.
json text_to_json(const std::string& s) { return value_to_json(s); }

json image_to_json(const Image& image) {
  json a = json::array();
  for (const auto& v : image) a.push_back(value_to_json(v));
  return a;
}

// What does not fit together in `r`, or empty: images of the wrong length,
// rows naming a table that is not there, rows with neither image, key
// indexes out of range, before and after images with different keys.
std::string check_parts(const UndoRecord& r) {
  for (std::size_t t = 0; t < r.tables.size(); ++t) {
    const TableImage& ti = r.tables[t];
    const std::string where = "tables[" + std::to_string(t) + "] (" + ti.schema + "." + ti.name + ")";
    if (ti.name.empty()) return "tables[" + std::to_string(t) + "] has no name";
    if (ti.columns.empty()) return where + " has no columns";
    if (ti.primary_key.empty()) return where + " has no primary key";
    for (std::size_t k = 0; k < ti.primary_key.size(); ++k) {
      if (ti.primary_key[k] >= ti.columns.size())
        return where + ": primary_key[" + std::to_string(k) + "] is column " +
               std::to_string(ti.primary_key[k]) + " but the table has " +
               std::to_string(ti.columns.size()) + " columns";
      for (std::size_t j = 0; j < k; ++j)
        if (ti.primary_key[j] == ti.primary_key[k])
          return where + ": column " + std::to_string(ti.primary_key[k]) +
                 " appears twice in the primary key";
    }
  }
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const RowUndo& row = r.rows[i];
    const std::string where = "rows[" + std::to_string(i) + "]";
    if (row.table >= r.tables.size())
      return where + " names table " + std::to_string(row.table) + " but the record has " +
             std::to_string(r.tables.size()) + " tables";
    if (!row.before && !row.after) return where + " has neither a before nor an after image";
    const TableImage& ti = r.tables[row.table];
    for (const auto* image : {&row.before, &row.after}) {
      if (*image && (*image)->size() != ti.columns.size())
        return where + ": the " + (image == &row.before ? "before" : "after") + " image has " +
               std::to_string((*image)->size()) + " values but table " + ti.schema + "." +
               ti.name + " has " + std::to_string(ti.columns.size()) + " columns";
    }
    if (row.before && row.after && key_of(ti, *row.before) != key_of(ti, *row.after))
      return where + ": the before and after images have different primary keys";
  }
  return {};
}

// Reading JSON into the record's parts; every failure throws Damage with a
// description of where and what.
struct Damage {
  std::string what;
};

const json& field(const json& object, const char* name, const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) throw Damage{where + " has no \"" + name + "\" field"};
  return *it;
}

void only_fields(const json& object, std::initializer_list<const char*> names,
                 const std::string& where) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool known = false;
    for (const char* n : names) known = known || it.key() == n;
    if (!known) throw Damage{where + " has an unknown field \"" + it.key() + "\""};
  }
}

const json& object_field(const json& j, const std::string& where) {
  if (!j.is_object()) throw Damage{where + " is not a JSON object"};
  return j;
}

std::optional<std::string> value_from_json(const json& j, const std::string& where);

// A name (gtrid, schema, column, ...): written like a value, never null.
std::string text_from_json(const json& j, const std::string& where) {
  std::optional<std::string> v = value_from_json(j, where);
  if (!v) throw Damage{where + " is null"};
  return *v;
}

std::size_t index_of(const json& j, const std::string& where) {
  if (j.is_number_unsigned()) return j.get<std::size_t>();
  if (j.is_number_integer()) throw Damage{where + " is negative"};
  throw Damage{where + " is not a non-negative integer"};
}

const json& array_of(const json& j, const std::string& where) {
  if (!j.is_array()) throw Damage{where + " is not an array"};
  return j;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> value_from_json(const json& j, const std::string& where) {
  if (j.is_null()) return std::nullopt;
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) {
    only_fields(j, {"hex"}, where);
    const json& h = field(j, "hex", where);
    if (!h.is_string()) throw Damage{where + ".hex is not a string"};
    const std::string hex = h.get<std::string>();
    if (hex.size() % 2 != 0) throw Damage{where + ".hex has an odd number of digits"};
    std::string bytes;
    bytes.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      const int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
      if (hi < 0 || lo < 0) throw Damage{where + ".hex holds a character that is not a hex digit"};
      bytes += static_cast<char>(hi * 16 + lo);
    }
    return bytes;
  }
  throw Damage{where + " is neither a string, null nor {\"hex\": ...}"};
}

std::optional<Image> image_from_json(const json& j, const std::string& where) {
  if (j.is_null()) return std::nullopt;
  Image image;
  const json& a = array_of(j, where);
  image.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    image.push_back(value_from_json(a[i], where + "[" + std::to_string(i) + "]"));
  return image;
}

TableImage table_from_json(const json& j, const std::string& where) {
  object_field(j, where);
  only_fields(j, {"schema", "name", "columns", "primary_key"}, where);
  TableImage t;
  t.schema = text_from_json(field(j, "schema", where), where + ".schema");
  t.name = text_from_json(field(j, "name", where), where + ".name");
  const json& columns = array_of(field(j, "columns", where), where + ".columns");
  for (std::size_t i = 0; i < columns.size(); ++i)
    t.columns.push_back(text_from_json(columns[i], where + ".columns[" + std::to_string(i) + "]"));
  const json& key = array_of(field(j, "primary_key", where), where + ".primary_key");
  for (std::size_t i = 0; i < key.size(); ++i)
    t.primary_key.push_back(index_of(key[i], where + ".primary_key[" + std::to_string(i) + "]"));
  return t;
}

RowUndo row_from_json(const json& j, const std::string& where) {
  object_field(j, where);
  only_fields(j, {"table", "before", "after"}, where);
  RowUndo row;
  row.table = index_of(field(j, "table", where), where + ".table");
  row.before = image_from_json(field(j, "before", where), where + ".before");
  row.after = image_from_json(field(j, "after", where), where + ".after");
  return row;
}

UndoRecord record_from_json(const json& j) {
  object_field(j, "the record");
  const json& version = field(j, "version", "the record");
  if (!version.is_number_integer())
    throw Damage{"its \"version\" is not an integer"};
  if (version.get<long long>() != UndoRecord::kFormatVersion)
    throw Damage{"it has format version " + version.dump() + ", this dtx reads version " +
                 std::to_string(UndoRecord::kFormatVersion) +
                 " only (resolve the branch with the dtx that wrote it)"};
  only_fields(j, {"version", "gtrid", "branch", "tables", "rows"}, "the record");
  UndoRecord r;
  r.gtrid = text_from_json(field(j, "gtrid", "the record"), "\"gtrid\"");
  r.branch = text_from_json(field(j, "branch", "the record"), "\"branch\"");
  const json& tables = array_of(field(j, "tables", "the record"), "\"tables\"");
  for (std::size_t i = 0; i < tables.size(); ++i)
    r.tables.push_back(table_from_json(tables[i], "tables[" + std::to_string(i) + "]"));
  const json& rows = array_of(field(j, "rows", "the record"), "\"rows\"");
  r.rows.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    r.rows.push_back(row_from_json(rows[i], "rows[" + std::to_string(i) + "]"));
  return r;
}

Error damaged(std::string_view gtrid, std::string_view branch, const std::string& what) {
  Error::Details d;
  d.code = Errc::damaged;
  d.gtrid = std::string(gtrid);
  d.hint =
      "dtx changed nothing and keeps the record; read it with the database's client "
      "(docs/undo-record.md) and finish the branch by hand";
  return Error(std::move(d), "the undo record of gtrid " + std::string(gtrid) + ", branch " +
                                 std::string(branch) + " is damaged: " + what);
}

}  // namespace

std::string encode(const UndoRecord& record) {
  if (std::string problem = check_parts(record); !problem.empty()) {
    Error::Details d;
    d.code = Errc::usage;
    d.gtrid = record.gtrid;
    throw Error(std::move(d), "refusing to write an undo record for branch " + record.branch +
                                  " whose parts do not fit together: " + problem);
  }
  json tables = json::array();
  for (const TableImage& t : record.tables)
  {
    json columns = json::array();
    for (const std::string& c : t.columns) columns.push_back(text_to_json(c));
    tables.push_back(json{{"schema", text_to_json(t.schema)},
                          {"name", text_to_json(t.name)},
                          {"columns", std::move(columns)},
                          {"primary_key", t.primary_key}});
  }
  json rows = json::array();
  for (const RowUndo& row : record.rows)
    rows.push_back(json{{"table", row.table},
                        {"before", row.before ? image_to_json(*row.before) : json(nullptr)},
                        {"after", row.after ? image_to_json(*row.after) : json(nullptr)}});
  json j{{"version", UndoRecord::kFormatVersion},
         {"gtrid", text_to_json(record.gtrid)},
         {"branch", text_to_json(record.branch)},
         {"tables", std::move(tables)},
         {"rows", std::move(rows)}};
  return j.dump();  // every string in it is valid UTF-8 (see the top)
}

UndoRecord decode(std::string_view text, std::string_view gtrid, std::string_view branch) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw damaged(gtrid, branch, "it is not valid JSON");
  UndoRecord r;
  try {
    r = record_from_json(j);
  } catch (const Damage& d) {
    throw damaged(gtrid, branch, d.what);
  }
  if (r.gtrid != gtrid || r.branch != branch)
    throw damaged(gtrid, branch,
                  "it says it belongs to gtrid " + r.gtrid + ", branch " + r.branch);
  if (std::string problem = check_parts(r); !problem.empty())
    throw damaged(gtrid, branch, problem);
  return r;
}

Image key_of(const TableImage& t, const Image& image) {
  Image key;
  key.reserve(t.primary_key.size());
  for (std::size_t column : t.primary_key) {
    if (column >= image.size())
      throw Error({.code = Errc::usage},
                  "the primary key of " + t.schema + "." + t.name + " names column " +
                      std::to_string(column) + " but the image has " +
                      std::to_string(image.size()) + " values");
    key.push_back(image[column]);
  }
  return key;
}

std::string lock_key(const Image& key_values, std::string_view table_display) {
  // ASCII only (\uXXXX for the rest), so the key fits the ascii row_key
  // column of dtx_global_lock; no spaces, so one row has one key.
  std::string key = image_to_json(key_values).dump(-1, ' ', /*ensure_ascii=*/true);
  if (key.size() > kMaxLockKeyBytes)
    throw Error({.code = Errc::usage},
                "the primary key of a row of " + std::string(table_display) + " is " +
                    std::to_string(key.size()) + " bytes long as a global lock key, more than "
                    "AT mode's " + std::to_string(kMaxLockKeyBytes) +
                    "; run the transactions that change this table with mode = \"xa\"");
  return key;
}

}  // namespace dtx::undo
