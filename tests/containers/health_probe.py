#!/usr/bin/python3
"""What the kubelet's gRPC probe does, from outside the Pod, plus two refusals.

    health_probe.py HOST HEALTH_PORT APP_PORT

Checks, in plaintext as the kubelet does: grpc.health.v1.Health/Check on
HEALTH_PORT answers SERVING (the bytes 08 01); the application's methods are
UNIMPLEMENTED on that port; and a plaintext call on APP_PORT (mutual TLS only)
gets nowhere. Exits non-zero with the reason otherwise.
"""
import sys

import grpc

SERVING = b"\x08\x01"
PING = "/eventsourcing_grpc.Application/Ping"


def unary(channel, path):
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    return call(b"", timeout=5)


def expect_refused(channel, code, what):
    """Exits unless a Ping on channel fails with code; what names that Ping in the message."""
    try:
        unary(channel, PING)
    except grpc.RpcError as e:
        if e.code() != code:
            sys.exit(f"{what}: {e.code()}, not {code.name}")
        return
    sys.exit(f"{what} was answered")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    host, health_port, app_port = sys.argv[1:]
    with grpc.insecure_channel(f"{host}:{health_port}") as channel:
        reply = unary(channel, "/grpc.health.v1.Health/Check")
        if reply != SERVING:
            sys.exit(f"health Check on {host}:{health_port} answered {reply!r}, not SERVING")
        expect_refused(channel, grpc.StatusCode.UNIMPLEMENTED,
                       f"a Ping on the health port {host}:{health_port}")
    with grpc.insecure_channel(f"{host}:{app_port}") as channel:
        expect_refused(channel, grpc.StatusCode.UNAVAILABLE,
                       f"a plaintext Ping on {host}:{app_port}")
    print(f"{host}: health SERVING on {health_port} (plaintext, health only); "
          f"plaintext refused on {app_port}")


if __name__ == "__main__":
    main()
