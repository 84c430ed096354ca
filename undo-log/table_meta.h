// Table metadata for AT mode, and how each column's value travels through an
// undo record exactly.
//
// An AT branch needs, for every table it changes: the columns in table order,
// the primary key (composite keys included), and for each column three SQL
// expressions in the table's dialect, chosen by the column's type so that no
// value ever passes through a lossy conversion:
//
//   image   a select-list expression giving the column's value as text that
//           identifies it exactly (MariaDB HEX(`c`) for strings and blobs,
//           CAST(CAST(`c` AS DOUBLE) AS CHAR) for floats; PostgreSQL "c"::text,
//           guarded against output settings that would round it);
//   value   an expression turning one `?` parameter carrying such an image
//           back into a value of the column's type (CONVERT(UNHEX(?) USING
//           utf8mb4) COLLATE ..., CAST(? AS DECIMAL(65,30)), ?::numeric(10,2));
//           usable in INSERT / UPDATE SET and, to find a row by its primary
//           key through the index, in `col = value` (MariaDB) / `"col" = value`;
//   equals  a null-safe comparison of the column with one `?` image, made
//           inside the database (MariaDB `<=>`, PostgreSQL IS NOT DISTINCT
//           FROM), true exactly when the stored value is the imaged one: a
//           change of case under a _ci collation, of a trailing space, of
//           1.0 into 1.00 or of -0 into 0 makes it false. It is a check, not
//           a lookup: it may not use an index.
//
// Image text depends on nothing but the value, with two documented
// exceptions handled here: MariaDB TIMESTAMP columns are imaged and written
// in UTC through TableMeta::statement_prefix, which every statement using
// these expressions must carry; PostgreSQL images of floats, dates and
// intervals need the default output settings (extra_float_digits >= 1,
// DateStyle ISO, IntervalStyle postgres) and fail with a message naming the
// setting otherwise. docs/at-mode-values.md lists the choice for every type.
//
// Columns the database computes (generated columns) are imaged for display
// but never written back nor compared: they follow from the others.
//
// Metadata is read from information_schema (MariaDB) or pg_catalog
// (PostgreSQL) and cached per resource (TableMetaCache); a statement that
// fails on a table whose shape changed refreshes the entry.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/resource_manager.h"
#include "sql/recognizer.h"

namespace dtx::undo {

struct Column {
  std::string name;         // as the database names it (case kept)
  std::string type;         // as the database shows it: MariaDB COLUMN_TYPE, PostgreSQL format_type()
  bool generated = false;   // computed by the database: not written back, not compared
  bool identity_always = false;  // PostgreSQL GENERATED ALWAYS AS IDENTITY: INSERT needs OVERRIDING SYSTEM VALUE
  bool auto_increment = false;   // MariaDB AUTO_INCREMENT / PostgreSQL serial or identity
  std::string image;        // select-list expression: the exact text image (see the top)
  std::string value;        // expression of one `?`: the image back as the column's value
  std::string equals;       // null-safe in-database comparison of the column with one `?` image
};

struct TableMeta {
  sql::Dialect dialect = sql::Dialect::mysql;
  std::string schema;       // database (MariaDB) or schema (PostgreSQL), as the database names it
  std::string name;         // as the database names it
  std::string qualified;    // quoted and qualified, ready for SQL: `db`.`t` / "public"."t"
  std::vector<Column> columns;           // table order
  std::vector<std::size_t> primary_key;  // indexes into columns, in key order
  // The other UNIQUE keys (indexes into columns, key order): an upsert can
  // meet an existing row through any of them.
  std::vector<std::vector<std::size_t>> unique_keys;
  // Put in front of every statement that uses this table's image, value or
  // equals expressions. MariaDB tables with a TIMESTAMP column:
  // "SET STATEMENT time_zone='+00:00' FOR " (their images are UTC text, which
  // a fixed zone without daylight saving turns back into the same instant);
  // empty otherwise and on PostgreSQL.
  std::string statement_prefix;

  // "schema.name", for messages and lock keys.
  std::string display_name() const { return schema + "." + name; }
  // The column's index, or nullopt.
  std::optional<std::size_t> find(std::string_view column) const;
};

// The identifier quoted for the dialect (`a``b` / "a""b").
std::string quote_identifier(std::string_view name, sql::Dialect dialect);

// Reads the metadata of `table` (as the recognizer saw it written: quoting
// decides case folding; no schema = the session's current database / first
// schema of the search_path that has the table) through `session`, inside
// whatever transaction the session is in, in one round trip. Throws
// dtx::Error (without resource or gtrid: the caller adds them):
//   Errc::sql    the table does not exist (naming it);
//   Errc::usage  it has no primary key, or a column of a type AT mode cannot
//                image exactly (naming the column and type, and saying that
//                `mode = "xa"` handles the table).
TableMeta load_table_meta(Session& session, sql::Dialect dialect, const sql::TableRef& table);

// Per-resource cache of TableMeta, keyed by the table as written (PostgreSQL
// unquoted names folded). A name without schema is resolved once, in the
// session that first loads it: sessions of one resource share their default
// database / search_path; one that changes it (USE, SET search_path) should
// write schemas. Thread-safe; a load runs outside the lock.
class TableMetaCache {
 public:
  explicit TableMetaCache(sql::Dialect dialect) : dialect_(dialect) {}
  // The cached entry, or load_table_meta() through `session`.
  std::shared_ptr<const TableMeta> get(Session& session, const sql::TableRef& table);
  // Forget one table (after a statement failed on it), or everything.
  void invalidate(const sql::TableRef& table);
  void clear();

 private:
  static std::string key(sql::Dialect dialect, const sql::TableRef& table);
  sql::Dialect dialect_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const TableMeta>, std::less<>> entries_;
};

}  // namespace dtx::undo
