"""Interoperability: a Python grpcio client against our C server.

Starts eventsourcing_grpc_server running eventsourcing_grpc.example:Orders
(in memory) and talks to it as eventsourcing-grpc 0.1.2's client does: unary
calls on the four paths, args and kwargs always sent. It replays the bytes
recorded from the Python reference (tests/vectors) and compares the replies
byte for byte, with order ids and timestamps put in from this run. Errors are
checked against OUR documented status codes (include/esg/grpc.h), with the
reference's next to them.

With --nghttpx PATH the same checks go through nghttpx set up as
deploy/nghttpx/nghttpx.conf says (the guard of a port that peers reach), over
mutual TLS as a Python client of a deployed system calls (the Ping and health
checks on local credentials still go to the server itself).

Usage: /usr/bin/python3 test_python_client.py SERVER [--vectors DIR]
           [--proto DIR] [--protoc PATH] [--gen DIR] [--nghttpx PATH]

Prints one line per check and ends with "N passed, M failed". Exit status: 0
when all passed, 1 when one failed, 77 when this Python lacks grpcio.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import interop_support as support  # noqa: E402

grpc = support.require_grpc()

from google.protobuf import descriptor_pb2  # noqa: E402

ORDERS_TOPIC = "eventsourcing_grpc.example:Orders"
CREATED_TOPIC = "eventsourcing_grpc.example:Order.Created"
CALL_TIMEOUT = 10.0

# The vector files by name (method_calls, errors, ...), loaded by main.
VECTORS = {}

DATETIME_VALUE = re.compile(rb'"_type_":"datetime_iso","_data_":"([^"]*)"')
ISO_UTC = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
ORDER_ID_REPLY = re.compile(rb'^\{"_type_":"uuid_hex","_data_":"([0-9a-f]{32})"\}$')

# OUR status for each error case of errors.json (include/esg/grpc.h), by
# description. "OK" where we accept what the reference refuses, or the reverse.
EXPECTED_STATUS = {
    # via_library_client
    "method that does not exist": "UNIMPLEMENTED",
    "too many positional args": "INVALID_ARGUMENT",
    "missing required argument": "INVALID_ARGUMENT",
    "unexpected keyword argument": "INVALID_ARGUMENT",
    "get_order with unknown order id": "NOT_FOUND",
    "is_order_paid with unknown order id": "NOT_FOUND",
    "get_order with a plain string id": "INVALID_ARGUMENT",
    # Only the methods in the application's table can be called by name.
    "private method (underscore) is callable remotely": "UNIMPLEMENTED",
    # raw: a missing args or kwargs means none (server.c), so the call works.
    "MethodRequest with kwargs field omitted (empty bytes)": "OK",
    "MethodRequest with args field omitted (empty bytes)": "OK",
    "MethodRequest with empty method_name": "UNIMPLEMENTED",
    "get_order with args JSON using default separators (spaces) - accepted": "OK",
    "get_order with uuid_hex _data_ in dashed form - accepted": "OK",
    "get_order with malformed uuid_hex": "INVALID_ARGUMENT",
    "args bytes that are not JSON": "INVALID_ARGUMENT",
    "args with unregistered _type_": "INVALID_ARGUMENT",
    "NotificationsRequest with start omitted": "INVALID_ARGUMENT",
    "NotificationsRequest with limit omitted": "INVALID_ARGUMENT",
    "NotificationsRequest with non-numeric start": "INVALID_ARGUMENT",
    "NotificationsRequest start beyond the end (empty reply)": "OK",
    "NotificationsRequest limit=0 (see notification_limit_edge_cases)": "INVALID_ARGUMENT",
    # Our limit is capped at 1000 rather than refused above 10.
    "NotificationsRequest limit=11 (above the log section size of 10)": "OK",
    "NotificationsRequest limit=1000": "OK",
    "Ping with malformed protobuf payload": "INVALID_ARGUMENT",
    "unknown RPC method path": "UNIMPLEMENTED",
    # Orders run alone follows no one: a Prompt from anyone is refused.
    "Prompt with an upstream name that is not a leader (still OK)": "INVALID_ARGUMENT",
}


# ---- Calls ----


class RawClient:
    """Unary calls with the bytes given and the bytes received, no codec."""

    def __init__(self, channel):
        self.channel = channel

    def call(self, path, request):
        """(status name, details, reply bytes or None)."""
        method = self.channel.unary_unary(
            path, request_serializer=None, response_deserializer=None
        )
        try:
            reply = method(request, timeout=CALL_TIMEOUT)
            return "OK", "", reply
        except grpc.RpcError as error:
            return error.code().name, error.details() or "", None


class ReferenceStyleClient:
    """Talks as eventsourcing-grpc 0.1.2's ApplicationClient: typed unary calls
    on the four paths, args and kwargs always sent, numbers as strings."""

    def __init__(self, channel, pb):
        self.pb = pb

        def method(path, request_type, reply_type):
            return channel.unary_unary(
                path,
                request_serializer=request_type.SerializeToString,
                response_deserializer=reply_type.FromString,
            )

        self._ping = method(support.PATH_PING, pb.Empty, pb.Empty)
        self._call = method(support.PATH_CALL, pb.MethodRequest, pb.MethodReply)
        self._prompt = method(support.PATH_PROMPT, pb.PromptRequest, pb.Empty)
        self._get_notifications = method(
            support.PATH_GET_NOTIFICATIONS, pb.NotificationsRequest, pb.NotificationsReply
        )

    def ping(self):
        self._ping(self.pb.Empty(), timeout=CALL_TIMEOUT)

    def prompt(self, upstream_name):
        self._prompt(self.pb.PromptRequest(upstream_name=upstream_name), timeout=CALL_TIMEOUT)

    def call_application_method(self, method_name, *args, **kwargs):
        request = self.pb.MethodRequest(
            method_name=method_name,
            args=support.encode_json(list(args)),
            kwargs=support.encode_json(kwargs),
        )
        reply = self._call(request, timeout=CALL_TIMEOUT)
        return support.decode_json(reply.data)

    def get_notifications(self, start, limit, stop=None, topics=()):
        request = self.pb.NotificationsRequest(
            start=str(start),
            limit=str(limit),
            stop="" if stop is None else str(stop),
            topics=list(topics),
        )
        return list(self._get_notifications(request, timeout=CALL_TIMEOUT).notifications)


# ---- Byte substitutions ----


def substitute_ids(data, ids):
    """data with each recorded UUID (hex and dashed, as text) made ours."""
    for recorded, ours in ids.items():
        data = data.replace(recorded.hex.encode(), ours.hex.encode())
        data = data.replace(str(recorded).encode(), str(ours).encode())
    return data


def datetimes_in(data):
    return DATETIME_VALUE.findall(data)


def with_our_datetimes(recorded, ours):
    """recorded with its datetime_iso values replaced, in order, by ours."""
    values = iter(ours)
    return DATETIME_VALUE.sub(
        lambda match: b'"_type_":"datetime_iso","_data_":"' + next(values, b"(missing)") + b'"',
        recorded,
    )


def check_datetimes(results, name, recorded, ours):
    """Same count, Python's isoformat in UTC, and equal where the reference's are."""
    if not recorded and not ours:
        return True
    problems = []
    if len(recorded) != len(ours):
        problems.append(f"{len(ours)} datetime_iso values, the reference has {len(recorded)}")
    for value in ours:
        if not ISO_UTC.match(value) or value.endswith(b".000000+00:00"):
            problems.append(f"{value!r} is not Python's isoformat() in UTC")
    for i in range(min(len(recorded), len(ours))):
        for j in range(i + 1, min(len(recorded), len(ours))):
            if (recorded[i] == recorded[j]) != (ours[i] == ours[j]):
                problems.append(f"datetimes {i} and {j}: equal in one reply only")
    return results.check(f"{name}: datetimes", not problems, "\n".join(problems))


def describe_bytes(label, data):
    text = "(none)"
    if data is not None:
        text = "".join(c if c.isprintable() else "." for c in data.decode("utf-8", "replace"))
    return f"{label}: {data.hex() if data is not None else ''}\n{label} as text: {text}"


# ---- The checks ----


def check_descriptor(results, pb):
    """Our application.proto declares what the reference's declares."""
    basics = VECTORS["proto_basics"]
    reference = descriptor_pb2.FileDescriptorProto.FromString(
        bytes.fromhex(basics["serialized_file_descriptor"]["hex"])
    )
    ours = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)

    def shape(file):
        messages = {
            m.name: sorted((f.name, f.number, f.type, f.label, f.type_name) for f in m.field)
            for m in file.message_type
        }
        services = {
            s.name: sorted(
                (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for m in s.method
            )
            for s in file.service
        }
        return file.name, file.package, file.syntax or "proto2", messages, services

    problems = []
    for label, mine, theirs in zip(
        ("file name", "package", "syntax", "messages", "services"), shape(ours), shape(reference)
    ):
        if mine != theirs:
            problems.append(f"{label}: ours {mine!r}\n  reference {theirs!r}")
    results.check("descriptor: application.proto matches the reference's", not problems,
                  "\n".join(problems))
    for name, path in basics["method_paths"].items():
        results.check(f"descriptor: path of {name}", path == support.SERVICE + name,
                      f"reference path {path}")


def normalise_fields(descriptor, fields):
    """Vector fields as {name: value} over every field, defaults filled in."""
    unknown = set(fields) - set(descriptor.fields_by_name)
    if unknown:
        raise ValueError(f"{descriptor.name} has no field(s) {sorted(unknown)}")
    out = {}
    for field in descriptor.fields:
        value = fields.get(field.name)
        if field.label == field.LABEL_REPEATED:
            value = value or []
            if field.message_type is not None:
                value = [normalise_fields(field.message_type, item) for item in value]
            out[field.name] = list(value)
        elif field.type == field.TYPE_BYTES:
            out[field.name] = bytes.fromhex(value["hex"]) if value else b""
        else:
            out[field.name] = value if value is not None else field.default_value
    return out


def message_fields(message):
    """A decoded message as {name: value} over every field."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.label == field.LABEL_REPEATED:
            if field.message_type is not None:
                value = [message_fields(item) for item in value]
            value = list(value)
        out[field.name] = value
    return out


def build_message(pb, message_type, fields):
    """A message from normalised fields (repeated messages of pb's types)."""
    message = message_type()
    for field in message_type.DESCRIPTOR.fields:
        value = fields[field.name]
        if field.label == field.LABEL_REPEATED and field.message_type is not None:
            item_type = getattr(pb, field.message_type.name)
            for item in value:
                getattr(message, field.name).append(build_message(pb, item_type, item))
        elif field.label == field.LABEL_REPEATED:
            getattr(message, field.name).extend(value)
        else:
            setattr(message, field.name, value)
    return message


def check_golden_messages(results, pb):
    """Each golden message decodes to its fields and encodes back to its bytes."""
    for index, golden in enumerate(VECTORS["messages_golden"]["messages"]):
        name = f"golden {index} {golden['type']} ({golden['source']})"
        message_type = getattr(pb, golden["type"], None)
        if message_type is None:
            results.check(name, False, f"our proto has no message {golden['type']}")
            continue
        with results.reported(name):
            round_trip_golden(results, pb, name, message_type, golden)


def round_trip_golden(results, pb, name, message_type, golden):
    data = bytes.fromhex(golden["hex"])
    expected = normalise_fields(message_type.DESCRIPTOR, golden["fields"])
    decoded = message_type.FromString(data)
    results.check(f"{name}: decodes to its fields", message_fields(decoded) == expected,
                  f"decoded {message_fields(decoded)}\nexpected {expected}")
    again = decoded.SerializeToString(deterministic=True)
    results.check(f"{name}: re-encodes to the same bytes", again == data,
                  describe_bytes("ours", again) + "\n" + describe_bytes("golden", data))
    built = build_message(pb, message_type, expected).SerializeToString(
        deterministic=True
    )
    results.check(f"{name}: encodes from its fields to the same bytes", built == data,
                  describe_bytes("ours", built) + "\n" + describe_bytes("golden", data))


def check_ping_and_health(results, raw, health_pb, local_channel):
    ping = VECTORS["method_calls"]["ping"]
    status, details, reply = raw.call(ping["path"], bytes.fromhex(ping["request"]["hex"]))
    results.check("Ping: OK with the recorded (empty) reply",
                  status == "OK" and reply == bytes.fromhex(ping["response"]["hex"]),
                  f"status {status} {details}\n" + describe_bytes("reply", reply))
    status, details, reply = RawClient(local_channel).call(support.PATH_PING, b"")
    results.check("Ping over gRPC local credentials", status == "OK" and reply == b"",
                  f"status {status} {details}")

    serving = health_pb.HealthCheckResponse.SERVING
    for service in ("", "eventsourcing_grpc.Application"):
        request = health_pb.HealthCheckRequest(service=service).SerializeToString()
        status, details, reply = raw.call(support.PATH_HEALTH_CHECK, request)
        is_serving = status == "OK" and (
            health_pb.HealthCheckResponse.FromString(reply).status == serving
        )
        results.check(f"health Check({service!r}): SERVING", is_serving,
                      f"status {status} {details}\n" + describe_bytes("reply", reply))
    request = health_pb.HealthCheckRequest(service="no.such.Service").SerializeToString()
    status, details, _ = raw.call(support.PATH_HEALTH_CHECK, request)
    results.check("health Check('no.such.Service'): NOT_FOUND", status == "NOT_FOUND",
                  f"status {status} {details}")


def check_method_calls(results, pb, raw, run):
    """Replays method_calls.json; sets run['order_id'] and run['created_on']."""
    vector = VECTORS["method_calls"]
    recorded_id = uuid.UUID(vector["order_id"]["uuid"])
    ids = {}
    for index, case in enumerate(vector["calls"]):
        name = f"method_calls {index} {case['description']}"
        with results.reported(name):
            replay_method_call(results, pb, raw, name, case, recorded_id, ids, run)
        if not ids:
            results.check(name, False, "the first call must create the order")
            return False
    return True


def replay_method_call(results, pb, raw, name, case, recorded_id, ids, run):
    request = substitute_ids(bytes.fromhex(case["request"]["serialized"]["hex"]), ids)
    if not ids and recorded_id.hex.encode() in request:
        return
    status, details, reply = raw.call(case["path"], request)
    if not results.check(f"{name}: status {case['status']}", status == case["status"],
                         f"status {status}: {details}"):
        return
    data = pb.MethodReply.FromString(reply).data
    if not ids:
        match = ORDER_ID_REPLY.match(data)
        if not results.check(f"{name}: reply is a new order id", match is not None,
                             describe_bytes("data", data)):
            return
        ids[recorded_id] = uuid.UUID(match.group(1).decode())
        run["order_id"] = ids[recorded_id]
    recorded_reply = bytes.fromhex(case["response"]["serialized"]["hex"])
    recorded_data = substitute_ids(pb.MethodReply.FromString(recorded_reply).data, ids)
    values = datetimes_in(data)
    check_datetimes(results, name, datetimes_in(recorded_data), values)
    if values and "created_on" not in run:
        run["created_on"] = values[0]
    expected_bytes = pb.MethodReply(
        data=with_our_datetimes(recorded_data, values)).SerializeToString()
    results.check(f"{name}: reply bytes equal the reference's", reply == expected_bytes,
                  describe_bytes("ours", reply) + "\n"
                  + describe_bytes("expected", expected_bytes))


def check_recorded_notifications(results, pb, raw, run):
    """notifications.json cases that a lone Orders server with one order can answer."""
    vector = VECTORS["notifications"]
    ids = {uuid.UUID(vector["order_id"]["uuid"]): run["order_id"]}
    for index, case in enumerate(vector["selects"]):
        name = f"notifications {index} {case['description']}"
        fields = case["request"]["fields"]
        if case["app"] != "Orders":
            results.skip(name, f"{case['app']} runs in its own server (single servers only)")
            continue
        if fields["stop"]:
            results.skip(name, "stop=2 is only telling with 3 notifications (a paid order); "
                               "see the edge cases below")
            continue
        recorded = case["response"]["fields"]["notifications"]
        kept = [n for n in recorded if n["topic"] == CREATED_TOPIC]
        if recorded and not kept:
            results.skip(name, "needs an order reserved and paid by Reservations and "
                               "Payments (leading and following over gRPC come later)")
            continue
        partial = "" if len(kept) == len(recorded) else (
            f" (the {len(kept)} of {len(recorded)} recorded that exist here: "
            "the others need a reserved and paid order)")
        with results.reported(name):
            replay_select(results, pb, raw, name + partial, case, kept, ids, run)


def replay_select(results, pb, raw, name, case, kept, ids, run):
    status, details, reply = raw.call(case["path"],
                                      bytes.fromhex(case["request"]["serialized"]["hex"]))
    if not results.check(f"{name}: status OK", status == "OK", f"status {status}: {details}"):
        return
    # Our Created event carries the order's created_on as its timestamp.
    expected = pb.NotificationsReply()
    for item in kept:
        state = substitute_ids(bytes.fromhex(item["state"]["hex"]), ids)
        state = with_our_datetimes(state, [run["created_on"]])
        expected.notifications.append(pb.Notification(
            id=item["id"], originator_id=run["order_id"].hex,
            originator_version=item["originator_version"], topic=item["topic"],
            state=state))
    expected_bytes = expected.SerializeToString()
    results.check(f"{name}: reply bytes equal the reference's", reply == expected_bytes,
                  describe_bytes("ours", reply) + "\n"
                  + describe_bytes("expected", expected_bytes))


def error_cases():
    errors = VECTORS["errors"]
    for case in errors["via_library_client"]:
        yield "via_library_client", case, bytes.fromhex(case["request"]["serialized"]["hex"])
    for case in errors["raw"]:
        yield "raw", case, bytes.fromhex(case["request"]["hex"])


def check_errors(results, pb, raw, run):
    """Every error case of errors.json against OUR status codes, then a table."""
    errors = VECTORS["errors"]
    ids = {uuid.UUID(errors["order_id_used_for_valid_calls"]["uuid"]): run["order_id"]}
    table = []
    for group, case, request in error_cases():
        name = f"errors {group}: {case['description']}"
        with results.reported(name):
            send_error_case(results, pb, raw, name, case, substitute_ids(request, ids), ids,
                            table)
    print_status_table(table)


def send_error_case(results, pb, raw, name, case, request, ids, table):
    expected = EXPECTED_STATUS.get(case["description"])
    status, details, reply = raw.call(case["path"], request)
    table.append((case["description"], case["status"], status, details))
    if expected is None:
        results.check(name, False, "no expected status for this case: add it to "
                                   "EXPECTED_STATUS")
        return
    results.check(f"{name}: {expected}", status == expected, f"got {status}: {details}")
    if expected != "OK":
        results.check(f"{name}: details say why", bool(details.strip()), "empty details")
    elif status == "OK" and case["status"] == "OK" and "response" in case:
        check_error_case_reply(results, pb, name, case, reply, ids)
    elif status == "OK" and case["path"] == support.PATH_GET_NOTIFICATIONS:
        check_page_is_whole(results, pb, name, reply)
    elif status == "OK" and b"create_new_order" in request:
        data = pb.MethodReply.FromString(reply).data
        results.check(f"{name}: reply is a new order id",
                      ORDER_ID_REPLY.match(data) is not None, describe_bytes("data", data))


def check_error_case_reply(results, pb, name, case, reply, ids):
    """An accepted case whose reference reply is recorded: same bytes."""
    recorded = bytes.fromhex(case["response"]["hex"])
    if case["path"] != support.PATH_CALL:
        results.check(f"{name}: reply bytes equal the reference's", reply == recorded,
                      describe_bytes("ours", reply) + "\n" + describe_bytes("expected", recorded))
        return
    data = pb.MethodReply.FromString(reply).data
    recorded_data = substitute_ids(pb.MethodReply.FromString(recorded).data, ids)
    check_datetimes(results, name, datetimes_in(recorded_data), datetimes_in(data))
    expected = pb.MethodReply(data=with_our_datetimes(recorded_data, datetimes_in(data)))
    expected_bytes = expected.SerializeToString()
    results.check(f"{name}: reply bytes equal the reference's", reply == expected_bytes,
                  describe_bytes("ours", reply) + "\n" + describe_bytes("expected", expected_bytes))


def check_page_is_whole(results, pb, name, reply):
    """A page from 1 with a large limit: ids 1, 2, 3, ... with nothing missing."""
    page = pb.NotificationsReply.FromString(reply).notifications
    got = [n.id for n in page]
    want = [str(i) for i in range(1, len(page) + 1)]
    results.check(f"{name}: ids from 1 without gaps", bool(page) and got == want,
                  f"ids {got}")


def print_status_table(table):
    width = max(len(row[0]) for row in table)
    print()
    print(f"{'case':<{width}}  {'reference':<16}  {'ours':<16}  our details")
    for description, reference, ours, details in table:
        print(f"{description:<{width}}  {reference:<16}  {ours:<16}  {details}")
    print()


def check_edge_cases(results, pb, raw, client):
    """errors.json's start/limit/stop edge cases on 4 notifications, with our rules:
    start < 1 and limit < 1 are INVALID_ARGUMENT, a limit above 10 is fine."""
    edge = VECTORS["errors"]["notification_limit_edge_cases"]
    popo = next(p for p in edge["by_persistence"]
                if p["persistence_module"] == "eventsourcing.popo")
    n_wanted = popo["events_in_log"]
    n_have = len(client.get_notifications(1, 1000))
    while n_have < n_wanted:
        client.call_application_method("create_new_order")
        n_have += 1
    if n_have != n_wanted:
        results.skip("edge cases", f"the log holds {n_have} notifications, not {n_wanted}")
        return
    for case in popo["cases"]:
        start, limit, stop = case["start"], case["limit"], case["stop"]
        name = f"edge case start={start} limit={limit} stop={stop or '-'}"
        if int(start) < 1 or int(limit) < 1:
            want_status, want_ids = "INVALID_ARGUMENT", None
        elif case["status"] != "OK":  # above the reference's section size
            want_status = "OK"
            want_ids = [str(i) for i in range(int(start), n_wanted + 1)][: int(limit)]
        else:
            want_status, want_ids = "OK", case["returned_ids"]
        status, details, reply = raw.call(support.PATH_GET_NOTIFICATIONS,
                                          bytes.fromhex(case["request"]["hex"]))
        got_ids = (None if reply is None
                   else [n.id for n in pb.NotificationsReply.FromString(reply).notifications])
        reference = case.get("returned_ids", case["status"])
        results.check(f"{name}: {want_status} {want_ids if want_ids is not None else ''}",
                      status == want_status and got_ids == want_ids,
                      f"got {status} {got_ids} {details}\nreference {reference}")


def check_limit_cap(results, client):
    """A limit above 1000 gives a page of 1000 (ESG_GRPC_MAX_PAGE_NOTIFICATIONS)."""
    cap = 1000
    with results.reported("limit cap"):
        n_have = len(client.get_notifications(1, cap))
        for _ in range(n_have, cap + 1):
            client.call_application_method("create_new_order")
        for limit in (cap + 1, 1_000_000):
            page = client.get_notifications(1, limit)
            ids = [n.id for n in page]
            results.check(f"limit cap: limit={limit} on {cap + 1}+ notifications gives 1 to {cap}",
                          ids == [str(i) for i in range(1, cap + 1)],
                          f"got {len(ids)} notifications, from {ids[:1]} to {ids[-1:]}")


def check_reference_client(results, pb, client, run):
    """The reference client's own calls: values decode as the reference's do."""
    order_id = run["order_id"]
    with results.reported("reference-style client"):
        client.ping()
        got_id = client.call_application_method("create_new_order")
        order = client.call_application_method("get_order", order_id=got_id)
        results.check("reference-style client: get_order(order_id=new id)",
                      order["id"] == got_id and order["is_reserved"] is False
                      and order["is_paid"] is False and order["reservation_id"] is None
                      and order["payment_id"] is None
                      and order["created_on"] == order["modified_on"]
                      and order["created_on"].utcoffset().total_seconds() == 0,
                      f"got {order!r}")
        results.check("reference-style client: is_order_reserved is False",
                      client.call_application_method("is_order_reserved", got_id) is False)
        results.check("reference-style client: is_order_paid is False",
                      client.call_application_method("is_order_paid", got_id) is False)
        page = client.get_notifications(1, 10, topics=[CREATED_TOPIC])
        results.check("reference-style client: both orders' Created notifications",
                      [n.originator_id for n in page][:1] == [order_id.hex]
                      and got_id.hex in [n.originator_id for n in page]
                      and all(n.topic == CREATED_TOPIC and n.originator_version == "1"
                              for n in page),
                      f"got {[(n.id, n.originator_id, n.topic) for n in page]}")
        try:
            client.prompt("Reservations")
            prompt_status = "OK"
        except grpc.RpcError as error:
            prompt_status = error.code().name
        results.check("reference-style client: Prompt from a non-leader is INVALID_ARGUMENT",
                      prompt_status == "INVALID_ARGUMENT", f"got {prompt_status}")
        created = next(n for n in page if n.originator_id == got_id.hex)
        state = support.decode_json(created.state)
        results.check("reference-style client: Created state as eventsourcing stores it",
                      list(state) == ["timestamp", "originator_topic"]
                      and state["originator_topic"] == "eventsourcing_grpc.example:Order"
                      and state["timestamp"] == order["created_on"],
                      f"got {state!r}")


# ---- Main ----


def load_vectors(vectors_dir):
    for name in ("method_calls", "notifications", "errors", "proto_basics", "messages_golden"):
        with open(os.path.join(vectors_dir, name + ".json"), encoding="utf-8") as file:
            VECTORS[name] = json.load(file)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", help="the eventsourcing_grpc_server program")
    parser.add_argument("--vectors", default=support.DEFAULT_VECTORS_DIR)
    parser.add_argument("--proto", default=support.DEFAULT_PROTO_DIR)
    parser.add_argument("--protoc", default=None, help="protoc (default: from PATH)")
    parser.add_argument("--gen", default=None,
                        help="folder for the generated modules (default: a temporary one)")
    parser.add_argument("--nghttpx", default=None,
                        help="call through this nghttpx, over mutual TLS (see the top)")
    return parser.parse_args()


def start_guard(nghttpx, server_address, work_dir):
    """nghttpx in front of the server, TLS with the orders certificate, requiring a client's
    from the same root; returns (process, its address, the channel credentials of payments)."""
    pki = os.path.join(work_dir, "pki")
    subprocess.run(["bash", os.path.join(support.REPO_DIR, "scripts", "make-ssl.sh"), pki, "2",
                    "orders", "payments"], check=True, capture_output=True)
    port = support.free_port()
    backend_port = server_address.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [nghttpx, "--conf=" + os.path.join(support.REPO_DIR, "deploy", "nghttpx", "nghttpx.conf"),
         f"--frontend=127.0.0.1,{port}", f"--backend=127.0.0.1,{backend_port};;proto=h2",
         "--single-process", "--verify-client-cacert=" + os.path.join(pki, "root", "root.crt"),
         os.path.join(pki, "orders", "orders.key"), os.path.join(pki, "orders", "orders.crt")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("nghttpx did not start")
            time.sleep(0.1)

    def read(*parts):
        with open(os.path.join(pki, *parts), "rb") as file:
            return file.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("root", "root.crt"), private_key=read("payments", "payments.key"),
        certificate_chain=read("payments", "payments.crt"))
    return process, f"127.0.0.1:{port}", credentials


def run_checks(results, arguments, gen_dir):
    pb, health_pb = support.generate_protos(gen_dir, arguments.proto, arguments.protoc)
    load_vectors(arguments.vectors)
    check_descriptor(results, pb)
    check_golden_messages(results, pb)

    server = support.ServerProcess(arguments.server, ORDERS_TOPIC, "Orders")
    server.start()
    print(f"server: {server.output[-1].strip()}")
    guard = None
    if arguments.nghttpx:
        guard, guard_address, credentials = start_guard(arguments.nghttpx, server.address,
                                                        gen_dir)
        print(f"through nghttpx on {guard_address}, mutual TLS")
        channel = grpc.secure_channel(guard_address, credentials,
                                      options=[("grpc.ssl_target_name_override", "orders")])
    else:
        channel = grpc.insecure_channel(server.address)
    local_channel = grpc.secure_channel(
        server.address, grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    )
    try:
        raw = RawClient(channel)
        client = ReferenceStyleClient(channel, pb)
        run = {}
        check_ping_and_health(results, raw, health_pb, local_channel)
        if check_method_calls(results, pb, raw, run):
            check_recorded_notifications(results, pb, raw, run)
            check_errors(results, pb, raw, run)
            check_reference_client(results, pb, client, run)
            check_edge_cases(results, pb, raw, client)
            check_limit_cap(results, client)
        else:
            results.skip("notifications, errors, edge cases", "no order was created")
    finally:
        channel.close()
        local_channel.close()
        if guard is not None:
            guard.terminate()
            guard.wait()
        exit_status = server.stop()
    results.check("server stops on SIGTERM with exit status 0", exit_status == 0,
                  f"exit status {exit_status}\n" + "".join(server.output[-20:]))


def main():
    arguments = parse_arguments()
    if arguments.nghttpx and not os.access(arguments.nghttpx, os.X_OK):
        print(f"SKIP: no {arguments.nghttpx} (Debian's nghttp2-proxy)")
        return support.EXIT_SKIP
    os.environ["GRPC_DNS_RESOLVER"] = "native"
    results = support.Results()
    try:
        if arguments.gen:
            os.makedirs(arguments.gen, exist_ok=True)
            run_checks(results, arguments, arguments.gen)
        else:
            with tempfile.TemporaryDirectory(prefix="esg-interop-") as gen_dir:
                run_checks(results, arguments, gen_dir)
    except Exception as error:  # noqa: BLE001 (report, count, and fail)
        results.check("the test ran to its end", False, f"{type(error).__name__}: {error}")
    if results.failures:
        print("\nFailed:")
        for name in results.failures:
            print(f"  {name}")
    print(f"{results.n_skipped} skipped")
    print(f"{results.n_passed} passed, {results.n_failed} failed")
    return 1 if results.n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
