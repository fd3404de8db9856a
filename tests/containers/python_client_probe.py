#!/usr/bin/python3
"""A Python grpcio client of a deployed system, as eventsourcing-grpc 0.1.2's client calls it.

    python_client_probe.py HOST PORT SSL_DIR NAME

Over mutual TLS (SSL_DIR/NAME.key, SSL_DIR/NAME.crt, SSL_DIR/root.crt; the server's
certificate checked for the name "orders", whatever HOST is), calls Orders'
create_new_order on HOST:PORT, then get_order until the order is paid (30 s at
most). Prints the order's id; exits non-zero with the reason otherwise. The
scenarios point it at a guard (nghttpx) in front of Orders.
"""
import json
import sys
import time

import grpc

CALL = "/eventsourcing_grpc.Application/CallApplicationMethod"


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def method_request(name, args):
    """MethodRequest {method_name = 1; args = 2; kwargs = 3}, as the reference sends it."""
    return (length_delimited(1, name.encode()) + length_delimited(2, json.dumps(args).encode())
            + length_delimited(3, b"{}"))


def reply_data(reply):
    """MethodReply's data (field 1): the only field, so it starts the message when present."""
    if not reply:
        return b""
    if reply[0] != (1 << 3 | 2):
        sys.exit(f"unexpected MethodReply bytes {reply[:16]!r}")
    length, shift, at = 0, 0, 1
    while True:
        byte = reply[at]
        length |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            break
        shift += 7
    return reply[at:at + length]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    host, port, ssl_dir, name = sys.argv[1:]

    def read(suffix):
        with open(f"{ssl_dir}/{suffix}", "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("root.crt"), private_key=read(f"{name}.key"),
        certificate_chain=read(f"{name}.crt"))
    options = [("grpc.ssl_target_name_override", "orders")]
    with grpc.secure_channel(f"{host}:{port}", credentials, options) as channel:
        call = channel.unary_unary(CALL, request_serializer=None, response_deserializer=None)
        order_id = json.loads(reply_data(call(method_request("create_new_order", []), timeout=10)))
        if order_id.get("_type_") != "uuid_hex":
            sys.exit(f"create_new_order answered {order_id!r}")
        deadline = time.monotonic() + 30
        while True:
            order = json.loads(reply_data(call(method_request("get_order", [order_id]),
                                               timeout=10)))
            if order.get("is_paid"):
                break
            if time.monotonic() > deadline:
                sys.exit(f"order {order_id['_data_']} not paid within 30 s: {order!r}")
            time.sleep(0.2)
    print(order_id["_data_"])


if __name__ == "__main__":
    main()
