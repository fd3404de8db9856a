"""Reflection: a generic gRPC client learns our services from the server, as grpcurl does.

Starts eventsourcing_grpc_server (Orders, in memory) and talks to
grpc.reflection.v1alpha and v1 ServerReflection with messages generated from
Debian's grpc-proto: lists the services, asks for files by name and by symbol,
loads every file into a fresh protobuf DescriptorPool, then calls Ping,
GetNotifications and our own GetLeaderPositions and Subscribe with messages built
from those descriptors alone. Also checks
the in-band errors of unknown names and of a malformed request, that several
requests share a stream, and that the plaintext health port has no reflection.

Usage: /usr/bin/python3 test_reflection.py SERVER [--grpc-proto DIR] [--protoc PATH]

Prints one line per check and ends with "N passed, M failed". Exit status: 0
when all passed, 1 when one failed, 77 when this Python lacks grpcio.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import interop_support as support  # noqa: E402

grpc = support.require_grpc()

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

SERVICES = [
    "eventsourcing_grpc.Application",
    "eventsourcing_grpc_c.v1.Node",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
]
NOT_FOUND = 5
CALL_TIMEOUT = 10.0


def reflection_modules(grpc_proto_dir, protoc, out_dir):
    """The generated modules of reflection v1alpha and v1, by version.

    Each .proto is copied under a name of its own first: generated as
    grpc/reflection/..., the module would shadow the real grpc package.
    """
    modules = {}
    for version in ("v1alpha", "v1"):
        name = f"reflection_{version}"
        shutil.copy(os.path.join(grpc_proto_dir, "grpc", "reflection", version, "reflection.proto"),
                    os.path.join(out_dir, f"{name}.proto"))
        subprocess.run([protoc, f"--proto_path={out_dir}", f"--python_out={out_dir}",
                        f"{name}.proto"], check=True)
        modules[version] = support._load_module(f"esg_{name}_pb2",
                                                os.path.join(out_dir, f"{name}_pb2.py"))
    return modules


def ask(channel, version, pb, requests):
    """Sends requests (dicts of one field each) on one stream; returns the replies."""
    info = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=pb.ServerReflectionRequest.SerializeToString,
        response_deserializer=pb.ServerReflectionResponse.FromString)
    messages = [pb.ServerReflectionRequest(host="localhost", **request) for request in requests]
    return list(info(iter(messages), timeout=CALL_TIMEOUT))


def check_version(results, channel, version, pb):
    label = f"reflection {version}"
    replies = ask(channel, version, pb, [
        {"list_services": ""},
        {"file_containing_symbol": "eventsourcing_grpc.Application"},
        {"file_by_filename": "grpc/health/v1/health.proto"},
        {"file_containing_symbol": "eventsourcing_grpc.Application.GetNotifications"},
        {"file_containing_symbol": "eventsourcing_grpc.Notification"},
        {"file_containing_symbol": "grpc.health.v1.HealthCheckResponse.ServingStatus"},
        {"file_containing_symbol": f"grpc.reflection.{version}.ServerReflectionResponse"},
        {"file_containing_symbol": "eventsourcing_grpc.Nope"},
        {"file_by_filename": "nope.proto"},
        {"all_extension_numbers_of_type": "eventsourcing_grpc.MethodRequest"},
        {"file_containing_extension": {"containing_type": "eventsourcing_grpc.Empty",
                                       "extension_number": 100}},
        {"file_containing_symbol": "eventsourcing_grpc_c.v1.Node.GetLeaderPositions"},
    ])
    results.check(f"{label}: a reply for each of 12 requests on one stream", len(replies) == 12,
                  f"{len(replies)} replies")
    if len(replies) != 12:
        return
    listed = [service.name for service in replies[0].list_services_response.service]
    results.check(f"{label}: lists the services", listed == SERVICES, listed)
    results.check(f"{label}: echoes the request and the host",
                  replies[0].valid_host == "localhost"
                  and replies[0].original_request.HasField("list_services"))

    files = {}
    for index, expected in ((1, "eventsourcing_grpc/protos/application.proto"),
                            (2, "grpc/health/v1/health.proto"),
                            (3, "eventsourcing_grpc/protos/application.proto"),
                            (4, "eventsourcing_grpc/protos/application.proto"),
                            (5, "grpc/health/v1/health.proto"),
                            (6, f"grpc/reflection/{version}/reflection.proto"),
                            (11, "eventsourcing_grpc_c/v1/node.proto")):
        reply = replies[index]
        names = []
        for data in reply.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(data)
            files[file.name] = file
            names.append(file.name)
        asked = reply.original_request.WhichOneof("message_request")
        value = getattr(reply.original_request, asked)
        results.check(f"{label}: {asked} {value} -> {expected}",
                      names == [expected], f"{names}; error: {reply.error_response}")

    for index, what in ((7, "an unknown symbol"), (8, "an unknown file"),
                        (10, "an extension (there are none)")):
        error = replies[index].error_response
        results.check(f"{label}: {what} is NOT_FOUND, in band",
                      replies[index].HasField("error_response") and error.error_code == NOT_FOUND
                      and error.error_message != "", replies[index])
    extensions = replies[9].all_extension_numbers_response
    results.check(f"{label}: a message has no extension numbers",
                  extensions.base_type_name == "eventsourcing_grpc.MethodRequest"
                  and list(extensions.extension_number) == [], replies[9])
    return files


def check_descriptors_work(results, channel, files):
    """Builds messages from the served descriptors alone and calls the server with them."""
    pool = descriptor_pool.DescriptorPool()
    for file in files.values():
        pool.Add(file)
    service = pool.FindServiceByName("eventsourcing_grpc.Application")
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    results.check("descriptors: the Application service's four methods", methods == {
        "Ping": ("eventsourcing_grpc.Empty", "eventsourcing_grpc.Empty"),
        "CallApplicationMethod": ("eventsourcing_grpc.MethodRequest",
                                  "eventsourcing_grpc.MethodReply"),
        "Prompt": ("eventsourcing_grpc.PromptRequest", "eventsourcing_grpc.Empty"),
        "GetNotifications": ("eventsourcing_grpc.NotificationsRequest",
                             "eventsourcing_grpc.NotificationsReply"),
    }, methods)
    health = pool.FindServiceByName("grpc.health.v1.Health")
    results.check("descriptors: the health service", [m.name for m in health.methods]
                  == ["Check", "Watch"])

    factory = message_factory.MessageFactory(pool)

    def message_class(name):
        return factory.GetPrototype(pool.FindMessageTypeByName(name))

    empty = message_class("eventsourcing_grpc.Empty")
    ping = channel.unary_unary(support.PATH_PING, request_serializer=empty.SerializeToString,
                               response_deserializer=empty.FromString)
    results.check("descriptors: Ping with a message built from them",
                  isinstance(ping(empty(), timeout=CALL_TIMEOUT), empty))
    request_class = message_class("eventsourcing_grpc.NotificationsRequest")
    reply_class = message_class("eventsourcing_grpc.NotificationsReply")
    get = channel.unary_unary(support.PATH_GET_NOTIFICATIONS,
                              request_serializer=request_class.SerializeToString,
                              response_deserializer=reply_class.FromString)
    reply = get(request_class(start="1", limit="10"), timeout=CALL_TIMEOUT)
    results.check("descriptors: GetNotifications with messages built from them",
                  list(reply.notifications) == [], reply)
    node = pool.FindServiceByName("eventsourcing_grpc_c.v1.Node")
    results.check("descriptors: our own Node service", [m.name for m in node.methods]
                  == ["GetLeaderPositions", "Subscribe"])
    request_class = message_class("eventsourcing_grpc_c.v1.LeaderPositionsRequest")
    reply_class = message_class("eventsourcing_grpc_c.v1.LeaderPositionsReply")
    positions = channel.unary_unary("/eventsourcing_grpc_c.v1.Node/GetLeaderPositions",
                                    request_serializer=request_class.SerializeToString,
                                    response_deserializer=reply_class.FromString)
    reply = positions(request_class(), timeout=CALL_TIMEOUT)
    results.check("descriptors: GetLeaderPositions of an application that follows none",
                  reply.application_name == "Orders" and list(reply.leaders) == [], reply)
    request_class = message_class("eventsourcing_grpc_c.v1.SubscribeRequest")
    page_class = message_class("eventsourcing_grpc_c.v1.NotificationsPage")
    subscribe = channel.unary_stream("/eventsourcing_grpc_c.v1.Node/Subscribe",
                                     request_serializer=request_class.SerializeToString,
                                     response_deserializer=page_class.FromString)
    stream = subscribe(request_class(follower_name="Tool", start=1), timeout=CALL_TIMEOUT)
    first = next(stream)
    stream.cancel()
    results.check("descriptors: Subscribe's first page, empty on an empty log",
                  list(first.notifications) == [] and first.up_to == 0, first)


def check_refusals(results, channel, health_address):
    """A malformed request gets an in-band error; the health port has no reflection."""
    info = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    garbage = b"\x0a\xff\xff\xff\xff\x0f"  # a length far beyond the message
    replies = list(info(iter([garbage]), timeout=CALL_TIMEOUT))
    results.check("a malformed request: one reply, an in-band error",
                  len(replies) == 1 and b"malformed request" in replies[0], replies)
    with grpc.insecure_channel(health_address) as health_channel:
        info = health_channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        try:
            list(info(iter([b""]), timeout=CALL_TIMEOUT))
            results.check("the health port serves no reflection", False, "it answered")
        except grpc.RpcError as error:
            results.check("the health port serves no reflection",
                          error.code() == grpc.StatusCode.UNIMPLEMENTED, error)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="the eventsourcing_grpc_server binary")
    parser.add_argument("--grpc-proto", default="/usr/share/grpc-proto",
                        help="Debian's grpc-proto folder")
    parser.add_argument("--protoc", default=shutil.which("protoc") or "protoc")
    return parser.parse_args()


def main():
    arguments = parse_arguments()
    results = support.Results()
    health_address = f"127.0.0.1:{support.free_port()}"
    server = support.ServerProcess(arguments.server, "eventsourcing_grpc.example:Orders",
                                   "Orders", {"GRPC_HEALTH_SERVER_ADDRESS": health_address})
    server.start()
    try:
        with tempfile.TemporaryDirectory() as out_dir, \
                grpc.insecure_channel(server.address) as channel:
            modules = reflection_modules(arguments.grpc_proto, arguments.protoc, out_dir)
            files = {}
            for version, pb in modules.items():
                with results.reported(f"reflection {version}"):
                    files.update(check_version(results, channel, version, pb) or {})
            with results.reported("descriptors"):
                check_descriptors_work(results, channel, files)
            with results.reported("refusals"):
                check_refusals(results, channel, health_address)
    finally:
        results.check("server stops on SIGTERM with exit status 0", server.stop() == 0,
                      "".join(server.output))
    print(f"{results.n_passed} passed, {results.n_failed} failed")
    return 0 if results.n_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
