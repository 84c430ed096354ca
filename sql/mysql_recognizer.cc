// The MySQL/MariaDB dialect of the AT-mode recognizer (see recognizer.h).
//
// Design. Hand-written, because no MySQL or MariaDB SQL parser is packaged in
// Debian (the servers' own parsers are not libraries). Two stages:
//
//   1. A tokenizer: words, `backquoted` identifiers, 'strings' and "strings"
//      (double quotes are strings, as without ANSI_QUOTES; a "name" where an
//      identifier is expected is refused), with backslash and doubled-quote
//      escapes, numbers, `?` placeholders numbered in order, operators, and
//      comments (# ..., -- ..., /* ... */). An executable comment (/*! */,
//      /*M! */) is code that only the server reads: refused. A string that
//      ends elsewhere without backslash escapes (sql_mode NO_BACKSLASH_ESCAPES,
//      which may be set per session) is refused, as the drivers' check of
//      several statements does.
//   2. A recursive-descent reader for exactly these statements:
//        INSERT [LOW_PRIORITY|DELAYED|HIGH_PRIORITY] [INTO] t [(cols)]
//               VALUES|VALUE (row)[, (row)...] [ON DUPLICATE KEY UPDATE c = e, ...]
//        INSERT ... [INTO] t SET c = e, ... [ON DUPLICATE KEY UPDATE ...]
//               (read as one row with the SET columns)
//        UPDATE [LOW_PRIORITY] t [[AS] alias] SET c = e, ... [WHERE] [ORDER BY] [LIMIT n|?]
//        DELETE [LOW_PRIORITY] [QUICK] FROM t [[AS] alias] [WHERE] [ORDER BY] [LIMIT n|?]
//        SELECT ... FROM t [[AS] alias] [WHERE] [ORDER BY] [LIMIT] FOR UPDATE
//               (a table may carry index hints, read and skipped)
//        SELECT ... (no FOR UPDATE at its top level, no INTO): a plain select,
//               passed through untouched; LOCK IN SHARE MODE / FOR SHARE
//               included (a shared lock changes nothing, and AT mode's global
//               locks are taken for FOR UPDATE only, as in Seata).
//      Names are words that are not MySQL reserved words, or `quoted`.
//      Expressions (WHERE, SET and VALUES values, ORDER BY) are not parsed:
//      they are kept as the statement's own text (inner comments included),
//      with their parentheses balanced, and refused if they hold a subquery
//      (SELECT, (TABLE ...), (WITH ...)), a variable assignment (:=, which
//      would run again in a before-image query), a clause or statement word
//      at their top level (UPDATE ... WHERE a = 1 FOR UPDATE is not read as
//      the condition "a = 1 FOR UPDATE"), or what no expression is (two
//      operands in a row, a ',' in a condition, a stray '.', a leading or
//      trailing binary operator). Other mistakes inside an expression are
//      left to the server, which rejects the statement itself.
//
// Everything else is a Refusal naming the construct: INSERT ... SELECT,
// REPLACE, multi-table UPDATE/DELETE (comma lists, JOIN, USING), subqueries
// in DML, IGNORE (its skipped rows would be undone), PARTITION selection,
// RETURNING (MariaDB), row aliases (VALUES ... AS new), FOR
// UPDATE NOWAIT / SKIP LOCKED / OF, SELECT ... INTO, TRUNCATE, DDL, LOAD,
// CALL, transaction control, several statements in one string, empty input
// and anything not read to its end. Whether a SET changes a primary key
// needs table metadata and is checked by the executor, not here.
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "drivers/sql_words.h"
#include "sql/recognizer.h"

namespace dtx::sql {
namespace {

// Thrown inside this file only; recognize_mysql() turns it into a Refusal.
struct Refused {
  std::string what;
};

[[noreturn]] void refuse(std::string what) { throw Refused{std::move(what)}; }

enum class Tk { word, quoted, string, number, param, op };

struct Token {
  Tk type = Tk::op;
  std::size_t begin = 0, end = 0;  // the token's bytes in the statement
  std::string text;                // word: as written; quoted: the name unquoted; op: the operator
  std::size_t param = 0;           // param: its 0-based index
  bool operator==(const Token& o) const { return type == o.type && begin == o.begin && end == o.end; }
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return u;
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

// The statement's tokens; `backslash`: whether '\' escapes inside strings.
std::vector<Token> tokenize(std::string_view s, bool backslash) {
  std::vector<Token> out;
  const std::size_t n = s.size();
  std::size_t i = 0, params = 0;
  auto push = [&](Tk type, std::size_t b, std::size_t e, std::string text) {
    Token t;
    t.type = type;
    t.begin = b;
    t.end = e;
    t.text = std::move(text);
    out.push_back(std::move(t));
  };
  while (i < n) {
    const char c = s[i];
    if (is_sql_space(c)) {
      ++i;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      if (s.compare(i, 3, "/*!") == 0) refuse("an executable comment (/*! ... */)");
      if (s.compare(i, 4, "/*M!") == 0) refuse("an executable comment (/*M! ... */)");
      const std::size_t close = s.find("*/", i + 2);
      if (close == std::string_view::npos) refuse("an unterminated comment");
      i = close + 2;
    } else if (std::size_t end = sql_comment_end(s, i, SqlDialect::mysql); end != i) {
      i = end;  // # or "-- " to the end of the line
    } else if (c == '\'' || c == '"' || c == '`') {
      std::size_t j = i + 1;
      std::string name;
      bool closed = false;
      while (j < n) {
        if (backslash && c != '`' && s[j] == '\\') {
          j += 2;
        } else if (s[j] == c) {
          if (j + 1 < n && s[j + 1] == c) {
            name.push_back(c);
            j += 2;
          } else {
            ++j;
            closed = true;
            break;
          }
        } else {
          name.push_back(s[j]);
          ++j;
        }
      }
      if (!closed) refuse(c == '`' ? "an unterminated quoted identifier" : "an unterminated string");
      if (c == '`' && name.empty()) refuse("an empty quoted identifier");
      push(c == '`' ? Tk::quoted : Tk::string, i, j, c == '`' ? std::move(name) : std::string());
      i = j;
    } else if (is_ident_char(c)) {
      std::size_t j = i;
      bool digits = true;
      for (; j < n && is_ident_char(s[j]); ++j) digits = digits && is_digit(s[j]);
      push(digits ? Tk::number : Tk::word, i, j, std::string(s.substr(i, j - i)));
      i = j;
    } else if (c == '?') {
      push(Tk::param, i, i + 1, "?");
      out.back().param = params++;
      ++i;
    } else {
      std::size_t len = 1;
      for (std::string_view op : {"<=>", "->>", "<=", ">=", "<>", "!=", "||", "&&", "<<", ">>", ":=", "->"})
        if (s.compare(i, op.size(), op) == 0) {
          len = op.size();
          break;
        }
      push(Tk::op, i, i + len, std::string(s.substr(i, len)));
      i += len;
    }
  }
  return out;
}

// MySQL's reserved words that a statement here may meet where a name could
// stand (a name spelled so must be `quoted`), and the words that end a
// table reference, so never an alias.
bool is_reserved(std::string_view w) {
  static constexpr std::string_view words[] = {
      "ADD",     "ALL",       "ALTER",     "AND",        "AS",         "ASC",           "BETWEEN",
      "BY",      "CALL",      "CASE",      "CHECK",      "COLUMN",     "CONSTRAINT",    "CREATE",
      "CROSS",   "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "DATABASE",
      "DEFAULT", "DELETE",    "DESC",      "DISTINCT",   "DIV",        "DROP",          "DUAL",
      "ELSE",    "EXCEPT",    "EXISTS",    "FALSE",      "FOR",        "FORCE",         "FOREIGN",
      "FROM",    "FULL",      "GROUP",     "HAVING",     "IF",         "IGNORE",        "IN",
      "INDEX",   "INNER",     "INSERT",    "INTERSECT",  "INTERVAL",   "INTO",          "IS",
      "JOIN",    "KEY",       "KEYS",      "LEFT",       "LIKE",       "LIMIT",         "LOCK",
      "MOD",     "NATURAL",   "NOT",       "NULL",       "ON",         "OR",            "ORDER",
      "OUTER",   "PARTITION", "PRIMARY",   "REFERENCES", "REGEXP",     "RENAME",        "REPLACE",
      "RETURNING", "RIGHT",   "RLIKE",     "SELECT",     "SET",        "STRAIGHT_JOIN", "TABLE",
      "THEN",    "TO",        "TRUE",      "UNION",      "UNIQUE",     "UPDATE",        "USE",
      "USING",   "VALUES",    "WHEN",      "WHERE",      "WINDOW",     "WITH",          "XOR"};
  for (std::string_view r : words)
    if (iequal(w, r)) return true;
  return false;
}

struct Name {
  std::string text;
  bool quoted = false;
};

class Reader {
 public:
  Reader(std::string_view sql, std::vector<Token> tokens) : sql_(sql), t_(std::move(tokens)) {}

  Statement statement(std::size_t param_count) {
    Statement st;
    st.param_count = param_count;
    const Token& first = peek();
    if (first.type == Tk::op && first.text == "(") refuse("a statement in parentheses");
    if (first.type != Tk::word) unreadable("a statement starts with " + show(first));
    const std::string kw = upper(first.text);
    if (kw == "INSERT") {
      insert(st);
    } else if (kw == "UPDATE") {
      update(st);
    } else if (kw == "DELETE") {
      delete_(st);
    } else if (kw == "SELECT") {
      select(st);
    } else if (kw == "REPLACE" || kw == "TRUNCATE" || kw == "CALL" || kw == "HANDLER" || kw == "DO") {
      refuse(kw);
    } else if (kw == "CREATE" || kw == "ALTER" || kw == "DROP" || kw == "RENAME") {
      refuse("DDL (" + kw + ")");
    } else if (kw == "LOAD") {
      refuse("LOAD " + upper(peek(1).type == Tk::word ? peek(1).text : std::string("DATA")));
    } else if (kw == "WITH") {
      refuse("WITH (a common table expression)");
    } else if (kw == "BEGIN" || kw == "START" || kw == "COMMIT" || kw == "ROLLBACK" || kw == "SAVEPOINT" ||
               kw == "RELEASE" || kw == "XA" || kw == "LOCK" || kw == "UNLOCK") {
      refuse("transaction control (" + kw + ") inside a branch");
    } else {
      refuse("the " + kw + " statement");
    }
    if (!at_end()) unreadable("expected the end of the statement, found " + show(peek()));
    return st;
  }

 private:
  // ---- tokens -------------------------------------------------------------
  const Token& peek(std::size_t k = 0) const {
    static const Token none{};
    return pos_ + k < t_.size() ? t_[pos_ + k] : none;
  }
  bool at_end(std::size_t k = 0) const { return pos_ + k >= t_.size(); }
  bool is_kw(std::string_view kw, std::size_t k = 0) const {
    return !at_end(k) && peek(k).type == Tk::word && iequal(peek(k).text, kw);
  }
  bool is_op(std::string_view op, std::size_t k = 0) const {
    return !at_end(k) && peek(k).type == Tk::op && peek(k).text == op;
  }
  bool accept_kw(std::string_view kw) {
    if (!is_kw(kw)) return false;
    ++pos_;
    return true;
  }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  void expect_kw(std::string_view kw) {
    if (!accept_kw(kw)) unreadable("expected " + std::string(kw) + ", found " + show(peek()));
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) unreadable("expected '" + std::string(op) + "', found " + show(peek()));
  }
  std::string show(const Token& t) const {
    if (&t == &peek() && at_end()) return "the end";
    return "'" + std::string(sql_.substr(t.begin, t.end - t.begin)) + "'";
  }
  [[noreturn]] static void unreadable(const std::string& why) {
    refuse("a statement dtx cannot read (" + why + ")");
  }

  // ---- names --------------------------------------------------------------
  // An identifier here: a word that is not reserved, or a `quoted` name.
  bool at_ident(std::size_t k = 0) const {
    if (at_end(k)) return false;
    const Token& t = peek(k);
    return t.type == Tk::quoted || (t.type == Tk::word && !is_reserved(t.text));
  }
  Name ident(std::string_view what) {
    if (!at_end() && peek().type == Tk::string && sql_[peek().begin] == '"')
      refuse("a double-quoted identifier (ANSI_QUOTES) as " + std::string(what));
    if (!at_ident()) unreadable("expected " + std::string(what) + ", found " + show(peek()));
    Name n{peek().text, peek().type == Tk::quoted};
    ++pos_;
    return n;
  }

  // [schema.]table, then [[AS] alias]; `stmt` names the statement for refusals.
  TableRef table(const std::string& stmt) {
    if (is_op("(")) refuse("a derived table (a subquery in FROM) in " + stmt);
    TableRef ref;
    Name a = ident("a table name");
    if (accept_op(".")) {
      if (is_op("*")) refuse("a multi-table " + stmt);
      Name b = ident("a table name");
      ref.schema = std::move(a.text);
      ref.schema_quoted = a.quoted;
      a = std::move(b);
    }
    ref.name = std::move(a.text);
    ref.name_quoted = a.quoted;
    if (is_kw("PARTITION")) refuse("PARTITION selection in " + stmt);
    if (accept_kw("AS"))
      ref.alias = ident("an alias").text;
    else if (at_ident())
      ref.alias = ident("an alias").text;
    if (is_kw("PARTITION")) refuse("PARTITION selection in " + stmt);
    index_hints();
    if (is_op(",")) refuse("a multi-table " + stmt + " (a comma list)");
    for (std::string_view j : {"JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "STRAIGHT_JOIN", "NATURAL", "FULL"})
      if (is_kw(j)) refuse("a multi-table " + stmt + " (JOIN)");
    if (is_kw("USING")) refuse("a multi-table " + stmt + " (USING)");
    return ref;
  }

  // Index hints (USE|IGNORE|FORCE INDEX|KEY [FOR JOIN|ORDER BY|GROUP BY]
  // (names), ...) are read and skipped: they choose how rows are found, not
  // which rows match, so the statement runs with them and the before-image
  // query needs none.
  void index_hints() {
    auto at_hint = [&](std::size_t k) {
      return (is_kw("USE", k) || is_kw("IGNORE", k) || is_kw("FORCE", k)) &&
             (is_kw("INDEX", k + 1) || is_kw("KEY", k + 1));
    };
    while (at_hint(0)) {
      pos_ += 2;
      if (accept_kw("FOR") && !accept_kw("JOIN")) {
        if (!accept_kw("ORDER") && !accept_kw("GROUP")) unreadable("an index hint FOR " + show(peek()));
        expect_kw("BY");
      }
      expect_op("(");
      if (!is_op(")")) {
        do {
          if (!accept_kw("PRIMARY")) ident("an index name");
        } while (accept_op(","));
      }
      expect_op(")");
      if (is_op(",") && at_hint(1)) ++pos_;  // hints may be separated by ','
    }
  }

  // A column, possibly qualified (t.col, db.t.col); only `col` is kept. A
  // qualifier that does not name `ref` (its alias if it has one) is refused.
  std::string column(const TableRef& ref, const std::string& stmt) {
    std::vector<Name> parts{ident("a column name")};
    while (parts.size() < 3 && accept_op(".")) parts.push_back(ident("a column name"));
    if (parts.size() >= 2) {
      const Name& t = parts[parts.size() - 2];
      const std::string& own = ref.alias.empty() ? ref.name : ref.alias;
      const bool schema_ok = parts.size() < 3 || ref.schema.empty() || iequal(parts[0].text, ref.schema);
      if (!iequal(t.text, own) || !schema_ok) {
        std::string written;
        for (const Name& p : parts) written += (written.empty() ? "" : ".") + p.text;
        refuse("a column of another table (" + written + ") in " + stmt);
      }
    }
    return std::move(parts.back().text);
  }

  // ---- expressions --------------------------------------------------------
  std::string_view text(std::size_t b, std::size_t e) const { return sql_.substr(b, e - b); }

  // What a ',' at an expression's top level is: its end (a SET or VALUES
  // list), a part of it (an ORDER BY list, a select list, LIMIT m, n), or an
  // error (a condition).
  enum class Comma { ends, list, error };

  // Whether a token can begin / end an operand; two operands in a row (with
  // no word, which may be a keyword, between them) are no expression, except
  // adjacent strings, which MySQL concatenates.
  static bool begins_operand(const Token& t) {
    return t.type == Tk::number || t.type == Tk::string || t.type == Tk::param || t.type == Tk::quoted ||
           (t.type == Tk::op && t.text == "(");
  }
  static bool ends_operand(const Token& t) {
    return t.type == Tk::number || t.type == Tk::string || t.type == Tk::param || t.type == Tk::quoted ||
           (t.type == Tk::op && t.text == ")");
  }
  static bool name_part(const Token& t) {
    return t.type == Tk::word || t.type == Tk::quoted || t.type == Tk::number;
  }

  // Reads an expression up to, at parenthesis depth 0, the end, a ')' that
  // closes an outer parenthesis, a ',' (Comma::ends) or one of the `stops`
  // keywords. Returns its text and parameters.
  Fragment expr(const std::string& where, Comma comma, std::initializer_list<std::string_view> stops) {
    const std::size_t start = pos_;
    Fragment f;
    int depth = 0;
    for (; !at_end(); ++pos_) {
      const Token& t = peek();
      if (depth == 0) {
        if (t.type == Tk::op && (t.text == ")" || (comma == Comma::ends && t.text == ","))) break;
        if (t.type == Tk::op && t.text == "," && comma == Comma::error)
          unreadable("a ',' in the condition of " + where);
        // A stop word first in the expression is a column of that name
        // (RETURNING is not reserved; the others would be refused below).
        bool stop = false;
        for (std::string_view s : stops) stop = stop || (pos_ != start && is_kw(s));
        if (stop) break;
        // Clause words no expression holds at its top level: what follows
        // them is not a part this reader knows, so nothing is guessed.
        for (std::string_view s : {"FOR", "LOCK", "INTO", "FROM", "WHERE", "GROUP", "HAVING", "WINDOW",
                                   "ORDER", "LIMIT", "UNION", "SET", "RETURNING", "ON", "USING", "JOIN",
                                   "INSERT", "UPDATE", "DELETE", "REPLACE"})
          if (is_kw(s) && !(s == "RETURNING" && pos_ == start))
            unreadable("unexpected " + upper(s) + " in " + where);
      }
      if (t.type == Tk::word && iequal(t.text, "SELECT")) refuse("a subquery in " + where);
      if (!select_list_) {
        if (pos_ == start && t.type == Tk::op && t.text != "(" && t.text != "-" && t.text != "+" &&
            t.text != "~" && t.text != "!" && t.text != "@")
          unreadable("an expression in " + where + " starts with '" + t.text + "'");
        if (pos_ > start) {
          const Token& prev = t_[pos_ - 1];
          const bool strings = prev.type == Tk::string && t.type == Tk::string;
          const bool call = prev.type == Tk::quoted && t.type == Tk::op && t.text == "(";
          if (ends_operand(prev) && begins_operand(t) && !strings && !call)
            unreadable(show(prev) + " followed by " + show(t) + " in " + where);
        }
        if (t.type == Tk::op && t.text == ".") {
          const bool after_name = pos_ > start && name_part(t_[pos_ - 1]);
          const bool joins = after_name && !at_end(1) &&
                             (name_part(peek(1)) || (peek(1).type == Tk::op && peek(1).text == "*"));
          const bool leading_decimal = !after_name && !at_end(1) && peek(1).type == Tk::number;  // .5
          if (!joins && !leading_decimal) unreadable("a '.' that does not join two names in " + where);
        }
      }
      if (t.type == Tk::op && t.text == "(") {
        if (is_kw("TABLE", 1) || is_kw("WITH", 1) || (is_kw("VALUES", 1) && is_kw("ROW", 2)))
          refuse("a subquery in " + where);
        ++depth;
      } else if (t.type == Tk::op && t.text == ")") {
        --depth;
      } else if (t.type == Tk::op && t.text == ":=") {
        refuse("a variable assignment (:=) in " + where);
      } else if (t.type == Tk::param) {
        f.params.push_back(t.param);
      }
    }
    if (depth > 0) unreadable("unbalanced parentheses in " + where);
    if (pos_ == start) unreadable("an empty expression in " + where + ", at " + show(peek()));
    const Token& last = t_[pos_ - 1];
    if (comma != Comma::list && last.type == Tk::op && last.text != ")")
      unreadable("an expression in " + where + " ends with '" + last.text + "'");
    f.text = std::string(text(t_[start].begin, t_[pos_ - 1].end));
    return f;
  }

  // col = expr[, col = expr...] (MySQL also takes := in a SET list).
  std::vector<Assignment> assignments(const TableRef& ref, const std::string& stmt,
                                      std::initializer_list<std::string_view> stops) {
    std::vector<Assignment> list;
    do {
      Assignment a;
      a.column = column(ref, stmt);
      if (!accept_op("=") && !accept_op(":="))
        unreadable("expected '=' after a SET column, found " + show(peek()));
      a.value = expr(stmt, Comma::ends, stops);
      list.push_back(std::move(a));
    } while (accept_op(","));
    return list;
  }

  // [WHERE cond] [ORDER BY ...] [LIMIT n|?] of UPDATE and DELETE.
  void where_order_limit(Statement& st, const std::string& stmt) {
    if (accept_kw("WHERE")) st.where = expr(stmt, Comma::error, {"ORDER", "LIMIT", "RETURNING"});
    if (accept_kw("ORDER")) {
      expect_kw("BY");
      st.order_by = expr(stmt, Comma::list, {"LIMIT", "RETURNING"});
    }
    if (accept_kw("LIMIT")) {
      const Token& t = peek();
      if (at_end() || (t.type != Tk::number && t.type != Tk::param))
        unreadable("LIMIT of " + stmt + " takes a number or ?, found " + show(t));
      st.limit.text = t.text;
      if (t.type == Tk::param) st.limit.params.push_back(t.param);
      ++pos_;
      if (is_op(",") || is_kw("OFFSET"))
        unreadable("LIMIT of " + stmt + " takes a row count only, no offset");
    }
    if (is_kw("RETURNING")) refuse(stmt + " ... RETURNING");
  }

  // ---- statements ---------------------------------------------------------
  void insert(Statement& st) {
    const std::string stmt = "INSERT";
    st.kind = Kind::insert;
    ++pos_;
    while (accept_kw("LOW_PRIORITY") || accept_kw("DELAYED") || accept_kw("HIGH_PRIORITY")) {
    }
    if (is_kw("IGNORE")) refuse("INSERT IGNORE");
    accept_kw("INTO");
    if (is_op("(")) refuse("a derived table in INSERT");
    Name a = ident("a table name");
    if (accept_op(".")) {
      Name b = ident("a table name");
      st.table.schema = std::move(a.text);
      st.table.schema_quoted = a.quoted;
      a = std::move(b);
    }
    st.table.name = std::move(a.text);
    st.table.name_quoted = a.quoted;
    if (is_kw("PARTITION")) refuse("PARTITION selection in INSERT");

    if (is_op("(") && (is_kw("SELECT", 1) || is_kw("WITH", 1) || is_kw("TABLE", 1) || is_op("(", 1)))
      refuse("INSERT ... SELECT");
    if (accept_op("(")) {
      if (is_op(")")) refuse("INSERT with an empty column list");
      do st.columns.push_back(column(st.table, stmt));
      while (accept_op(","));
      expect_op(")");
    }
    if (is_kw("SELECT") || is_kw("WITH") || is_kw("TABLE") || is_op("(")) refuse("INSERT ... SELECT");
    if (accept_kw("VALUES") || accept_kw("VALUE")) {
      do {
        if (is_kw("ROW")) refuse("INSERT ... VALUES ROW(...)");
        expect_op("(");
        if (is_op(")")) refuse("a VALUES row without values (all defaults)");
        std::vector<Fragment> row;
        do row.push_back(expr(stmt, Comma::ends, {}));
        while (accept_op(","));
        expect_op(")");
        const std::size_t want = st.columns.empty() ? (st.rows.empty() ? row.size() : st.rows[0].size())
                                                    : st.columns.size();
        if (row.size() != want)
          unreadable("a VALUES row of " + std::to_string(row.size()) + " values where " +
                     std::to_string(want) + " are expected");
        st.rows.push_back(std::move(row));
      } while (accept_op(","));
    } else if (!st.columns.empty() && is_kw("SET")) {
      unreadable("a column list before SET");
    } else if (accept_kw("SET")) {
      std::vector<Fragment> row;
      for (Assignment& a2 : assignments(st.table, stmt, {"ON", "AS", "RETURNING"})) {
        st.columns.push_back(std::move(a2.column));
        row.push_back(std::move(a2.value));
      }
      st.rows.push_back(std::move(row));
    } else {
      unreadable("expected VALUES, SET or SELECT after the table of INSERT, found " + show(peek()));
    }
    if (is_kw("AS")) refuse("a row alias (INSERT ... AS alias)");
    if (accept_kw("ON")) {
      expect_kw("DUPLICATE");
      expect_kw("KEY");
      expect_kw("UPDATE");
      st.upsert = Upsert::on_duplicate_key_update;
      st.assignments = assignments(st.table, stmt, {"RETURNING"});
    }
    if (is_kw("RETURNING")) refuse("INSERT ... RETURNING");
  }

  void update(Statement& st) {
    const std::string stmt = "UPDATE";
    st.kind = Kind::update;
    ++pos_;
    accept_kw("LOW_PRIORITY");
    if (is_kw("IGNORE")) refuse("UPDATE IGNORE");
    st.table = table(stmt);
    if (is_kw("FOR") && is_kw("PORTION", 1)) refuse("UPDATE ... FOR PORTION OF");
    expect_kw("SET");
    st.assignments = assignments(st.table, stmt, {"WHERE", "ORDER", "LIMIT", "RETURNING"});
    where_order_limit(st, stmt);
  }

  void delete_(Statement& st) {
    const std::string stmt = "DELETE";
    st.kind = Kind::delete_;
    ++pos_;
    while (accept_kw("LOW_PRIORITY") || accept_kw("QUICK")) {
    }
    if (is_kw("IGNORE")) refuse("DELETE IGNORE");
    if (is_kw("HISTORY")) refuse("DELETE HISTORY");
    if (!accept_kw("FROM")) refuse("a multi-table DELETE (tables before FROM)");
    st.table = table(stmt);
    if (is_kw("FOR") && is_kw("PORTION", 1)) refuse("DELETE ... FOR PORTION OF");
    where_order_limit(st, stmt);
  }

  // A SELECT with FOR UPDATE at its top level is read; any other is a plain
  // select, once checked for INTO, FOR UPDATE inside a subquery and balance.
  void select(Statement& st) {
    const std::string stmt = "SELECT ... FOR UPDATE";
    int depth = 0;
    bool for_update = false, set_op = false;
    for (std::size_t k = 0; !at_end(k); ++k) {
      const Token& t = peek(k);
      if (t.type == Tk::op && t.text == "(") ++depth;
      if (t.type == Tk::op && t.text == ")" && --depth < 0) unreadable("unbalanced parentheses");
      if (is_kw("INTO", k)) refuse("SELECT ... INTO");
      if (is_kw("FOR", k) && is_kw("UPDATE", k + 1)) {
        if (depth > 0) refuse("FOR UPDATE inside a subquery");
        for_update = true;
      }
      if (depth == 0 && (is_kw("UNION", k) || is_kw("EXCEPT", k) || is_kw("INTERSECT", k))) set_op = true;
    }
    if (depth != 0) unreadable("unbalanced parentheses");
    if (!for_update) {
      st.kind = Kind::select;
      pos_ = t_.size();
      return;
    }
    if (set_op) refuse("SELECT ... FOR UPDATE with UNION, EXCEPT or INTERSECT");
    st.kind = Kind::select_for_update;
    ++pos_;
    select_list_ = true;  // aliases follow values there: `SELECT 1 'one'`
    expr(stmt, Comma::list, {"FROM", "FOR"});
    select_list_ = false;
    if (!accept_kw("FROM")) refuse("SELECT ... FOR UPDATE without a table");
    if (is_kw("DUAL")) refuse("SELECT ... FOR UPDATE without a table");
    st.table = table(stmt);
    if (accept_kw("WHERE"))
      st.where = expr(stmt, Comma::error, {"GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "FOR"});
    for (std::string_view clause : {"GROUP", "HAVING", "WINDOW"})
      if (is_kw(clause)) refuse(std::string(clause) + (clause == "GROUP" ? " BY" : "") + " in " + stmt);
    if (accept_kw("ORDER")) {
      expect_kw("BY");
      st.order_by = expr(stmt, Comma::list, {"LIMIT", "FOR"});
    }
    if (accept_kw("LIMIT")) st.limit = expr(stmt, Comma::list, {"FOR"});
    expect_kw("FOR");
    expect_kw("UPDATE");
    if (is_kw("OF")) refuse("FOR UPDATE OF");
    if (is_kw("NOWAIT")) refuse("FOR UPDATE NOWAIT");
    if (is_kw("SKIP")) refuse("FOR UPDATE SKIP LOCKED");
    if (is_kw("WAIT")) refuse("FOR UPDATE WAIT");
  }

  std::string_view sql_;
  std::vector<Token> t_;
  std::size_t pos_ = 0;
  bool select_list_ = false;
};

}  // namespace

Recognized recognize_mysql(std::string_view sql) {
  try {
    std::vector<Token> tokens = tokenize(sql, /*backslash=*/true);
    if (sql.find('\\') != std::string_view::npos) {
      bool same = false;
      try {
        same = tokenize(sql, /*backslash=*/false) == tokens;
      } catch (const Refused&) {
      }
      if (!same) refuse("a string that ends elsewhere without backslash escapes (NO_BACKSLASH_ESCAPES)");
    }
    // One statement: a ';' may only be followed by more ';'.
    std::size_t end = tokens.size();
    for (std::size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].type == Tk::op && tokens[i].text == ";") {
        for (std::size_t j = i; j < tokens.size(); ++j)
          if (tokens[j].type != Tk::op || tokens[j].text != ";") refuse("several statements in one string");
        end = i;
        break;
      }
    if (end == 0) refuse("an empty statement");
    std::size_t params = 0;
    for (const Token& t : tokens) params += t.type == Tk::param ? 1 : 0;
    tokens.resize(end);
    Reader reader(sql, std::move(tokens));
    return reader.statement(params);
  } catch (const Refused& r) {
    return Refusal{r.what};
  }
}

}  // namespace dtx::sql
