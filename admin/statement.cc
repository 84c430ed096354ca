// Recognising the console's own statements.
//
// A statement is cut into tokens (words, quoted strings with '' and E''
// escapes, quoted identifiers, numbers, $n parameters, punctuation), skipping
// -- and nested /* */ comments and $tag$ dollar quotes. The first words say
// what it is: a transaction-block word, SET/SHOW/RESET/DISCARD, one of the
// settle commands, or a query. A query goes to SQLite with two PostgreSQL
// spellings rewritten (`x::type` casts dropped, current_user and friends
// called as functions); a statement starting with a word that writes
// (INSERT, CREATE, ATTACH, PRAGMA, VACUUM, ...) is refused before SQLite
// sees it, and SQLite's authorizer refuses the rest (console.cc).
#include "admin/statement.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "admin/console.h"

namespace dtx::admin {

namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); }
bool ident_char(char c) { return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The dollar-quote tag starting at s[i] == '$' ("$tag$" or "$$"), or empty.
std::string_view dollar_tag(std::string_view s, std::size_t i) {
  if (i > 0 && ident_char(s[i - 1])) return {};  // a$b$ is an identifier
  std::size_t j = i + 1;
  if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) return {};  // $1: a parameter
  while (j < s.size() && s[j] != '$' && (ident_char(s[j]) && s[j] != '$')) ++j;
  if (j < s.size() && s[j] == '$') return s.substr(i, j + 1 - i);
  return {};
}

// If a comment, quoted string, quoted identifier or dollar quote starts at
// s[i], the index just after it (s.size() if it never ends); else i.
std::size_t skip_quoted(std::string_view s, std::size_t i, bool* unterminated = nullptr) {
  auto open_end = [&] {
    if (unterminated) *unterminated = true;
    return s.size();
  };
  const char c = s[i];
  if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
    std::size_t e = s.find('\n', i);
    return e == std::string_view::npos ? s.size() : e + 1;
  }
  if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
    int depth = 0;
    for (std::size_t j = i; j + 1 < s.size(); ++j) {
      if (s[j] == '/' && s[j + 1] == '*') {
        ++depth;
        ++j;
      } else if (s[j] == '*' && s[j + 1] == '/') {
        ++j;
        if (--depth == 0) return j + 1;
      }
    }
    return open_end();
  }
  if (c == '\'' || c == '"') {
    const bool escapes = c == '\'' && i > 0 && (s[i - 1] == 'e' || s[i - 1] == 'E') &&
                         (i < 2 || !ident_char(s[i - 2]));
    for (std::size_t j = i + 1; j < s.size(); ++j) {
      if (escapes && s[j] == '\\') {
        ++j;
        continue;
      }
      if (s[j] == c) {
        if (j + 1 < s.size() && s[j + 1] == c) {
          ++j;
          continue;
        }
        return j + 1;
      }
    }
    return open_end();
  }
  if (c == '$') {
    std::string_view tag = dollar_tag(s, i);
    if (tag.empty()) return i;
    std::size_t e = s.find(tag, i + tag.size());
    return e == std::string_view::npos ? open_end() : e + tag.size();
  }
  return i;
}

struct Token {
  enum Type { word, string, quoted_ident, number, param, punct } type;
  std::string text;  // word: lower case; string: decoded; punct: the characters
  std::size_t begin = 0, end = 0;
};

[[noreturn]] void syntax_error(std::string message, std::string hint = {}) {
  throw StatementError("42601", message, {}, std::move(hint));
}

std::vector<Token> lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    bool unterminated = false;
    // E'..' strings: the E is part of the token.
    const bool e_string = (c == 'e' || c == 'E') && i + 1 < s.size() && s[i + 1] == '\'' &&
                          (i == 0 || !ident_char(s[i - 1]));
    const std::size_t q = e_string ? i + 1 : i;
    std::size_t after = skip_quoted(s, q, &unterminated);
    if (after != q) {
      if (unterminated) syntax_error("unterminated quoted string or comment at or near \"" +
                                     std::string(s.substr(q, 20)) + "\"");
      const char k = s[q];
      if (k == '-' || k == '/') {  // comment
        i = after;
        continue;
      }
      Token t{k == '"' ? Token::quoted_ident : Token::string, {}, i, after};
      if (k == '$') {
        std::string_view tag = dollar_tag(s, q);
        t.text = std::string(s.substr(q + tag.size(), after - q - 2 * tag.size()));
      } else {
        for (std::size_t j = q + 1; j + 1 < after; ++j) {
          if (e_string && s[j] == '\\' && j + 2 < after) {
            char n = s[++j];
            t.text += n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
          } else {
            t.text += s[j];
            if (s[j] == k) ++j;  // '' or ""
          }
        }
      }
      out.push_back(std::move(t));
      i = after;
      continue;
    }
    if (ident_start(c)) {
      std::size_t j = i;
      while (j < s.size() && ident_char(s[j])) ++j;
      out.push_back({Token::word, lower(s.substr(i, j - i)), i, j});
      i = j;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      std::size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.' ||
                              ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E'))))
        ++j;
      out.push_back({Token::number, std::string(s.substr(i, j - i)), i, j});
      i = j;
      continue;
    }
    if (c == '$' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      std::size_t j = i + 1;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      if (j - i > 6) syntax_error("there is no parameter " + std::string(s.substr(i, j - i)));
      out.push_back({Token::param, std::string(s.substr(i + 1, j - i - 1)), i, j});
      i = j;
      continue;
    }
    for (std::string_view two : {"::", ":=", "=>", "<>", "!=", "<=", ">=", "||"}) {
      if (s.substr(i, 2) == two) {
        out.push_back({Token::punct, std::string(two), i, i + 2});
        i += 2;
        goto next;
      }
    }
    out.push_back({Token::punct, std::string(1, c), i, i + 1});
    ++i;
  next:;
  }
  return out;
}

// The words a query may start with; everything SQLite would run otherwise changes something.
const std::set<std::string, std::less<>> kQueryWords = {"select", "with", "values", "explain", "table"};
const std::set<std::string, std::less<>> kWriteWords = {
    "insert", "update", "delete", "replace", "upsert", "merge", "create", "drop", "alter", "attach",
    "detach", "pragma", "vacuum", "reindex", "analyze", "analyse", "truncate", "grant", "revoke",
    "copy", "cluster", "comment", "lock", "refresh", "import", "load", "prepare", "execute", "do",
    "notify", "listen", "security"};
// PostgreSQL's functions written without parentheses.
const std::set<std::string, std::less<>> kBareFunctions = {"current_user", "session_user", "current_role",
                                                           "current_catalog", "current_schema"};
// Words that continue a multi-word type name after `::`.
const std::set<std::string, std::less<>> kTypeWords = {"precision", "varying", "with", "without", "time", "zone"};

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens, std::span<const std::optional<std::string>> params)
      : text_(text), t_(std::move(tokens)), params_(params) {}

  bool at_end() const { return i_ >= t_.size() || (t_[i_].type == Token::punct && t_[i_].text == ";"); }
  bool word(std::string_view w) {
    if (i_ < t_.size() && t_[i_].type == Token::word && t_[i_].text == w) {
      ++i_;
      return true;
    }
    return false;
  }
  bool punct(std::string_view p) {
    if (i_ < t_.size() && t_[i_].type == Token::punct && t_[i_].text == p) {
      ++i_;
      return true;
    }
    return false;
  }
  const Token* peek() const { return i_ < t_.size() ? &t_[i_] : nullptr; }
  std::string near() const {
    return at_end() ? "at end of input" : "at or near \"" + std::string(text_.substr(t_[i_].begin, t_[i_].end - t_[i_].begin)) + "\"";
  }
  void expect_end(const std::string& usage) {
    if (!at_end()) syntax_error("syntax error " + near(), "usage: " + usage);
  }
  // A string literal, or $n bound to a value.
  std::string literal(const std::string& usage) {
    const Token* t = peek();
    if (t && t->type == Token::string) {
      ++i_;
      return t->text;
    }
    if (t && t->type == Token::param) {
      ++i_;
      std::size_t n = std::stoul(t->text);
      if (n == 0 || n > params_.size())
        throw StatementError("42P02", "there is no parameter $" + t->text);
      if (!params_[n - 1]) throw StatementError("22004", "the global transaction id must not be NULL");
      return *params_[n - 1];
    }
    syntax_error("syntax error " + near() + ": expected the global transaction id in single quotes",
                 "usage: " + usage);
  }
  bool boolean(const std::string& usage) {
    const Token* t = peek();
    std::string v;
    if (t && (t->type == Token::word || t->type == Token::string || t->type == Token::number)) v = lower(t->text);
    if (t && t->type == Token::param) {
      std::size_t n = std::stoul(t->text);
      if (n == 0 || n > params_.size() || !params_[n - 1]) throw StatementError("42P02", "there is no parameter $" + t->text);
      v = lower(*params_[n - 1]);
    }
    ++i_;
    if (v == "true" || v == "t" || v == "on" || v == "yes" || v == "1") return true;
    if (v == "false" || v == "f" || v == "off" || v == "no" || v == "0") return false;
    syntax_error("dry_run must be true or false", "usage: " + usage);
  }
  // The rest of a SET value: words, strings and numbers, comma separated.
  std::string rest_value() {
    std::string out;
    while (!at_end()) {
      const Token& t = t_[i_++];
      if (t.type == Token::punct && t.text == ",") {
        out += ", ";
        continue;
      }
      if (!out.empty() && !out.ends_with(", ")) out += ' ';
      out += t.type == Token::word ? std::string(text_.substr(t.begin, t.end - t.begin)) : t.text;
    }
    return out;
  }
  std::string next_word_text() {
    const Token* t = peek();
    if (!t || (t->type != Token::word && t->type != Token::quoted_ident)) return {};
    ++i_;
    return t->text;
  }

  std::string rewritten_query() const;

  std::string_view text_;
  std::vector<Token> t_;
  std::span<const std::optional<std::string>> params_;
  std::size_t i_ = 0;
};

std::string Parser::rewritten_query() const {
  std::string out;
  std::size_t pos = 0;
  for (std::size_t k = 0; k < t_.size(); ++k) {
    const Token& t = t_[k];
    if (t.type == Token::punct && t.text == "::") {
      out.append(text_.substr(pos, t.begin - pos));
      std::size_t j = k + 1;
      if (j < t_.size() && t_[j].type == Token::word) {
        ++j;
        while (j + 1 < t_.size() && t_[j].type == Token::punct && t_[j].text == "." && t_[j + 1].type == Token::word) j += 2;
        while (j < t_.size() && t_[j].type == Token::word && kTypeWords.count(t_[j].text)) ++j;
        if (j < t_.size() && t_[j].type == Token::punct && t_[j].text == "(") {
          while (j < t_.size() && !(t_[j].type == Token::punct && t_[j].text == ")")) ++j;
          if (j < t_.size()) ++j;
        }
        if (j + 1 < t_.size() && t_[j].text == "[" && t_[j + 1].text == "]") j += 2;
      }
      // Keep what followed the type name (whitespace, comments).
      pos = t_[j - 1].end;
      k = j - 1;
      continue;
    }
    if (t.type == Token::word && kBareFunctions.count(t.text) &&
        !(k + 1 < t_.size() && t_[k + 1].type == Token::punct && t_[k + 1].text == "(") &&
        !(k > 0 && t_[k - 1].type == Token::punct && t_[k - 1].text == ".")) {
      out.append(text_.substr(pos, t.end - pos));
      out += "()";
      pos = t.end;
      continue;
    }
    if (t.type == Token::string && t.begin < text_.size() && (text_[t.begin] == 'e' || text_[t.begin] == 'E' ||
                                                              text_[t.begin] == '$')) {
      out.append(text_.substr(pos, t.begin - pos));
      out += quote_literal(t.text);
      pos = t.end;
    }
  }
  out.append(text_.substr(pos));
  return out;
}

const std::string kSettleUsage =
    "COMMIT PREPARED 'gtrid' | ROLLBACK PREPARED 'gtrid' | COMMIT FORCE 'gtrid' | ROLLBACK FORCE 'gtrid'";
const std::string kRecoverUsage = "CALL recover() | CALL recover(dry_run => true)";

}  // namespace

std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::vector<std::string> split_statements(std::string_view query) {
  std::vector<std::string> out;
  auto add = [&](std::string_view piece) {
    // Dropped when only whitespace and comments.
    std::size_t i = 0;
    while (i < piece.size()) {
      if (std::isspace(static_cast<unsigned char>(piece[i]))) {
        ++i;
        continue;
      }
      std::size_t after = skip_quoted(piece, i);
      if (after != i && (piece[i] == '-' || piece[i] == '/')) {
        i = after;
        continue;
      }
      break;
    }
    if (i < piece.size()) out.emplace_back(piece);
  };
  std::size_t start = 0, i = 0;
  while (i < query.size()) {
    const char c = query[i];
    if (c == ';') {
      add(query.substr(start, i - start));
      start = ++i;
      continue;
    }
    // E'..': the quote right after E is handled by skip_quoted looking back.
    std::size_t after = skip_quoted(query, i);
    i = after != i ? after : i + 1;
  }
  add(query.substr(start));
  return out;
}

ParsedStatement parse_statement(std::string_view statement, std::span<const std::optional<std::string>> params) {
  Parser p(statement, lex(statement), params);
  ParsedStatement r;
  while (p.punct(";")) {
  }
  const Token* first = p.peek();
  if (!first) return r;  // only comments: an empty query (sql "")
  if (first->type == Token::punct && first->text == "(") {
    r.sql = p.rewritten_query();
    return r;
  }
  if (first->type != Token::word) syntax_error("syntax error " + p.near(), "SELECT * FROM help lists what the console understands");
  const std::string w = first->text;
  r.verb = upper(w);

  auto settle = [&](bool commit, bool force, const char* verb) {
    r.kind = StatementKind::settle;
    r.commit = commit;
    r.force = force;
    r.verb = verb;
    r.gtrid = p.literal(kSettleUsage);
    p.expect_end(kSettleUsage);
    return r;
  };
  auto block_end = [&](StatementKind kind) {
    r.kind = kind;
    p.word("work") || p.word("transaction");
    if (p.word("and")) {
      p.word("no");
      if (!p.word("chain")) syntax_error("syntax error " + p.near());
    }
    p.expect_end(r.verb);
    return r;
  };

  if (kQueryWords.count(w)) {
    r.sql = p.rewritten_query();
    return r;
  }
  if (kWriteWords.count(w)) {
    r.kind = StatementKind::write;
    return r;
  }
  p.word(w);
  if (w == "begin" || w == "start") {
    if (w == "start" && !p.word("transaction")) syntax_error("syntax error " + p.near(), "START TRANSACTION");
    r.kind = StatementKind::begin;
    r.verb = "BEGIN";
    return r;  // isolation levels and READ ONLY are all the same here
  }
  if (w == "commit" || w == "end") {
    if (w == "commit" && p.word("prepared")) return settle(true, false, "COMMIT PREPARED");
    if (w == "commit" && p.word("force")) return settle(true, true, "COMMIT FORCE");
    r.verb = "COMMIT";
    return block_end(StatementKind::commit);
  }
  if (w == "rollback" || w == "abort") {
    if (w == "rollback" && p.word("prepared")) return settle(false, false, "ROLLBACK PREPARED");
    if (w == "rollback" && p.word("force")) return settle(false, true, "ROLLBACK FORCE");
    r.verb = "ROLLBACK";
    p.word("work") || p.word("transaction");
    if (p.word("to")) {
      p.word("savepoint");
      r.kind = StatementKind::rollback_to;
      r.name = p.next_word_text();
      if (r.name.empty()) syntax_error("syntax error " + p.near(), "ROLLBACK TO SAVEPOINT name");
      p.expect_end("ROLLBACK TO SAVEPOINT name");
      return r;
    }
    return block_end(StatementKind::rollback);
  }
  if (w == "savepoint" || w == "release") {
    if (w == "release") p.word("savepoint");
    r.kind = w == "savepoint" ? StatementKind::savepoint : StatementKind::release;
    r.name = p.next_word_text();
    if (r.name.empty()) syntax_error("syntax error " + p.near(), r.verb + " name");
    p.expect_end(r.verb + " name");
    return r;
  }
  if (w == "call") {
    std::string name = p.next_word_text();
    if (name == "dtx" && p.punct(".")) name = p.next_word_text();
    if (name == "recover") {
      r.kind = StatementKind::recover;
      r.verb = "CALL";
      if (!p.punct("(")) syntax_error("syntax error " + p.near(), "usage: " + kRecoverUsage);
      if (!p.punct(")")) {
        if (p.word("dry_run")) {
          if (!p.punct("=>") && !p.punct(":=")) syntax_error("syntax error " + p.near(), "usage: " + kRecoverUsage);
        }
        r.dry_run = p.boolean(kRecoverUsage);
        if (!p.punct(")")) syntax_error("syntax error " + p.near(), "usage: " + kRecoverUsage);
      }
      p.expect_end(kRecoverUsage);
      return r;
    }
    if (name == "accept_current") {
      const std::string usage = "CALL accept_current('gtrid')";
      r.kind = StatementKind::settle;
      r.accept_current = true;
      r.verb = "CALL";
      if (!p.punct("(")) syntax_error("syntax error " + p.near(), "usage: " + usage);
      r.gtrid = p.literal(usage);
      if (!p.punct(")")) syntax_error("syntax error " + p.near(), "usage: " + usage);
      p.expect_end(usage);
      return r;
    }
    throw StatementError("42883", "procedure " + (name.empty() ? std::string("?") : name) + " does not exist", {},
                         "the console's procedures: " + kRecoverUsage + ", CALL accept_current('gtrid')");
  }
  if (w == "set") {
    r.kind = StatementKind::set;
    p.word("session") || p.word("local");
    if (p.word("time")) {
      if (!p.word("zone")) syntax_error("syntax error " + p.near());
      r.name = "timezone";
    } else if (p.word("names")) {
      r.name = "client_encoding";
    } else if (p.word("transaction") || p.word("characteristics") || p.word("session")) {
      r.name = "transaction";  // isolation level etc.: accepted, nothing to change
      p.rest_value();
      return r;
    } else {
      r.name = lower(p.next_word_text());
      while (p.punct(".")) r.name += "." + lower(p.next_word_text());
      if (r.name.empty()) syntax_error("syntax error " + p.near(), "SET name = value");
      if (!p.punct("=") && !p.word("to")) syntax_error("syntax error " + p.near(), "SET name = value");
    }
    r.value = p.rest_value();
    return r;
  }
  if (w == "show") {
    r.kind = StatementKind::show;
    if (p.word("time")) {
      if (!p.word("zone")) syntax_error("syntax error " + p.near());
      r.name = "timezone";
    } else if (p.word("transaction")) {
      if (!(p.word("isolation") && p.word("level"))) syntax_error("syntax error " + p.near());
      r.name = "transaction_isolation";
    } else {
      r.name = lower(p.next_word_text());
      while (p.punct(".")) r.name += "." + lower(p.next_word_text());
    }
    if (r.name.empty()) syntax_error("syntax error " + p.near(), "SHOW name | SHOW ALL");
    p.expect_end("SHOW name");
    return r;
  }
  if (w == "reset") {
    r.kind = StatementKind::reset;
    r.name = lower(p.rest_value());
    if (r.name.empty()) syntax_error("syntax error " + p.near(), "RESET name | RESET ALL");
    return r;
  }
  if (w == "discard") {
    r.kind = StatementKind::discard;
    r.name = lower(p.rest_value());
    r.verb = "DISCARD " + upper(r.name);
    return r;
  }
  if (w == "deallocate") {
    r.kind = StatementKind::deallocate;
    p.word("prepare");
    r.name = p.rest_value();
    return r;
  }
  // Not a word anyone starts a query with here: let SQLite say what it is
  // (its authorizer refuses anything that would change something).
  r.sql = p.rewritten_query();
  return r;
}

}  // namespace dtx::admin
