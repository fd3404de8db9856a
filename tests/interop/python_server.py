"""A Python grpcio server of eventsourcing_grpc.Application, answering as
eventsourcing-grpc 0.1.2's server does, for an in-memory Orders application
written here in plain Python (no eventsourcing package needed).

The JSON is eventsourcing 9.2's (uuid_hex, datetime_iso with +00:00), the
stored event state is what tests/vectors/stored_events.json shows, and
failures come back as the reference's do: UNKNOWN with "Exception calling
application: <message>", INTERNAL for undecodable protobuf, and a limit above
10 refused as above the notification log's section size.

Usage: /usr/bin/python3 python_server.py ADDRESS [--as-system] [--local]
           [--proto DIR] [--protoc PATH] [--gen DIR] [--exit-on-stdin-eof]

ADDRESS is host:port; port 0 takes a free one. When ready it prints
"python_server: Orders listening on HOST:PORT" (the real port). It stops on
SIGTERM or SIGINT. --as-system reserves and pays every new order at once, as
the reference's three applications run in one process would (the events of
Reservations and Payments are not kept). --local serves with gRPC local
credentials instead of an insecure port (the reference serves insecure).
"""

import argparse
import datetime
import signal
import sys
import tempfile
import threading
import uuid
from concurrent import futures

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import interop_support as support  # noqa: E402

grpc = support.require_grpc()

TOPIC_PREFIX = "eventsourcing_grpc.example:"
ORDER_TOPIC = TOPIC_PREFIX + "Order"
SECTION_SIZE = 10  # the reference's notification log refuses larger limits


class AggregateNotFound(Exception):
    """As eventsourcing's: its message is the (id, version) tuple."""


class StoredEvent:
    """A notification: position, originator, version, topic and state JSON."""

    def __init__(self, notification_id, originator_id, originator_version, topic, state):
        self.id = notification_id
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.topic = topic
        self.state = state


class Orders:
    """Orders of the reference's example, event-sourced in memory."""

    name = "Orders"

    def __init__(self, as_system=False):
        self.as_system = as_system
        self.lock = threading.Lock()
        self.stored_events = []

    # ---- The methods clients call by name ----

    def create_new_order(self):
        order_id = uuid.uuid4()
        events = [(order_id, 1, "Order.Created", {"originator_topic": ORDER_TOPIC})]
        if self.as_system:
            # What Reservations and Payments would do (ids as stored_events.json says).
            reservation_id = uuid.uuid5(uuid.NAMESPACE_URL, f"/reservations/{order_id}/")
            payment_id = uuid.uuid5(uuid.NAMESPACE_URL, f"/payments/{order_id}/")
            events.append((order_id, 2, "Order.Reserved", {"reservation_id": reservation_id}))
            events.append((order_id, 3, "Order.Paid", {"payment_id": payment_id}))
        for originator_id, version, name, attributes in events:
            self._record(originator_id, version, TOPIC_PREFIX + name, attributes)
        return order_id

    def get_order(self, order_id):
        order = self._get_order(order_id)
        return {
            "id": order["id"],
            "is_reserved": order["is_reserved"],
            "is_paid": order["is_paid"],
            "reservation_id": order["reservation_id"],
            "payment_id": order["payment_id"],
            "created_on": order["created_on"],
            "modified_on": order["modified_on"],
        }

    def is_order_reserved(self, order_id):
        return self._get_order(order_id)["is_reserved"]

    def is_order_paid(self, order_id):
        return self._get_order(order_id)["is_paid"]

    # ---- Events ----

    def _record(self, originator_id, version, topic, attributes):
        # The timestamp comes first, as eventsourcing 9.2's mapper writes it.
        state = {"timestamp": datetime.datetime.now(datetime.timezone.utc)}
        state.update(attributes)
        with self.lock:
            notification_id = len(self.stored_events) + 1
            self.stored_events.append(StoredEvent(
                notification_id, originator_id, version, topic, support.encode_json(state)))

    def _get_order(self, order_id):
        """The order rebuilt from its events; AggregateNotFound when it has none."""
        with self.lock:
            events = [e for e in self.stored_events if e.originator_id == order_id]
        if not events:
            raise AggregateNotFound(order_id, None)
        order = {}
        for event in events:
            state = support.decode_json(event.state)
            if event.topic.endswith(".Created"):
                order.update(id=event.originator_id, is_reserved=False, is_paid=False,
                             reservation_id=None, payment_id=None,
                             created_on=state["timestamp"])
            elif event.topic.endswith(".Reserved"):
                order.update(is_reserved=True, reservation_id=state["reservation_id"])
            elif event.topic.endswith(".Paid"):
                order.update(is_paid=True, payment_id=state["payment_id"])
            order["modified_on"] = state["timestamp"]
        return order

    def select_notifications(self, start, limit, stop=None, topics=()):
        """As the reference's in-memory log: limit 0 or less means no limit."""
        if limit > SECTION_SIZE:
            raise ValueError(
                f"Requested limit {limit} greater than section size {SECTION_SIZE}")
        with self.lock:
            selected = [
                e for e in self.stored_events
                if e.id >= start and (stop is None or e.id <= stop)
                and (not topics or e.topic in topics)
            ]
        return selected[:limit] if limit > 0 else selected


class ApplicationService:
    """The four methods of eventsourcing_grpc.Application, as the reference's."""

    def __init__(self, application, pb):
        self.application = application
        self.pb = pb

    def ping(self, request, context):
        return self.pb.Empty()

    def call_application_method(self, request, context):
        args = support.decode_json(request.args)
        kwargs = support.decode_json(request.kwargs)
        method = getattr(self.application, request.method_name)
        return self.pb.MethodReply(data=support.encode_json(method(*args, **kwargs)))

    def prompt(self, request, context):
        return self.pb.Empty()  # Orders run alone follows no one

    def get_notifications(self, request, context):
        notifications = self.application.select_notifications(
            start=int(request.start),
            limit=int(request.limit),
            stop=int(request.stop) if request.stop else None,
            topics=list(request.topics),
        )
        return self.pb.NotificationsReply(notifications=[
            self.pb.Notification(
                id=str(n.id),
                originator_id=n.originator_id.hex,
                originator_version=str(n.originator_version),
                topic=n.topic,
                state=n.state,
            )
            for n in notifications
        ])

    def handler(self):
        pb = self.pb

        def unary(function, request_type, reply_type):
            return grpc.unary_unary_rpc_method_handler(
                function,
                request_deserializer=request_type.FromString,
                response_serializer=reply_type.SerializeToString,
            )

        return grpc.method_handlers_generic_handler("eventsourcing_grpc.Application", {
            "Ping": unary(self.ping, pb.Empty, pb.Empty),
            "CallApplicationMethod": unary(
                self.call_application_method, pb.MethodRequest, pb.MethodReply),
            "Prompt": unary(self.prompt, pb.PromptRequest, pb.Empty),
            "GetNotifications": unary(
                self.get_notifications, pb.NotificationsRequest, pb.NotificationsReply),
        })


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="host:port to listen on (port 0: a free one)")
    parser.add_argument("--as-system", action="store_true",
                        help="reserve and pay each new order at once")
    parser.add_argument("--local", action="store_true",
                        help="gRPC local credentials instead of an insecure port")
    parser.add_argument("--proto", default=support.DEFAULT_PROTO_DIR)
    parser.add_argument("--protoc", default=None)
    parser.add_argument("--gen", default=None,
                        help="folder for the generated modules (default: a temporary one)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (the parent test died)")
    return parser.parse_args()


def serve(arguments, gen_dir):
    pb, _ = support.generate_protos(gen_dir, arguments.proto, arguments.protoc)
    service = ApplicationService(Orders(as_system=arguments.as_system), pb)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((service.handler(),))
    if arguments.local:
        credentials = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        port = server.add_secure_port(arguments.address, credentials)
    else:
        port = server.add_insecure_port(arguments.address)
    if port == 0:
        print(f"python_server: cannot listen on {arguments.address}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    if arguments.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    server.start()
    host = arguments.address.rsplit(":", 1)[0]
    print(f"python_server: Orders listening on {host}:{port}", flush=True)
    while not stop.wait(0.2):
        pass
    server.stop(grace=1).wait()
    print("python_server: stopped", flush=True)
    return 0


def main():
    arguments = parse_arguments()
    if arguments.gen:
        return serve(arguments, arguments.gen)
    with tempfile.TemporaryDirectory(prefix="esg-interop-server-") as gen_dir:
        return serve(arguments, gen_dir)


if __name__ == "__main__":
    sys.exit(main())
