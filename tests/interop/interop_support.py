"""Shared by the interoperability scripts: the generated protobuf modules, JSON
as eventsourcing 9.2's transcoder writes it, and small process helpers.

Needs grpcio and protobuf (Debian's python3-grpcio and python3-protobuf, so
run with /usr/bin/python3) and protoc (Debian's protobuf-compiler).
"""

import datetime
import decimal
import importlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
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
