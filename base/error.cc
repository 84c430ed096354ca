#include "dtx/error.h"

namespace dtx {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::sql: return "sql";
    case Errc::retryable: return "retryable";
    case Errc::rolled_back: return "rolled_back";
    case Errc::unknown_xid: return "unknown_xid";
    case Errc::unavailable: return "unavailable";
    case Errc::misconfigured: return "misconfigured";
    case Errc::config: return "config";
    case Errc::usage: return "usage";
    case Errc::timeout: return "timeout";
    case Errc::log: return "log";
    case Errc::in_doubt: return "in_doubt";
    case Errc::damaged: return "damaged";
    case Errc::lock_conflict: return "lock_conflict";
  }
  return "unknown";
}

namespace {

// "<summary> [resource bank2, gtrid node1.…] (server error 1146, SQLSTATE 42S02: …). Hint: …"
std::string full_message(const Error::Details& d, const std::string& summary) {
  std::string m = summary;
  if (!d.resource.empty() || !d.gtrid.empty()) {
    m += " [";
    if (!d.resource.empty()) m += "resource " + d.resource;
    if (!d.resource.empty() && !d.gtrid.empty()) m += ", ";
    if (!d.gtrid.empty()) m += "gtrid " + d.gtrid;
    m += "]";
  }
  if (d.server_code != 0 || !d.sqlstate.empty() || !d.server_message.empty()) {
    m += " (server said";
    if (d.server_code != 0) m += " error " + std::to_string(d.server_code);
    if (!d.sqlstate.empty()) m += " SQLSTATE " + d.sqlstate;
    if (!d.server_message.empty()) m += ": " + d.server_message;
    m += ")";
  }
  if (!d.hint.empty()) m += ". " + d.hint;
  return m;
}

}  // namespace

Error::Error(Details details, const std::string& what)
    : std::runtime_error(full_message(details, what)), d_(std::move(details)), summary_(what) {}

Error Error::with_context(const std::string& gtrid, const std::string& resource) const {
  Details d = d_;
  if (d.gtrid.empty()) d.gtrid = gtrid;
  if (d.resource.empty()) d.resource = resource;
  return Error(std::move(d), summary_);
}

}  // namespace dtx
