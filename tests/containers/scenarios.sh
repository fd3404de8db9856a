#!/usr/bin/env bash
# The container scenarios, run by scripts/test-containers.sh inside a private
# network namespace (unshare --net): nothing here touches the host's network.
# WORK holds docker/ (the compose files), ssl/, ssl-other/ and kube/ (the
# manifests as podman plays them). Everything started is removed at the end.
#
# Covered: the image runs as uid 10001 on a read-only root file system; each
# deployment takes an order from created to paid, the client calling by service
# name over mutual TLS from another container; a client certificate from
# another CA is refused; Compose keeps SQLite events in its volumes across
# down/up; the PostgreSQL variant writes to the database service; with the
# manifests, the health port answers a plaintext Check with SERVING (what the
# kubelet's gRPC probe does) and nothing else, and the TLS port refuses
# plaintext; every server's /metrics answers on its port (Compose 9464; the
# manifests 9464, 9465, 9466) with its events counted. With two replicas of each
# application on PostgreSQL (Compose's deploy.replicas, and the manifests of
# kubernetes/replicas): one replica of each processes, the others stand by;
# after a SIGKILL of every active one, orders are still taken and paid, and the
# standbys process. Every published port and Service is a guard's (nghttpx, the image
# eventsourcing-grpc-guard:v1) in front of its server, except Compose's replicas, which publish
# nothing: the orders above pass through the guards, and a Python grpcio client (mutual TLS)
# has an order paid through Orders' guard. Not covered (podman 4.3 kube play cannot): Services
# (replaced by a network alias per Deployment: with two replicas, the alias
# names both, as a headless Service), Secret volumes and secretKeyRef (files
# instead), PodDisruptionBudgets, anti-affinity, probes run by a kubelet,
# resource limits enforced, fsGroup, a Prometheus reading the annotations.
set -Eeuo pipefail
work="$1"
here="$(cd "$(dirname "$0")" && pwd)"
ip link set lo up

cleanup() {
  set +e
  trap - ERR
  (cd "$work/docker" &&
    podman-compose -p esg-sqlite -f docker-compose.yaml down -v -t 1 &&
    podman-compose -p esg-postgres -f docker-compose.postgres.yaml down -v -t 1
    podman-compose -p esg-replicas -f docker-compose.replicas.yaml down -v -t 1) >/dev/null 2>&1
  for f in "$work"/kube/*.yaml; do podman kube down "$f" >/dev/null 2>&1; done
  for c in esg-client esg-kube-postgres; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  podman volume rm -f orders-events reservations-events payments-events \
    eventsourcing-grpc-example-events >/dev/null 2>&1
  podman network rm -f esg-kube >/dev/null 2>&1
}
trap cleanup EXIT

# On a failure, the logs of every container say why.
on_error() {
  ((BASH_SUBSHELL == 0)) || return 0
  echo "scenario failed at line $1; container logs:" >&2
  for c in $(podman ps -a --format '{{.Names}}'); do
    echo "--- $c" >&2
    podman logs "$c" 2>&1 | tail -20 >&2
  done
}
trap 'on_error $LINENO' ERR

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# Runs a podman command quietly; its output is shown only if it fails.
quietly() {
  local out
  out=$("$@" 2>&1) || fail "$* failed: $out"
}

# Waits until CONTAINER reaches each TARGET with the client's Ping (mutual TLS).
wait_for_servers() {
  local container="$1"
  shift
  for target in "$@"; do
    local deadline=$((SECONDS + 90))
    until podman exec "$container" eventsourcing_grpc_client "$target" ping >/dev/null 2>&1; do
      ((SECONDS < deadline)) || fail "$target does not answer from $container"
      sleep 1
    done
  done
}

# Creates an order through CONTAINER at TARGET (Orders) and waits until it is
# paid: Reservations and Payments must have processed it. Prints its id and how
# long it took. The wait is long because, right after start, podman's DNS
# server (aardvark-dns 1.4) can drop queries while containers join the network,
# and a lookup that waits out resolv.conf's timeouts holds up gRPC's resolver
# in that process for up to ~25 s: seen here only in the first seconds.
order_to_paid() {
  local container="$1" target="$2" id order started=$SECONDS key
  # One idempotency key for the order: sent again while the client finds no server (replicas
  # being replaced, their names not yet resolving to a live one), it is still one order.
  key="scenario-$RANDOM$RANDOM"
  while ! id=$(podman exec "$container" eventsourcing_grpc_client --key "$key" "$target" \
    call create_new_order) && ((SECONDS - started < 60)); do
    sleep 1
  done
  [[ "$id" == *'"_type_":"uuid_hex"'* ]] || fail "create_new_order answered '$id'"
  while ((SECONDS - started < 60)); do
    order=$(podman exec "$container" eventsourcing_grpc_client "$target" call get_order "[$id]")
    [[ "$order" == *'"is_paid":true'* ]] && break
    sleep 0.2
  done
  [[ "$order" == *'"is_reserved":true'* && "$order" == *'"is_paid":true'* ]] ||
    fail "order $id not paid: $order"
  echo "$id (paid within $((SECONDS - started)) s)"
}

expect_paid() {
  local container="$1" target="$2" id="$3" order
  order=$(podman exec "$container" eventsourcing_grpc_client "$target" call get_order "[$id]")
  [[ "$order" == *'"is_paid":true'* ]] || fail "order $id is not paid any more: $order"
}

# A Python grpcio client with the payments certificate has an order paid through Orders' guard
# at HOST:50051 (from the namespace's side of the container network).
python_client_paid() {
  local id
  id=$(/usr/bin/python3 "$here/python_client_probe.py" "$1" 50051 "$work/ssl/payments" payments) ||
    fail "the Python client got no order paid through $1:50051"
  echo "Python client through the guard at $1:50051: order $id paid"
}

# The container runs as uid 10001 and cannot write its root file system.
expect_locked_down() {
  local container="$1"
  [ "$(podman exec "$container" id -u)" = 10001 ] || fail "$container does not run as uid 10001"
  if podman exec "$container" touch /app/written 2>/dev/null; then
    fail "$container can write its root file system"
  fi
}

ip_of_container() { # CONTAINER NETWORK: its address on that network
  podman inspect "$1" --format "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}"
}

ip_of_pod() { # POD: the address of its infra container on esg-kube
  local infra
  infra=$(podman pod inspect "$1" --format '{{.InfraContainerID}}')
  podman inspect "$infra" --format '{{(index .NetworkSettings.Networks "esg-kube").IPAddress}}'
}

# A container that only calls (client of the replicas scenarios, which kill servers): mutual TLS
# with the payments certificate. NETWORK is the Compose or podman network.
start_client() {
  quietly podman run -d --name esg-client --network "$1" -v "$work/ssl/payments:/app/ssl:ro" \
    -e GRPC_SSL_PRIVATE_KEY_PATH=/app/ssl/payments.key \
    -e GRPC_SSL_CERTIFICATE_PATH=/app/ssl/payments.crt \
    -e GRPC_SSL_ROOT_CERTIFICATE_PATH=/app/ssl/root.crt \
    --entrypoint sleep eventsourcing-grpc:v1 infinity
}

# Whether CONTAINER processes: its last word on the lease is that it holds it.
is_active() {
  podman logs "$1" 2>&1 | grep -E "this replica holds the lease|standing by" | tail -n 1 | grep -q "this replica holds"
}

# How many times CONTAINER took the lease.
times_taken() {
  podman logs "$1" 2>&1 | grep -c "this replica holds the lease" || true
}

# Waits (up to 60 s) until CONTAINER is up as a standby: its last word on the lease.
standing_by() {
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    podman logs "$1" 2>&1 | grep -E "this replica holds the lease|standing by" | tail -n 1 |
      grep -q "standing by" && return 0
    sleep 0.5
  done
  fail "$1 is not standing by"
}

# Of two replicas of an application, the one that processes: exactly one must, within 30 s.
active_of() {
  local deadline=$((SECONDS + 30)) active
  while ((SECONDS < deadline)); do
    active=()
    for c in "$@"; do if is_active "$c"; then active+=("$c"); fi; done
    ((${#active[@]} == 1)) && { echo "${active[0]}"; return 0; }
    sleep 0.5
  done
  fail "not exactly one of $* processes (${#active[@]} do)"
}

# The container of replica N (1 or 2) of APP: Compose's and podman kube play's names.
compose_replica() { echo "esg-replicas_$1_$2"; }
kube_replica() { echo "$1-$2-pod-0-$1"; }

# Two replicas of each application, named by NAMING (one of the two above): one of each
# processes; after a SIGKILL of those, an order is taken and paid through the survivors, and
# each survivor processes.
replicas_survive_kills() {
  local naming="$1" app active first second killed=() standbys=() takes=() i
  paid=$(order_to_paid esg-client dns:///orders:50051)
  echo "order $paid (dns:///orders:50051: both replicas of Orders)"
  for app in orders reservations payments; do
    first=$($naming "$app" 1)
    second=$($naming "$app" 2)
    active=$(active_of "$first" "$second")
    killed+=("$active")
    if [ "$active" = "$first" ]; then standbys+=("$second"); else standbys+=("$first"); fi
    # The standby must be up (one that failed at start waits for its restart policy): else the
    # kill below would take the application's only server.
    standing_by "${standbys[-1]}"
    takes+=("$(times_taken "${standbys[-1]}")")
  done
  echo "processing: ${killed[*]}; SIGKILL to those, the others stand by"
  podman kill -s KILL "${killed[@]}" >/dev/null
  paid=$(order_to_paid esg-client dns:///orders:50051)
  echo "after the kills: order $paid"
  # (a killed replica may be restarted by its policy: the standby took the lease first)
  for i in 0 1 2; do
    (($(times_taken "${standbys[i]}") > takes[i])) || fail "${standbys[i]} did not take over"
  done
  echo "each standby took over: ${standbys[*]}"
}

echo "-- Compose, events in SQLite volumes"
cd "$work/docker"
quietly podman-compose -p esg-sqlite -f docker-compose.yaml up -d
wait_for_servers esg-sqlite_payments-server_1 orders:50051 reservations:50052 payments:50053
paid=$(order_to_paid esg-sqlite_payments-server_1 orders:50051)
id=${paid%% *}
echo "order $paid (client in the payments container, orders:50051: the guard, mutual TLS)"
expect_locked_down esg-sqlite_orders-server_1
expect_locked_down esg-sqlite_orders_1
python_client_paid "$(ip_of_container esg-sqlite_orders_1 esg-sqlite_default)"
for name in Orders Reservations Payments; do
  container="esg-sqlite_${name,,}-server_1"
  /usr/bin/python3 "$here/metrics_probe.py" "$(ip_of_container "$container" esg-sqlite_default)" \
    9464 "$name"
done
# A client whose certificate another CA signed gets nowhere.
if podman run --rm --network esg-sqlite_default -v "$work/ssl-other/orders:/app/ssl:ro" \
  -e GRPC_SSL_PRIVATE_KEY_PATH=/app/ssl/orders.key -e GRPC_SSL_CERTIFICATE_PATH=/app/ssl/orders.crt \
  -e GRPC_SSL_ROOT_CERTIFICATE_PATH=/app/ssl/root.crt \
  eventsourcing-grpc:v1 eventsourcing_grpc_client orders:50051 ping >/dev/null 2>&1; then
  fail "a client certificate from another CA was accepted"
fi
echo "a client certificate from another CA: refused"
quietly podman-compose -p esg-sqlite -f docker-compose.yaml down -t 1
quietly podman-compose -p esg-sqlite -f docker-compose.yaml up -d
wait_for_servers esg-sqlite_payments-server_1 orders:50051 reservations:50052 payments:50053
expect_paid esg-sqlite_payments-server_1 orders:50051 "$id"
# (from this container too: its first lookups of the new guards' names can wait out DNS retries)
wait_for_servers esg-sqlite_reservations-server_1 orders:50051
paid=$(order_to_paid esg-sqlite_reservations-server_1 orders:50051)
echo "after down and up: order $id still paid, order $paid"
quietly podman-compose -p esg-sqlite -f docker-compose.yaml down -v -t 1

echo "-- Compose, events in PostgreSQL ($SECONDS s)"
POSTGRES_IMAGE=localhost/esg-postgres-standin:15 POSTGRES_PASSWORD=container-test \
  quietly podman-compose -p esg-postgres -f docker-compose.postgres.yaml up -d
wait_for_servers esg-postgres_payments-server_1 orders:50051 reservations:50052 payments:50053
paid=$(order_to_paid esg-postgres_payments-server_1 orders:50051)
rows=$(podman exec esg-postgres_postgres_1 psql -U eventsourcing -d eventsourcing -tAc \
  "SELECT (SELECT count(*) FROM orders_events) || ' ' || (SELECT count(*) FROM payments_events)")
[[ "$rows" =~ ^[1-9][0-9]*\ [1-9][0-9]*$ ]] || fail "no events in PostgreSQL: '$rows'"
echo "order $paid; PostgreSQL holds orders_events and payments_events rows: $rows"
quietly podman-compose -p esg-postgres -f docker-compose.postgres.yaml down -v -t 1

echo "-- Compose, two replicas of each application on PostgreSQL ($SECONDS s)"
POSTGRES_IMAGE=localhost/esg-postgres-standin:15 POSTGRES_PASSWORD=container-test \
  quietly podman-compose -p esg-replicas -f docker-compose.replicas.yaml up -d
start_client esg-replicas_default
wait_for_servers esg-client orders:50051 reservations:50052 payments:50053
replicas_survive_kills compose_replica
podman rm -f -t 0 esg-client >/dev/null
quietly podman-compose -p esg-replicas -f docker-compose.replicas.yaml down -v -t 1

echo "-- Kubernetes manifests, one Pod per application, podman kube play ($SECONDS s)"
podman network create esg-kube >/dev/null
for name in orders reservations payments; do
  # podman ignores Services: a network alias per Deployment stands in for each.
  quietly podman kube play -q --network "esg-kube:alias=$name" "$work/kube/$name.yaml"
done
wait_for_servers payments-pod-0-payments orders:50051 reservations:50052 payments:50053
paid=$(order_to_paid payments-pod-0-payments orders:50051)
echo "order $paid"
expect_locked_down orders-pod-0-orders
expect_locked_down orders-pod-0-orders-guard
python_client_paid "$(ip_of_pod orders-pod-0)"
ports=(orders:50051:50061:9464 reservations:50052:50062:9465 payments:50053:50063:9466)
for entry in "${ports[@]}"; do
  IFS=: read -r name app_port health_port metrics_port <<<"$entry"
  /usr/bin/python3 "$here/health_probe.py" "$(ip_of_pod "$name-pod-0")" \
    "$health_port" "$app_port"
  /usr/bin/python3 "$here/metrics_probe.py" "$(ip_of_pod "$name-pod-0")" "$metrics_port" \
    "${name^}"
done
for name in orders reservations payments; do podman kube down "$work/kube/$name.yaml" >/dev/null; done

echo "-- Kubernetes manifests, the single-Pod variant ($SECONDS s)"
quietly podman kube play -q --network esg-kube "$work/kube/single-pod.yaml"
pod=eventsourcing-grpc-example-pod-0
wait_for_servers "$pod-payments" orders:50051 reservations:50052 payments:50053
paid=$(order_to_paid "$pod-payments" orders:50051)
echo "order $paid"
expect_locked_down "$pod-orders"
expect_locked_down "$pod-orders-guard"
python_client_paid "$(ip_of_pod "$pod")"
for entry in "${ports[@]}"; do
  IFS=: read -r name app_port health_port metrics_port <<<"$entry"
  /usr/bin/python3 "$here/health_probe.py" "$(ip_of_pod "$pod")" \
    "$health_port" "$app_port"
  /usr/bin/python3 "$here/metrics_probe.py" "$(ip_of_pod "$pod")" "$metrics_port" "${name^}"
done
podman kube down "$work/kube/single-pod.yaml" >/dev/null

echo "-- Kubernetes manifests, two replicas of each application on PostgreSQL ($SECONDS s)"
quietly podman run -d --name esg-kube-postgres --network esg-kube:alias=postgres \
  -e POSTGRES_DB=eventsourcing -e POSTGRES_USER=eventsourcing \
  -e POSTGRES_PASSWORD="$(cat "$work/secrets/postgres-secret/password")" \
  localhost/esg-postgres-standin:15
for name in orders reservations payments; do
  # Both replicas under one alias: the name resolves to both, as a headless Service's does.
  quietly podman kube play -q --network "esg-kube:alias=$name" "$work/kube/replicas-$name.yaml"
done
start_client esg-kube
wait_for_servers esg-client orders:50051 reservations:50052 payments:50053
replicas_survive_kills kube_replica
for name in orders reservations payments; do
  podman kube down "$work/kube/replicas-$name.yaml" >/dev/null
done
podman rm -f -t 0 esg-client esg-kube-postgres >/dev/null
echo "-- scenarios done in $SECONDS s"
