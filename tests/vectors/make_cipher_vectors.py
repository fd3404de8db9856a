"""Writes cipher_vectors.json: bytes made by the Python reference's AESCipher and ZlibCompressor
(eventsourcing 9.2.22), for tests/unit/test_mapper.c to compare with byte for byte.

Run with the reference on the path (../shared/reference/env.sh, then $PY this file > out).
The nonce that AESCipher draws at random is fixed here by replacing its random_bytes, so that
the ciphertext is reproducible; everything else is the reference's own code path.
"""
import base64
import json
import sys
import zlib

from eventsourcing.cipher import AESCipher
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.utils import Environment

STATE = (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2022-11-10T17:06:14.612337+00:00"},'
         b'"originator_topic":"eventsourcing_grpc.example:Order","note":"\xc3\xa9t\xc3\xa9"}')
NONCE = bytes(range(12))


def cipher(key):
    return AESCipher(Environment(env={"CIPHER_KEY": base64.b64encode(key).decode()}))


def encrypt(key, plaintext):
    original = AESCipher.random_bytes
    AESCipher.random_bytes = staticmethod(lambda n: NONCE if n == 12 else original(n))
    try:
        return cipher(key).encrypt(plaintext)
    finally:
        AESCipher.random_bytes = original


def refused(key_text):
    try:
        AESCipher(Environment(env={"CIPHER_KEY": key_text}))
    except Exception as e:
        return type(e).__name__
    return None


vectors = {"state": STATE.decode(), "nonce": NONCE.hex(), "aes": [], "zlib": {}, "mapper": {}}
for size in (16, 24, 32):
    key = bytes((i * 7 + size) % 256 for i in range(size))
    vectors["aes"].append({"key": base64.b64encode(key).decode(),
                           "ciphertext": encrypt(key, STATE).hex()})
compressed = ZlibCompressor().compress(STATE)
assert compressed == zlib.compress(STATE)
vectors["zlib"] = {"compressed": compressed.hex()}
key = bytes(range(32))
# The Mapper's order: compress, then encrypt.
vectors["mapper"] = {"key": base64.b64encode(key).decode(),
                     "stored": encrypt(key, ZlibCompressor().compress(STATE)).hex()}
vectors["refused_keys"] = {text: refused(text) for text in
                           ["not base64!", base64.b64encode(bytes(15)).decode(),
                            base64.b64encode(bytes(33)).decode(), "AAAA"]}
json.dump(vectors, sys.stdout, indent=1, ensure_ascii=False)
print()
