"""The metrics, scraped by Debian's real Prometheus from a running system.

Runs the example system with eventsourcing_grpc_runner on SQLite, each server serving
/metrics on a port of its own, and checks:
  - each endpoint answers the text format, which `promtool check metrics` finds clean, and
    refuses other paths (404) and methods (405);
  - Prometheus scrapes every server (`up` is 1 for each);
  - a follower's lag shows while it cannot write (its database held locked by this test during
    a burst of orders) and returns to 0 after, its position then equal to its leader's highest
    notification id;
  - every query of the Grafana dashboard names only metrics the servers export, and runs.

usage: test_prometheus.py RUNNER_PROGRAM CLIENT_PROGRAM DASHBOARD_JSON
Needs prometheus and promtool (Debian's prometheus package) and Python's standard library.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from interop_support import Results, free_port  # noqa: E402

APPS = ("Orders", "Reservations", "Payments")
SCRAPE_INTERVAL = "500ms"
# How long a condition may take to hold before the check fails.
WAIT_SECONDS = 30.0


def http_get(url, method="GET"):
    """(status, content type, body) of a request; HTTP errors are answers too."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def exported_names(text):
    """The sample names in a scrape (a histogram's _bucket, _sum and _count included)."""
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


# PromQL words that are not metric names: keywords, aggregations' clauses, functions (followed
# by "(") are told apart by the parser below.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                   "or", "unless", "offset"}


def metric_names_in(expr):
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside {} or the parentheses of by/without), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    text = re.sub(r"\{[^}]*\}", "", text)                       # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                      # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end():].lstrip()
        if word in PROMQL_KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


class Prometheus:
    """Debian's prometheus, scraping the given targets, on a free port."""

    def __init__(self, work_dir, targets):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(work_dir, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as out:
            out.write("global:\n"
                      f"  scrape_interval: {SCRAPE_INTERVAL}\n"
                      f"  scrape_timeout: 400ms\n"
                      "scrape_configs:\n"
                      "  - job_name: eventsourcing_grpc\n"
                      "    static_configs:\n"
                      f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
        self.log = open(os.path.join(work_dir, "prometheus.log"), "w", encoding="utf-8")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(work_dir, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if http_get(self.url + "/-/ready")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def query(self, expr):
        """The result vector of an instant query: [(labels, value)]; raises on an error."""
        status, _, body = http_get(self.url + "/api/v1/query?" +
                                   urllib.parse.urlencode({"query": expr}))
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise RuntimeError(f"query {expr!r}: {status} {body[:300]}")
        return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]

    def wait_for(self, expr, condition):
        """Polls expr until condition(result) holds; the last result and whether it held."""
        deadline = time.monotonic() + WAIT_SECONDS
        result = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if condition(result):
                return result, True
            time.sleep(0.25)
        return result, False

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def create_orders(client, address, n):
    for _ in range(n):
        subprocess.run([client, address, "call", "create_new_order"], check=True,
                       stdout=subprocess.DEVNULL, timeout=30)


def check_endpoints(results, metrics_urls):
    """The text format, clean by promtool; other paths and methods refused. The names seen."""
    names = set()
    for app, url in metrics_urls.items():
        status, content_type, text = http_get(url + "/metrics")
        results.check(f"{app}: /metrics answers 200 in the text format 0.0.4",
                      status == 200 and content_type.startswith("text/plain; version=0.0.4"),
                      f"{status} {content_type}")
        check = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=30)
        results.check(f"{app}: promtool check metrics finds nothing",
                      check.returncode == 0 and check.stdout.strip() == ""
                      and check.stderr.strip() == "",
                      check.stdout + check.stderr)
        names |= exported_names(text)
        results.check(f"{app}: a path other than /metrics is 404",
                      http_get(url + "/other")[0] == 404)
        results.check(f"{app}: POST is 405", http_get(url + "/metrics", method="POST")[0] == 405)
    for family in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                   "process_open_fds", "process_start_time_seconds",
                   "grpc_server_started_total", "grpc_server_handled_total",
                   "grpc_server_handling_seconds_bucket", "eventsourcing_notification_id_max",
                   "eventsourcing_events_recorded_total",
                   "eventsourcing_commit_duration_seconds_bucket",
                   "eventsourcing_follower_position", "eventsourcing_follower_lag_notifications",
                   "eventsourcing_follower_lag_seconds",
                   "eventsourcing_follower_prompts_received_total",
                   "eventsourcing_leader_prompts_sent_total", "eventsourcing_follower_pulls_total",
                   "eventsourcing_follower_pull_errors_total",
                   "eventsourcing_server_unread_reply_bytes",
                   "eventsourcing_server_unread_replies_cancelled_total",
                   "eventsourcing_recorder_connections", "eventsourcing_sqlite_memory_bytes",
                   "eventsourcing_sqlite_memory_highwater_bytes"):
        results.check(f"{family} is exported", family in names)
    # glibc's malloc figures; a sanitizer build, whose allocator is not glibc's, leaves them out.
    sanitized = os.environ.get("ESG_TEST_SANITIZED") == "1"
    for family in ("eventsourcing_malloc_in_use_bytes", "eventsourcing_malloc_free_bytes"):
        results.check(f"{family} is {'left out (sanitizer build)' if sanitized else 'exported'}",
                      (family in names) != sanitized)
    return names


def check_lag(results, prometheus, client, orders_address, reservations_db):
    """A burst of orders while Reservations cannot write: its lag shows, then returns to 0."""
    lag = 'eventsourcing_follower_lag_notifications{application="Reservations",leader="Orders"}'
    lag_seconds = 'eventsourcing_follower_lag_seconds{application="Reservations",leader="Orders"}'
    # Held like another writer would hold it: Reservations' commits wait (its lock timeout is
    # longer than this), and meanwhile Orders' Prompts say how far its log has grown.
    lock = sqlite3.connect(reservations_db, timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        create_orders(client, orders_address, 10)
        result, is_behind = prometheus.wait_for(lag, lambda r: r and r[0][1] > 0)
        results.check("Reservations' lag behind Orders shows while it cannot write", is_behind,
                      result)
        result, is_aging = prometheus.wait_for(lag_seconds, lambda r: r and r[0][1] > 0)
        results.check("Reservations' lag in seconds grows while it cannot write", is_aging,
                      result)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    for expr in ("eventsourcing_follower_lag_notifications",
                 "eventsourcing_follower_lag_seconds"):
        result, is_zero = prometheus.wait_for(
            expr, lambda r: len(r) == 4 and all(value == 0 for _, value in r))
        results.check(f"every follower's {expr} returns to 0 after the burst", is_zero, result)
    # Caught up: each follower's position is its leader's highest notification id.
    join = ("eventsourcing_follower_position - on (leader) group_left "
            "label_replace(eventsourcing_notification_id_max, \"leader\", \"$1\", "
            "\"application\", \"(.*)\")")
    result, is_equal = prometheus.wait_for(
        join, lambda r: len(r) == 4 and all(value == 0 for _, value in r))
    results.check("every follower's position equals its leader's highest notification id",
                  is_equal, result)
    paid, _ = prometheus.wait_for(
        'eventsourcing_notification_id_max{application="Orders"}', lambda r: r and r[0][1] >= 33)
    results.check("Orders recorded 11 orders created, reserved and paid (33 events)",
                  paid and paid[0][1] == 33, paid)


def check_dashboard(results, prometheus, dashboard_path, names):
    with open(dashboard_path, encoding="utf-8") as source:
        dashboard = json.load(source)
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [variable["definition"] for variable in dashboard["templating"]["list"]
              if "definition" in variable]
    results.check("the dashboard has queries", len(exprs) >= 10, len(exprs))
    for expr in exprs:
        named = metric_names_in(re.sub(r"label_values\(([^,]+),.*\)", r"\1", expr))
        unknown = sorted(named - names)
        results.check(f"dashboard query names only exported metrics: {expr[:70]}",
                      named and not unknown, f"not exported: {unknown}; named: {named}")
        if expr.startswith("label_values("):
            continue
        runnable = (expr.replace("$__rate_interval", "1m").replace("$application", ".*")
                    .replace("$job", ".*"))
        with results.reported(f"dashboard query runs: {expr[:70]}"):
            prometheus.query(runnable)
            results.check(f"dashboard query runs: {expr[:70]}", True)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    runner, client, dashboard = sys.argv[1:]
    for program in ("prometheus", "promtool"):
        if shutil.which(program) is None:
            print(f"FAIL: {program} is not on PATH (Debian's prometheus package; "
                  "scripts/setup.sh --tests installs it)")
            return 1
    results = Results()
    work_dir = tempfile.mkdtemp(prefix="esg-metrics-")
    env = {key: value for key, value in os.environ.items()
           if not key.endswith(("_ADDRESS", "PERSISTENCE_MODULE", "SQLITE_DBNAME"))}
    env.update({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "GRPC_DNS_RESOLVER": "native",
                "RESERVATIONS_SQLITE_LOCK_TIMEOUT": "60"})
    grpc_addresses, metrics_urls = {}, {}
    for app in APPS:
        key = app.upper()
        grpc_addresses[app] = f"localhost:{free_port()}"
        metrics_port = free_port()
        metrics_urls[app] = f"http://127.0.0.1:{metrics_port}"
        env[f"{key}_GRPC_SERVER_ADDRESS"] = grpc_addresses[app]
        env[f"{key}_METRICS_SERVER_ADDRESS"] = f"127.0.0.1:{metrics_port}"
        env[f"{key}_SQLITE_DBNAME"] = os.path.join(work_dir, f"{app.lower()}.db")
    runner_log = open(os.path.join(work_dir, "runner.log"), "w", encoding="utf-8")
    system = subprocess.Popen([runner, "eventsourcing_grpc.example:system"], env=env,
                              stdout=runner_log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    prometheus = None
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and system.poll() is None:
            try:
                if all(http_get(url + "/metrics")[0] == 200 for url in metrics_urls.values()):
                    break
            except OSError:
                time.sleep(0.2)
        create_orders(client, grpc_addresses["Orders"], 1)  # every family has its samples
        names = check_endpoints(results, metrics_urls)
        prometheus = Prometheus(work_dir, [url[len("http://"):] for url in metrics_urls.values()])
        results.check("Prometheus starts", prometheus.wait_ready())
        result, is_up = prometheus.wait_for(
            "up", lambda r: len(r) == 3 and all(value == 1 for _, value in r))
        results.check("up is 1 for each of the three servers", is_up, result)
        check_lag(results, prometheus, client, grpc_addresses["Orders"],
                  env["RESERVATIONS_SQLITE_DBNAME"])
        check_dashboard(results, prometheus, dashboard, names)
    except Exception as error:  # noqa: BLE001 (reported as a failure with what was seen)
        results.check("the test ran to its end", False, f"{type(error).__name__}: {error}")
    finally:
        if prometheus is not None:
            prometheus.stop()
        system.send_signal(signal.SIGTERM)
        try:
            status = system.wait(timeout=20)
        except subprocess.TimeoutExpired:
            system.kill()
            status = system.wait()
        runner_log.close()
        results.check("the runner stops cleanly on SIGTERM", status == 0, status)
    if results.n_failed:
        for name in ("runner.log", "prometheus.log"):
            path = os.path.join(work_dir, name)
            if os.path.exists(path):
                print(f"---- {name}")
                with open(path, encoding="utf-8", errors="replace") as log:
                    print(log.read()[-4000:])
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"{results.n_passed} passed, {results.n_failed} failed")
    return 1 if results.n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
