// The PostgreSQL v3 protocol reader and writer — design note.
//
// Framing. A connection starts in the startup phase: each packet is an int32
// length (including itself) and a body whose first int32 is a code — the
// protocol version of a StartupMessage, or the magic numbers of SSLRequest,
// GSSENCRequest and CancelRequest. After the server accepts a StartupMessage
// the caller switches the reader to the normal phase, where every message is
// one type byte, an int32 length (including itself, not the type byte) and a
// body. All integers are big-endian; strings are NUL-terminated.
//
// Buffering. MessageReader keeps one std::string of received bytes and an
// offset to the first unconsumed byte; a message is parsed only once all of
// it has arrived, so the parsers never see a partial body. Consumed bytes are
// dropped from the front when they are the larger part of the buffer, so the
// buffer stays within (longest message + one read) in a steady stream.
//
// Limits. The length word is checked as soon as its bytes arrive, before the
// body: a startup packet over kMaxStartupPacket or a typed message over the
// reader's max_message throws ProtocolError 54000 at once, and an unknown
// type byte throws 08P01 at once, so a hostile length never reserves memory.
//
// Validation. Each body is parsed by a Body cursor that throws ProtocolError
// 08P01 naming the message for a truncated field, a string without its NUL,
// a count or length that exceeds the bytes left, a negative length, and bytes
// left over at the end (PostgreSQL's pq_getmsgend). Counts of the extended
// protocol (parameters, formats) are unsigned 16-bit, as PostgreSQL reads them.
// After a ProtocolError the connection is to be closed (PostgreSQL answers
// such errors with FATAL): the reader does not try to resynchronize.
//
// Writing. MessageWriter::begin appends the type byte and a placeholder
// length; finish() patches the length once the body is written, so each
// message method writes its fields in wire order and nothing computes sizes
// by hand.
#include "pgwire/protocol.h"

#include <limits>

namespace dtx::pgwire {

namespace {

std::uint32_t load_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{u[0]} << 24 | std::uint32_t{u[1]} << 16 | std::uint32_t{u[2]} << 8 |
         std::uint32_t{u[3]};
}

std::int32_t load_int32(const char* p) { return static_cast<std::int32_t>(load_be32(p)); }

[[noreturn]] void violation(const std::string& message) {
  throw ProtocolError("08P01", message);
}

// A type byte as a client can read it in an error message.
std::string describe_type(char type) {
  const auto u = static_cast<unsigned char>(type);
  if (u >= 0x21 && u <= 0x7e) return std::string("'") + type + "'";
  return "byte " + std::to_string(u);
}

// A cursor over one complete message body.
class Body {
 public:
  Body(std::string_view body, const char* message) : body_(body), message_(message) {}

  std::uint8_t byte() {
    need(1, "a byte");
    return static_cast<std::uint8_t>(body_[pos_++]);
  }
  std::int16_t int16() {
    need(2, "an Int16");
    const auto* u = reinterpret_cast<const unsigned char*>(body_.data() + pos_);
    pos_ += 2;
    return static_cast<std::int16_t>(std::uint16_t(u[0] << 8 | u[1]));
  }
  // A count: PostgreSQL reads Int16 counts as unsigned (up to 65535).
  std::size_t count16() { return static_cast<std::uint16_t>(int16()); }
  std::int32_t int32() {
    need(4, "an Int32");
    const std::int32_t v = load_int32(body_.data() + pos_);
    pos_ += 4;
    return v;
  }
  std::string cstring(const char* what) {
    const std::size_t end = body_.find('\0', pos_);
    if (end == std::string_view::npos) fail(std::string(what) + " is not NUL-terminated");
    std::string s(body_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  std::string bytes(std::size_t n, const char* what) {
    need(n, what);
    std::string s(body_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string rest() { return bytes(remaining(), "the rest"); }
  // `n` items of `size` bytes each must fit in what is left, before anything is reserved.
  void need_items(std::size_t n, std::size_t size, const char* what) {
    if (n > remaining() / size) fail(std::string("its ") + what + " count exceeds the message");
  }
  void end() {
    if (remaining() != 0)
      fail(std::to_string(remaining()) + " unexpected byte(s) at the end of the message");
  }
  std::size_t remaining() const { return body_.size() - pos_; }
  [[noreturn]] void fail(const std::string& problem) const {
    violation(std::string("invalid ") + message_ + " message: " + problem);
  }

 private:
  void need(std::size_t n, const std::string& what) {
    if (remaining() < n) fail("truncated (expected " + what + ")");
  }

  std::string_view body_;
  const char* message_;
  std::size_t pos_ = 0;
};

std::vector<std::int16_t> read_formats(Body& body, const char* what) {
  const std::size_t n = body.count16();
  body.need_items(n, 2, what);
  std::vector<std::int16_t> formats(n);
  for (auto& f : formats) f = body.int16();
  return formats;
}

Query parse_query(Body b) {
  Query m{b.cstring("the query string")};
  b.end();
  return m;
}

Parse parse_parse(Body b) {
  Parse m;
  m.name = b.cstring("the statement name");
  m.sql = b.cstring("the query string");
  const std::size_t n = b.count16();
  b.need_items(n, 4, "parameter type");
  m.param_types.resize(n);
  for (auto& t : m.param_types) t = static_cast<std::uint32_t>(b.int32());
  b.end();
  return m;
}

Bind parse_bind(Body b) {
  Bind m;
  m.portal = b.cstring("the portal name");
  m.statement = b.cstring("the statement name");
  m.param_formats = read_formats(b, "parameter format");
  const std::size_t n = b.count16();
  b.need_items(n, 4, "parameter");  // each has at least its length word
  m.params.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t len = b.int32();
    if (len == -1) {
      m.params.emplace_back(std::nullopt);
    } else if (len < 0) {
      b.fail("parameter " + std::to_string(i + 1) + " has length " + std::to_string(len));
    } else {
      m.params.emplace_back(b.bytes(static_cast<std::size_t>(len), "a parameter value"));
    }
  }
  if (m.param_formats.size() > 1 && m.param_formats.size() != n)
    b.fail("it has " + std::to_string(m.param_formats.size()) + " parameter formats but " +
           std::to_string(n) + " parameters");
  m.result_formats = read_formats(b, "result format");
  b.end();
  return m;
}

char read_kind(Body& b) {
  const char kind = static_cast<char>(b.byte());
  if (kind != 'S' && kind != 'P')
    b.fail("the kind is " + describe_type(kind) + ", expected 'S' or 'P'");
  return kind;
}

// Describe and Close: a kind byte and a name.
template <class Message>
Message parse_kind_and_name(Body b) {
  Message m;
  m.kind = read_kind(b);
  m.name = b.cstring("the name");
  b.end();
  return m;
}

Execute parse_execute(Body b) {
  Execute m;
  m.portal = b.cstring("the portal name");
  m.max_rows = b.int32();
  b.end();
  return m;
}

template <class Empty>
Empty parse_empty(Body b) {
  b.end();
  return Empty{};
}

CopyFail parse_copy_fail(Body b) {
  CopyFail m{b.cstring("the error message")};
  b.end();
  return m;
}

// The message name for a type byte; nullptr for a type no frontend sends.
const char* frontend_message_name(char type) {
  switch (type) {
    case 'Q': return "Query";
    case 'P': return "Parse";
    case 'B': return "Bind";
    case 'D': return "Describe";
    case 'E': return "Execute";
    case 'C': return "Close";
    case 'S': return "Sync";
    case 'H': return "Flush";
    case 'X': return "Terminate";
    case 'p': return "password";
    case 'd': return "CopyData";
    case 'c': return "CopyDone";
    case 'f': return "CopyFail";
    case 'F': return "FunctionCall";
    default: return nullptr;
  }
}

StartupMessage parse_startup_message(std::int32_t version, Body b) {
  StartupMessage m;
  m.version = version;
  for (;;) {
    std::string name = b.cstring("a parameter name");
    if (name.empty()) break;
    std::string value = b.cstring("a parameter value");
    m.params.emplace_back(std::move(name), std::move(value));
  }
  b.end();
  return m;
}

}  // namespace

const std::string* StartupMessage::param(std::string_view name) const {
  for (const auto& [key, value] : params)
    if (key == name) return &value;
  return nullptr;
}

SaslInitialResponse parse_sasl_initial(std::string_view body) {
  Body b(body, "SASLInitialResponse");
  SaslInitialResponse m;
  m.mechanism = b.cstring("the mechanism name");
  const std::int32_t len = b.int32();
  if (len < -1) b.fail("the data length is " + std::to_string(len));
  if (len >= 0) m.data = b.bytes(static_cast<std::size_t>(len), "the SASL data");
  b.end();
  return m;
}

std::string parse_cleartext_password(std::string_view body) {
  Body b(body, "PasswordMessage");
  std::string password = b.cstring("the password");
  b.end();
  return password;
}

// ---- MessageReader ----

MessageReader::MessageReader(std::size_t max_message) : max_message_(max_message) {}

void MessageReader::feed(std::string_view bytes) {
  // Drop what was consumed once it is most of the buffer (amortized O(1) per byte).
  if (pos_ > 0 && pos_ >= buffer_.size() - pos_) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

std::string_view MessageReader::available() const {
  return std::string_view(buffer_).substr(pos_);
}

void MessageReader::consume(std::size_t n) {
  pos_ += n;
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
}

void MessageReader::start_normal_phase() { startup_ = false; }

std::optional<StartupPacket> MessageReader::next_startup() {
  if (!startup_) throw std::logic_error("MessageReader::next_startup called in the normal phase");
  const std::string_view in = available();
  if (in.size() < 4) return std::nullopt;
  const std::int32_t len = load_int32(in.data());
  if (len < 8)
    violation("invalid length of startup packet: " + std::to_string(len) +
              " (a startup packet has at least 8 bytes)");
  if (static_cast<std::size_t>(len) > kMaxStartupPacket)
    throw ProtocolError("54000", "startup packet of " + std::to_string(len) +
                                     " bytes is over the limit of " +
                                     std::to_string(kMaxStartupPacket));
  if (in.size() < static_cast<std::size_t>(len)) return std::nullopt;
  const std::int32_t code = load_int32(in.data() + 4);
  const std::string_view body = in.substr(8, static_cast<std::size_t>(len) - 8);
  const auto expect_length = [&](std::int32_t expected, const char* what) {
    if (len != expected)
      violation(std::string("invalid ") + what + " packet: length " + std::to_string(len) +
                ", expected " + std::to_string(expected));
  };
  StartupPacket packet;
  if (code == kSslRequestCode) {
    expect_length(8, "SSLRequest");
    packet = SslRequest{};
  } else if (code == kGssEncRequestCode) {
    expect_length(8, "GSSENCRequest");
    packet = GssEncRequest{};
  } else if (code == kCancelRequestCode) {
    expect_length(16, "CancelRequest");
    packet = CancelRequest{load_int32(body.data()), load_int32(body.data() + 4)};
  } else {
    const auto major = static_cast<std::uint32_t>(code) >> 16;
    const auto minor = static_cast<std::uint32_t>(code) & 0xffff;
    if (major != 3)
      throw ProtocolError("0A000", "unsupported frontend protocol " + std::to_string(major) + "." +
                                       std::to_string(minor) + ": server supports 3.0");
    packet = parse_startup_message(code, Body(body, "StartupMessage"));
  }
  consume(static_cast<std::size_t>(len));
  return packet;
}

std::optional<FrontendMessage> MessageReader::next() {
  if (startup_) throw std::logic_error("MessageReader::next called in the startup phase");
  const std::string_view in = available();
  if (in.empty()) return std::nullopt;
  const char type = in[0];
  const char* name = frontend_message_name(type);
  if (name == nullptr) violation("invalid frontend message type " + describe_type(type));
  if (type == 'F') throw ProtocolError("0A000", "FunctionCall messages are not supported");
  if (in.size() < 5) return std::nullopt;
  const std::int32_t len = load_int32(in.data() + 1);
  if (len < 4)
    violation(std::string("invalid ") + name + " message: length " + std::to_string(len));
  if (static_cast<std::size_t>(len) > max_message_)
    throw ProtocolError("54000", std::string(name) + " message of " + std::to_string(len) +
                                     " bytes is over the limit of " +
                                     std::to_string(max_message_));
  const std::size_t total = 1 + static_cast<std::size_t>(len);
  if (in.size() < total) return std::nullopt;
  const Body body(in.substr(5, total - 5), name);
  FrontendMessage message;
  switch (type) {
    case 'Q': message = parse_query(body); break;
    case 'P': message = parse_parse(body); break;
    case 'B': message = parse_bind(body); break;
    case 'D': message = parse_kind_and_name<Describe>(body); break;
    case 'E': message = parse_execute(body); break;
    case 'C': message = parse_kind_and_name<Close>(body); break;
    case 'S': message = parse_empty<Sync>(body); break;
    case 'H': message = parse_empty<Flush>(body); break;
    case 'X': message = parse_empty<Terminate>(body); break;
    case 'p': message = PasswordData{Body(body).rest()}; break;
    case 'd': message = CopyData{Body(body).rest()}; break;
    case 'c': message = parse_empty<CopyDone>(body); break;
    case 'f': message = parse_copy_fail(body); break;
  }
  consume(total);
  return message;
}

// ---- MessageWriter ----

void MessageWriter::begin(char type) {
  start_ = out_.size();
  out_.push_back(type);
  out_.append(4, '\0');
}

void MessageWriter::finish() {
  const std::size_t len = out_.size() - start_ - 1;
  if (len > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    out_.resize(start_);
    throw std::length_error("pgwire: a backend message over 2 GiB");
  }
  const auto v = static_cast<std::uint32_t>(len);
  out_[start_ + 1] = static_cast<char>(v >> 24);
  out_[start_ + 2] = static_cast<char>(v >> 16);
  out_[start_ + 3] = static_cast<char>(v >> 8);
  out_[start_ + 4] = static_cast<char>(v);
}

void MessageWriter::put_int16(std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  out_.push_back(static_cast<char>(u >> 8));
  out_.push_back(static_cast<char>(u));
}

void MessageWriter::put_int32(std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<char>(u >> shift));
}

void MessageWriter::put_cstring(std::string_view s) {
  out_.append(s.substr(0, s.find('\0')));
  out_.push_back('\0');
}

void MessageWriter::put_count(std::size_t n, const char* what) {
  if (n > std::numeric_limits<std::uint16_t>::max()) {
    out_.resize(start_);
    throw std::length_error(std::string("pgwire: more than 65535 ") + what + " in one message");
  }
  put_int16(static_cast<std::int16_t>(static_cast<std::uint16_t>(n)));
}

void MessageWriter::empty_message(char type) {
  begin(type);
  finish();
}

void MessageWriter::refuse_encryption() { out_.push_back('N'); }

void MessageWriter::authentication_ok() {
  begin('R');
  put_int32(0);
  finish();
}

void MessageWriter::authentication_cleartext_password() {
  begin('R');
  put_int32(3);
  finish();
}

void MessageWriter::authentication_sasl(std::span<const std::string_view> mechanisms) {
  begin('R');
  put_int32(10);
  for (const auto mechanism : mechanisms) put_cstring(mechanism);
  out_.push_back('\0');
  finish();
}

void MessageWriter::authentication_sasl_continue(std::string_view data) {
  begin('R');
  put_int32(11);
  out_.append(data);
  finish();
}

void MessageWriter::authentication_sasl_final(std::string_view data) {
  begin('R');
  put_int32(12);
  out_.append(data);
  finish();
}

void MessageWriter::negotiate_protocol_version(
    std::int32_t newest_minor, std::span<const std::string_view> unrecognized_options) {
  begin('v');
  put_int32(newest_minor);
  put_int32(static_cast<std::int32_t>(unrecognized_options.size()));
  for (const auto option : unrecognized_options) put_cstring(option);
  finish();
}

void MessageWriter::parameter_status(std::string_view name, std::string_view value) {
  begin('S');
  put_cstring(name);
  put_cstring(value);
  finish();
}

void MessageWriter::backend_key_data(std::int32_t pid, std::int32_t secret) {
  begin('K');
  put_int32(pid);
  put_int32(secret);
  finish();
}

void MessageWriter::ready_for_query(char status) {
  begin('Z');
  out_.push_back(status);
  finish();
}

void MessageWriter::row_description(std::span<const FieldDescription> fields) {
  begin('T');
  put_count(fields.size(), "columns");
  for (const auto& f : fields) {
    put_cstring(f.name);
    put_int32(static_cast<std::int32_t>(f.table_oid));
    put_int16(f.column);
    put_int32(static_cast<std::int32_t>(f.type_oid));
    put_int16(f.type_size);
    put_int32(f.type_modifier);
    put_int16(f.format);
  }
  finish();
}

template <class Values>
void MessageWriter::put_row(const Values& values) {
  begin('D');
  put_count(values.size(), "columns");
  for (const auto& v : values) {
    if (!v) {
      put_int32(-1);
      continue;
    }
    if (v->size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
      out_.resize(start_);
      throw std::length_error("pgwire: a value over 2 GiB");
    }
    put_int32(static_cast<std::int32_t>(v->size()));
    out_.append(*v);
  }
  finish();
}

void MessageWriter::data_row(std::span<const std::optional<std::string>> values) {
  put_row(values);
}

void MessageWriter::data_row(std::span<const std::optional<std::string_view>> values) {
  put_row(values);
}

void MessageWriter::command_complete(std::string_view tag) {
  begin('C');
  put_cstring(tag);
  finish();
}

void MessageWriter::empty_query_response() { empty_message('I'); }

void MessageWriter::put_fields(char type, const ErrorFields& fields) {
  begin(type);
  const auto field = [&](char code, std::string_view value) {
    out_.push_back(code);
    put_cstring(value);
  };
  field('S', fields.severity);
  field('V', fields.severity);
  field('C', fields.sqlstate);
  field('M', fields.message);
  if (!fields.detail.empty()) field('D', fields.detail);
  if (!fields.hint.empty()) field('H', fields.hint);
  if (fields.position) field('P', std::to_string(*fields.position));
  out_.push_back('\0');
  finish();
}

void MessageWriter::error_response(const ErrorFields& fields) { put_fields('E', fields); }

void MessageWriter::notice_response(const ErrorFields& fields) { put_fields('N', fields); }

void MessageWriter::parse_complete() { empty_message('1'); }

void MessageWriter::bind_complete() { empty_message('2'); }

void MessageWriter::close_complete() { empty_message('3'); }

void MessageWriter::parameter_description(std::span<const std::uint32_t> type_oids) {
  begin('t');
  put_count(type_oids.size(), "parameters");
  for (const auto oid : type_oids) put_int32(static_cast<std::int32_t>(oid));
  finish();
}

void MessageWriter::no_data() { empty_message('n'); }

void MessageWriter::portal_suspended() { empty_message('s'); }

}  // namespace dtx::pgwire
