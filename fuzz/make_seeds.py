#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target (fuzz/corpus/<target>/) from the
wire-compatibility vectors in tests/vectors, plus a few hand-written inputs.
Run it again only when the vectors change; its output is committed."""
import json
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "tests", "vectors")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

# UUID, datetime and decimal, one per line (the target splits at newlines).
VALUES = [
    "e355209c-25cc-45cb-a0a5-29c302b8e18f\n2026-11-26T08:31:39.184888+00:00\n123.4500",
    "{E355209C25CC45CBA0A529C302B8E18F}\n2024-02-29 23:59:59Z\n-1E+5",
    "urn:uuid:9989335a-2c46-5fd7-9347-25d98bc29186\n0001-01-01\nsNaN",
    "b7ed7263890d519ab74bab73be89f967\n9999-12-31T23:59:59.999999-23:59:59.999999\n0.000001",
]

# Topics.
TOPICS = [
    "eventsourcing_grpc.example:Orders",
    "eventsourcing_grpc.example:system",
    "eventsourcing_grpc.example:Nothing",
    "user_counters:Counters",
    "no-such.module:name_1",
]

# Environments: the first line is the application name, then KEY=VALUE lines.
ENVIRONMENTS = [
    "\nPERSISTENCE_MODULE=eventsourcing.popo\n",
    "orders\nORDERS_PERSISTENCE_MODULE=eventsourcing.sqlite\nSQLITE_DBNAME=x.db\n"
    "SQLITE_LOCK_TIMEOUT= 5\n",
    "Orders\nPERSISTENCE_MODULE=eventsourcing.postgres\nPOSTGRES_DBNAME=db\n"
    "POSTGRES_HOST=localhost\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=\nPOSTGRES_PORT=5432\n"
    "POSTGRES_POOL_TIMEOUT=0.5\nCREATE_TABLE=off\nPOSTGRES_SCHEMA= MySchema \n",
    "\nPERSISTENCE_MODULE=eventsourcing.sqlite\nSQLITE_DBNAME=\n",
    "\nPERSISTENCE_MODULE=kafka\n",
    "orders\nINFRASTRUCTURE_FACTORY=eventsourcing.sqlite:Factory\nSQLITE_DBNAME=x.db\n"
    "IS_SNAPSHOTTING_ENABLED=yes\nCIPHER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    "COMPRESSOR_TOPIC=zlib\n",
    "Orders\nCIPHER_TOPIC=eventsourcing.cipher:AESCipher\nORDERS_CIPHER_KEY=AAAAAAAAAAAAAAAAAAAAAA==\n"
    "COMPRESSOR_TOPIC=eventsourcing.compressor:ZlibCompressor\nPOSTGRES_POOL_MAX_OVERFLOW=3\n",
]


def vector(name):
    with open(os.path.join(VECTORS, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    transcoding = vector("transcoding")
    stored = vector("stored_events")
    golden = vector("messages_golden")

    # JSON: a few encodings and decodings from the Python transcoder.
    picks = [e["encoded"]["hex"] for e in transcoding["encode"]][::4]
    picks += [d["input"]["hex"] for d in transcoding["decode"]][:3]
    for i, h in enumerate(picks):
        write("fuzz_json", "transcoding_%02d" % i, bytes.fromhex(h))

    # Event state: the stored state of every event of the example system.
    i = 0
    for app in stored["apps"].values():
        for n in app["notifications"]:
            write("fuzz_event_state", "state_%02d" % i, bytes.fromhex(n["state"]["hex"]))
            i += 1

    # Hand-written inputs (above).
    for target, prefix, texts in (("fuzz_uuid_datetime_decimal", "values", VALUES),
                                  ("fuzz_topic", "topic", TOPICS),
                                  ("fuzz_env_config", "env", ENVIRONMENTS)):
        for i, text in enumerate(texts):
            write(target, "%s_%02d" % (prefix, i), text)

    # Requests: the first byte picks the message type (see fuzz_requests.c).
    kinds = {"MethodRequest": 1, "NotificationsRequest": 2, "PromptRequest": 3}
    seen = set()
    counts = {}
    for m in golden["messages"]:
        kind = kinds.get(m["type"])
        if kind is None or m["hex"] in seen or counts.get(kind, 0) >= 4:
            continue
        seen.add(m["hex"])
        counts[kind] = counts.get(kind, 0) + 1
        write("fuzz_requests", "%s_%02d" % (m["type"], counts[kind]),
              bytes([kind]) + bytes.fromhex(m["hex"]))
    # The same requests as NUL-separated fields (first byte with the high bit set).
    order = '[{"_type_":"uuid_hex","_data_":"74e4534faf8a48129794c0223d495adc"}]'
    for name, kind, fields in [
        ("fields_create_new_order", 1, ["create_new_order", "[]", "{}"]),
        ("fields_get_order", 1, ["get_order", order, "{}"]),
        ("fields_is_order_paid_kwargs", 1, ["is_order_paid", "[]", '{"order_id":' + order[1:-1] + "}"]),
        ("fields_notifications", 2, ["1", "10", "", "eventsourcing_grpc.example:Order.Created"]),
        ("fields_prompt", 3, ["Orders"]),
    ]:
        write("fuzz_requests", name, bytes([0x80 | kind]) + "\0".join(fields).encode())
    write("fuzz_requests", "Empty", bytes([0]))
    service = b"eventsourcing_grpc.Application"
    write("fuzz_requests", "HealthCheckRequest", bytes([4, 0x0A, len(service)]) + service)

    # Stored state as the reference's cipher and compressor wrote it (cipher_vectors.json).
    cipher = vector("cipher_vectors")
    write("fuzz_stored_state", "zlib_aes256", bytes.fromhex(cipher["mapper"]["stored"]))
    write("fuzz_stored_state", "zlib", bytes.fromhex(cipher["zlib"]["compressed"]))
    write("fuzz_stored_state", "aes256_other_key", bytes.fromhex(cipher["aes"][2]["ciphertext"]))
    write("fuzz_stored_state", "json", cipher["state"])


if __name__ == "__main__":
    main()
