#include "base/xid.h"

#include "dtx/error.h"

namespace dtx {

namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool is_id_text(std::string_view s) noexcept {
  for (char c : s)
    if (!is_id_char(c)) return false;
  return true;
}

void check_part(const std::string& gtrid, std::string_view what, std::string_view part) {
  if (part.empty())
    throw Error({.code = Errc::usage, .gtrid = gtrid}, "XA " + std::string(what) + " is empty");
  if (part.size() > Xid::kMaxPartBytes)
    throw Error({.code = Errc::usage,
                 .gtrid = gtrid,
                 .hint = "shorten the coordinator id or resource name"},
                "XA " + std::string(what) + " '" + std::string(part) + "' is " +
                    std::to_string(part.size()) + " bytes; XA allows at most 64");
  if (!is_id_text(part))
    throw Error({.code = Errc::usage, .gtrid = gtrid},
                "XA " + std::string(what) + " '" + std::string(part) +
                    "' may only hold [A-Za-z0-9_.-]");
}

}  // namespace

Xid Xid::make(std::string gtrid, std::string bqual) {
  check_part(gtrid, "gtrid", gtrid);
  check_part(gtrid, "bqual", bqual);
  return Xid{kDtxFormatId, std::move(gtrid), std::move(bqual)};
}

std::string Xid::mysql_literal() const {
  // An empty bqual still has to be spelled: MySQL accepts X''.
  return "X'" + hex(gtrid) + "',X'" + hex(bqual) + "'," + std::to_string(format_id);
}

std::string Xid::postgres_gid() const {
  if (!is_dtx() || !is_id_text(gtrid) || !is_id_text(bqual))
    throw Error({.code = Errc::usage, .gtrid = gtrid},
                "xid " + to_string() + " has no PostgreSQL gid: it is not in dtx's format");
  std::string gid;
  gid.reserve(kPostgresPrefix.size() + gtrid.size() + 1 + bqual.size());
  gid.append(kPostgresPrefix).append(gtrid).append(1, ':').append(bqual);
  return gid;
}

std::optional<Xid> Xid::from_postgres_gid(std::string_view gid) {
  if (!gid.starts_with(kPostgresPrefix)) return std::nullopt;
  gid.remove_prefix(kPostgresPrefix.size());
  auto colon = gid.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view gtrid = gid.substr(0, colon), bqual = gid.substr(colon + 1);
  if (gtrid.empty() || bqual.empty() || gtrid.size() > kMaxPartBytes ||
      bqual.size() > kMaxPartBytes || !is_id_text(gtrid) || !is_id_text(bqual))
    return std::nullopt;
  return Xid{kDtxFormatId, std::string(gtrid), std::string(bqual)};
}

std::string Xid::to_string() const {
  if (is_dtx() && is_id_text(gtrid) && is_id_text(bqual)) return gtrid + "/" + bqual;
  return std::to_string(format_id) + ":" + hex(gtrid) + ":" + hex(bqual);
}

}  // namespace dtx
