// libFuzzer target for pgwire (scripts/fuzz.sh builds and runs it).
//
// Input layout: byte 0 selects what is fuzzed, byte 1 seeds where the rest is
// cut into reads, the rest is the payload.
//   byte 0 bit 0 = 0: the payload is a client's byte stream. It is fed to a
//       MessageReader in reads of pseudo-random sizes, as a server would: the
//       startup phase until a StartupMessage, then the normal phase. Every
//       'p' message also goes through parse_sasl_initial /
//       parse_cleartext_password and drives a ScramServer, and every message
//       is echoed through a MessageWriter, whose framing is checked.
//   byte 0 bit 0 = 1: the payload is client-first NUL client-final, given
//       straight to a ScramServer; and, whole, to parse_scram_secret.
//   bit 1: the ScramServer has a secret (the RFC 7677 user) or none (the
//       unknown-user path). bit 2: a 64-byte message limit instead of 1 MiB.
// Expected failures (ProtocolError, ScramError) are caught; anything else —
// another exception, a crash, a sanitizer report, a leak — is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pgwire/protocol.h"
#include "pgwire/scram.h"

namespace {

using namespace dtx::pgwire;

// RFC 7677's user, so the checked-in seeds can complete a real exchange.
const ScramSecret& rfc_secret() {
  static const ScramSecret secret = [] {
    const unsigned char salt[] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                  0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
    return make_scram_secret("pencil",
                             std::string_view(reinterpret_cast<const char*>(salt), sizeof salt),
                             4096);
  }();
  return secret;
}
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

void check(bool ok) {
  if (!ok) std::abort();
}

std::uint32_t load_be32(const std::string& s, std::size_t at) {
  return std::uint32_t(static_cast<unsigned char>(s[at])) << 24 |
         std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 16 |
         std::uint32_t(static_cast<unsigned char>(s[at + 2])) << 8 |
         std::uint32_t(static_cast<unsigned char>(s[at + 3]));
}

// Every message in `out` is framed: type byte, length that reaches exactly
// the next message.
void check_framing(const std::string& out) {
  std::size_t pos = 0;
  while (pos < out.size()) {
    check(out.size() - pos >= 5);
    const std::uint32_t len = load_be32(out, pos + 1);
    check(len >= 4 && len <= out.size() - pos - 1);
    pos += 1 + len;
  }
}

struct Session {
  explicit Session(bool with_secret)
      : scram(with_secret ? &rfc_secret() : nullptr, "user", kServerNonce) {}

  void password(const std::string& bytes) {
    try {
      parse_cleartext_password(bytes);
    } catch (const ProtocolError&) {
    }
    try {
      if (password_messages++ == 0) {
        const SaslInitialResponse initial = parse_sasl_initial(bytes);
        if (initial.data) writer.authentication_sasl_continue(scram.client_first(*initial.data));
      } else if (const auto final_message = scram.client_final(bytes)) {
        writer.authentication_sasl_final(*final_message);
      }
    } catch (const ProtocolError&) {
    } catch (const ScramError&) {
    }
  }

  // Echoes a message through the writer, the way a server answers it.
  void answer(const FrontendMessage& message) {
    if (const auto* q = std::get_if<Query>(&message)) {
      // A Query's body is a CommandComplete's: write it, read it back.
      MessageWriter w;
      w.command_complete(q->sql);
      std::string bytes = w.take();
      bytes[0] = 'Q';
      MessageReader r;
      r.start_normal_phase();
      r.feed(bytes);
      const auto again = r.next();
      check(again && std::get<Query>(*again).sql == q->sql && r.buffered() == 0);
      writer.error_response({.severity = "ERROR", .sqlstate = "42601", .message = q->sql,
                             .detail = q->sql, .hint = "h", .position = 1});
    } else if (const auto* b = std::get_if<Bind>(&message)) {
      writer.data_row(b->params);
      writer.parameter_status(b->portal, b->statement);
    } else if (const auto* p = std::get_if<Parse>(&message)) {
      writer.parameter_description(p->param_types);
      writer.row_description(std::vector<FieldDescription>{field(p->name, kText), field(p->sql, kInt8)});
    } else if (const auto* d = std::get_if<Describe>(&message)) {
      writer.notice_response({.severity = "NOTICE", .sqlstate = "00000", .message = d->name});
    } else if (const auto* pd = std::get_if<PasswordData>(&message)) {
      password(pd->bytes);
    } else {
      writer.ready_for_query('I');
    }
  }

  ScramServer scram;
  MessageWriter writer;
  int password_messages = 0;
};

void fuzz_stream(std::uint8_t flags, std::uint8_t seed, std::string_view payload) {
  MessageReader reader((flags & 4) != 0 ? 64 : kDefaultMaxMessage);
  Session session((flags & 2) != 0);
  std::uint32_t state = seed * 2654435761u + 1;
  std::size_t pos = 0;
  try {
    while (pos < payload.size()) {
      state = state * 1103515245u + 12345u;
      const std::size_t chunk = std::min<std::size_t>(1 + (state >> 16) % 64, payload.size() - pos);
      const std::size_t before = reader.buffered();
      reader.feed(payload.substr(pos, chunk));
      pos += chunk;
      check(reader.buffered() == before + chunk);
      for (;;) {
        const std::size_t held = reader.buffered();
        if (reader.in_startup_phase()) {
          const auto packet = reader.next_startup();
          if (!packet) break;
          check(reader.buffered() < held);
          if (std::holds_alternative<StartupMessage>(*packet)) reader.start_normal_phase();
          if (std::holds_alternative<CancelRequest>(*packet)) return;  // the server closes
        } else {
          const auto message = reader.next();
          if (!message) break;
          check(reader.buffered() < held);
          session.answer(*message);
          if (std::holds_alternative<Terminate>(*message)) return;
        }
      }
    }
  } catch (const ProtocolError& e) {
    check(e.sqlstate == "08P01" || e.sqlstate == "54000" || e.sqlstate == "0A000");
  }
  check_framing(session.writer.data());
}

void fuzz_scram(std::uint8_t flags, std::string_view payload) {
  const std::size_t nul = payload.find('\0');
  const std::string_view first = payload.substr(0, nul);
  const std::string_view final_message =
      nul == std::string_view::npos ? std::string_view() : payload.substr(nul + 1);
  ScramServer server((flags & 2) != 0 ? &rfc_secret() : nullptr, "user", kServerNonce);
  try {
    const std::string server_first = server.client_first(first);
    check(server_first.starts_with("r="));
    const auto server_final = server.client_final(final_message);
    check(!server_final || ((flags & 2) != 0 && server_final->starts_with("v=")));
  } catch (const ScramError&) {
  }
  // The same bytes as configured secret text: parsing is total, and what it
  // accepts survives formatting.
  if (const auto secret = parse_scram_secret(payload)) {
    const auto again = parse_scram_secret(format_scram_secret(*secret));
    check(again && again->salt == secret->salt && again->iterations == secret->iterations &&
          again->stored_key == secret->stored_key && again->server_key == secret->server_key);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view payload(reinterpret_cast<const char*>(data) + 2, size - 2);
  if ((data[0] & 1) == 0)
    fuzz_stream(data[0], data[1], payload);
  else
    fuzz_scram(data[0], payload);
  return 0;
}
