#include "drivers/sql_words.h"

namespace dtx {

bool is_sql_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::size_t sql_comment_end(std::string_view sql, std::size_t i, SqlDialect dialect) noexcept {
  const std::size_t n = sql.size();
  auto line_end = [&] {
    const std::size_t eol = sql.find('\n', i);
    return eol == std::string_view::npos ? n : eol + 1;
  };
  if (dialect == SqlDialect::postgres) {
    if (sql.compare(i, 2, "--") == 0) return line_end();
    if (sql.compare(i, 2, "/*") != 0) return i;
    std::size_t j = i + 2;
    for (int depth = 1; j < n && depth > 0;) {
      if (sql.compare(j, 2, "/*") == 0) {
        ++depth;
        j += 2;
      } else if (sql.compare(j, 2, "*/") == 0) {
        --depth;
        j += 2;
      } else {
        ++j;
      }
    }
    return j < n ? j : n;
  }
  // MySQL: "--" is a comment only when followed by whitespace or the end.
  if (sql.compare(i, 1, "#") == 0 ||
      (sql.compare(i, 2, "--") == 0 && (i + 2 >= n || is_sql_space(sql[i + 2]))))
    return line_end();
  if (sql.compare(i, 2, "/*") != 0 || sql.compare(i, 3, "/*!") == 0 || sql.compare(i, 4, "/*M!") == 0)
    return i;
  const std::size_t close = sql.find("*/", i + 2);
  return close == std::string_view::npos ? n : close + 2;
}

std::size_t sql_skip_blank(std::string_view sql, std::size_t i, SqlDialect dialect,
                           bool semicolons) noexcept {
  while (i < sql.size()) {
    if (is_sql_space(sql[i]) || (semicolons && sql[i] == ';'))
      ++i;
    else if (std::size_t end = sql_comment_end(sql, i, dialect); end != i)
      i = end;
    else
      break;
  }
  return i;
}

std::string SqlKeywords::next(bool skip_semicolons) {
  i_ = sql_skip_blank(sql_, i_, dialect_, skip_semicolons);
  std::string word;
  for (; i_ < sql_.size(); ++i_) {
    const char c = sql_[i_];
    if (c >= 'a' && c <= 'z')
      word.push_back(static_cast<char>(c - 'a' + 'A'));
    else if ((c >= 'A' && c <= 'Z') || c == '_')
      word.push_back(c);
    else
      break;
  }
  if (i_ < sql_.size() && ((sql_[i_] >= '0' && sql_[i_] <= '9') || sql_[i_] == '$' ||
                           static_cast<unsigned char>(sql_[i_]) >= 0x80))
    return {};
  return word;
}

std::vector<std::string> sql_script_statements(std::string_view script, SqlDialect words) {
  std::vector<std::string> statements;
  std::size_t start = sql_skip_blank(script, 0, words, /*semicolons=*/true);
  std::size_t i = start;
  while (i < script.size()) {
    if (const std::size_t past = sql_comment_end(script, i, words); past != i) {
      i = past;
      continue;
    }
    const char c = script[i];
    if (c == '\'' || c == '"' || c == '`') {  // no escapes inside: dtx's scripts have none
      const std::size_t close = script.find(c, i + 1);
      i = close == std::string_view::npos ? script.size() : close + 1;
      continue;
    }
    if (c == ';') {
      statements.emplace_back(script.substr(start, i - start));
      start = i = sql_skip_blank(script, i, words, /*semicolons=*/true);
      continue;
    }
    ++i;
  }
  if (start < script.size()) statements.emplace_back(script.substr(start));
  return statements;
}

}  // namespace dtx
