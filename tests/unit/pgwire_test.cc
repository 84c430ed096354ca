// The PostgreSQL v3 message reader and writer (pgwire/protocol.h), no socket:
// frontend bytes are built by hand as a client would send them, backend
// messages are compared byte for byte with the protocol's message formats.
#include "pgwire/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dtx::pgwire {
namespace {

using namespace std::string_literals;

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string be16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

// A typed frontend message: type, length (body + 4), body.
std::string msg(char type, const std::string& body) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}
// An untyped startup packet: length (body + 4), body.
std::string packet(const std::string& body) {
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

MessageReader normal_reader(std::size_t max_message = kDefaultMaxMessage) {
  MessageReader r(max_message);
  r.start_normal_phase();
  return r;
}

// Feeds `bytes` and returns the one message they hold, checking nothing is left.
FrontendMessage one_message(const std::string& bytes) {
  auto r = normal_reader();
  r.feed(bytes);
  auto m = r.next();
  EXPECT_TRUE(m.has_value());
  EXPECT_EQ(r.buffered(), 0u);
  EXPECT_FALSE(r.next().has_value());
  return m.value_or(FrontendMessage{Sync{}});
}

// The ProtocolError `bytes` raise in a reader in either phase (fails if none).
ProtocolError error_in_phase(const std::string& bytes, bool startup) {
  MessageReader r;
  if (!startup) r.start_normal_phase();
  r.feed(bytes);
  try {
    while (startup ? r.next_startup().has_value() : r.next().has_value()) {
    }
  } catch (const ProtocolError& e) {
    return e;
  }
  ADD_FAILURE() << "no ProtocolError";
  return ProtocolError("", "");
}
ProtocolError normal_error(const std::string& bytes) { return error_in_phase(bytes, false); }
ProtocolError startup_error(const std::string& bytes) { return error_in_phase(bytes, true); }

// ---- startup phase ----

TEST(PgwireStartup, StartupMessageParsesVersionAndParameters) {
  // What psql sends: length 37, version 3.0, user/database pairs, final NUL.
  const std::string bytes = "\0\0\0\x25"s "\0\x03\0\0"s "user\0dtx_admin\0database\0dtx\0\0"s;
  ASSERT_EQ(bytes.size(), 37u);
  MessageReader r;
  r.feed(bytes);
  const auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  const auto* m = std::get_if<StartupMessage>(&*p);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->version, kProtocolVersion3);
  ASSERT_EQ(m->params.size(), 2u);
  EXPECT_EQ(m->params[0], (std::pair<std::string, std::string>{"user", "dtx_admin"}));
  ASSERT_NE(m->param("database"), nullptr);
  EXPECT_EQ(*m->param("database"), "dtx");
  EXPECT_EQ(m->param("application_name"), nullptr);
  EXPECT_EQ(r.buffered(), 0u);
  EXPECT_TRUE(r.in_startup_phase());
}

TEST(PgwireStartup, EmptyParameterValueIsKept) {
  MessageReader r;
  r.feed(packet(be32(kProtocolVersion3) + "user\0u\0options\0\0\0"s));
  const auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  const auto& m = std::get<StartupMessage>(*p);
  ASSERT_NE(m.param("options"), nullptr);
  EXPECT_EQ(*m.param("options"), "");
}

TEST(PgwireStartup, SslRequestThenStartupMessage) {
  MessageReader r;
  r.feed("\0\0\0\x08\x04\xd2\x16\x2f"s);  // 8, 1234.5679
  auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(std::holds_alternative<SslRequest>(*p));
  EXPECT_EQ(r.buffered(), 0u);
  EXPECT_FALSE(r.next_startup().has_value());
  r.feed(packet(be32(kProtocolVersion3) + "user\0a\0\0"s));
  p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*std::get<StartupMessage>(*p).param("user"), "a");
}

TEST(PgwireStartup, GssEncRequest) {
  MessageReader r;
  r.feed("\0\0\0\x08\x04\xd2\x16\x30"s);  // 1234.5680
  const auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(std::holds_alternative<GssEncRequest>(*p));
}

TEST(PgwireStartup, CancelRequestCarriesPidAndSecret) {
  MessageReader r;
  r.feed("\0\0\0\x10\x04\xd2\x16\x2e"s "\0\0\x30\x39"s "\xff\xff\xff\xfe"s);
  const auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  const auto& c = std::get<CancelRequest>(*p);
  EXPECT_EQ(c.pid, 12345);
  EXPECT_EQ(c.secret, -2);
}

TEST(PgwireStartup, NewerMinorVersionIsPassedThrough) {
  MessageReader r;
  r.feed(packet(be32(0x00030002) + "user\0a\0_pq_.x\0y\0\0"s));
  const auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(std::get<StartupMessage>(*p).version, 0x00030002);
}

TEST(PgwireStartup, ProtocolTwoIsRefusedAsUnsupported) {
  const auto e = startup_error(packet(be32(0x00020000) + "user\0a\0\0"s));
  EXPECT_EQ(e.sqlstate, "0A000");
  EXPECT_NE(std::string(e.what()).find("unsupported frontend protocol 2.0"), std::string::npos);
}

TEST(PgwireStartup, PacketOverTenThousandBytesRefusedFromItsLengthAlone) {
  MessageReader r;
  r.feed(be32(10001));  // nothing of the body has arrived
  try {
    r.next_startup();
    FAIL() << "accepted";
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.sqlstate, "54000");
  }
  EXPECT_EQ(startup_error(be32(0x7fffffff)).sqlstate, "54000");
  EXPECT_EQ(startup_error(be32(0x80000000)).sqlstate, "08P01");  // negative
}

TEST(PgwireStartup, PacketOfExactlyTenThousandBytesAccepted) {
  const std::string head = be32(kProtocolVersion3) + "user\0a\0options\0"s;
  const std::string body = head + std::string(10000 - 4 - head.size() - 2, 'x') + "\0\0"s;
  MessageReader r;
  r.feed(packet(body));
  ASSERT_EQ(packet(body).size(), kMaxStartupPacket);
  const auto p = r.next_startup();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(std::get<StartupMessage>(*p).param("options")->size(), 10000 - 4 - head.size() - 2);
}

TEST(PgwireStartup, MalformedPacketsAreProtocolViolations) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"length below 8", be32(7) + "\0\0\0"s},
      {"length 0", be32(0)},
      {"SSLRequest with a body", packet(be32(kSslRequestCode) + "x"s)},
      {"GSSENCRequest with a body", packet(be32(kGssEncRequestCode) + "xy"s)},
      {"CancelRequest too short", packet(be32(kCancelRequestCode) + be32(1))},
      {"CancelRequest too long", packet(be32(kCancelRequestCode) + be32(1) + be32(2) + "z"s)},
      {"no final terminator", packet(be32(kProtocolVersion3) + "user\0a\0"s)},
      {"value without NUL", packet(be32(kProtocolVersion3) + "user\0abc"s)},
      {"name without NUL", packet(be32(kProtocolVersion3) + "user"s)},
      {"bytes after the terminator", packet(be32(kProtocolVersion3) + "user\0a\0\0junk"s)},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(startup_error(bytes).sqlstate, "08P01");
  }
}

TEST(PgwireStartup, WrongPhaseIsAProgrammingError) {
  MessageReader r;
  EXPECT_THROW(r.next(), std::logic_error);
  r.start_normal_phase();
  EXPECT_FALSE(r.in_startup_phase());
  EXPECT_THROW(r.next_startup(), std::logic_error);
}

// ---- normal phase: every frontend message ----

TEST(PgwireReader, Query) {
  const auto m = one_message("Q\0\0\0\x0dSELECT 1\0"s);
  EXPECT_EQ(std::get<Query>(m).sql, "SELECT 1");
}

TEST(PgwireReader, ParseWithParameterTypes) {
  const auto m = one_message(
      msg('P', "s1\0SELECT $1, $2\0"s + be16(2) + be32(kInt8) + be32(0)));
  const auto& p = std::get<Parse>(m);
  EXPECT_EQ(p.name, "s1");
  EXPECT_EQ(p.sql, "SELECT $1, $2");
  EXPECT_EQ(p.param_types, (std::vector<std::uint32_t>{20, 0}));
}

TEST(PgwireReader, ParseUnnamedWithoutTypes) {
  const auto m = one_message("P\0\0\0\x10\0SELECT 1\0\0\0"s);
  const auto& p = std::get<Parse>(m);
  EXPECT_EQ(p.name, "");
  EXPECT_EQ(p.sql, "SELECT 1");
  EXPECT_TRUE(p.param_types.empty());
}

TEST(PgwireReader, BindWithNullAndFormats) {
  const std::string body = "portal\0stmt\0"s + be16(1) + be16(0) +  // one format: all text
                           be16(3) + be32(2) + "42" + be32(0xffffffff) + be32(0) +  // "42", NULL, ""
                           be16(2) + be16(0) + be16(1);
  const auto m = one_message(msg('B', body));
  const auto& b = std::get<Bind>(m);
  EXPECT_EQ(b.portal, "portal");
  EXPECT_EQ(b.statement, "stmt");
  EXPECT_EQ(b.param_formats, (std::vector<std::int16_t>{0}));
  ASSERT_EQ(b.params.size(), 3u);
  EXPECT_EQ(b.params[0], "42");
  EXPECT_EQ(b.params[1], std::nullopt);
  EXPECT_EQ(b.params[2], "");
  EXPECT_EQ(b.result_formats, (std::vector<std::int16_t>{0, 1}));
}

TEST(PgwireReader, BindOneFormatPerParameter) {
  const auto m =
      one_message(msg('B', "\0\0"s + be16(2) + be16(0) + be16(1) + be16(2) + be32(1) + "a" +
                               be32(4) + be32(7) + be16(0)));
  const auto& b = std::get<Bind>(m);
  EXPECT_EQ(b.param_formats, (std::vector<std::int16_t>{0, 1}));
  EXPECT_EQ(b.params[1], be32(7));
  EXPECT_TRUE(b.result_formats.empty());
}

TEST(PgwireReader, DescribeStatementAndPortal) {
  auto m = one_message("D\0\0\0\x08Ss1\0"s);
  EXPECT_EQ(std::get<Describe>(m).kind, 'S');
  EXPECT_EQ(std::get<Describe>(m).name, "s1");
  m = one_message("D\0\0\0\x06P\0"s);
  EXPECT_EQ(std::get<Describe>(m).kind, 'P');
  EXPECT_EQ(std::get<Describe>(m).name, "");
}

TEST(PgwireReader, ExecuteWithRowLimit) {
  const auto m = one_message("E\0\0\0\x0bp1\0\0\0\0\x64"s);
  EXPECT_EQ(std::get<Execute>(m).portal, "p1");
  EXPECT_EQ(std::get<Execute>(m).max_rows, 100);
}

TEST(PgwireReader, CloseStatementAndPortal) {
  auto m = one_message("C\0\0\0\x08Ss1\0"s);
  EXPECT_EQ(std::get<Close>(m).kind, 'S');
  EXPECT_EQ(std::get<Close>(m).name, "s1");
  m = one_message("C\0\0\0\x08Pp1\0"s);
  EXPECT_EQ(std::get<Close>(m).kind, 'P');
}

TEST(PgwireReader, SyncFlushTerminate) {
  EXPECT_TRUE(std::holds_alternative<Sync>(one_message("S\0\0\0\x04"s)));
  EXPECT_TRUE(std::holds_alternative<Flush>(one_message("H\0\0\0\x04"s)));
  EXPECT_TRUE(std::holds_alternative<Terminate>(one_message("X\0\0\0\x04"s)));
}

TEST(PgwireReader, PasswordDataIsKeptRaw) {
  const auto m = one_message("p\0\0\0\x08\0a\0b"s);
  EXPECT_EQ(std::get<PasswordData>(m).bytes, "\0a\0b"s);
}

TEST(PgwireReader, CopyMessages) {
  EXPECT_EQ(std::get<CopyData>(one_message("d\0\0\0\x07x\0y"s)).data, "x\0y"s);
  EXPECT_TRUE(std::holds_alternative<CopyDone>(one_message("c\0\0\0\x04"s)));
  EXPECT_EQ(std::get<CopyFail>(one_message("f\0\0\0\x09oops\0"s)).message, "oops");
}

TEST(PgwireReader, SeveralMessagesInOneFeed) {
  auto r = normal_reader();
  r.feed(msg('P', "\0SELECT $1\0"s + be16(0)) + msg('B', "\0\0"s + be16(0) + be16(1) + be32(1) +
                                                             "7" + be16(0)) +
         msg('D', "P\0"s) + msg('E', "\0"s + be32(0)) + msg('S', ""));
  std::vector<std::size_t> kinds;
  while (auto m = r.next()) kinds.push_back(m->index());
  EXPECT_EQ(kinds, (std::vector<std::size_t>{1, 2, 3, 4, 6}));  // Parse Bind Describe Execute Sync
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(PgwireReader, OneByteAtATime) {
  const std::string startup = packet(be32(kSslRequestCode)) +
                              packet(be32(kProtocolVersion3) + "user\0u\0\0"s);
  const std::string normal = msg('Q', "SELECT 1; SELECT 2\0"s) +
                             msg('B', "\0\0"s + be16(0) + be16(1) + be32(3) + "abc" + be16(0)) +
                             msg('X', "");
  MessageReader r;
  std::vector<std::size_t> startup_kinds;
  for (const char c : startup) {
    r.feed(std::string_view(&c, 1));
    if (auto p = r.next_startup()) startup_kinds.push_back(p->index());
  }
  EXPECT_EQ(startup_kinds, (std::vector<std::size_t>{1, 0}));
  r.start_normal_phase();
  std::vector<FrontendMessage> got;
  for (const char c : normal) {
    r.feed(std::string_view(&c, 1));
    while (auto m = r.next()) got.push_back(std::move(*m));
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(std::get<Query>(got[0]).sql, "SELECT 1; SELECT 2");
  EXPECT_EQ(std::get<Bind>(got[1]).params.at(0), "abc");
  EXPECT_TRUE(std::holds_alternative<Terminate>(got[2]));
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(PgwireReader, PartialMessageWaitsForTheRest) {
  auto r = normal_reader();
  const std::string q = msg('Q', "SELECT 1\0"s);
  r.feed(q.substr(0, 7));
  EXPECT_FALSE(r.next().has_value());
  EXPECT_EQ(r.buffered(), 7u);
  r.feed(q.substr(7) + q.substr(0, 3));
  ASSERT_TRUE(r.next().has_value());
  EXPECT_FALSE(r.next().has_value());
  EXPECT_EQ(r.buffered(), 3u);
}

// ---- normal phase: malformed input ----

TEST(PgwireReader, LengthOverTheLimitRefusedBeforeTheBodyArrives) {
  auto r = normal_reader(1000);
  r.feed("Q\x7f\xff\xff\xff"s);  // 2 GiB announced, nothing sent
  try {
    r.next();
    FAIL() << "accepted";
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.sqlstate, "54000");
    EXPECT_NE(std::string(e.what()).find("over the limit of 1000"), std::string::npos);
  }
  EXPECT_EQ(r.buffered(), 5u);  // nothing was reserved for the body

  auto exact = normal_reader(1000);
  exact.feed(msg('Q', std::string(995, 'x') + "\0"s));  // length word 1000
  EXPECT_TRUE(exact.next().has_value());
  auto over = normal_reader(1000);
  over.feed("Q\0\0\x03\xe9"s);  // 1001
  EXPECT_THROW(over.next(), ProtocolError);
}

TEST(PgwireReader, UnknownTypeRefusedAtItsFirstByte) {
  auto r = normal_reader();
  r.feed("Z"s);
  try {
    r.next();
    FAIL() << "accepted";
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.sqlstate, "08P01");
    EXPECT_NE(std::string(e.what()).find("'Z'"), std::string::npos);
  }
  EXPECT_EQ(normal_error("\x01"s).sqlstate, "08P01");
}

TEST(PgwireReader, FunctionCallIsUnsupported) {
  EXPECT_EQ(normal_error(msg('F', be32(1234) + be16(0) + be16(0) + be16(0))).sqlstate, "0A000");
}

TEST(PgwireReader, MalformedMessagesAreProtocolViolations) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"length 3", "Q\0\0\0\x03"s},
      {"negative length", "S\xff\xff\xff\xff"s},
      {"Query without NUL", msg('Q', "SELECT 1")},
      {"Query with bytes after the NUL", msg('Q', "SELECT 1\0x"s)},
      {"Sync with a body", msg('S', "x")},
      {"Flush with a body", msg('H', "\0"s)},
      {"Terminate with a body", msg('X', "abc")},
      {"CopyDone with a body", msg('c', "a")},
      {"Parse without query", msg('P', "s\0"s)},
      {"Parse without type count", msg('P', "s\0q\0"s)},
      {"Parse types exceed the body", msg('P', "s\0q\0"s + be16(3) + be32(23))},
      {"Parse with trailing bytes", msg('P', "s\0q\0"s + be16(0) + "x")},
      {"Bind truncated", msg('B', "\0"s)},
      {"Bind formats exceed the body", msg('B', "\0\0"s + be16(0x7fff))},
      {"Bind params exceed the body", msg('B', "\0\0"s + be16(0) + be16(0xffff) + be32(0))},
      {"Bind param length -2", msg('B', "\0\0"s + be16(0) + be16(1) + be32(0xfffffffe) + be16(0))},
      {"Bind param longer than the body", msg('B', "\0\0"s + be16(0) + be16(1) + be32(100) + "ab")},
      {"Bind two formats for three params",
       msg('B', "\0\0"s + be16(2) + be16(0) + be16(0) + be16(3) + be32(0) + be32(0) + be32(0) +
                    be16(0))},
      {"Bind without result formats", msg('B', "\0\0"s + be16(0) + be16(0))},
      {"Bind result formats exceed the body", msg('B', "\0\0"s + be16(0) + be16(0) + be16(2) + be16(0))},
      {"Bind with trailing bytes", msg('B', "\0\0"s + be16(0) + be16(0) + be16(0) + "z")},
      {"Describe of kind X", msg('D', "Xs\0"s)},
      {"Describe empty", msg('D', "")},
      {"Describe name without NUL", msg('D', "Sname")},
      {"Close of kind s", msg('C', "ss\0"s)},
      {"Execute without row count", msg('E', "p\0\0\0"s)},
      {"Execute with trailing bytes", msg('E', "p\0"s + be32(0) + "!")},
      {"CopyFail without NUL", msg('f', "oops")},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(normal_error(bytes).sqlstate, "08P01");
  }
}

TEST(PgwireReader, CountsAreUnsigned) {
  // PostgreSQL reads Int16 counts as unsigned: 40000 parameters are legal.
  std::string body = "\0\0"s + be16(0) + be16(40000);
  for (int i = 0; i < 40000; ++i) body += be32(0xffffffff);
  body += be16(0);
  const auto m = one_message(msg('B', body));
  EXPECT_EQ(std::get<Bind>(m).params.size(), 40000u);
}

TEST(PgwireReader, ErrorMessagesDoNotEchoTheInput) {
  const auto e = normal_error(msg('Q', std::string(500, 'A')));
  EXPECT_EQ(std::string(e.what()).find("AAAA"), std::string::npos) << e.what();
}

TEST(PgwireSasl, InitialResponse) {
  auto m = parse_sasl_initial("SCRAM-SHA-256\0"s + be32(5) + "n,,ab");
  EXPECT_EQ(m.mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(m.data, "n,,ab");
  m = parse_sasl_initial("SCRAM-SHA-256\0\xff\xff\xff\xff"s);
  EXPECT_EQ(m.data, std::nullopt);
  m = parse_sasl_initial("X\0"s + be32(0));
  EXPECT_EQ(m.data, "");
}

TEST(PgwireSasl, MalformedInitialResponse) {
  for (const std::string& body :
       {"SCRAM-SHA-256"s, "SCRAM-SHA-256\0"s, "SCRAM-SHA-256\0"s + be32(6) + "n,,ab",
        "SCRAM-SHA-256\0"s + be32(4) + "n,,ab", "SCRAM-SHA-256\0"s + be32(0xfffffffe),
        "SCRAM-SHA-256\0\xff\xff\xff\xffx"s}) {
    SCOPED_TRACE(body);
    EXPECT_THROW(parse_sasl_initial(body), ProtocolError);
  }
}

TEST(PgwireSasl, CleartextPassword) {
  EXPECT_EQ(parse_cleartext_password("secret\0"s), "secret");
  EXPECT_THROW(parse_cleartext_password("secret"), ProtocolError);
  EXPECT_THROW(parse_cleartext_password("sec\0ret\0"s), ProtocolError);
}

// ---- backend messages, byte for byte ----

TEST(PgwireWriter, Authentication) {
  MessageWriter w;
  w.authentication_ok();
  EXPECT_EQ(w.take(), "R\0\0\0\x08\0\0\0\0"s);
  w.authentication_cleartext_password();
  EXPECT_EQ(w.take(), "R\0\0\0\x08\0\0\0\x03"s);
  const std::string_view mechanisms[] = {"SCRAM-SHA-256"};
  w.authentication_sasl(mechanisms);
  EXPECT_EQ(w.take(), "R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"s);
  w.authentication_sasl_continue("r=abc");
  EXPECT_EQ(w.take(), "R\0\0\0\x0d\0\0\0\x0br=abc"s);
  w.authentication_sasl_final("v=xy");
  EXPECT_EQ(w.take(), "R\0\0\0\x0c\0\0\0\x0cv=xy"s);
  EXPECT_TRUE(w.empty());
}

TEST(PgwireWriter, StartupReplies) {
  MessageWriter w;
  w.refuse_encryption();
  w.parameter_status("server_version", "15.0");
  w.backend_key_data(12345, -2);
  w.ready_for_query('I');
  EXPECT_EQ(w.data(), "N"
                      "S\0\0\0\x18server_version\0" "15.0\0"
                      "K\0\0\0\x0c\0\0\x30\x39\xff\xff\xff\xfe"
                      "Z\0\0\0\x05I"s);
}

TEST(PgwireWriter, NegotiateProtocolVersion) {
  MessageWriter w;
  const std::string_view options[] = {"_pq_.a"};
  w.negotiate_protocol_version(0, options);
  EXPECT_EQ(w.data(), "v\0\0\0\x13\0\0\0\0\0\0\0\x01_pq_.a\0"s);
}

TEST(PgwireWriter, RowDescriptionAndDataRow) {
  MessageWriter w;
  const FieldDescription fields[] = {field("id", kInt8), field("t", kText)};
  w.row_description(fields);
  EXPECT_EQ(w.take(), "T\0\0\0\x2f\0\x02"
                      "id\0" "\0\0\0\0" "\0\0" "\0\0\0\x14" "\0\x08" "\xff\xff\xff\xff" "\0\0"
                      "t\0" "\0\0\0\0" "\0\0" "\0\0\0\x19" "\xff\xff" "\xff\xff\xff\xff" "\0\0"s);
  const std::vector<std::optional<std::string>> row = {"7", std::nullopt, ""};
  w.data_row(row);
  EXPECT_EQ(w.take(), "D\0\0\0\x13\0\x03" "\0\0\0\x01" "7" "\xff\xff\xff\xff" "\0\0\0\0"s);
  const std::vector<std::optional<std::string_view>> views = {std::string_view("ab")};
  w.data_row(views);
  EXPECT_EQ(w.take(), "D\0\0\0\x0c\0\x01\0\0\0\x02" "ab"s);
}

TEST(PgwireWriter, TypeSizes) {
  EXPECT_EQ(field("b", kBool).type_size, 1);
  EXPECT_EQ(field("i", kInt4).type_size, 4);
  EXPECT_EQ(field("f", kFloat8).type_size, 8);
  EXPECT_EQ(field("u", kUnknown).type_size, -2);
  EXPECT_EQ(field("t", kText).type_size, -1);
}

TEST(PgwireWriter, CommandCompleteAndEmptyQuery) {
  MessageWriter w;
  w.command_complete("SELECT 3");
  w.empty_query_response();
  EXPECT_EQ(w.data(), "C\0\0\0\x0dSELECT 3\0" "I\0\0\0\x04"s);
}

TEST(PgwireWriter, ErrorResponseWithAllFields) {
  MessageWriter w;
  w.error_response({.severity = "ERROR", .sqlstate = "42601", .message = "syntax error",
                    .detail = "d", .hint = "h", .position = 8});
  EXPECT_EQ(w.data(), "E\0\0\0\x31"
                      "SERROR\0" "VERROR\0" "C42601\0" "Msyntax error\0" "Dd\0" "Hh\0" "P8\0" "\0"s);
}

TEST(PgwireWriter, NoticeResponseOmitsEmptyFields) {
  MessageWriter w;
  w.notice_response({.severity = "NOTICE", .sqlstate = "00000", .message = "hi"});
  EXPECT_EQ(w.data(), "N\0\0\0\x20" "SNOTICE\0" "VNOTICE\0" "C00000\0" "Mhi\0" "\0"s);
}

TEST(PgwireWriter, ExtendedProtocolReplies) {
  MessageWriter w;
  w.parse_complete();
  w.bind_complete();
  w.close_complete();
  const std::uint32_t oids[] = {kInt4, kText};
  w.parameter_description(oids);
  w.no_data();
  w.portal_suspended();
  EXPECT_EQ(w.data(), "1\0\0\0\x04" "2\0\0\0\x04" "3\0\0\0\x04"
                      "t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19"
                      "n\0\0\0\x04" "s\0\0\0\x04"s);
}

TEST(PgwireWriter, StringsAreCutAtAnEmbeddedNul) {
  MessageWriter w;
  w.command_complete("OK\0junk"s);
  EXPECT_EQ(w.data(), "C\0\0\0\x07OK\0"s);
}

TEST(PgwireWriter, WhatTheWriterWritesTheReaderFramesAlike) {
  // The writer's framing round-trips through the reader's (same layout, typed).
  MessageWriter w;
  w.command_complete("SELECT 1");
  auto r = normal_reader();
  std::string bytes = w.take();
  bytes[0] = 'Q';  // a CommandComplete body is a Query body
  r.feed(bytes);
  const auto m = r.next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(std::get<Query>(*m).sql, "SELECT 1");
}

}  // namespace
}  // namespace dtx::pgwire
