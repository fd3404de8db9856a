"""What the tests against the Python reference share: where the reference is (skipping, with
exit status 77 and a message, where it is not), and the checks they count and report."""
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REFERENCE = os.environ.get("ESG_REFERENCE_DIR",
                           os.path.join(os.path.dirname(ROOT), "shared", "reference"))
SKIPPED = 77


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(SKIPPED)


def require_reference():
    """Skips unless the reference is there; then makes it importable (with its Crypto shim)."""
    if not os.path.isdir(os.path.join(REFERENCE, "eventsourcing")):
        skip(f"the Python reference is not at {REFERENCE}")
    sys.path[:0] = [REFERENCE, os.path.join(REFERENCE, "shim")]


def run(argv, env):
    """Runs a program (argv) with env; its output, or RuntimeError with what it said."""
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        name = os.path.basename(argv[0])
        raise RuntimeError(f"{name} {' '.join(argv[1:])[:200]}: {out.stderr.strip()}")
    return out.stdout.strip()


def id_json(an_id):
    """A UUID as JSON, as the transcoder writes it."""
    return json.dumps({"_type_": "uuid_hex", "_data_": an_id.hex}, separators=(",", ":"))


failures = []
n_checks = 0


def check(what, condition, detail=""):
    global n_checks
    n_checks += 1
    if condition:
        print(f"ok: {what}")
    else:
        failures.append(what)
        print(f"FAILED: {what} {detail}")


def report():
    """Prints the count of checks that passed and failed; the exit status to end with."""
    print(f"{n_checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0
