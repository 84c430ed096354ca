// dtx::Error — the one exception type the library throws.
//
// Every error names what a user needs to act on it: the resource (as named in
// the config), the global transaction id, what the database said (its error
// code, SQLSTATE and message) and, where we know it, what to do next.
#pragma once

#include <stdexcept>
#include <string>

namespace dtx {

// The few outcomes the coordinator reasons about. Server errors are mapped to
// one of these; the server's own code and message are kept alongside.
enum class Errc {
  sql,                 // the statement failed (syntax, constraint, ...); the branch is unusable
  retryable,           // deadlock / lock wait timeout / serialization failure: retry the transaction
  rolled_back,         // the resource rolled the branch back on its own (XA_RB*, PG silent ROLLBACK)
  unknown_xid,         // the resource does not know this xid (1397 XAER_NOTA, 42704)
  unavailable,         // cannot connect / connection lost / server shutting down
  misconfigured,       // the server is set up so that dtx cannot be safe on it
  config,              // bad configuration file or unknown resource name
  usage,               // API misuse: wrong state, overlong id, ...
  timeout,             // the global transaction exceeded its timeout
  log,                 // the decision log could not be written or read
  in_doubt,            // the commit decision is durable but some branch is not yet committed
  damaged,             // a record dtx keeps in a database (an AT undo record) cannot be read
  lock_conflict,       // AT mode: a row is held by another global transaction's lock past the wait
};

const char* to_string(Errc code) noexcept;

class Error : public std::runtime_error {
 public:
  struct Details {
    Errc code = Errc::sql;
    std::string resource;        // config name of the resource, empty if none
    std::string gtrid;           // global transaction id, empty if none
    int server_code = 0;         // vendor error number (MySQL) or 0
    std::string sqlstate;        // five-character SQLSTATE, empty if none
    std::string server_message;  // the database's message, verbatim
    std::string hint;            // what to do next, empty if nothing useful
  };

  // `what` is the human summary; the full message (what()) also carries the
  // resource, gtrid, server error and hint.
  Error(Details details, const std::string& what);

  Errc code() const noexcept { return d_.code; }
  const std::string& resource() const noexcept { return d_.resource; }
  const std::string& gtrid() const noexcept { return d_.gtrid; }
  int server_code() const noexcept { return d_.server_code; }
  const std::string& sqlstate() const noexcept { return d_.sqlstate; }
  const std::string& server_message() const noexcept { return d_.server_message; }
  const std::string& hint() const noexcept { return d_.hint; }
  const std::string& summary() const noexcept { return summary_; }
  const Details& details() const noexcept { return d_; }

  // A copy of this error with the global id (and resource, if unset) filled in.
  Error with_context(const std::string& gtrid, const std::string& resource = {}) const;

 private:
  Details d_;
  std::string summary_;
};

}  // namespace dtx
