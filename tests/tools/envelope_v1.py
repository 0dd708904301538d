#!/usr/bin/env python3
"""Independent decoder of Carimbo envelope format v1 (docs/envelope.md), written from
the specification with Python's `cryptography` package, used by the tests to check that
the Rust implementation and the document agree.

usage: envelope_v1.py KEK_HEX ENVELOPE_FILE [key=value ...]
Writes the plaintext to standard output; exits 1 with a reason on any failure.
"""
import hashlib
import hmac
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

HEADER_LEN = 106


def fail(reason):
    sys.stderr.write(f"envelope_v1.py: {reason}\n")
    sys.exit(1)


def canonical_context(pairs):
    out = struct.pack(">H", len(pairs))
    for key in sorted(pairs, key=lambda k: k.encode()):
        k, v = key.encode(), pairs[key].encode()
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out


def main():
    kek = bytes.fromhex(sys.argv[1])
    data = open(sys.argv[2], "rb").read()
    pairs = dict(arg.split("=", 1) for arg in sys.argv[3:])
    context = canonical_context(pairs)

    header = data[:HEADER_LEN]
    if len(header) < HEADER_LEN:
        fail("truncated header")
    magic, version, suite, segment_size = struct.unpack(">4sBBI", header[:10])
    if magic != b"CRMB" or version != 1 or suite != 1:
        fail("not a v1 envelope")
    message_id, commitment, context_digest = header[10:42], header[42:74], header[74:106]
    expected = hashlib.sha256(b"carimbo/envelope/v1/context\0" + context).digest()
    if not hmac.compare_digest(expected, context_digest):
        fail("context mismatch")

    (wrap_len,) = struct.unpack(">H", data[HEADER_LEN:HEADER_LEN + 2])
    wrap = data[HEADER_LEN + 2:HEADER_LEN + 2 + wrap_len]
    pos = 0
    wrap_version, algorithm, name_len = wrap[0], wrap[1], wrap[2]
    if wrap_version != 1 or algorithm != 1:
        fail("unsupported wrap block")
    pos = 3
    name = wrap[pos:pos + name_len]
    pos += name_len
    (key_version,) = struct.unpack(">I", wrap[pos:pos + 4])
    pos += 4
    (ref_len,) = struct.unpack(">H", wrap[pos:pos + 2])
    reference = wrap[pos + 2:pos + 2 + ref_len]
    pos += 2 + ref_len
    nonce_len = wrap[pos]
    nonce = wrap[pos + 1:pos + 1 + nonce_len]
    pos += 1 + nonce_len
    (wrapped_len,) = struct.unpack(">H", wrap[pos:pos + 2])
    wrapped = wrap[pos + 2:pos + 2 + wrapped_len]

    wrap_aad = (b"carimbo/envelope/v1/wrap\0" + header + struct.pack(">H", len(name)) + name
                + struct.pack(">I", key_version) + struct.pack(">H", len(reference)) + reference
                + context)
    try:
        dek = AESGCM(kek).decrypt(nonce, wrapped, wrap_aad)
    except InvalidTag:
        fail("wrap block does not authenticate")

    prk = hmac.new(message_id, dek, hashlib.sha256).digest()  # HKDF-Extract(salt, ikm)

    def expand(info):
        return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info).derive(prk)

    data_key = expand(b"carimbo/envelope/v1/data-key")
    if not hmac.compare_digest(expand(b"carimbo/envelope/v1/commitment"), commitment):
        fail("key commitment mismatch")

    body = data[HEADER_LEN + 2 + wrap_len:]
    sealed = segment_size + 16
    aead = AESGCM(data_key)
    out = bytearray()
    counter = 0
    while True:
        chunk, body = body[:sealed], body[sealed:]
        last = len(body) == 0
        seg_nonce = b"\0\0\0" + struct.pack(">Q", counter) + (b"\x01" if last else b"\x00")
        try:
            out += aead.decrypt(seg_nonce, chunk, header)
        except InvalidTag:
            fail(f"segment {counter} does not authenticate")
        counter += 1
        if last:
            break
    sys.stdout.buffer.write(bytes(out))


if __name__ == "__main__":
    main()
