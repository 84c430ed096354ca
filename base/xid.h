// XA transaction branch identifiers, and how each database spells them.
//
// An Xid is (formatID, gtrid, bqual) as in the X/Open XA standard. dtx's own
// xids use kDtxFormatId; gtrid and bqual are at most 64 bytes each.
//   MySQL/MariaDB: X'<gtrid hex>',X'<bqual hex>',<formatID> — hex literals, so
//                  no byte of a name can break the statement.
//   PostgreSQL:    gid "dtx:<gtrid>:<bqual>" (< 200 bytes); gids without the
//                  "dtx:" prefix are not ours.
// See docs/transaction-ids.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dtx {

struct Xid {
  // "DTX1" in ASCII. Fits the 4 bytes MariaDB keeps with the binary log on.
  static constexpr std::uint32_t kDtxFormatId = 0x44545831;
  static constexpr std::size_t kMaxPartBytes = 64;
  static constexpr std::string_view kPostgresPrefix = "dtx:";

  std::uint32_t format_id = kDtxFormatId;
  std::string gtrid;
  std::string bqual;

  // A dtx xid. Throws dtx::Error(usage) if a part is empty, over 64 bytes, or
  // (for PostgreSQL's sake) holds a byte outside [A-Za-z0-9_.-].
  static Xid make(std::string gtrid, std::string bqual);

  bool is_dtx() const noexcept { return format_id == kDtxFormatId; }

  // `X'..',X'..',<formatID>`, ready to follow "XA COMMIT ".
  std::string mysql_literal() const;
  // "dtx:<gtrid>:<bqual>" (unquoted). Only for dtx xids.
  std::string postgres_gid() const;
  // Inverse of postgres_gid(); nullopt for a gid that is not dtx's.
  static std::optional<Xid> from_postgres_gid(std::string_view gid);

  // Human-readable form for logs and messages: gtrid/bqual, or
  // "<formatID>:<hex gtrid>:<hex bqual>" for foreign xids with odd bytes.
  std::string to_string() const;

  friend bool operator==(const Xid&, const Xid&) = default;
};

}  // namespace dtx
