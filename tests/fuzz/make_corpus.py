#!/usr/bin/env python3
"""Writes the seed inputs of pgwire_fuzz into tests/fuzz/corpus/ (checked in).

Each seed is: a flags byte, a split-seed byte, then the payload (see the
comment at the top of pgwire_fuzz.cc). The seeds are valid client streams and
SCRAM exchanges, so the fuzzer starts from inputs that reach deep states.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def be32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def be16(v):
    return struct.pack(">H", v & 0xFFFF)


def msg(kind, body):
    return kind.encode() + be32(len(body) + 4) + body


def packet(body):
    return be32(len(body) + 4) + body


def startup(**params):
    body = be32(196608)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    return packet(body + b"\0")


SSL = packet(be32(80877103))
GSS = packet(be32(80877104))
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
HELLO = startup(user="user", database="dtx", application_name="psql", client_encoding="UTF8")

seeds = {
    # flags 0x02: stream, with the RFC 7677 secret
    "scram_login": (0x02, 7, SSL + HELLO
                    + msg("p", b"SCRAM-SHA-256\0" + be32(len(CLIENT_FIRST)) + CLIENT_FIRST)
                    + msg("p", CLIENT_FINAL)
                    + msg("Q", b"SELECT * FROM in_doubt; SELECT 1\0") + msg("X", b"")),
    "simple_query": (0x00, 1, GSS + HELLO + msg("Q", b"SELECT gtrid, age_s FROM transactions\0")
                     + msg("Q", b"\0") + msg("X", b"")),
    "extended": (0x00, 3, HELLO
                 + msg("P", b"s1\0SELECT $1::int8, $2\0" + be16(2) + be32(20) + be32(0))
                 + msg("B", b"p1\0s1\0" + be16(1) + be16(0) + be16(2) + be32(2) + b"42"
                       + be32(0xFFFFFFFF) + be16(1) + be16(0))
                 + msg("D", b"P" + b"p1\0") + msg("E", b"p1\0" + be32(10)) + msg("H", b"")
                 + msg("C", b"P" + b"p1\0") + msg("C", b"S" + b"s1\0") + msg("S", b"")
                 + msg("X", b"")),
    "copy_and_cleartext": (0x04, 9, HELLO + msg("p", b"secret\0") + msg("d", b"1\t2\n")
                           + msg("c", b"") + msg("f", b"no\0") + msg("S", b"")),
    "cancel": (0x00, 0, packet(be32(80877102) + be32(4242) + be32(0x12345678))),
    # flags 0x03: SCRAM directly, with the secret; 0x01: the unknown-user path
    "scram_rfc": (0x03, 0, CLIENT_FIRST + b"\0" + CLIENT_FINAL),
    # flags 0x01 also parses the payload as PostgreSQL's rolpassword text
    "secret_text": (0x01, 0, b"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
                    b"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="),
    "scram_unknown_user": (0x01, 0, b"y,,n=,r=abcdefgh\0c=eSws,r=abcdefgh%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                           b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
}

os.makedirs(OUT, exist_ok=True)
for name, (flags, seed, payload) in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([flags, seed]) + payload)
print(f"wrote {len(seeds)} seeds to {OUT}")
