#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs (only those missing) and
# builds it. Usage: scripts/setup.sh [--sanitize=address,undefined|thread] [--build-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
build_dir="build"
for arg in "$@"; do
  case "$arg" in
    --sanitize=*) sanitize="${arg#--sanitize=}" ;;
    --build-dir=*) build_dir="${arg#--build-dir=}" ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake pkg-config   # the tool chain
  libjansson-dev                     # JSON parsing
  libsqlite3-dev                     # the SQLite backend
  libpq-dev postgresql               # the PostgreSQL backend, and a server for its tests
  uuid-dev                           # UUID generation (util-linux libuuid)
  libcmocka-dev                      # the C test framework
  libgrpc-dev                        # gRPC C core
  libprotobuf-c-dev protobuf-c-compiler   # protobuf-c and protoc-c
  protobuf-compiler python3-grpcio python3-protobuf   # the Python interoperability tests
  openssl                            # scripts/make-ssl.sh
  gnuplot-nox                        # bench/run.sh: the latency plot
  clang libclang-rt-14-dev           # fuzz/run.sh: libFuzzer and the sanitizer runtimes
  clang-format cppcheck              # scripts/lint.sh: formatting and static analysis
  valgrind                           # tests/chaos: the soak's servers under memcheck
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_type=RelWithDebInfo
[ -z "$sanitize" ] || build_type=Debug
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DESG_SANITIZE="$sanitize" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
