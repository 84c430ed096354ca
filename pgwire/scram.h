// SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, as PostgreSQL speaks it
// inside AuthenticationSASL: no channel binding (we offer SCRAM-SHA-256 only,
// not -PLUS), the SCRAM user name ignored (the startup packet's user counts).
// Primitives from OpenSSL; the design note is at the top of scram.cc.
#pragma once

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dtx::pgwire {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr int kScramDefaultIterations = 4096;  // PostgreSQL's scram_iterations default

// A malformed SCRAM message or an exchange used out of order. Map it, like a
// wrong proof, to the one authentication failure error (28P01).
struct ScramError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the server keeps instead of the password.
struct ScramSecret {
  std::string salt;  // raw bytes
  int iterations = kScramDefaultIterations;
  std::array<unsigned char, 32> stored_key{};  // H(HMAC(SaltedPassword, "Client Key"))
  std::array<unsigned char, 32> server_key{};  // HMAC(SaltedPassword, "Server Key")
};

// A secret with a random 16-byte salt. The password is used as given (no
// SASLprep: ASCII passwords are unaffected).
ScramSecret make_scram_secret(std::string_view password, int iterations = kScramDefaultIterations);
// The same with a given salt (raw bytes): deterministic, for tests.
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations);

// PostgreSQL's rolpassword text: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
// (base64), so a secret can be kept in configuration instead of a password.
std::string format_scram_secret(const ScramSecret& secret);
// nullopt when the text is not in that format.
std::optional<ScramSecret> parse_scram_secret(std::string_view text);

// One authentication exchange: client_first, then client_final. Single use.
class ScramServer {
 public:
  // secret == nullptr (unknown user, no password set): run the whole exchange
  // with a made-up salt and fail at the end, so the client cannot tell a wrong
  // user from a wrong password. The made-up salt is derived from `user` and a
  // per-process random key: the same for repeated attempts, different per user.
  // *secret must outlive the ScramServer.
  explicit ScramServer(const ScramSecret* secret, std::string_view user = {});

  // For tests: use `server_nonce` as the server's part of the nonce instead of
  // 18 random bytes (printable ASCII except ',').
  ScramServer(const ScramSecret* secret, std::string_view user, std::string server_nonce);

  // client-first-message (the SASLInitialResponse data) -> server-first-message.
  // Throws ScramError on malformed input, channel binding requested ('p='),
  // an unknown mandatory extension ('m='), or a second call.
  std::string client_first(std::string_view message);

  // client-final-message (the SASLResponse data) -> server-final-message
  // ("v=<ServerSignature>") when the proof verifies; nullopt when it does not
  // (wrong password, unknown user, nonce or channel binding mismatch). Throws
  // ScramError on malformed input or when called out of order.
  std::optional<std::string> client_final(std::string_view message);

 private:
  const ScramSecret* secret_;
  ScramSecret mock_;  // used when secret_ is nullptr
  std::string server_nonce_;
  std::string gs2_header_;          // "n,," or "y,," as the client sent it
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;               // client nonce + server nonce
  enum class State { initial, sent_first, done } state_ = State::initial;
};

}  // namespace dtx::pgwire
