#!/usr/bin/python3
"""What Prometheus does with a server in a container: scrape its /metrics.

    metrics_probe.py HOST PORT APPLICATION

Checks that http://HOST:PORT/metrics answers the text format, with the gRPC families and the
application's own, and that the application has recorded events (an order went through).
Exits non-zero with the reason otherwise.
"""
import sys
import urllib.request


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    host, port, app = sys.argv[1:]
    url = f"http://{host}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        content_type = reply.headers.get("Content-Type", "")
        text = reply.read().decode()
    if not content_type.startswith("text/plain; version=0.0.4"):
        sys.exit(f"{url}: Content-Type {content_type!r}")
    if "grpc_server_handled_total{" not in text:
        sys.exit(f"{url}: no grpc_server_handled_total")
    prefix = f'eventsourcing_events_recorded_total{{application="{app}"}} '
    recorded = [line[len(prefix):] for line in text.splitlines() if line.startswith(prefix)]
    if not recorded or int(recorded[0]) <= 0:
        sys.exit(f"{url}: {app} has recorded no events ({recorded})")
    print(f"{host}:{port}: metrics of {app}, {recorded[0]} events recorded")


if __name__ == "__main__":
    main()
