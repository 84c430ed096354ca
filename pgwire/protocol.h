// The PostgreSQL frontend/backend protocol, version 3 — server side, no I/O.
//
// MessageReader turns the bytes a client sent into typed messages; the caller
// owns the socket and feeds whatever arrived. MessageWriter appends backend
// messages to a string the caller writes out. Neither knows about sessions,
// authentication state or SQL: the server (server/) drives them.
// The subset, the limits and the error mapping: docs/pgwire.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace dtx::pgwire {

inline constexpr std::int32_t kProtocolVersion3 = 196608;  // 3.0: (3 << 16) | 0
inline constexpr std::int32_t kSslRequestCode = 80877103;
inline constexpr std::int32_t kGssEncRequestCode = 80877104;
inline constexpr std::int32_t kCancelRequestCode = 80877102;
// The longest startup packet accepted (PostgreSQL's MAX_STARTUP_PACKET_LENGTH).
inline constexpr std::size_t kMaxStartupPacket = 10000;
// The default longest typed message, length word included.
inline constexpr std::size_t kDefaultMaxMessage = std::size_t{1} << 20;

// Malformed or unsupported input. The message is safe to show the client (it
// names the message and the problem, never echoes the client's bytes). sqlstate is 08P01
// (protocol_violation), 54000 (program_limit_exceeded: a message over the
// limit) or 0A000 (feature_not_supported: protocol version, FunctionCall).
// After a ProtocolError the reader's position is unspecified: answer with a
// FATAL ErrorResponse and close the connection.
struct ProtocolError : std::runtime_error {
  ProtocolError(std::string state, const std::string& message)
      : std::runtime_error(message), sqlstate(std::move(state)) {}
  std::string sqlstate;
};

// ---- Startup phase: untyped packets (int32 length including itself, body) ----

struct StartupMessage {
  std::int32_t version = kProtocolVersion3;  // major 3; any minor is passed through
  std::vector<std::pair<std::string, std::string>> params;  // in the client's order
  // The first parameter with that name, nullptr if absent.
  const std::string* param(std::string_view name) const;
};
struct SslRequest {};
struct GssEncRequest {};
struct CancelRequest {
  std::int32_t pid = 0;
  std::int32_t secret = 0;
};
using StartupPacket = std::variant<StartupMessage, SslRequest, GssEncRequest, CancelRequest>;

// ---- Normal phase: typed messages (byte type, int32 length including itself, body) ----

struct Query {  // 'Q'
  std::string sql;
};
struct Parse {  // 'P'
  std::string name;  // empty: the unnamed statement
  std::string sql;
  std::vector<std::uint32_t> param_types;  // 0 = unspecified
};
struct Bind {  // 'B'
  std::string portal;
  std::string statement;
  // 0 entries: all text; 1 entry: applies to all; else one per parameter
  // (checked: any other count is a ProtocolError). 0 = text, 1 = binary.
  std::vector<std::int16_t> param_formats;
  std::vector<std::optional<std::string>> params;  // nullopt = SQL NULL
  std::vector<std::int16_t> result_formats;        // same convention, not checked against columns
};
struct Describe {  // 'D'
  char kind = 'S';  // 'S' statement or 'P' portal (anything else is a ProtocolError)
  std::string name;
};
struct Execute {  // 'E'
  std::string portal;
  std::int32_t max_rows = 0;  // 0 = no limit
};
struct Close {  // 'C'
  char kind = 'S';  // 'S' or 'P'
  std::string name;
};
struct Sync {};       // 'S'
struct Flush {};      // 'H'
struct Terminate {};  // 'X'
// 'p': a PasswordMessage, SASLInitialResponse or SASLResponse — which one
// depends on the authentication request the server sent, so the body is kept
// raw. Use parse_sasl_initial / parse_cleartext_password; a SASLResponse body
// is the SASL data itself.
struct PasswordData {
  std::string bytes;
};
// COPY sub-protocol messages. We never start a COPY; PostgreSQL ignores these
// outside COPY (a client may still be sending after a failed COPY), so the
// server should too.
struct CopyData {  // 'd'
  std::string data;
};
struct CopyDone {};  // 'c'
struct CopyFail {    // 'f'
  std::string message;
};
// FunctionCall ('F') is reported as a ProtocolError with sqlstate 0A000.

using FrontendMessage = std::variant<Query, Parse, Bind, Describe, Execute, Close, Sync, Flush,
                                     Terminate, PasswordData, CopyData, CopyDone, CopyFail>;

struct SaslInitialResponse {
  std::string mechanism;
  std::optional<std::string> data;  // nullopt when the client sent length -1
};
// The body of a 'p' message answering AuthenticationSASL. Throws ProtocolError.
SaslInitialResponse parse_sasl_initial(std::string_view body);
// The body of a 'p' message answering AuthenticationCleartextPassword (a
// NUL-terminated string). Throws ProtocolError.
std::string parse_cleartext_password(std::string_view body);

// Incremental reader. Feed bytes as they arrive, then call next_startup() /
// next() until they return nullopt (more bytes needed). A length word is
// checked as soon as it arrives, before the body: an oversized length throws
// at once and never allocates.
class MessageReader {
 public:
  // max_message bounds a typed message (length word included, type byte not).
  explicit MessageReader(std::size_t max_message = kDefaultMaxMessage);

  // Appends received bytes.
  void feed(std::string_view bytes);

  // Startup phase (the initial state). SslRequest and GssEncRequest keep the
  // startup phase: the client sends another startup packet after the answer.
  // Throws ProtocolError on malformed input, or when called in the normal phase.
  std::optional<StartupPacket> next_startup();

  // Switches to the normal phase; call once a StartupMessage was accepted.
  void start_normal_phase();
  bool in_startup_phase() const { return startup_; }

  // Normal phase. Throws ProtocolError on malformed input, an unknown message
  // type, or when called in the startup phase.
  std::optional<FrontendMessage> next();

  // Bytes received and not yet consumed as a message. After an SslRequest or
  // GssEncRequest this should be 0 before starting a TLS handshake: bytes sent
  // ahead of it were not encrypted (CVE-2021-23214).
  std::size_t buffered() const { return buffer_.size() - pos_; }

 private:
  std::string_view available() const;
  void consume(std::size_t n);

  std::size_t max_message_;
  bool startup_ = true;
  std::string buffer_;
  std::size_t pos_ = 0;  // start of the unconsumed bytes in buffer_
};

// ---- Backend messages ----

// Type OIDs (pg_type.oid) and their sizes (pg_type.typlen; -1 = varlena, -2 = C string).
inline constexpr std::uint32_t kBool = 16;
inline constexpr std::uint32_t kInt8 = 20;
inline constexpr std::uint32_t kInt4 = 23;
inline constexpr std::uint32_t kText = 25;
inline constexpr std::uint32_t kFloat8 = 701;
inline constexpr std::uint32_t kUnknown = 705;
// The typlen of one of the OIDs above; -1 for any other.
constexpr std::int16_t type_size(std::uint32_t type_oid) {
  switch (type_oid) {
    case kBool: return 1;
    case kInt8: return 8;
    case kInt4: return 4;
    case kFloat8: return 8;
    case kUnknown: return -2;
    default: return -1;
  }
}

struct FieldDescription {
  std::string name;
  std::uint32_t table_oid = 0;
  std::int16_t column = 0;
  std::uint32_t type_oid = kText;
  std::int16_t type_size = -1;
  std::int32_t type_modifier = -1;
  std::int16_t format = 0;  // 0 text, 1 binary
};
// A column of one of the types above, text format.
inline FieldDescription field(std::string name, std::uint32_t type_oid) {
  return FieldDescription{.name = std::move(name), .type_oid = type_oid,
                          .type_size = type_size(type_oid)};
}

struct ErrorFields {
  std::string severity = "ERROR";  // ERROR, FATAL, PANIC / WARNING, NOTICE, INFO, LOG, DEBUG
  std::string sqlstate;            // five characters
  std::string message;
  std::string detail;              // omitted when empty
  std::string hint;                // omitted when empty
  std::optional<int> position;     // 1-based character index into the query
};

// Appends backend messages to an internal buffer. String fields are
// NUL-terminated on the wire, so a string is cut at its first NUL byte.
class MessageWriter {
 public:
  // The single byte answering SslRequest / GssEncRequest: 'N', no encryption.
  void refuse_encryption();

  void authentication_ok();
  void authentication_cleartext_password();
  void authentication_sasl(std::span<const std::string_view> mechanisms);
  void authentication_sasl_continue(std::string_view data);
  void authentication_sasl_final(std::string_view data);
  // For a StartupMessage with a newer 3.x minor or "_pq_." options we do not know.
  void negotiate_protocol_version(std::int32_t newest_minor,
                                  std::span<const std::string_view> unrecognized_options);
  void parameter_status(std::string_view name, std::string_view value);
  void backend_key_data(std::int32_t pid, std::int32_t secret);
  void ready_for_query(char status);  // 'I' idle, 'T' in a transaction, 'E' failed transaction

  void row_description(std::span<const FieldDescription> fields);
  void data_row(std::span<const std::optional<std::string>> values);  // nullopt = NULL
  void data_row(std::span<const std::optional<std::string_view>> values);
  void command_complete(std::string_view tag);  // "SELECT 3", "CALL", ...
  void empty_query_response();
  void error_response(const ErrorFields& fields);
  void notice_response(const ErrorFields& fields);

  void parse_complete();
  void bind_complete();
  void close_complete();
  void parameter_description(std::span<const std::uint32_t> type_oids);
  void no_data();
  void portal_suspended();

  const std::string& data() const { return out_; }
  std::string take() { return std::exchange(out_, std::string()); }
  bool empty() const { return out_.empty(); }
  void clear() { out_.clear(); }

 private:
  // Starts a message of that type; finish() fills in its length word.
  void begin(char type);
  void finish();
  void put_int16(std::int16_t v);
  void put_int32(std::int32_t v);
  void put_cstring(std::string_view s);
  void put_count(std::size_t n, const char* what);  // Int16 count, up to 65535
  template <class Values>
  void put_row(const Values& values);
  void put_fields(char type, const ErrorFields& fields);
  void empty_message(char type);

  std::string out_;
  std::size_t start_ = 0;  // offset of the message being written
};

}  // namespace dtx::pgwire
