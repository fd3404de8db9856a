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


def unary(channel, path):
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    return call(b"", timeout=5)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    host, health_port, app_port = sys.argv[1:]
    with grpc.insecure_channel(f"{host}:{health_port}") as channel:
        reply = unary(channel, "/grpc.health.v1.Health/Check")
        if reply != SERVING:
            sys.exit(f"health Check on {host}:{health_port} answered {reply!r}, not SERVING")
        try:
            unary(channel, "/eventsourcing_grpc.Application/Ping")
            sys.exit(f"Ping answered on the health port {host}:{health_port}")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                sys.exit(f"Ping on the health port: {e.code()}, not UNIMPLEMENTED")
    with grpc.insecure_channel(f"{host}:{app_port}") as channel:
        try:
            unary(channel, "/eventsourcing_grpc.Application/Ping")
            sys.exit(f"a plaintext Ping was answered on {host}:{app_port}")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                sys.exit(f"a plaintext Ping on {host}:{app_port}: {e.code()}, not UNAVAILABLE")
    print(f"{host}: health SERVING on {health_port} (plaintext, health only); "
          f"plaintext refused on {app_port}")


if __name__ == "__main__":
    main()
