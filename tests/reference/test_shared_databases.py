"""Python and C sharing databases and a system, against the Python reference itself
(eventsourcing 9.2.22 and eventsourcing-grpc 0.1.2, found at ../shared/reference).

Usage: /usr/bin/python3 test_shared_databases.py BUILD_DIR sqlite|postgres|system

  sqlite, postgres  The reference's Orders writes an encrypted (AES-GCM), compressed (zlib) and
                    snapshotted database; C reads every order and Python's snapshot, adds its
                    own order, event and snapshot; Python reads all of that back. A wrong key
                    is refused by the C server with a clear message. postgres takes the
                    POSTGRES_* settings of scripts/postgres-test-server.sh.
  system            The example system with its applications split between the reference's
                    servers and ours, sharing one cipher key and compressor: orders are paid;
                    our followers are pushed to by our leaders only (the lag command says
                    is_subscribed), and pull from Python's, which prompt them.

Exit status 0 when every check passes, 1 otherwise, and 77 (skipped, with a message) when the
reference or Debian's python3-pycryptodome is not there.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.dont_write_bytecode = True
from reference_support import (REFERENCE, check, failures, id_json, report,  # noqa: E402
                               require_reference, run, skip)

require_reference()
# The reference's AESCipher imports Crypto; Debian packs it as Cryptodome (the shim maps it).
try:
    import Cryptodome  # noqa: F401
except ImportError:
    skip("Debian's python3-pycryptodome is not installed")
from eventsourcing.persistence import StoredEvent  # noqa: E402
from eventsourcing_grpc.example import Orders  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
MODE = sys.argv[2]
SERVER = os.path.join(BUILD, "eventsourcing_grpc_server")
CLIENT = os.path.join(BUILD, "eventsourcing_grpc_client")
C_ORDERS = os.path.join(BUILD, "tests", "reference_orders")
KEY = base64.b64encode(bytes(range(32))).decode()


def c_orders(env, *args):
    return run([C_ORDERS, *args], env)


def persistence_env(work):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSISTENCE_", "SQLITE_"))}
    env.update(CIPHER_KEY=KEY, COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor",
               IS_SNAPSHOTTING_ENABLED="y", GRPC_DNS_RESOLVER="native")
    if MODE == "postgres":
        if "POSTGRES_DBNAME" not in env:
            skip("no POSTGRES_* settings: run under scripts/postgres-test-server.sh run")
        env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
    else:
        env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
        env["ORDERS_SQLITE_DBNAME"] = os.path.join(work, "orders.db")
    return env


def drop_postgres_tables(env):
    import psycopg2  # Debian's python3-psycopg2

    conn = psycopg2.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                            port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                            password=env["POSTGRES_PASSWORD"])
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS orders_events, orders_tracking, orders_snapshots")
    conn.close()


def raw_states(app):
    """The stored bytes of every event, as the recorder holds them."""
    return [n.state for n in app.recorder.select_notifications(1, 1000)]


def test_shared_database(work):
    env = persistence_env(work)
    if MODE == "postgres":
        drop_postgres_tables(env)

    # 1. Python writes: three orders, one reserved, and a snapshot of it.
    app = Orders(env=env)
    ids = [app.create_new_order() for _ in range(3)]
    order = app.repository.get(ids[0])
    order.set_is_reserved(uuid.uuid4())
    app.save(order)
    app.take_snapshot(ids[0])
    expected = {i: json.loads(app.mapper.transcoder.encode(app.get_order(i))) for i in ids}
    check("Python stored every state encrypted",
          all(b"timestamp" not in s for s in raw_states(app)))
    app.close()

    # 2. C reads Python's events and snapshot.
    for i in ids:
        got = json.loads(c_orders(env, "get", id_json(i)))
        check(f"C reads Python's order {i.hex[:8]}", got == expected[i], f"{got} != {expected[i]}")
    snapshot = json.loads(c_orders(env, "snapshot-state", id_json(ids[0])))
    check("C reads Python's snapshot", snapshot["version"] == 2 and
          snapshot["topic"] == "eventsourcing_grpc.example:Order" and
          snapshot["state"]["is_reserved"] is True and
          snapshot["state"]["reservation_id"] == expected[ids[0]]["reservation_id"], snapshot)

    # 3. C extends: an order of its own, reserved, snapshotted; another event on Python's order.
    c_id = uuid.UUID(json.loads(c_orders(env, "create"))["_data_"])
    c_orders(env, "reserve", id_json(c_id))
    c_orders(env, "snapshot", id_json(c_id))
    c_orders(env, "reserve", id_json(ids[1]))

    # 4. Python reads all of it back, through its mapper (AES-GCM, zlib) and snapshot store.
    app = Orders(env=env)
    c_order = app.get_order(c_id)
    check("Python reads C's order", c_order["is_reserved"] and c_order["id"] == c_id, c_order)
    check("Python reads C's event on its own order", app.get_order(ids[1])["is_reserved"])
    snapshots = list(app.snapshots.get(c_id, desc=True, limit=1))
    check("Python reads C's snapshot",
          len(snapshots) == 1 and snapshots[0].originator_version == 2 and
          snapshots[0].state["is_reserved"] is True and
          snapshots[0].topic == "eventsourcing_grpc.example:Order", snapshots)
    check("Python's repository starts from C's snapshot",
          app.repository.get(c_id).version == 2)
    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 1000)]
    check("Python decodes every event, C's included", len(events) == 7, len(events))
    check("C stored every state encrypted", all(b"timestamp" not in s for s in raw_states(app)))
    app.close()

    # 5. A C server with another key, or none, refuses the database at start (exit 3).
    for what, key in [("another key", base64.b64encode(bytes(32)).decode()), ("no key", "")]:
        server_env = dict(env, CIPHER_KEY=key, ORDERS_GRPC_SERVER_ADDRESS="localhost:0")
        out = subprocess.run([SERVER, "eventsourcing_grpc.example:Orders"], env=server_env,
                             capture_output=True, text=True, timeout=60)
        hint = "wrong CIPHER_KEY" if key else "looks encrypted"
        check(f"the C server refuses the database with {what}",
              out.returncode == 3 and hint in out.stderr, (out.returncode, out.stderr))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(*args):
    """The client program with args (options, SERVER, COMMAND, ...): exit status, out, err."""
    out = subprocess.run([CLIENT, *args], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, GRPC_DNS_RESOLVER="native"))
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def run_mixed_system(work, python_apps):
    names = ["Orders", "Reservations", "Payments"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSISTENCE_", "SQLITE_"))}
    env.update(SYSTEM_TOPIC="eventsourcing_grpc.example:system", CIPHER_KEY=KEY,
               COMPRESSOR_TOPIC="zlib", PERSISTENCE_MODULE="eventsourcing.sqlite",
               MAX_PULL_INTERVAL="1", GRPC_DNS_RESOLVER="native",
               PYTHONPATH=os.pathsep.join([REFERENCE, os.path.join(REFERENCE, "shim")]))
    tag = "-".join(n[0] for n in python_apps) or "none"
    for name in names:
        env[f"{name.upper()}_GRPC_SERVER_ADDRESS"] = f"localhost:{free_port()}"
        env[f"{name.upper()}_SQLITE_DBNAME"] = os.path.join(work, f"{tag}-{name}.db")
    processes, logs = [], []
    try:
        for name in names:
            log = open(os.path.join(work, f"{tag}-{name}.log"), "w")
            logs.append(log)
            program = ([sys.executable, os.path.join(REFERENCE, "bin", "eventsourcing_grpc_server")]
                       if name in python_apps else [SERVER])
            processes.append(subprocess.Popen(
                program + [f"eventsourcing_grpc.example:{name}"], env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        orders = env["ORDERS_GRPC_SERVER_ADDRESS"]
        deadline = time.monotonic() + 30
        while client(orders, "ping")[0] != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        which = ", ".join(f"{n} in {'Python' if n in python_apps else 'C'}" for n in names)
        paid = 0
        for _ in range(3):
            rc, order, err = client(orders, "call", "create_new_order")
            if rc != 0:
                check(f"create an order ({which})", False, err)
                break
            deadline = time.monotonic() + 60
            started = time.monotonic()
            while time.monotonic() < deadline:
                if client(orders, "call", "is_order_paid", f"[{order}]")[1] == "true":
                    paid += 1
                    print(f"  order paid in {time.monotonic() - started:.2f} s ({which})")
                    break
                time.sleep(0.1)
        check(f"orders are paid with a shared cipher key ({which})", paid == 3, f"{paid} of 3")
        # Our followers take pushes from our leaders and pull from Python's (which prompt them).
        follows = {"Orders": ["Reservations", "Payments"], "Reservations": ["Orders"],
                   "Payments": ["Orders"]}
        for name in names:
            if name in python_apps:
                continue
            rc, out, err = client("--json", env[f"{name.upper()}_GRPC_SERVER_ADDRESS"], "lag")
            lines = [json.loads(line) for line in out.splitlines()] if rc == 0 else []
            pushing = {line["leader"]: line["is_subscribed"] for line in lines}
            expected = {leader: leader not in python_apps for leader in follows[name]}
            check(f"{name} in C is pushed to by its C leaders only ({which})",
                  pushing == expected, f"{pushing} (exit {rc}: {err})")
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
    if failures:
        for name in names:
            with open(os.path.join(work, f"{tag}-{name}.log")) as f:
                print(f"--- {name} ---\n" + f.read()[-2000:])
    # Every application's database holds only encrypted state.
    for name in names:
        app_env = dict(env)
        app_env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
        import sqlite3

        with sqlite3.connect(env[f"{name.upper()}_SQLITE_DBNAME"]) as db:
            states = [row[0] for row in db.execute("SELECT state FROM stored_events")]
        check(f"{name}'s database is encrypted ({len(states)} events)",
              states and all(b"timestamp" not in s for s in states))


def main():
    if MODE not in ("sqlite", "postgres", "system"):
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as work:
        if MODE == "system":
            run_mixed_system(work, {"Orders"})
            run_mixed_system(work, {"Reservations", "Payments"})
        else:
            try:
                test_shared_database(work)
            finally:
                if MODE == "postgres":  # the other tests on the server find none of its rows
                    drop_postgres_tables(persistence_env(work))
    return report()


if __name__ == "__main__":
    sys.exit(main())
