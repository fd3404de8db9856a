"""Shared by the interoperability scripts: the generated protobuf modules, JSON
as eventsourcing 9.2's transcoder writes it, and small process helpers.

Needs grpcio and protobuf (Debian's python3-grpcio and python3-protobuf, so
run with /usr/bin/python3) and protoc (Debian's protobuf-compiler).
"""

import contextlib
import datetime
import decimal
import importlib
import importlib.util
import json
import os
import signal
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PROTO_DIR = os.path.join(REPO_DIR, "proto")
DEFAULT_VECTORS_DIR = os.path.join(REPO_DIR, "tests", "vectors")

APPLICATION_PROTO = "eventsourcing_grpc/protos/application.proto"
HEALTH_PROTO = "grpc/health/v1/health.proto"

SERVICE = "/eventsourcing_grpc.Application/"
PATH_PING = SERVICE + "Ping"
PATH_CALL = SERVICE + "CallApplicationMethod"
PATH_PROMPT = SERVICE + "Prompt"
PATH_GET_NOTIFICATIONS = SERVICE + "GetNotifications"
PATH_HEALTH_CHECK = "/grpc.health.v1.Health/Check"

# The exit code CTest reads as "skipped" (SKIP_RETURN_CODE 77).
EXIT_SKIP = 77


def require_grpc():
    """Imports grpc, or exits with EXIT_SKIP saying which Python lacks it."""
    try:
        grpc = importlib.import_module("grpc")
        importlib.import_module("google.protobuf")
    except ImportError as error:
        print(
            f"SKIP: {sys.executable} has no grpcio/protobuf ({error}); "
            "run with /usr/bin/python3 (Debian's python3-grpcio, python3-protobuf)"
        )
        sys.exit(EXIT_SKIP)
    return grpc


def _load_module(name, path):
    """Imports the file at path as module name, without touching sys.path.

    A generated grpc/health/v1/health_pb2.py must never be reachable as the
    package "grpc", or it would hide the real grpc package.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_protos(out_dir, proto_dir=DEFAULT_PROTO_DIR, protoc=None):
    """Runs protoc into out_dir; returns (application_pb2, health_pb2)."""
    protoc = protoc or shutil.which("protoc")
    if protoc is None:
        raise RuntimeError("protoc not found: install protobuf-compiler or pass --protoc")
    modules = []
    for name, proto in (("application", APPLICATION_PROTO), ("health", HEALTH_PROTO)):
        target = os.path.join(out_dir, name)
        os.makedirs(target, exist_ok=True)
        subprocess.run(
            [protoc, f"--python_out={target}", f"--proto_path={proto_dir}", proto],
            check=True,
        )
        generated = os.path.join(target, proto[: -len(".proto")] + "_pb2.py")
        modules.append(_load_module(f"esg_interop_{name}_pb2", generated))
    return tuple(modules)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- JSON as eventsourcing 9.2's JSONTranscoder writes and reads it ----


class TranscodingError(ValueError):
    """A value the transcoder cannot encode or decode."""


def _encode_special(obj):
    if isinstance(obj, uuid.UUID):
        return {"_type_": "uuid_hex", "_data_": obj.hex}
    if isinstance(obj, datetime.datetime):
        return {"_type_": "datetime_iso", "_data_": obj.isoformat()}
    if isinstance(obj, decimal.Decimal):
        return {"_type_": "decimal_str", "_data_": str(obj)}
    raise TranscodingError(f"Object of type {type(obj)} is not serializable")


def _decode_special(obj):
    if set(obj) != {"_type_", "_data_"}:
        return obj
    name, data = obj["_type_"], obj["_data_"]
    if name == "uuid_hex":
        return uuid.UUID(data)
    if name == "datetime_iso":
        return datetime.datetime.fromisoformat(data)
    if name == "decimal_str":
        return decimal.Decimal(data)
    raise TranscodingError(
        f"Data serialized with name '{name}' is not deserializable. "
        "Please register a custom transcoding for this type."
    )


def encode_json(value):
    """UTF-8 JSON bytes: separators "," and ":", no ASCII escaping."""
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, default=_encode_special
    ).encode("utf-8")


def decode_json(data):
    """The value of UTF-8 JSON bytes, with UUIDs, datetimes and decimals."""
    return json.loads(data.decode("utf-8"), object_hook=_decode_special)


# ---- Checks and the server under test, for the test scripts ----

# Seconds a server may take to say it listens.
START_TIMEOUT = 20.0


class Results:
    """Counts checks and prints one line for each."""

    def __init__(self):
        self.n_passed = 0
        self.n_failed = 0
        self.n_skipped = 0
        self.failures = []

    def check(self, name, is_ok, detail=""):
        if is_ok:
            self.n_passed += 1
            print(f"PASS {name}")
        else:
            self.n_failed += 1
            self.failures.append(name)
            print(f"FAIL {name}")
            for line in str(detail).splitlines():
                print(f"     {line}")
        return is_ok

    def skip(self, name, reason):
        self.n_skipped += 1
        print(f"SKIP {name}: {reason}")

    @contextlib.contextmanager
    def reported(self, name):
        """Counts an exception inside the block as a failure of name, and goes on."""
        try:
            yield
        except Exception as error:  # noqa: BLE001 (any failure is the finding)
            self.check(name, False, f"{type(error).__name__}: {error}")


# ---- The server under test ----


class ServerProcess:
    """eventsourcing_grpc_server running one application on a free port."""

    def __init__(self, binary, topic, app_name, settings=None):
        self.settings = settings or {}  # more environment, for the server alone
        self.binary = binary
        self.topic = topic
        self.app_name = app_name
        self.process = None
        self.address = None
        self.output = []
        self.is_listening = threading.Event()

    def start(self):
        for _ in range(3):  # another process may take the free port first
            if self._try_start():
                return
            self.stop()
        status = self.process.returncode if self.process else None
        what = (f"exited with status {status}" if status is not None
                else f"did not say 'listening on' within {START_TIMEOUT:.0f} s")
        raise RuntimeError(f"{self.binary} {what}; its output:\n" + "".join(self.output))

    def _try_start(self):
        self.address = f"localhost:{free_port()}"  # local credentials, as the reference
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.endswith(("PERSISTENCE_MODULE", "SQLITE_DBNAME", "SYSTEM_TOPIC"))
        }
        env[f"{self.app_name.upper()}_GRPC_SERVER_ADDRESS"] = self.address
        env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
        env["GRPC_DNS_RESOLVER"] = "native"
        env.update(self.settings)
        self.output = []
        self.is_listening.clear()
        self.process = subprocess.Popen(
            [self.binary, self.topic],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.is_listening.wait(0.05):
                return True
            if self.process.poll() is not None:
                return False
        return False

    def _read_output(self):
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace")
            self.output.append(line)
            if "listening on" in line:
                self.is_listening.set()

    def stop(self):
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
