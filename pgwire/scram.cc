// SCRAM-SHA-256 server side — design note.
//
// What is stored. The server never keeps the password: make_scram_secret
// derives SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations),
// then StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")) and ServerKey =
// HMAC(SaltedPassword, "Server Key") (RFC 5802 section 3). Those two keys, the
// salt and the iteration count are the ScramSecret; format_scram_secret writes
// them in PostgreSQL's rolpassword form.
//
// The exchange (inside PostgreSQL's AuthenticationSASL / SASLContinue /
// SASLFinal messages):
//   C: n,,n=<ignored>,r=<client nonce>                     client_first
//   S: r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//   C: c=biws,r=<both nonces>,p=<ClientProof>              client_final
//   S: v=<ServerSignature>
// AuthMessage is client-first-bare "," server-first "," client-final-without-
// proof. The client proves it knows ClientKey: ClientProof = ClientKey XOR
// HMAC(StoredKey, AuthMessage), so the server recovers ClientKey by XOR-ing
// again and checks SHA-256(ClientKey) == StoredKey with CRYPTO_memcmp
// (constant time). ServerSignature = HMAC(ServerKey, AuthMessage) proves the
// server knew the secret too. The server nonce is 18 random bytes (RAND_bytes)
// in base64, so a recorded exchange cannot be replayed.
//
// Channel binding. We offer only SCRAM-SHA-256 (not -PLUS): the gs2 flag 'n'
// (client cannot bind) and 'y' (client could, thinks we cannot) are accepted,
// 'p=' is refused, and c= must be the base64 of the very gs2 header sent first.
// An authorization identity (a=) and mandatory extensions (m=) are refused.
//
// Unknown users. With no secret the server still answers client_first with a
// salt — derived by HMAC from a per-process random key and the user name, so
// it is stable per user — and runs the proof check against random keys, so
// the exchange fails only at the end, exactly like a wrong password.
//
// Failure shape. Malformed messages throw ScramError; a proof, nonce or
// channel binding that does not verify returns nullopt. The caller maps both
// to one "password authentication failed" error.
#include "pgwire/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace dtx::pgwire {

namespace {

using Key = std::array<unsigned char, 32>;

void random_bytes(unsigned char* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1)
    throw ScramError("the system's random number generator failed (OpenSSL RAND_bytes)");
}

Key hmac(const unsigned char* key, std::size_t key_len, std::string_view data) {
  Key out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key, static_cast<int>(key_len),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &len) == nullptr ||
      len != out.size())
    throw ScramError("HMAC-SHA-256 failed (OpenSSL)");
  return out;
}

Key hmac(const Key& key, std::string_view data) { return hmac(key.data(), key.size(), data); }

Key sha256(const Key& data) {
  Key out{};
  SHA256(data.data(), data.size(), out.data());
  return out;
}

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64_encode(const Key& key) {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Strict: the standard alphabet, padded to a multiple of 4; nullopt otherwise.
// EVP_DecodeBlock alone would skip whitespace and count padding as zero bytes.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  for (std::size_t i = 0; i < text.size() - padding; ++i)
    if (!is_base64_char(text[i])) return std::nullopt;
  if (text.empty()) return std::string();
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

std::optional<Key> decode_key(std::string_view text) {
  const auto raw = base64_decode(text);
  if (!raw || raw->size() != Key{}.size()) return std::nullopt;
  Key key{};
  std::copy(raw->begin(), raw->end(), key.begin());
  return key;
}

// printable = %x21-2B / %x2D-7E (RFC 5802): visible ASCII except ','.
bool is_printable_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (const char c : nonce)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

// Splits "a=x,b=y" into attributes; a SCRAM message never contains NUL.
std::vector<std::string_view> split_attributes(std::string_view message, const char* which) {
  if (message.find('\0') != std::string_view::npos)
    throw ScramError(std::string("malformed SCRAM ") + which + " message (contains a NUL byte)");
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t comma = message.find(',');
    parts.push_back(message.substr(0, comma));
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
  }
  return parts;
}

// The value of attribute `name` ("r=..." -> "..."); throws if `part` is another one.
std::string_view attribute(std::string_view part, char name, const char* which) {
  if (part.size() < 2 || part[0] != name || part[1] != '=')
    throw ScramError(std::string("malformed SCRAM ") + which + " message (expected attribute '" +
                     name + "')");
  return part.substr(2);
}

bool is_attribute(std::string_view part) {
  return part.size() >= 2 && ((part[0] >= 'a' && part[0] <= 'z') || (part[0] >= 'A' && part[0] <= 'Z')) &&
         part[1] == '=';
}

// The per-process key the made-up salts of unknown users are derived from.
const Key& mock_key() {
  static const Key key = [] {
    Key k{};
    random_bytes(k.data(), k.size());
    return k;
  }();
  return key;
}

ScramSecret mock_secret(std::string_view user) {
  ScramSecret s;
  const Key derived = hmac(mock_key(), user);
  s.salt.assign(reinterpret_cast<const char*>(derived.data()), 16);
  s.iterations = kScramDefaultIterations;
  random_bytes(s.stored_key.data(), s.stored_key.size());
  random_bytes(s.server_key.data(), s.server_key.size());
  return s;
}

std::string random_nonce() {
  unsigned char raw[18];
  random_bytes(raw, sizeof raw);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

}  // namespace

ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations) {
  if (iterations < 1) throw ScramError("SCRAM iteration count must be at least 1");
  if (salt.empty()) throw ScramError("SCRAM salt must not be empty");
  Key salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1)
    throw ScramError("PBKDF2-HMAC-SHA-256 failed (OpenSSL)");
  ScramSecret secret;
  secret.salt = std::string(salt);
  secret.iterations = iterations;
  secret.stored_key = sha256(hmac(salted, "Client Key"));
  secret.server_key = hmac(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  return secret;
}

ScramSecret make_scram_secret(std::string_view password, int iterations) {
  unsigned char salt[16];
  random_bytes(salt, sizeof salt);
  return make_scram_secret(password, std::string_view(reinterpret_cast<const char*>(salt), sizeof salt),
                           iterations);
}

std::string format_scram_secret(const ScramSecret& secret) {
  return std::string(kScramSha256) + "$" + std::to_string(secret.iterations) + ":" +
         base64_encode(secret.salt) + "$" + base64_encode(secret.stored_key) + ":" +
         base64_encode(secret.server_key);
}

std::optional<ScramSecret> parse_scram_secret(std::string_view text) {
  // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
  const std::string prefix = std::string(kScramSha256) + "$";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  text.remove_prefix(prefix.size());
  const std::size_t colon1 = text.find(':');
  const std::size_t dollar = text.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1)
    return std::nullopt;
  const std::size_t colon2 = text.find(':', dollar);
  if (colon2 == std::string_view::npos) return std::nullopt;
  ScramSecret secret;
  const std::string_view iterations = text.substr(0, colon1);
  const auto [end, ec] =
      std::from_chars(iterations.data(), iterations.data() + iterations.size(), secret.iterations);
  if (ec != std::errc() || end != iterations.data() + iterations.size() || secret.iterations < 1)
    return std::nullopt;
  const auto salt = base64_decode(text.substr(colon1 + 1, dollar - colon1 - 1));
  const auto stored = decode_key(text.substr(dollar + 1, colon2 - dollar - 1));
  const auto server = decode_key(text.substr(colon2 + 1));
  if (!salt || salt->empty() || !stored || !server) return std::nullopt;
  secret.salt = *salt;
  secret.stored_key = *stored;
  secret.server_key = *server;
  return secret;
}

// ---- ScramServer ----

ScramServer::ScramServer(const ScramSecret* secret, std::string_view user)
    : ScramServer(secret, user, random_nonce()) {}

ScramServer::ScramServer(const ScramSecret* secret, std::string_view user, std::string server_nonce)
    : secret_(secret), server_nonce_(std::move(server_nonce)) {
  if (secret_ == nullptr) mock_ = mock_secret(user);
  if (!is_printable_nonce(server_nonce_))
    throw ScramError("the SCRAM server nonce must be printable ASCII without ','");
}

std::string ScramServer::client_first(std::string_view message) {
  if (state_ != State::initial) throw ScramError("SCRAM client-first message received twice");
  state_ = State::done;  // until this message is accepted: any failure ends the exchange
  const auto parts = split_attributes(message, "client-first");
  // gs2-header: cbind-flag "," [authzid] ","
  if (parts.size() < 4) throw ScramError("malformed SCRAM client-first message (too short)");
  if (parts[0].substr(0, 2) == "p=")
    throw ScramError("SCRAM channel binding was requested, but only SCRAM-SHA-256 is offered "
                     "(not SCRAM-SHA-256-PLUS)");
  if (parts[0] != "n" && parts[0] != "y")
    throw ScramError("malformed SCRAM client-first message (unknown channel binding flag)");
  if (!parts[1].empty())
    throw ScramError("SCRAM authorization identity (a=) is not supported");
  std::size_t i = 2;
  if (parts[i].substr(0, 2) == "m=")
    throw ScramError("SCRAM mandatory extension is not supported");
  attribute(parts[i++], 'n', "client-first");  // the user name: ignored, the startup user counts
  const std::string_view client_nonce = attribute(parts[i++], 'r', "client-first");
  if (!is_printable_nonce(client_nonce))
    throw ScramError("malformed SCRAM client-first message (invalid nonce)");
  for (; i < parts.size(); ++i)
    if (!is_attribute(parts[i]))
      throw ScramError("malformed SCRAM client-first message (invalid extension)");

  const ScramSecret& s = secret_ != nullptr ? *secret_ : mock_;
  gs2_header_ = std::string(parts[0]) + ",,";
  client_first_bare_ = std::string(message.substr(gs2_header_.size()));
  nonce_ = std::string(client_nonce) + server_nonce_;
  server_first_ =
      "r=" + nonce_ + ",s=" + base64_encode(s.salt) + ",i=" + std::to_string(s.iterations);
  state_ = State::sent_first;
  return server_first_;
}

std::optional<std::string> ScramServer::client_final(std::string_view message) {
  if (state_ != State::sent_first)
    throw ScramError("SCRAM client-final message received out of order");
  state_ = State::done;
  const auto parts = split_attributes(message, "client-final");
  if (parts.size() < 3) throw ScramError("malformed SCRAM client-final message (too short)");
  const std::string_view binding = attribute(parts[0], 'c', "client-final");
  const std::string_view nonce = attribute(parts[1], 'r', "client-final");
  for (std::size_t i = 2; i + 1 < parts.size(); ++i)
    if (!is_attribute(parts[i]))
      throw ScramError("malformed SCRAM client-final message (invalid extension)");
  const std::string_view proof_text = attribute(parts.back(), 'p', "client-final");
  const auto proof = decode_key(proof_text);
  if (!proof) throw ScramError("malformed SCRAM client-final message (invalid proof)");
  const auto binding_raw = base64_decode(binding);
  if (!binding_raw)
    throw ScramError("malformed SCRAM client-final message (invalid channel binding)");

  const std::string_view without_proof =
      message.substr(0, message.size() - parts.back().size() - 1);
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const ScramSecret& s = secret_ != nullptr ? *secret_ : mock_;

  // Compute everything before judging, so every failure costs the same.
  const Key signature = hmac(s.stored_key, auth_message);
  Key client_key{};
  for (std::size_t i = 0; i < client_key.size(); ++i)
    client_key[i] = static_cast<unsigned char>((*proof)[i] ^ signature[i]);
  const Key derived_stored = sha256(client_key);
  const bool proof_ok =
      CRYPTO_memcmp(derived_stored.data(), s.stored_key.data(), derived_stored.size()) == 0;
  const bool binding_ok = *binding_raw == gs2_header_;
  const bool nonce_ok = nonce == nonce_;
  if (!proof_ok || !binding_ok || !nonce_ok || secret_ == nullptr) return std::nullopt;
  return "v=" + base64_encode(hmac(s.server_key, auth_message));
}

}  // namespace dtx::pgwire
