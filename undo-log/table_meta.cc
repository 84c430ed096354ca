// Table metadata for AT mode, read in one round trip per table, and the
// per-type choice of image / value / equals expressions.
//
// Reading. MariaDB: one statement, information_schema.COLUMNS UNION ALL the
// PRIMARY rows of STATISTICS (SEQ_IN_INDEX gives key order); both halves carry
// the schema and table as constants, so the server opens only that table (and
// matches its name as it matches table names, per lower_case_table_names);
// a join would make it scan STATISTICS of every database. No schema written
// = DATABASE(). PostgreSQL: one SELECT from
// to_regclass('"schema"."name"') (or the name alone, resolved through the
// search_path) joined with pg_attribute, pg_type (domains resolved to their
// base, the element type of arrays, the subtype of ranges), pg_attrdef and
// pg_index (indisprimary; the position in indkey gives key order). The
// identifier is folded the way the server folds it: unquoted to lower case
// (ASCII only, as PostgreSQL does for UTF-8), quoted kept.
//
// Choosing. Every image is text that identifies the value exactly, computed
// inside the database (MariaDB images are string expressions, so the binary
// protocol of a prepared statement cannot reformat them either); every value
// expression parses that text back without a lossy step (never through a
// client-side double, never through a comparison that converts to DOUBLE);
// every equals is true exactly when the stored value is the imaged one, so a
// case-only change under a _ci collation, a trailing space under PAD SPACE,
// 1.0 against 1.00, '1 day' against '24 hours' and -0 against 0 all count as
// changes. docs/at-mode-values.md lists the choices per type and why. A type
// without an exact text form (MariaDB spatial types, PostgreSQL composite and
// extension types) is refused when the table is loaded.
//
// Session state the images depend on. MariaDB TIMESTAMP: images are taken
// and written in UTC through TableMeta::statement_prefix (SET STATEMENT
// time_zone='+00:00' FOR ...), which costs no round trip and leaves the
// session's own zone alone. PostgreSQL: output of floats (extra_float_digits),
// dates (DateStyle) and intervals (IntervalStyle) follows session settings;
// images of such columns are guarded: under anything but the defaults'
// exact forms they fail with a message saying which setting to reset, rather
// than silently round or reorder. timestamptz and bytea, whose text follows
// TimeZone and bytea_output, compare typed (instants, bytes) instead of as
// text, so an image taken in one zone matches the row read in another.
#include "undo-log/table_meta.h"

#include <algorithm>

#include "dtx/error.h"

namespace dtx::undo {
namespace {

Error usage(const std::string& what) {
  Error::Details d;
  d.code = Errc::usage;
  return Error(d, what);
}

Error unknown_table(const std::string& what) {
  Error::Details d;
  d.code = Errc::sql;
  d.hint = "check the table's name, its schema and the session's database or search_path";
  return Error(d, what);
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower_ascii(a) == lower_ascii(b);
}

// The table as written, for messages.
std::string written(const sql::TableRef& t) {
  return t.schema.empty() ? t.name : t.schema + "." + t.name;
}

Error unimageable(const TableMeta& m, const std::string& column, const std::string& type) {
  return usage("column " + column + " of table " + m.display_name() + " has type " + type +
               ", which AT mode cannot image exactly; configure the resource with mode = \"xa\" "
               "to use this table");
}

TableMeta named(sql::Dialect dialect, std::string schema, std::string name) {
  TableMeta m;
  m.dialect = dialect;
  m.schema = std::move(schema);
  m.name = std::move(name);
  m.qualified = quote_identifier(m.schema, dialect) + "." + quote_identifier(m.name, dialect);
  return m;
}

void require_primary_key(const TableMeta& m) {
  if (m.primary_key.empty())
    throw usage("table " + m.display_name() +
                " has no primary key (or is not a base table): AT mode needs one to find each "
                "changed row again at rollback; configure the resource with mode = \"xa\" to "
                "use this table");
}

// ----------------------------------------------------------------- MariaDB

struct MysqlColumn {
  std::string name, column_type, data_type, extra, generated, charset, collation;
  std::string precision, scale, datetime_precision;
};

// Sets image, value and equals of `c` from its MariaDB type; false if the
// type has no exact image.
bool choose_mysql(Column& c, const MysqlColumn& info, bool& needs_utc) {
  const std::string q = quote_identifier(c.name, sql::Dialect::mysql);
  const std::string& t = info.data_type;
  const bool is_unsigned = info.column_type.find("unsigned") != std::string::npos;
  auto typed = [&](std::string image, std::string value) {
    c.image = std::move(image);
    c.value = std::move(value);
    c.equals = q + " <=> " + c.value;
  };
  const std::string fsp = info.datetime_precision.empty() ? "0" : info.datetime_precision;
  if (t == "tinyint" || t == "smallint" || t == "mediumint" || t == "int" || t == "bigint") {
    // Integers compare as integers with an integer cast (a string operand
    // would make it DOUBLE, which cannot tell 2^64-1 from 2^64-2).
    typed("CAST(" + q + " AS CHAR)", is_unsigned ? "CAST(? AS UNSIGNED)" : "CAST(? AS SIGNED)");
  } else if (t == "decimal") {
    typed("CAST(" + q + " AS CHAR)",
          "CAST(? AS DECIMAL(" + info.precision + "," + info.scale + "))");
  } else if (t == "double" || t == "float" || t == "real") {
    // MariaDB prints a DOUBLE with the shortest digits that read back to
    // it; a FLOAT's own text has 6 digits, its value widened to DOUBLE is
    // exact. MariaDB stores no NaN and no -0.
    typed("CAST(CAST(" + q + " AS DOUBLE) AS CHAR)", "CAST(? AS DOUBLE)");
  } else if (t == "bit") {
    c.image = "CAST(" + q + " + 0 AS CHAR)";
    c.value = "CAST(? AS UNSIGNED)";
    c.equals = q + " + 0 <=> CAST(? AS UNSIGNED)";
  } else if (t == "char" || t == "varchar" || t == "tinytext" || t == "text" ||
             t == "mediumtext" || t == "longtext" || t == "enum" || t == "set" || t == "json") {
    // Bytes, compared as bytes: a _ci or PAD SPACE collation would call
    // 'a' and 'A ' equal. The COLLATE makes the value usable in `col = value`
    // (an implicit collation of the other side would clash).
    if (info.charset.empty() || info.collation.empty()) return false;
    c.image = "HEX(" + q + ")";
    c.value = "CONVERT(UNHEX(?) USING " + info.charset + ") COLLATE " + info.collation;
    c.equals = "CAST(" + q + " AS BINARY) <=> UNHEX(?)";
  } else if (t == "binary" || t == "varbinary" || t == "tinyblob" || t == "blob" ||
             t == "mediumblob" || t == "longblob") {
    typed("HEX(" + q + ")", "UNHEX(?)");
  } else if (t == "date") {
    typed("CAST(" + q + " AS CHAR)", "CAST(? AS DATE)");
  } else if (t == "datetime") {
    typed("CAST(" + q + " AS CHAR)", "CAST(? AS DATETIME(" + fsp + "))");
  } else if (t == "timestamp") {
    // Text in UTC (statement_prefix); UTC has no hour that happens twice.
    typed("CAST(" + q + " AS CHAR)", "CAST(? AS DATETIME(" + fsp + "))");
    needs_utc = true;
  } else if (t == "time") {
    typed("CAST(" + q + " AS CHAR)", "CAST(? AS TIME(" + fsp + "))");
  } else if (t == "year") {
    // '0000' reads back as 0 (a string '0' would be 2000).
    typed("CAST(" + q + " AS CHAR)", "CAST(? AS UNSIGNED)");
  } else if (t == "uuid" || t == "inet4" || t == "inet6") {
    typed("CAST(" + q + " AS CHAR)", "CAST(? AS " + t + ")");
  } else {
    return false;  // spatial types, and anything newer than this list
  }
  return true;
}

TableMeta load_mysql(Session& session, const sql::TableRef& table) {
  // The columns (kind 0, in table order), then the primary key's columns
  // (kind 1, in key order). A UNION rather than a join: with the schema and
  // name as constants on both sides the server opens just this table for
  // each; joined, it scans STATISTICS of every database.
  const std::string schema = table.schema.empty() ? "DATABASE()" : "?";
  const std::string sql =
      "SELECT 0 AS kind, c.ORDINAL_POSITION AS pos, c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, "
      "c.COLUMN_TYPE, c.DATA_TYPE, c.EXTRA, c.IS_GENERATED, c.CHARACTER_SET_NAME, "
      "c.COLLATION_NAME, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION "
      "FROM information_schema.COLUMNS c "
      "WHERE c.TABLE_SCHEMA = " + schema + " AND c.TABLE_NAME = ? "
      "UNION ALL SELECT 1, s.SEQ_IN_INDEX, s.TABLE_SCHEMA, s.TABLE_NAME, s.COLUMN_NAME, "
      "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
      "FROM information_schema.STATISTICS s "
      "WHERE s.TABLE_SCHEMA = " + schema + " AND s.TABLE_NAME = ? AND s.INDEX_NAME = 'PRIMARY' "
      "ORDER BY kind, pos";
  std::vector<Param> params;
  for (int i = 0; i < 2; ++i) {
    if (!table.schema.empty()) params.emplace_back(table.schema);
    params.emplace_back(table.name);
  }
  Result r = session.execute(sql, params);
  if (r.empty() || r[0].text(0) != "0")
    throw unknown_table("table " + written(table) + " does not exist" +
                        (table.schema.empty() ? " in the session's current database" : ""));

  TableMeta m = named(sql::Dialect::mysql, r[0].text(2), r[0].text(3));
  std::vector<std::pair<std::string, std::string>> refused;  // (column, type)
  bool needs_utc = false;
  for (const Row& row : r) {
    auto cell = [&](std::size_t i) { return row.cell(i).value_or(""); };
    if (cell(0) == "1") {  // a key column, in key order
      if (auto i = m.find(cell(4))) m.primary_key.push_back(*i);
      continue;
    }
    MysqlColumn info{cell(4), cell(5),  lower_ascii(cell(6)), lower_ascii(cell(7)), cell(8),
                     cell(9), cell(10), cell(11), cell(12), cell(13)};
    Column c;
    c.name = info.name;
    c.type = info.column_type;
    c.generated = info.generated == "ALWAYS" ||
                  info.extra.find("generated") != std::string::npos;
    c.auto_increment = info.extra.find("auto_increment") != std::string::npos;
    if (!choose_mysql(c, info, needs_utc)) refused.emplace_back(c.name, c.type);
    m.columns.push_back(std::move(c));
  }
  require_primary_key(m);
  if (!refused.empty()) throw unimageable(m, refused[0].first, refused[0].second);
  if (needs_utc) m.statement_prefix = "SET STATEMENT time_zone='+00:00' FOR ";
  return m;
}

// -------------------------------------------------------------- PostgreSQL

// The text of these types follows session settings (extra_float_digits,
// DateStyle, IntervalStyle): their images are guarded.
bool pg_text_follows_settings(const std::string& typname) {
  static const char* const kNames[] = {"float4", "float8", "date", "timestamp", "timestamptz",
                                       "interval", "point", "line", "lseg", "box", "path",
                                       "polygon", "circle"};
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [&](const char* n) { return typname == n; });
}

// Compared typed rather than as text: their text follows TimeZone or
// bytea_output, while their equality is exact (instants, bytes).
bool pg_compare_typed(const std::string& typname) {
  return typname == "timestamptz" || typname == "bytea";
}

// The column's text, or an error naming the setting when the session would
// print it inexactly. current_setting() is not immutable, so the error
// branch is not folded at plan time and costs nothing when not taken.
std::string pg_guarded_text(const std::string& q) {
  return "CASE WHEN current_setting('extra_float_digits')::int >= 1 AND "
         "current_setting('DateStyle') LIKE 'ISO%' AND "
         "current_setting('IntervalStyle') = 'postgres' THEN " + q + "::text ELSE "
         "('dtx AT mode images this column exactly only under the default output settings: "
         "RESET extra_float_digits (now ' || current_setting('extra_float_digits') || "
         "'), DateStyle (now ' || current_setting('DateStyle') || '), IntervalStyle (now ' || "
         "current_setting('IntervalStyle') || ')')::int::text END";
}

struct PgType {
  std::string name;      // typname of the column's type after resolving one domain
  char typtype = 'b';    // b base, c composite, d domain, e enum, p pseudo, r range, m multirange
  bool in_catalog = true;
};

TableMeta load_postgres(Session& session, const sql::TableRef& table) {
  const auto fold = [](const std::string& s, bool quoted) { return quoted ? s : lower_ascii(s); };
  std::string regclass = quote_identifier(fold(table.name, table.name_quoted), sql::Dialect::postgres);
  if (!table.schema.empty())
    regclass = quote_identifier(fold(table.schema, table.schema_quoted), sql::Dialect::postgres) +
               "." + regclass;
  // One row per column; one row of NULLs if the table does not exist. For
  // each column: its type after one domain (bt), that type's element if it
  // is an array (et), its subtype if it is a range or multirange (rt).
  static const std::string kSql =
      "SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), "
      "a.attgenerated, a.attidentity, "
      "coalesce(pg_get_expr(ad.adbin, ad.adrelid) LIKE 'nextval(%', false), "
      "bt.typname, bt.typtype, bn.nspname = 'pg_catalog', "
      "et.typname, et.typtype, en.nspname = 'pg_catalog', "
      "rt.typname, array_position(i.indkey::int2[], a.attnum) "
      "FROM (SELECT to_regclass(?::text) AS oid) r "
      "LEFT JOIN pg_class c ON c.oid = r.oid "
      "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum "
      "LEFT JOIN pg_type t ON t.oid = a.atttypid "
      "LEFT JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
      "LEFT JOIN pg_namespace bn ON bn.oid = bt.typnamespace "
      "LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A' "
      "LEFT JOIN pg_namespace en ON en.oid = et.typnamespace "
      "LEFT JOIN pg_range rg ON rg.rngtypid = bt.oid OR rg.rngmultitypid = bt.oid "
      "LEFT JOIN pg_type rt ON rt.oid = rg.rngsubtype "
      "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
      "ORDER BY a.attnum";
  Result r = session.execute(kSql, std::vector<Param>{Param(regclass)});
  if (r.empty() || r[0].is_null(1))
    throw unknown_table("table " + written(table) + " does not exist" +
                        (table.schema.empty() ? " on the session's search_path" : ""));

  TableMeta m = named(sql::Dialect::postgres, r[0].text(0), r[0].text(1));
  const std::string relkind = r[0].text(2);
  std::vector<std::pair<long long, std::size_t>> key;
  std::vector<std::pair<std::string, std::string>> refused;
  for (const Row& row : r) {
    if (row.is_null(3)) continue;  // a table without columns
    auto cell = [&](std::size_t i) { return row.cell(i).value_or(""); };
    Column c;
    c.name = cell(3);
    c.type = cell(4);
    c.generated = !cell(5).empty();  // attgenerated 's'
    const std::string identity = cell(6);
    c.identity_always = identity == "a";
    c.auto_increment = !identity.empty() || cell(7) == "t";
    const PgType base{cell(8), cell(9).empty() ? 'b' : cell(9)[0], cell(10) == "t"};
    const bool is_array = !row.is_null(11);
    const PgType element{cell(11), cell(12).empty() ? 'b' : cell(12)[0], cell(13) == "t"};
    const std::string subtype = cell(14);

    // What the image's exactness rests on: the type itself, an array's
    // element, a range's subtype. Types from extensions (PostGIS, ...),
    // composites, domains over domains, arrays of domains and range types
    // outside pg_catalog have no text form we can vouch for.
    const PgType& leaf = is_array ? element : base;
    const bool known = (leaf.typtype == 'b' && leaf.in_catalog) || leaf.typtype == 'e' ||
                       ((leaf.typtype == 'r' || leaf.typtype == 'm') && leaf.in_catalog);
    if (!known || (is_array && element.name == "money")) refused.emplace_back(c.name, c.type);
    const std::string q = quote_identifier(c.name, m.dialect);
    const std::string leaf_name = leaf.typtype == 'r' || leaf.typtype == 'm' ? subtype : leaf.name;
    const bool guarded = pg_text_follows_settings(leaf_name);
    if (base.name == "money") {
      // money's text follows lc_monetary; as numeric it is exact.
      c.image = q + "::numeric::text";
      c.value = "?::numeric::money";
      c.equals = q + " IS NOT DISTINCT FROM ?::numeric::money";
    } else if (base.name == "timestamptz" && !is_array) {
      // In UTC whatever the session's TimeZone: the same instant has one
      // image, so a key with a timestamptz in it gives one global lock key
      // to sessions in every time zone.
      c.image = "(CASE WHEN isfinite(" + q + ") THEN to_char(" + q +
                " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US\"+00\" BC') ELSE " + q + "::text END)";
      c.value = "?::" + c.type;
      c.equals = q + " IS NOT DISTINCT FROM ?::" + c.type;
    } else if (base.name == "bytea" && !is_array) {
      // Hex whatever the session's bytea_output: one image per value (lock keys).
      c.image = "('\\x' || encode(" + q + ", 'hex'))";
      c.value = "?::" + c.type;
      c.equals = q + " IS NOT DISTINCT FROM ?::" + c.type;
    } else {
      c.image = guarded ? pg_guarded_text(q) : q + "::text";
      c.value = "?::" + c.type;
      if (pg_compare_typed(leaf_name))
        c.equals = q + " IS NOT DISTINCT FROM ?::" + c.type;
      else  // the text is canonical: comparing it is exact (1.0 vs 1.00, -0 vs 0, case)
        c.equals = "(" + c.image + ") COLLATE \"C\" IS NOT DISTINCT FROM ?";
    }
    if (!row.is_null(15)) key.emplace_back(row.as_int64(15), m.columns.size());
    m.columns.push_back(std::move(c));
  }
  if (relkind != "r" && relkind != "p") m.primary_key.clear();
  else {
    std::sort(key.begin(), key.end());
    for (const auto& k : key) m.primary_key.push_back(k.second);
  }
  require_primary_key(m);
  if (!refused.empty()) throw unimageable(m, refused[0].first, refused[0].second);
  return m;
}

}  // namespace

std::optional<std::size_t> TableMeta::find(std::string_view column) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    // MariaDB column names ignore case; PostgreSQL's are exact once folded.
    if (dialect == sql::Dialect::mysql ? iequals_ascii(columns[i].name, column)
                                       : columns[i].name == column)
      return i;
  }
  return std::nullopt;
}

std::string quote_identifier(std::string_view name, sql::Dialect dialect) {
  const char quote = dialect == sql::Dialect::mysql ? '`' : '"';
  std::string out(1, quote);
  for (char c : name) {
    if (c == quote) out += quote;
    out += c;
  }
  out += quote;
  return out;
}

TableMeta load_table_meta(Session& session, sql::Dialect dialect, const sql::TableRef& table) {
  return dialect == sql::Dialect::mysql ? load_mysql(session, table)
                                        : load_postgres(session, table);
}

std::string TableMetaCache::key(sql::Dialect dialect, const sql::TableRef& table) {
  // PostgreSQL folds unquoted names; MariaDB compares names the same way
  // whether quoted or not.
  const auto as_meant = [&](const std::string& s, bool quoted) {
    return dialect == sql::Dialect::postgres && !quoted ? lower_ascii(s) : s;
  };
  return as_meant(table.schema, table.schema_quoted) + '\n' +
         as_meant(table.name, table.name_quoted);
}

std::shared_ptr<const TableMeta> TableMetaCache::get(Session& session,
                                                     const sql::TableRef& table) {
  const std::string k = key(dialect_, table);
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(k); it != entries_.end()) return it->second;
  }
  // Loaded outside the lock: a slow catalog query must not stall other
  // tables. Two threads may both load one table; either result is right.
  auto meta = std::make_shared<const TableMeta>(load_table_meta(session, dialect_, table));
  std::lock_guard lock(mu_);
  return entries_.emplace(k, std::move(meta)).first->second;
}

void TableMetaCache::invalidate(const sql::TableRef& table) {
  std::lock_guard lock(mu_);
  entries_.erase(key(dialect_, table));
}

void TableMetaCache::clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

}  // namespace dtx::undo
