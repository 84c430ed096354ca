// SCRAM-SHA-256 server side (pgwire/scram.h): the RFC 7677 test vector, and
// exchanges with a minimal client written here from OpenSSL primitives (the
// client side of RFC 5802 section 3), honest and tampered.
#include "pgwire/scram.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <string>

namespace dtx::pgwire {
namespace {

using namespace std::string_literals;

std::string b64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  out.resize(static_cast<std::size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()))));
  return out;
}

std::string unb64(std::string_view text) {
  std::string out(text.size() / 4 * 3, '\0');
  EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  std::size_t padding = 0;
  while (padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  out.resize(out.size() - padding);
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string sha256(std::string_view data) {
  unsigned char out[32];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), 32);
}

// "a=1,b=2" -> the value of attribute `name`.
std::string attr(std::string_view message, char name) {
  const std::string key = std::string(1, name) + "=";
  std::size_t pos = message.substr(0, 2) == key ? 0 : message.find("," + key);
  if (pos == std::string_view::npos) return {};
  if (pos != 0) pos += 1;
  const std::size_t end = message.find(',', pos);
  return std::string(message.substr(pos + 2, end == std::string_view::npos ? end : end - pos - 2));
}

// The client side of one exchange.
struct TestClient {
  std::string password;
  std::string user;  // sent in n= and ignored by the server (libpq sends it empty)
  std::string client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
  std::string gs2 = "n,,";

  std::string bare() const { return "n=" + user + ",r=" + client_nonce; }
  std::string first() const { return gs2 + bare(); }

  // The client-final message answering `server_first`, with the nonce and the
  // channel binding as given (or as they should be).
  std::string final_message(const std::string& server_first, std::string nonce = {},
                            std::string binding = {}) {
    if (nonce.empty()) nonce = attr(server_first, 'r');
    if (binding.empty()) binding = b64(gs2);
    const std::string salted = salted_password(server_first);
    const std::string client_key = hmac(salted, "Client Key");
    const std::string without_proof = "c=" + binding + ",r=" + nonce;
    const std::string auth = bare() + "," + server_first + "," + without_proof;
    const std::string signature = hmac(sha256(client_key), auth);
    std::string proof = client_key;
    for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    expected_server_final = "v=" + b64(hmac(hmac(salted, "Server Key"), auth));
    return without_proof + ",p=" + b64(proof);
  }

  std::string salted_password(const std::string& server_first) const {
    const std::string salt = unb64(attr(server_first, 's'));
    const int iterations = std::stoi(attr(server_first, 'i'));
    unsigned char out[32];
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                      iterations, EVP_sha256(), 32, out);
    return std::string(reinterpret_cast<char*>(out), 32);
  }

  std::string expected_server_final;
};

// RFC 7677 section 3.
constexpr const char* kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramSecret rfc_secret() { return make_scram_secret("pencil", unb64("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096); }

TEST(Scram, Rfc7677TestVector) {
  const ScramSecret secret = rfc_secret();
  ScramServer server(&secret, "user", kRfcServerNonce);
  EXPECT_EQ(server.client_first(kRfcClientFirst), kRfcServerFirst);
  EXPECT_EQ(server.client_final(kRfcClientFinal), kRfcServerFinal);
}

TEST(Scram, TestClientReproducesTheRfcProof) {
  // Checks the test client itself, which the other tests rely on.
  TestClient client{.password = "pencil", .user = "user", .client_nonce = "rOprNGfwEbeRWgbNEkqO"};
  EXPECT_EQ(client.first(), kRfcClientFirst);
  EXPECT_EQ(client.final_message(kRfcServerFirst), kRfcClientFinal);
  EXPECT_EQ(client.expected_server_final, kRfcServerFinal);
}

TEST(Scram, RoundTripWithRandomSaltAndNonce) {
  const ScramSecret secret = make_scram_secret("correct horse", 4096);
  EXPECT_EQ(secret.salt.size(), 16u);
  TestClient client{.password = "correct horse"};
  ScramServer server(&secret, "dtx_admin");
  const std::string server_first = server.client_first(client.first());
  const std::string nonce = attr(server_first, 'r');
  EXPECT_EQ(nonce.substr(0, client.client_nonce.size()), client.client_nonce);
  EXPECT_EQ(nonce.size(), client.client_nonce.size() + 24);  // 18 random bytes in base64
  EXPECT_EQ(unb64(attr(server_first, 's')), secret.salt);
  const auto server_final = server.client_final(client.final_message(server_first));
  ASSERT_TRUE(server_final.has_value());
  EXPECT_EQ(*server_final, client.expected_server_final);
}

TEST(Scram, GssFlagYIsAccepted) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 1);
  TestClient client{.password = "pw", .gs2 = "y,,"};
  ScramServer server(&secret, "u");
  const std::string server_first = server.client_first(client.first());
  EXPECT_TRUE(server.client_final(client.final_message(server_first)).has_value());
}

TEST(Scram, WrongPasswordFails) {
  const ScramSecret secret = make_scram_secret("right", 4096);
  TestClient client{.password = "wrong"};
  ScramServer server(&secret, "u");
  const std::string server_first = server.client_first(client.first());
  EXPECT_EQ(server.client_final(client.final_message(server_first)), std::nullopt);
}

TEST(Scram, AlteredNonceFails) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 16);
  TestClient client{.password = "pw"};
  for (const std::string& bad : {"x"s, ""s, "flip"s, "client-only"s}) {
    SCOPED_TRACE(bad);
    ScramServer server(&secret, "u");
    const std::string server_first = server.client_first(client.first());
    std::string nonce = attr(server_first, 'r');
    if (bad == "x") nonce += "x";
    if (bad == "flip") nonce.back() = nonce.back() == 'A' ? 'B' : 'A';
    if (bad == "client-only") nonce = client.client_nonce;
    if (bad.empty()) nonce.pop_back();
    // The proof is computed honestly over the altered message: only the nonce check stops it.
    EXPECT_EQ(server.client_final(client.final_message(server_first, nonce)), std::nullopt);
  }
}

TEST(Scram, ReplayedExchangeFails) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 16);
  TestClient client{.password = "pw"};
  ScramServer first_server(&secret, "u");
  const std::string recorded = client.final_message(first_server.client_first(client.first()));
  ASSERT_TRUE(first_server.client_final(recorded).has_value());
  // An eavesdropper replays the recorded client-final on a new exchange: the
  // new server nonce differs, so the nonce does not match.
  ScramServer second(&secret, "u");
  second.client_first(client.first());
  EXPECT_EQ(second.client_final(recorded), std::nullopt);
  // Nor does swapping in the new nonce help: the proof covers the old AuthMessage.
  ScramServer third(&secret, "u");
  const std::string server_first = third.client_first(client.first());
  const std::string proof = recorded.substr(recorded.find(",p="));
  EXPECT_EQ(third.client_final("c=biws,r=" + attr(server_first, 'r') + proof), std::nullopt);
}

TEST(Scram, ChannelBindingMismatchFails) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 16);
  TestClient client{.password = "pw"};  // gs2 "n,,"
  ScramServer server(&secret, "u");
  const std::string server_first = server.client_first(client.first());
  EXPECT_EQ(server.client_final(client.final_message(server_first, {}, b64("y,,"))), std::nullopt);
}

TEST(Scram, ChannelBindingAuthzidAndMandatoryExtensionsRefused) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 1);
  for (const char* first : {"p=tls-server-end-point,,n=,r=abc", "n,a=admin,n=,r=abc",
                            "n,,m=ext,n=,r=abc"}) {
    SCOPED_TRACE(first);
    ScramServer server(&secret, "u");
    EXPECT_THROW(server.client_first(first), ScramError);
  }
}

TEST(Scram, MalformedClientFirstRefused) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 1);
  for (const std::string& first :
       {""s, "n"s, "n,,"s, "n,,n=u"s, "x,,n=,r=abc"s, "n,,r=abc"s, "n,,n=,r="s, "n,,n=,x=abc"s,
        "n,,n=,r=a\tb"s, "n,,n=,r=abc\0"s, "n,,n=,r=abc,"s, "n,,n=,r=abc,1=x"s, "N,,n=,r=abc"s}) {
    SCOPED_TRACE(first);
    ScramServer server(&secret, "u");
    EXPECT_THROW(server.client_first(first), ScramError);
  }
  ScramServer with_extension(&secret, "u");
  EXPECT_NO_THROW(with_extension.client_first("n,,n=u,r=abc,x=ignored"));
}

TEST(Scram, MalformedClientFinalRefused) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 1);
  TestClient client{.password = "pw"};
  ScramServer probe(&secret, "u", "SERVERNONCE");
  const std::string server_first = probe.client_first(client.first());
  const std::string good = client.final_message(server_first);
  const std::string r = "r=" + attr(server_first, 'r');
  const std::string p = good.substr(good.find(",p=") + 1);
  for (const std::string& final_message :
       {""s, "c=biws"s, "c=biws," + r, r + ",c=biws," + p, "c=biws," + r + "," + p + ",x=1",
        "c=biws," + r + ",p=AAAA", "c=biws," + r + ",p=not*base64", "c=biw," + r + "," + p,
        "c=biws," + r + ",1=x," + p, "c=biws," + r + "," + p + "\0"s, "c=biws,," + r + "," + p}) {
    SCOPED_TRACE(final_message);
    ScramServer server(&secret, "u", "SERVERNONCE");
    server.client_first(client.first());
    EXPECT_THROW(server.client_final(final_message), ScramError);
  }
  ScramServer server(&secret, "u", "SERVERNONCE");
  server.client_first(client.first());
  // An extension is accepted, and the proof (made without it) then fails.
  EXPECT_EQ(server.client_final("c=biws," + r + ",x=ext," + p), std::nullopt);
}

TEST(Scram, MessagesOutOfOrderRefused) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 1);
  TestClient client{.password = "pw"};
  ScramServer early(&secret, "u");
  EXPECT_THROW(early.client_final("c=biws,r=x,p=AAAA"), ScramError);
  ScramServer twice(&secret, "u");
  const std::string server_first = twice.client_first(client.first());
  EXPECT_THROW(twice.client_first(client.first()), ScramError);
  const std::string final_message = client.final_message(server_first);
  EXPECT_TRUE(twice.client_final(final_message).has_value());
  EXPECT_THROW(twice.client_final(final_message), ScramError);
  ScramServer failed(&secret, "u");
  EXPECT_THROW(failed.client_first("garbage"), ScramError);
  EXPECT_THROW(failed.client_first(client.first()), ScramError);  // no second chance
}

TEST(Scram, UnknownUserFailsAtTheEndLikeAWrongPassword) {
  TestClient client{.password = "anything"};
  ScramServer server(nullptr, "ghost");
  const std::string server_first = server.client_first(client.first());
  // A well-formed challenge: 16-byte salt, the default iteration count.
  EXPECT_EQ(unb64(attr(server_first, 's')).size(), 16u);
  EXPECT_EQ(attr(server_first, 'i'), std::to_string(kScramDefaultIterations));
  EXPECT_EQ(server.client_final(client.final_message(server_first)), std::nullopt);

  // The made-up salt is stable per user (a probe sees no change between
  // attempts) and differs between users.
  ScramServer again(nullptr, "ghost");
  EXPECT_EQ(attr(again.client_first(client.first()), 's'), attr(server_first, 's'));
  ScramServer other(nullptr, "phantom");
  EXPECT_NE(attr(other.client_first(client.first()), 's'), attr(server_first, 's'));
}

TEST(Scram, SecretTextRoundTrip) {
  const ScramSecret secret = rfc_secret();
  const std::string text = format_scram_secret(secret);
  EXPECT_TRUE(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")) << text;
  const auto parsed = parse_scram_secret(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->salt, secret.salt);
  EXPECT_EQ(parsed->iterations, 4096);
  EXPECT_EQ(parsed->stored_key, secret.stored_key);
  EXPECT_EQ(parsed->server_key, secret.server_key);
  // A server built from the parsed text accepts the RFC's exchange.
  ScramServer server(&*parsed, "user", kRfcServerNonce);
  server.client_first(kRfcClientFirst);
  EXPECT_EQ(server.client_final(kRfcClientFinal), kRfcServerFinal);
}

TEST(Scram, MalformedSecretTextRejected) {
  const std::string good = format_scram_secret(rfc_secret());
  const std::string keys = good.substr(good.find('$', 14));
  for (const std::string& text :
       {""s, "md5abc"s, "SCRAM-SHA-256$"s, "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
        "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==" + keys, "SCRAM-SHA-256$4096:" + keys,
        "SCRAM-SHA-256$4096:W2=Z" + keys, good.substr(0, good.size() - 4),
        good + "AAAA", "SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==" + keys}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(parse_scram_secret(text), std::nullopt);
  }
}

TEST(Scram, ServerNonceMustBePrintable) {
  const ScramSecret secret = make_scram_secret("pw", "salt", 1);
  EXPECT_THROW(ScramServer(&secret, "u", "a,b"), ScramError);
  EXPECT_THROW(ScramServer(&secret, "u", ""), ScramError);
}

}  // namespace
}  // namespace dtx::pgwire
