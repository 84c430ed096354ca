// The PostgreSQL dialect of the AT-mode recognizer.
//
// Design note. The statement is read by PostgreSQL's own grammar, libpg_query
// (the server's parser compiled as a library): whatever the server accepts is
// read the way the server reads it, so no statement is misread by a guess of
// ours, and whatever it rejects is refused here with the parser's message.
// dtx's `?` placeholders are first renumbered to $1..$n (number_placeholders,
// the PostgreSQL driver's own rewrite, so the parser sees what the server will
// see). The parse tree (JSON) decides what the statement is; our own small
// tokenizer over the same text finds where each piece ends, since the tree
// only records where nodes start: an expression starts after its `=`, `WHERE`,
// `(` or `,`, and ends before the first `,`, `)`, `;` or clause keyword at
// its own parenthesis depth that lies past every location inside its subtree
// (so `a IS DISTINCT FROM b` keeps its FROM). Offsets in the renumbered text
// are mapped back to the original, so every Fragment is the statement's
// original text byte for byte, `?` included, with the indexes of its `?`s.
#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "drivers/postgres_driver.h"
#include "drivers/sql_words.h"
#include "sql/recognizer.h"

namespace dtx::sql {
namespace {

using json = nlohmann::json;

// Thrown inside the reader; recognize_postgres turns it into a Refusal.
struct Refused {
  std::string what;
};

[[noreturn]] void refuse(std::string what) { throw Refused{std::move(what)}; }

// ---------------------------------------------------------------------------
// Tokens of PostgreSQL's lexical syntax, enough to find where pieces end.

enum class Tok { word, quoted, string, number, param, op, punct };

struct Token {
  std::size_t begin = 0;
  std::size_t end = 0;
  Tok type = Tok::op;
};

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) {
  return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}
bool op_char(char c) { return std::string_view("+-*/<>=~!@#%^&|`?").find(c) != std::string_view::npos; }

// End of a '...' string starting at s[i] == '\''; backslash escapes if `escapes`.
std::size_t string_end(std::string_view s, std::size_t i, bool escapes) {
  std::size_t j = i + 1;
  while (j < s.size()) {
    if (escapes && s[j] == '\\') {
      j += 2;
    } else if (s[j] == '\'') {
      if (j + 1 < s.size() && s[j + 1] == '\'') {
        j += 2;
      } else {
        return j + 1;
      }
    } else {
      ++j;
    }
  }
  return s.size();
}

std::size_t quoted_end(std::string_view s, std::size_t i) {
  std::size_t j = i + 1;
  while (j < s.size()) {
    if (s[j] == '"') {
      if (j + 1 < s.size() && s[j + 1] == '"') {
        j += 2;
        continue;
      }
      return j + 1;
    }
    ++j;
  }
  return s.size();
}

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const char c = s[i];
    if (is_sql_space(c)) {
      ++i;
      continue;
    }
    if (std::size_t e = sql_comment_end(s, i, SqlDialect::postgres); e != i) {
      i = e;
      continue;
    }
    Token t{i, i + 1, Tok::punct};
    if (c == '\'') {
      t = {i, string_end(s, i, false), Tok::string};
    } else if (c == '"') {
      t = {i, quoted_end(s, i), Tok::quoted};
    } else if ((c == 'U' || c == 'u') && i + 2 < n && s[i + 1] == '&' && (s[i + 2] == '\'' || s[i + 2] == '"')) {
      t = s[i + 2] == '"' ? Token{i, quoted_end(s, i + 2), Tok::quoted}
                          : Token{i, string_end(s, i + 2, false), Tok::string};
    } else if (std::string_view("EeBbXxNn").find(c) != std::string_view::npos && i + 1 < n && s[i + 1] == '\'') {
      t = {i, string_end(s, i + 1, c == 'E' || c == 'e'), Tok::string};
    } else if (ident_start(c)) {
      std::size_t j = i + 1;
      while (j < n && ident_char(s[j])) ++j;
      t = {i, j, Tok::word};
    } else if (c == '$') {
      std::size_t j = i + 1;
      if (j < n && std::isdigit(static_cast<unsigned char>(s[j]))) {
        while (j < n && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        t = {i, j, Tok::param};
      } else {
        while (j < n && ident_char(s[j]) && s[j] != '$') ++j;
        if (j < n && s[j] == '$') {
          const std::string_view tag = s.substr(i, j - i + 1);
          const std::size_t close = s.find(tag, j + 1);
          t = {i, close == std::string_view::npos ? n : close + tag.size(), Tok::string};
        } else {
          t = {i, i + 1, Tok::op};
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      std::size_t j = i;
      while (j < n && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' ||
                       (s[j] == '.' && !(j + 1 < n && s[j + 1] == '.')))) {
        // an exponent's sign: 1e-5
        if ((s[j] == 'e' || s[j] == 'E') && j + 1 < n && (s[j + 1] == '+' || s[j + 1] == '-')) ++j;
        ++j;
      }
      t = {i, j, Tok::number};
    } else if (c == ':' && i + 1 < n && (s[i + 1] == ':' || s[i + 1] == '=')) {
      t = {i, i + 2, Tok::op};
    } else if (op_char(c)) {
      std::size_t j = i;
      while (j < n && op_char(s[j]) && sql_comment_end(s, j, SqlDialect::postgres) == j) ++j;
      // A multi-character operator ends in + or - only if it holds one of
      // ~ ! @ # % ^ & | ` ? (PostgreSQL's rule): "=-1" is "=" then "-1".
      const std::string_view run = s.substr(i, j - i);
      if (run.size() > 1 && run.find_first_of("~!@#%^&|`?") == std::string_view::npos) {
        while (j > i + 1 && (s[j - 1] == '+' || s[j - 1] == '-')) --j;
      }
      t = {i, j, Tok::op};
    }
    out.push_back(t);
    i = t.end;
  }
  return out;
}

// UTF-8: the byte offset of character `chars`, and the characters in `s`.
std::size_t utf8_byte_of(std::string_view s, std::size_t chars) {
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars-- == 0) break;
  }
  return i;
}
std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

// Words that end an expression when they stand at its own depth past every
// location in its tree: all reserved, so never a bare identifier there.
constexpr std::string_view kClauseWords[] = {"FROM",  "WHERE",  "RETURNING", "GROUP", "HAVING",
                                             "WINDOW", "ORDER", "LIMIT",     "OFFSET", "FETCH",
                                             "FOR",   "UNION",  "INTERSECT", "EXCEPT", "INTO",
                                             "ON",    "DO",     "USING"};

// ---------------------------------------------------------------------------
// Parse-tree helpers.

// The largest "location" in a subtree (-1 if none).
long max_location(const json& j) {
  long best = -1;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "location" && it->is_number_integer()) {
        best = std::max(best, it->get<long>());
      } else {
        best = std::max(best, max_location(*it));
      }
    }
  } else if (j.is_array()) {
    for (const auto& e : j) best = std::max(best, max_location(e));
  }
  return best;
}

long min_location(const json& j) {
  long best = -1;
  auto take = [&](long v) {
    if (v >= 0 && (best < 0 || v < best)) best = v;
  };
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "location" && it->is_number_integer()) {
        take(it->get<long>());
      } else {
        take(min_location(*it));
      }
    }
  } else if (j.is_array()) {
    for (const auto& e : j) take(min_location(e));
  }
  return best;
}

// True if a node of type `type` (a wrapper key) occurs in the subtree.
bool contains_node(const json& j, std::string_view type) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == type || contains_node(*it, type)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& e : j) {
      if (contains_node(e, type)) return true;
    }
  }
  return false;
}

// Calls f on every ParamRef's location.
template <typename F>
void for_each_param(const json& j, F&& f) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "ParamRef") f(it->value("location", -1L));
      for_each_param(*it, f);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) for_each_param(e, f);
  }
}

// True if a common table expression anywhere holds something other than a SELECT.
bool has_writing_cte(const json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "CommonTableExpr" && it->contains("ctequery") && !(*it)["ctequery"].contains("SelectStmt")) {
        return true;
      }
      if (has_writing_cte(*it)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& e : j) {
      if (has_writing_cte(e)) return true;
    }
  }
  return false;
}

bool has(const json& node, const char* key) {
  if (!node.contains(key)) return false;
  const json& v = node[key];
  return !(v.is_null() || ((v.is_array() || v.is_object()) && v.empty()));
}

// ---------------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string_view sql) : orig_(sql) {}

  Statement run();

 private:
  // Offsets.
  std::size_t to_orig(std::size_t n) const;
  Fragment fragment(std::size_t first_tok, std::size_t last_tok) const;
  std::string_view text(const Token& t) const { return std::string_view(num_).substr(t.begin, t.end - t.begin); }

  // Tokens.
  bool is_word(std::size_t i, std::string_view w) const;
  bool is_punct(std::size_t i, char c) const;
  std::size_t tok_at(long location) const;          // the token starting there
  std::size_t tok_from(long location) const;        // the first token at or after
  std::size_t find_word(std::string_view w, std::size_t from, std::size_t to, int level = 0) const;
  std::size_t expr_end(std::size_t first, long floor) const;
  std::size_t expect(std::size_t i, char c, const char* where) const;
  Fragment read_expr(std::size_t& i, const json& tree);

  // Pieces.
  void read_table(const json& range_var, TableRef& table) const;
  void read_assignments(const json& target_list, std::vector<Assignment>& out, const char* stmt);
  Fragment read_where(const json& where_clause, std::size_t from, const char* stmt, int level = 0);
  void check_common(const json& stmt, const char* name) const;

  Statement read_insert(const json& s);
  Statement read_update(const json& s);
  Statement read_delete(const json& s);
  Statement read_select(const json& s);
  [[noreturn]] void refuse_other(const std::string& type) const;
  bool placeholder_as_operator(std::size_t error_offset) const;

  std::string_view orig_;
  std::string num_;                       // `?` renumbered to $n
  std::vector<std::size_t> qpos_;         // original offset of each `?`
  std::vector<std::size_t> npos_, nlen_;  // where each $n stands in num_, and its length
  std::vector<Token> toks_;
  std::vector<int> level_;  // parenthesis depth of each token (a pair shares one)
};

std::size_t Reader::to_orig(std::size_t n) const {
  // k: the placeholders that start before n (all but perhaps the last end before it).
  const std::size_t k = static_cast<std::size_t>(std::lower_bound(npos_.begin(), npos_.end(), n) - npos_.begin());
  if (k == 0) return n;
  if (npos_[k - 1] + nlen_[k - 1] > n) return qpos_[k - 1];  // inside $n: its ?
  // Each $n before n is nlen - 1 bytes longer than its ?.
  return n - (npos_[k - 1] + nlen_[k - 1] - (qpos_[k - 1] + 1));
}

Fragment Reader::fragment(std::size_t first_tok, std::size_t last_tok) const {
  const std::size_t b = to_orig(toks_[first_tok].begin);
  const std::size_t e = to_orig(toks_[last_tok].end);
  Fragment f;
  f.text = std::string(orig_.substr(b, e - b));
  for (auto k = std::lower_bound(qpos_.begin(), qpos_.end(), b); k != qpos_.end() && *k < e; ++k) {
    f.params.push_back(static_cast<std::size_t>(k - qpos_.begin()));
  }
  return f;
}

bool Reader::is_word(std::size_t i, std::string_view w) const {
  if (i >= toks_.size() || toks_[i].type != Tok::word || !iequals(text(toks_[i]), w)) return false;
  return !(i > 0 && is_punct(i - 1, '.'));  // t.where is a column, not a keyword
}

bool Reader::is_punct(std::size_t i, char c) const {
  return i < toks_.size() && toks_[i].end - toks_[i].begin == 1 && num_[toks_[i].begin] == c &&
         (toks_[i].type == Tok::punct || toks_[i].type == Tok::op);
}

std::size_t Reader::tok_at(long location) const {
  const std::size_t i = tok_from(location);
  if (i == toks_.size() || static_cast<long>(toks_[i].begin) != location) {
    throw std::runtime_error("no token at offset " + std::to_string(location));
  }
  return i;
}

std::size_t Reader::tok_from(long location) const {
  auto it = std::lower_bound(toks_.begin(), toks_.end(), location,
                             [](const Token& t, long loc) { return static_cast<long>(t.begin) < loc; });
  return static_cast<std::size_t>(it - toks_.begin());
}

std::size_t Reader::find_word(std::string_view w, std::size_t from, std::size_t to, int level) const {
  for (std::size_t i = from; i < std::min(to, toks_.size()); ++i) {
    if (level_[i] == level && is_word(i, w)) return i;
  }
  return toks_.size();
}

std::size_t Reader::expr_end(std::size_t first, long floor) const {
  int depth = 0;
  std::size_t last = first;  // one past the last token taken
  for (std::size_t i = first; i < toks_.size(); ++i) {
    if (depth == 0) {
      if (is_punct(i, ',') || is_punct(i, ')') || is_punct(i, ']') || is_punct(i, ';')) break;
      if (static_cast<long>(toks_[i].begin) > floor &&
          std::any_of(std::begin(kClauseWords), std::end(kClauseWords),
                      [&](std::string_view w) { return is_word(i, w); })) {
        break;
      }
    }
    if (is_punct(i, '(') || is_punct(i, '[')) ++depth;
    if (is_punct(i, ')') || is_punct(i, ']')) --depth;
    last = i + 1;
  }
  if (last == first) throw std::runtime_error("an empty expression");
  return last - 1;
}

std::size_t Reader::expect(std::size_t i, char c, const char* where) const {
  if (!is_punct(i, c)) throw std::runtime_error(std::string("expected '") + c + "' " + where);
  return i + 1;
}

// The expression whose tree is `tree`, starting at token i; i moves past it.
Fragment Reader::read_expr(std::size_t& i, const json& tree) {
  const std::size_t last = expr_end(i, max_location(tree));
  Fragment f = fragment(i, last);
  i = last + 1;
  return f;
}

void Reader::read_table(const json& rv, TableRef& table) const {
  if (has(rv, "catalogname")) refuse("a table qualified by its database (database.schema.table)");
  if (!rv.value("inh", false)) refuse("ONLY (a table without its inheritance children)");
  std::size_t i = tok_at(rv.value("location", -1L));
  auto part = [&](const char* key, std::string& name, bool& quoted) {
    if (i >= toks_.size() || (toks_[i].type != Tok::word && toks_[i].type != Tok::quoted)) {
      throw std::runtime_error("expected a table name");
    }
    quoted = toks_[i].type == Tok::quoted;
    // A quoted name is the parser's (escapes undone); an unquoted one as
    // written, cut where the parser cut it (past 63 bytes; folding keeps lengths).
    const std::string parsed = rv.value(key, std::string());
    name = quoted ? parsed : std::string(text(toks_[i]).substr(0, parsed.size()));
    ++i;
  };
  if (has(rv, "schemaname")) {
    part("schemaname", table.schema, table.schema_quoted);
    i = expect(i, '.', "after a schema name");
  }
  part("relname", table.name, table.name_quoted);
  if (rv.contains("alias")) {
    if (has(rv["alias"], "colnames")) refuse("a table alias that renames columns (AS a(x, y))");
    table.alias = rv["alias"].value("aliasname", std::string());
  }
}

void Reader::read_assignments(const json& list, std::vector<Assignment>& out, const char* stmt) {
  std::vector<Fragment> row;  // the values of the current SET (a, b) = (...)
  for (const json& item : list) {
    const json& rt = item.at("ResTarget");
    if (has(rt, "indirection")) {
      refuse(std::string("an assignment to an array element or a field of a column in ") + stmt);
    }
    Assignment a;
    a.column = rt.value("name", std::string());
    std::size_t i = tok_at(rt.value("location", -1L));
    const json& val = rt.at("val");
    if (val.contains("MultiAssignRef")) {
      const json& m = val["MultiAssignRef"];
      const long colno = m.value("colno", 0L);
      const long ncolumns = m.value("ncolumns", 0L);
      if (colno == 1) {
        if (!m.contains("source") || !m["source"].contains("RowExpr") ||
            static_cast<long>(m["source"]["RowExpr"].value("args", json::array()).size()) != ncolumns) {
          refuse(std::string("SET (columns) = a value that is not a row of as many values, in ") + stmt);
        }
        // ( a, b ) = [ROW] ( x, y )
        std::size_t j = i;
        while (j < toks_.size() && !is_punct(j, ')')) ++j;
        j = expect(j, ')', "after SET's column list");
        j = expect(j, '=', "after SET's column list");
        if (is_word(j, "ROW")) ++j;
        j = expect(j, '(', "in SET (columns) = (values)");
        row.clear();
        const json& args = m["source"]["RowExpr"]["args"];
        for (std::size_t k = 0; k < args.size(); ++k) {
          row.push_back(read_expr(j, args[k]));
          j = expect(j, k + 1 < args.size() ? ',' : ')', "in SET (columns) = (values)");
        }
      }
      if (colno < 1 || static_cast<std::size_t>(colno) > row.size()) {
        throw std::runtime_error("SET (columns) out of order");
      }
      a.value = row[static_cast<std::size_t>(colno - 1)];
    } else {
      ++i;
      i = expect(i, '=', "after a SET column");
      a.value = read_expr(i, val);
    }
    out.push_back(std::move(a));
  }
}

Fragment Reader::read_where(const json& where, std::size_t from, const char* stmt, int level) {
  if (where.contains("CurrentOfExpr")) refuse(std::string("WHERE CURRENT OF (a cursor's row) in ") + stmt);
  std::size_t i = find_word("WHERE", from, tok_from(min_location(where)), level);
  if (i == toks_.size()) throw std::runtime_error("no WHERE keyword");
  ++i;
  return read_expr(i, where);
}

void Reader::check_common(const json& s, const char* name) const {
  if (has(s, "withClause")) refuse(std::string("WITH (a common table expression) in ") + name);
  if (contains_node(s, "SubLink")) refuse(std::string("a subquery in ") + name);
}

Statement Reader::read_insert(const json& s) {
  check_common(s, "INSERT");
  Statement st;
  st.kind = Kind::insert;
  read_table(s.at("relation"), st.table);
  for (const json& c : s.value("cols", json::array())) {
    const json& rt = c.at("ResTarget");
    if (has(rt, "indirection")) refuse("INSERT into an array element or a field of a column");
    st.columns.push_back(rt.value("name", std::string()));
  }
  if (!has(s, "selectStmt")) refuse("INSERT ... DEFAULT VALUES");
  static const json kNoSelect = json::object();
  const json& sel = s["selectStmt"].contains("SelectStmt") ? s["selectStmt"]["SelectStmt"] : kNoSelect;
  if (!has(sel, "valuesLists") || sel.value("op", std::string("SETOP_NONE")) != "SETOP_NONE") {
    refuse("INSERT ... SELECT");
  }
  if (has(sel, "sortClause") || has(sel, "limitCount") || has(sel, "limitOffset") || has(sel, "lockingClause") ||
      has(sel, "withClause")) {
    refuse("INSERT ... VALUES with ORDER BY, LIMIT, OFFSET, WITH or a locking clause");
  }
  const json& rows = sel["valuesLists"];
  // The VALUES keyword: the last one before the first value (a column may be
  // called values; a parenthesized (VALUES ...) is one level down).
  const std::size_t first_value = tok_from(min_location(rows));
  std::size_t v = toks_.size();
  for (std::size_t k = 0; k < first_value && k < toks_.size(); ++k) {
    if (is_word(k, "VALUES")) v = k;
  }
  if (v == toks_.size()) throw std::runtime_error("no VALUES keyword");
  std::size_t i = v + 1;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const json& items = rows[r].at("List").at("items");
    const std::size_t width = st.columns.empty() ? rows[0].at("List").at("items").size() : st.columns.size();
    if (items.size() != width) {
      refuse("an INSERT whose VALUES rows do not match its column list");
    }
    i = expect(i, '(', "before a VALUES row");
    std::vector<Fragment> row;
    for (std::size_t k = 0; k < items.size(); ++k) {
      row.push_back(read_expr(i, items[k]));
      i = expect(i, k + 1 < items.size() ? ',' : ')', "in a VALUES row");
    }
    st.rows.push_back(std::move(row));
    if (r + 1 < rows.size()) i = expect(i, ',', "between VALUES rows");
  }
  if (has(s, "onConflictClause")) {
    const json& oc = s["onConflictClause"];
    const bool update = oc.value("action", std::string()) == "ONCONFLICT_UPDATE";
    st.upsert = update ? Upsert::on_conflict_do_update : Upsert::on_conflict_do_nothing;
    if (has(oc, "infer")) {
      const json& infer = oc["infer"];
      if (has(infer, "whereClause")) refuse("ON CONFLICT with an index predicate (WHERE in the conflict target)");
      for (const json& e : infer.value("indexElems", json::array())) {
        const json& ie = e.at("IndexElem");
        if (!has(ie, "name") || has(ie, "collation") || has(ie, "opclass")) {
          refuse("ON CONFLICT on an expression, collation or operator class");
        }
        st.conflict_target.push_back(ie["name"].get<std::string>());
      }
      st.conflict_constraint = infer.value("conname", std::string());
    } else if (update) {
      refuse("ON CONFLICT DO UPDATE without a conflict target");
    }
    if (update) {
      std::size_t conflict = find_word("CONFLICT", i, toks_.size());
      read_assignments(oc.value("targetList", json::array()), st.assignments, "INSERT ... ON CONFLICT DO UPDATE");
      if (has(oc, "whereClause")) st.where = read_where(oc["whereClause"], conflict, "INSERT");
    }
  }
  st.returning = has(s, "returningList");
  return st;
}

Statement Reader::read_update(const json& s) {
  check_common(s, "UPDATE");
  if (has(s, "fromClause")) refuse("UPDATE ... FROM (a multi-table UPDATE)");
  Statement st;
  st.kind = Kind::update;
  read_table(s.at("relation"), st.table);
  read_assignments(s.value("targetList", json::array()), st.assignments, "UPDATE");
  if (has(s, "whereClause")) st.where = read_where(s["whereClause"], 0, "UPDATE");
  st.returning = has(s, "returningList");
  return st;
}

Statement Reader::read_delete(const json& s) {
  check_common(s, "DELETE");
  if (has(s, "usingClause")) refuse("DELETE ... USING (a multi-table DELETE)");
  Statement st;
  st.kind = Kind::delete_;
  read_table(s.at("relation"), st.table);
  if (has(s, "whereClause")) st.where = read_where(s["whereClause"], 0, "DELETE");
  st.returning = has(s, "returningList");
  return st;
}

Statement Reader::read_select(const json& s) {
  if (has(s, "intoClause")) refuse("SELECT ... INTO (it creates a table)");
  if (has_writing_cte(s)) refuse("a data-changing WITH (INSERT, UPDATE or DELETE in a common table expression)");
  Statement st;
  if (!has(s, "lockingClause")) {
    if (contains_node(s, "LockingClause")) refuse("FOR UPDATE / FOR SHARE inside a subquery");
    st.kind = Kind::select;
    return st;
  }
  // Any locking clause (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY
  // SHARE, with NOWAIT or SKIP LOCKED) asks for rows no one else changes, so
  // each is global-lock aware like FOR UPDATE.
  constexpr const char* kName = "SELECT ... FOR UPDATE";
  if (s.value("op", std::string("SETOP_NONE")) != "SETOP_NONE") {
    refuse("SELECT ... FOR UPDATE with UNION, INTERSECT or EXCEPT");
  }
  check_common(s, kName);
  if (has(s, "groupClause") || has(s, "havingClause") || has(s, "distinctClause") || has(s, "windowClause")) {
    refuse("SELECT ... FOR UPDATE with GROUP BY, HAVING, DISTINCT or WINDOW");
  }
  const json from = s.value("fromClause", json::array());
  if (from.empty()) refuse("SELECT ... FOR UPDATE without a table");
  if (from.size() > 1 || from[0].contains("JoinExpr")) refuse("SELECT ... FOR UPDATE over a join or several tables");
  if (!from[0].contains("RangeVar")) {
    refuse("SELECT ... FOR UPDATE over something other than one table (a subquery, a function, TABLESAMPLE)");
  }
  st.kind = Kind::select_for_update;
  const json& rv = from[0]["RangeVar"];
  read_table(rv, st.table);
  // A parenthesized SELECT sits one level down: its WHERE is at its table's level.
  const int level = level_[tok_at(rv.value("location", -1L))];
  if (has(s, "whereClause")) st.where = read_where(s["whereClause"], 0, kName, level);
  return st;
}

// The statement's first word, or its first two (CREATE TABLE, ALTER INDEX).
std::string leading_words(std::string_view sql, bool ddl) {
  SqlKeywords words(sql, SqlDialect::postgres);
  std::string out = words.next(/*skip_semicolons=*/true);
  if (ddl && (out == "CREATE" || out == "ALTER" || out == "DROP")) {
    std::string w = words.next();
    while (w == "OR" || w == "REPLACE" || w == "UNIQUE" || w == "TEMP" || w == "TEMPORARY" || w == "UNLOGGED" ||
           w == "GLOBAL" || w == "LOCAL" || w == "MATERIALIZED") {
      w = words.next();
    }
    if (!w.empty()) out += " " + w;
  }
  return out;
}

// True if the parser stopped right after a placeholder that stands between two
// operands, as jsonb's `doc ? 'key'` would (the ? became $n).
bool Reader::placeholder_as_operator(std::size_t error_offset) const {
  const std::size_t i = tok_from(static_cast<long>(error_offset));
  if (i < 2 || i > toks_.size() || toks_[i - 1].type != Tok::param) return false;
  // jsonpath's @? : the ? glued to an @ or # before it.
  const std::size_t q = to_orig(toks_[i - 1].begin);
  if (q > 0 && (orig_[q - 1] == '@' || orig_[q - 1] == '#')) return true;
  const std::size_t p = i - 2;
  static constexpr std::string_view kNotOperands[] = {"AND", "OR", "NOT", "WHERE", "SET", "SELECT", "THEN", "ELSE",
                                                      "WHEN", "IS", "LIKE", "IN", "BY", "VALUES", "RETURNING"};
  if (toks_[p].type == Tok::word) {
    return std::none_of(std::begin(kNotOperands), std::end(kNotOperands),
                        [&](std::string_view w) { return is_word(p, w); });
  }
  return toks_[p].type == Tok::quoted || toks_[p].type == Tok::string || toks_[p].type == Tok::number ||
         is_punct(p, ')') || is_punct(p, ']');
}

void Reader::refuse_other(const std::string& type) const {
  static const std::pair<const char*, const char*> kNames[] = {
      {"MergeStmt", "MERGE"},
      {"TruncateStmt", "TRUNCATE"},
      {"CopyStmt", "COPY"},
      {"CallStmt", "CALL (a procedure)"},
      {"DoStmt", "DO (an anonymous code block)"},
      {"LockStmt", "LOCK TABLE"},
      {"ExecuteStmt", "EXECUTE (a prepared statement)"},
      {"PrepareStmt", "PREPARE"},
      {"CreateTableAsStmt", "CREATE TABLE AS"},
      {"ExplainStmt", "EXPLAIN of a statement other than a plain SELECT"},
  };
  for (const auto& [node, name] : kNames) {
    if (type == node) refuse(name);
  }
  if (type == "VariableSetStmt") refuse(leading_words(orig_, false) + " (a session setting)");
  if (type == "TransactionStmt") refuse("transaction control (" + leading_words(orig_, false) + ")");
  static constexpr std::string_view kDdl[] = {"Create", "Alter", "Drop", "Rename", "Grant", "Comment", "Index",
                                              "View",   "Define", "Reindex", "Cluster", "Vacuum", "Refresh",
                                              "Sec",    "Composite", "Reassign"};
  for (std::string_view p : kDdl) {
    if (type.rfind(p, 0) == 0) refuse("DDL (" + leading_words(orig_, true) + ")");
  }
  const std::string first = leading_words(orig_, false);
  refuse(first.empty() ? type : first);
}

Statement Reader::run() {
  if (orig_.find('\0') != std::string_view::npos) refuse("a statement with a NUL byte");
  NumberedSql numbered = number_placeholders(orig_);
  num_ = std::move(numbered.sql);
  // Where each `?` became $n: the two texts differ only there.
  for (std::size_t i = 0, j = 0; i < orig_.size();) {
    if (j < num_.size() && orig_[i] == num_[j]) {
      ++i, ++j;
      continue;
    }
    std::size_t len = 1;
    while (j + len < num_.size() && std::isdigit(static_cast<unsigned char>(num_[j + len]))) ++len;
    qpos_.push_back(i);
    npos_.push_back(j);
    nlen_.push_back(len);
    ++i;
    j += len;
  }
  if (qpos_.size() != numbered.placeholders) throw std::runtime_error("placeholder map");

  toks_ = tokenize(num_);
  level_.resize(toks_.size());
  int depth = 0;
  for (std::size_t i = 0; i < toks_.size(); ++i) {
    if (is_punct(i, ')') || is_punct(i, ']')) --depth;
    level_[i] = depth;
    if (is_punct(i, '(') || is_punct(i, '[')) ++depth;
  }

  PgQueryParseResult result = pg_query_parse(num_.c_str());
  struct Free {
    PgQueryParseResult& r;
    ~Free() { pg_query_free_parse_result(r); }
  } free_result{result};
  if (result.error != nullptr) {
    std::string what = std::string("SQL that PostgreSQL's parser rejects (") + result.error->message;
    // cursorpos counts characters (UTF-8), 1-based, in the renumbered text.
    const int cursor = result.error->cursorpos;
    const std::size_t at = cursor > 0 ? utf8_byte_of(num_, static_cast<std::size_t>(cursor - 1)) : 0;
    if (cursor > 0) what += ", at character " + std::to_string(utf8_chars(orig_.substr(0, to_orig(at))) + 1);
    if (cursor > 0 && placeholder_as_operator(at)) {
      what += "; every ? is a parameter, so jsonb's ? operators are spelled as functions: jsonb_exists(), "
              "jsonb_exists_any(), jsonb_exists_all(), jsonb_path_exists()";
    }
    refuse(what + ")");
  }
  const json tree = json::parse(result.parse_tree);
  static const json kNone = json::array();
  const json& stmts = tree.contains("stmts") ? tree["stmts"] : kNone;
  if (stmts.empty()) refuse("an empty statement");
  if (stmts.size() > 1) refuse("several statements in one string");
  const json& stmt = stmts[0].at("stmt");
  if (!stmt.is_object() || stmt.size() != 1) throw std::runtime_error("unexpected parse tree");
  const std::string type = stmt.begin().key();
  const json& body = stmt.begin().value();

  // Every parameter the parser saw is one of our ?s, and every ? is a
  // parameter (`a?` would have become the identifier a$1).
  std::vector<bool> seen(npos_.size(), false);
  for_each_param(body, [&](long loc) {
    const auto k = std::lower_bound(npos_.begin(), npos_.end(), static_cast<std::size_t>(std::max(loc, 0L)));
    if (loc < 0 || k == npos_.end() || *k != static_cast<std::size_t>(loc)) {
      refuse("a $n parameter (dtx statements use ? placeholders)");
    }
    seen[static_cast<std::size_t>(k - npos_.begin())] = true;
  });
  if (const auto k = std::find(seen.begin(), seen.end(), false); k != seen.end()) {
    refuse("a ? that is not a parameter where it stands (at character " +
           std::to_string(utf8_chars(orig_.substr(0, qpos_[static_cast<std::size_t>(k - seen.begin())])) + 1) +
           "; a ? right after a word joins it, so put a space before it)");
  }

  Statement st;
  if (type == "InsertStmt") {
    st = read_insert(body);
  } else if (type == "UpdateStmt") {
    st = read_update(body);
  } else if (type == "DeleteStmt") {
    st = read_delete(body);
  } else if (type == "SelectStmt") {
    st = read_select(body);
  } else if (type == "VariableShowStmt") {
    st.kind = Kind::select;
  } else if (type == "ExplainStmt" && body.contains("query") && body["query"].contains("SelectStmt") &&
             read_select(body["query"]["SelectStmt"]).kind == Kind::select) {
    st.kind = Kind::select;
  } else {
    refuse_other(type);
  }
  st.param_count = qpos_.size();
  return st;
}

}  // namespace

Recognized recognize_postgres(std::string_view sql) {
  try {
    return Reader(sql).run();
  } catch (const Refused& r) {
    return Refusal{r.what};
  } catch (const std::exception& e) {
    return Refusal{std::string("a statement the recognizer could not read (") + e.what() + ")"};
  }
}

}  // namespace dtx::sql
