#!/usr/bin/env bash
# The container test (issue 7), on a machine with no container engine running
# and no registry: podman (rootful), podman-compose and `podman kube play`.
#
#   1. lints docker/ and kubernetes/ (yamllint) and validates the manifests
#      against the Kubernetes API schemas (npm package kubernetes-models);
#   2. makes a Debian 12 base image (debootstrap --variant=minbase, podman
#      import), builds docker/Dockerfile and docker/Dockerfile.guard (nghttpx,
#      the servers' guard) on it, and a PostgreSQL stand-in for the official
#      postgres image (tests/containers/postgres);
#   3. in a private network namespace (unshare --net), runs
#      tests/containers/scenarios.sh: the Compose system on SQLite and on
#      PostgreSQL, the Kubernetes manifests one Pod per application and in a
#      single Pod, each taking an order to paid over mutual TLS by service name.
#
# Needs root (rootful podman, debootstrap, unshare). Work files in
# build-containers/. Usage: scripts/test-containers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

. scripts/lib/podman.sh
esg_podman_as_root test-containers.sh "rootful podman, debootstrap, unshare"
. scripts/lib/packages.sh
esg_need podman containers ssl
build="$root/build-containers"
mkdir -p "$build"

echo "== lint and schema validation =="
yamllint -s -c .yamllint.yaml docker kubernetes
validate="$build/validate"
mkdir -p "$validate"
cp tests/containers/validate/package.json tests/containers/validate/package-lock.json \
  tests/containers/validate/validate.mjs "$validate/"
(cd "$validate" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
node "$validate/validate.mjs" kubernetes/*.yaml kubernetes/replicas/*.yaml

echo "== base image: Debian 12 (debootstrap --variant=minbase) == ($SECONDS s)"
esg_make_base_image "$build"
base=$esg_base_image

echo "== images: eventsourcing-grpc:v1 and -guard:v1 (docker/) and a PostgreSQL stand-in == ($SECONDS s)"
build_image() { # TAG CONTEXT [ARGS...]: quiet unless it fails
  local tag="$1" context="$2" log="$build/build-${1//[:\/]/_}.log"
  shift 2
  if ! podman build --isolation=chroot --build-arg BASE_IMAGE="$base" -t "$tag" "$@" "$context" \
    >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "test-containers.sh: cannot build $tag" >&2
    exit 1
  fi
}
build_image eventsourcing-grpc:v1 . -f docker/Dockerfile
build_image eventsourcing-grpc-guard:v1 . -f docker/Dockerfile.guard
build_image localhost/esg-postgres-standin:15 tests/containers/postgres
podman image prune -f >/dev/null
base_size=$(podman image inspect --format '{{.Size}}' "$base")
for image in eventsourcing-grpc:v1 eventsourcing-grpc-guard:v1; do
  size=$(podman image inspect --format '{{.Size}}' "$image")
  echo "$image: $((size / 1000000)) MB ($(((size - base_size) / 1000000)) MB over the base image's $((base_size / 1000000)) MB)"
done

echo "== certificates: make-ssl.sh, and another CA's for the refusals == ($SECONDS s)"
work="$build/work"
rm -rf "$work"
mkdir -p "$work/docker" "$work/kube"
scripts/make-ssl.sh "$work/ssl" >/dev/null
scripts/make-ssl.sh "$work/ssl-other" >/dev/null
# The image runs as uid 10001: give it the keys (README: Docker Compose).
chown -R 10001:10001 "$work"/ssl/{orders,reservations,payments} "$work"/ssl-other/orders
cp docker/docker-compose.yaml docker/docker-compose.postgres.yaml docker/docker-compose.replicas.yaml \
  "$work/docker/"
# The Secrets, as `kubectl create secret` would mount them (see podman_manifests.py).
secrets="$work/secrets"
mkdir -p "$secrets/root-ssl-secret"
cp "$work/ssl/root/root.crt" "$secrets/root-ssl-secret/root.crt"
for name in orders reservations payments; do
  mkdir -p "$secrets/$name-ssl-secret"
  cp "$work/ssl/$name/$name.crt" "$secrets/$name-ssl-secret/tls.crt"
  cp "$work/ssl/$name/$name.key" "$secrets/$name-ssl-secret/tls.key"
  /usr/bin/python3 tests/containers/podman_manifests.py "$secrets" "kubernetes/$name.yaml" \
    >"$work/kube/$name.yaml"
done
mkdir -p "$secrets/postgres-secret"
echo container-test >"$secrets/postgres-secret/password"
for name in orders reservations payments; do
  /usr/bin/python3 tests/containers/podman_manifests.py "$secrets" "kubernetes/replicas/$name.yaml" \
    >"$work/kube/replicas-$name.yaml"
done
chown -R 10001:10001 "$secrets"
/usr/bin/python3 tests/containers/podman_manifests.py "$secrets" kubernetes/single-pod.yaml \
  >"$work/kube/single-pod.yaml"

echo "== the system in containers, in a private network namespace == ($SECONDS s)"
unshare --net bash tests/containers/scenarios.sh "$work"
echo "container test: passed"
