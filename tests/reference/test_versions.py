"""Event and snapshot versions against the Python reference itself (eventsourcing 9.2.22, found at
../shared/reference): one SQLite database shared by Python classes at version 1 and 2 and by
tests/reference/reference_versions.c, the same application declared in C at version 2.

  1. Python at version 1 opens an account, deposits twice, snapshots it, deposits again.
     (Version 2 gave deposits a currency, and accounts a currency and a way to be closed.)
  2. C (version 2) reads it: the version 1 snapshot and the event after it are upcast.
  3. C deposits and snapshots: its event and snapshot carry "class_version": 2 last, key for
     key as Python at version 2 stores its own.
  4. Python at version 2 reads what C wrote, deposits and snapshots; C reads that back.

Usage: /usr/bin/python3 test_versions.py BUILD_DIR
Exit status 0 when every check passes, 1 otherwise, and 77 (skipped, with a message) when the
reference is not there.
"""
import json
import os
import sqlite3
import sys
import tempfile
import uuid

sys.dont_write_bytecode = True
from reference_support import (REFERENCE, check, id_json, report,  # noqa: E402
                               require_reference, run)

require_reference()

C_PROGRAM = os.path.join(os.path.abspath(sys.argv[1]), "tests", "reference_versions")

# The Python classes, version 1 and version 2, as a user of eventsourcing 9.2 writes them.
VERSION_1 = '''
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Account(Aggregate):
    @event("Opened")
    def __init__(self, owner: str):
        self.owner = owner
        self.balance = 0

    @event("Deposited")
    def deposit(self, amount: int):
        self.balance += amount


class Accounts(Application):
    pass
'''

VERSION_2 = '''
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Account(Aggregate):
    class_version = 2

    @event("Opened")
    def __init__(self, owner: str):
        self.owner = owner
        self.balance = 0
        self.currency = "EUR"
        self.is_closed = False

    class Deposited(Aggregate.Event):
        class_version = 2
        amount: int
        currency: str

        @staticmethod
        def upcast_v1_v2(state):
            state["currency"] = "EUR"

    @event(Deposited)
    def deposit(self, amount: int, currency: str):
        self.balance += amount
        self.currency = currency

    @event("Closed")
    def close(self):
        self.is_closed = True

    @staticmethod
    def upcast_v1_v2(state):
        state["currency"] = "EUR"
        state["is_closed"] = False


class Accounts(Application):
    pass
'''

def python(module_dir, env, code):
    """Runs code with the reference and the classes of module_dir; returns its stdout."""
    return run([sys.executable, "-c", code], dict(env, PYTHONPATH=os.pathsep.join(
        [module_dir, REFERENCE, os.path.join(REFERENCE, "shim")])))


def c(env, *args):
    return run([C_PROGRAM, *args], env)


def latest_state(db_path, table):
    with sqlite3.connect(db_path) as db:
        rowid_order = "rowid" if table == "stored_events" else "originator_version"
        row = db.execute(f"SELECT state FROM {table} ORDER BY {rowid_order} DESC LIMIT 1").fetchone()
    return json.loads(row[0])


def main():
    if not os.path.exists(C_PROGRAM):
        print(f"no {C_PROGRAM}: build the tests first")
        return 1
    with tempfile.TemporaryDirectory() as work:
        db_path = os.path.join(work, "accounts.db")
        env = dict(os.environ, PERSISTENCE_MODULE="eventsourcing.sqlite", SQLITE_DBNAME=db_path,
                   IS_SNAPSHOTTING_ENABLED="y")
        dirs = {}
        for version, text in ((1, VERSION_1), (2, VERSION_2)):
            dirs[version] = os.path.join(work, f"v{version}")
            os.mkdir(dirs[version])
            with open(os.path.join(dirs[version], "versioned_accounts.py"), "w") as f:
                f.write(text)

        # 1. Python at version 1.
        account_id = uuid.UUID(python(dirs[1], env, '''
from versioned_accounts import Account, Accounts
app = Accounts()
account = Account("ada")
account.deposit(10)
account.deposit(10)
app.save(account)
app.take_snapshot(account.id)
account.deposit(5)
app.save(account)
print(account.id.hex)
'''))
        check("version 1 stored no class_version",
              "class_version" not in latest_state(db_path, "stored_events"))

        # 2. C at version 2 reads it, upcast.
        got = json.loads(c(env, "get_account", f"[{id_json(account_id)}]"))
        check("C reads the version 1 account upcast (snapshot and event)",
              (got["owner"], got["balance"], got["currency"]) == ("ada", 25, "EUR"), str(got))
        check("get_account's dict: id, the state's fields, created_on, modified_on",
              list(got) == ["id", "owner", "balance", "currency", "is_closed", "created_on",
                            "modified_on"],
              str(list(got)))

        # 3. C writes version 2.
        check("C deposits", c(env, "deposit", f"[{id_json(account_id)},7,\"USD\"]") == "32")
        c_event = latest_state(db_path, "stored_events")
        c(env, "snapshot", id_json(account_id))
        c_snapshot = latest_state(db_path, "stored_snapshots")
        check("C's event ends with class_version 2",
              list(c_event)[-1] == "class_version" and c_event["class_version"] == 2, str(c_event))
        check("C's snapshot state ends with class_version 2",
              list(c_snapshot["state"])[-1] == "class_version"
              and c_snapshot["state"]["class_version"] == 2, str(c_snapshot))

        # 4. Python at version 2 reads what C wrote (its snapshot too), writes its own.
        balance = python(dirs[2], env, f'''
from uuid import UUID
from versioned_accounts import Accounts
app = Accounts()
account = app.repository.get(UUID("{account_id.hex}"))
assert (account.balance, account.currency) == (32, "USD"), (account.balance, account.currency)
account.deposit(1, "GBP")
app.save(account)
app.take_snapshot(account.id)
print(app.repository.get(account.id).balance)
''')
        check("Python at version 2 reads C's version 2 event and snapshot", balance == "33")
        py_event = latest_state(db_path, "stored_events")
        py_snapshot = latest_state(db_path, "stored_snapshots")
        check("C stores the event key for key as Python", list(c_event) == list(py_event),
              f"{list(c_event)} != {list(py_event)}")
        check("C stores the snapshot key for key as Python",
              (list(c_snapshot), list(c_snapshot["state"]))
              == (list(py_snapshot), list(py_snapshot["state"])),
              f"{c_snapshot} != {py_snapshot}")
        got = json.loads(c(env, "get_account", f"[{id_json(account_id)}]"))
        check("C reads Python's version 2 snapshot",
              (got["balance"], got["currency"]) == (33, "GBP"), str(got))

    return report()


if __name__ == "__main__":
    sys.exit(main())
