# The Debian 12 packages the scripts install, in named sets, and the commands each set must then
# put on PATH. Sourced by every script that installs something; scripts/check-packages.sh
# checks these lists against the commands the scripts call, so that nothing works only because a
# machine happened to have it. Packages of Priority "required" (what debootstrap --variant=minbase
# installs: bash, coreutils, grep, sed, mawk, tar, util-linux, dpkg, apt, ...) are taken as given.
#
#   esg_need SET...      installs what is missing of the sets (one line says what), then checks
#                        that their commands are on PATH, naming any that are missing (exit 1)
#   esg_packages SET...  prints the sets' entries, one a line
#
# An entry A|B means A, unless B is installed already and stands in for it.

# The C tool chain and the libraries the library and its programs link: all that building and
# running the example needs (protoc and grpc-proto: the descriptors reflection serves;
# libmicrohttpd: the HTTP of the /metrics endpoint).
esg_packages_build=(gcc libc6-dev make cmake pkg-config protobuf-c-compiler protobuf-compiler
  grpc-proto libjansson-dev libyajl-dev libsqlite3-dev libpq-dev uuid-dev libssl-dev zlib1g-dev libgrpc-dev
  libprotobuf-c-dev libmicrohttpd-dev)
esg_commands_build=(gcc make cmake pkg-config protoc-c protoc)
esg_about_build="the C tool chain and the libraries it links"

# The test suite (with build): cmocka, a PostgreSQL server of the tests' own, Debian's Python with
# gRPC for the interoperability tests (protoc generates their Python modules), and with
# pycryptodome and psycopg2 for the Python reference's AESCipher and PostgreSQL, openssl for
# certificates, valgrind for the soak, pgrep and nm for the console and install tests,
# Prometheus (the server and promtool) to scrape a running system, ip and nft for the chaos
# test's lossy, partitioned network namespace, and nghttp2's h2load and nghttpx for the HTTP/2
# attacks (nghttpx as deploy/nghttpx/nghttpx.conf guards a server).
esg_packages_tests=(libcmocka-dev postgresql python3 python3-grpcio python3-protobuf
  protobuf-compiler python3-pycryptodome python3-psycopg2 openssl valgrind procps binutils
  prometheus iproute2 nftables nghttp2-client nghttp2-proxy)
esg_commands_tests=(ctest python3 protoc openssl valgrind pgrep nm prometheus promtool ip nft
  h2load nghttpx)
esg_about_tests="cmocka, a PostgreSQL server, Python's gRPC and protoc, pycryptodome, psycopg2, openssl, valgrind, Prometheus, nftables, nghttp2's h2load and nghttpx"

# The fuzz targets: clang with libFuzzer and the sanitizer runtimes.
esg_packages_fuzz=(clang libclang-rt-14-dev)
esg_commands_fuzz=(clang)
esg_about_fuzz="clang with libFuzzer"

# Formatting and static analysis.
esg_packages_lint=(clang-format cppcheck git protobuf-c-compiler grpc-proto)
esg_commands_lint=(clang-format cppcheck git protoc-c)
esg_about_lint="clang-format, cppcheck"

# The benchmarks: a PostgreSQL server, gnuplot for the plot, valgrind's callgrind for instruction
# counts, perf to say whether the machine has counters, git for the commit measured.
esg_packages_bench=(postgresql gnuplot-nox valgrind linux-perf git)
esg_commands_bench=(gnuplot valgrind perf git)
esg_about_bench="PostgreSQL, gnuplot, valgrind, perf"

# The Debian package: CPack's DEB generator finds the run-time dependencies with file and
# dpkg-shlibdeps.
esg_packages_deb=(dpkg-dev file)
esg_commands_deb=(cpack dpkg-shlibdeps dpkg-deb file)
esg_about_deb="dpkg-dev, file"

# Python, for small helpers (a free port, say).
esg_packages_python=(python3)
esg_commands_python=(python3)
esg_about_python="Python"

# git, to list the files of the tree.
esg_packages_git=(git)
esg_commands_git=(git)
esg_about_git="git"

# Certificates (scripts/make-ssl.sh).
esg_packages_ssl=(openssl)
esg_commands_ssl=(openssl)
esg_about_ssl="openssl"

# A PostgreSQL server (scripts/postgres-test-server.sh finds initdb, pg_ctl and postgres under
# /usr/lib/postgresql) and its client, psql; pgrep finds the server's processes to pause them.
esg_packages_postgres=(postgresql postgresql-client procps)
esg_commands_postgres=(psql pgrep)
esg_about_postgres="the PostgreSQL server"

# A PostgreSQL cluster with failover for the tests (scripts/patroni-test-cluster.sh): Patroni,
# etcd for its consensus, the PostgreSQL server.
esg_packages_patroni=(patroni etcd-server postgresql postgresql-client procps)
esg_commands_patroni=(patroni patronictl etcd psql pgrep)
esg_about_patroni="Patroni, etcd and the PostgreSQL server"

# Podman without a daemon, rootful, and a base image without a registry. netavark needs iptables
# and kube play needs catatonit: podman only recommends them, so --no-install-recommends leaves
# them out, and podman then fails at the first container start.
esg_packages_podman=(podman runc netavark aardvark-dns iptables catatonit debootstrap
  debian-archive-keyring)
esg_commands_podman=(podman runc iptables catatonit debootstrap)
esg_about_podman="podman, runc, netavark, iptables, catatonit, debootstrap"

# The container test (with podman): Compose, the YAML lint, Node.js for the Kubernetes schema
# validation, Python's gRPC for the health probe, openssl, ip for the private network.
# NodeSource's nodejs package, which some machines have, holds npm and conflicts with Debian's.
esg_packages_containers=(podman-compose yamllint nodejs "npm|nodejs" python3 python3-grpcio
  openssl iproute2)
esg_commands_containers=(podman-compose yamllint node npm python3 openssl ip)
esg_about_containers="podman-compose, yamllint, Node.js, Python's gRPC"

# scripts/check-packages.sh: shell syntax trees (shfmt) read by Python, files listed by git.
esg_packages_check=(shfmt python3 git)
esg_commands_check=(shfmt python3 git)
esg_about_check="shfmt"

# What the packages above recommend and the scripts do without, and why: with
# --no-install-recommends nothing recommended comes unless a set names it, so each is decided
# here (scripts/check-packages.sh fails on a recommendation that is neither installed nor here).
esg_recommends_left_out=(
  # podman: rootless use and builds of its own (we run rootful and build with podman build);
  # catatonit and iptables, named above, do what tini, dumb-init and nftables would.
  buildah dbus-user-session fuse-overlayfs slirp4netns uidmap tini dumb-init criu nftables
  # debootstrap: foreign architectures, and gnupg (gpgv, which is required, checks the keys).
  arch-test gnupg
  # protobuf-compiler: the C++ headers and libraries (protoc only writes Python modules here).
  libprotobuf-dev
  # prometheus: the machine's own metrics (the tests scrape our servers, not the host).
  prometheus-node-exporter
  # patroni: iproute2, for Debian's pg_createconfig_patroni (the test writes Patroni's settings).
  iproute2
  # Documentation, debuggers and interactive helpers.
  cmocka-doc libtasn1-doc valgrind-dbg gdb groff less patch psmisc libatm1
  # git over the network (ca-certificates, ssh), npm's own tests and git dependencies (none
  # here), gnuplot's fonts (its built-in one will do).
  ca-certificates openssh-client node-tap git fonts-liberation
  # dpkg-dev: CPack builds the package itself and nothing is signed.
  build-essential fakeroot libalgorithm-merge-perl sq sqop pgpainless-cli gpgv
)

esg_packages() {
  local set
  for set in "$@"; do
    local -n list="esg_packages_$set"
    printf '%s\n' "${list[@]}"
  done
}

esg_need() {
  local who set package missing=() about=() absent=()
  who="$(basename "$0")"
  for set in "$@"; do
    if ! declare -p "esg_packages_$set" >/dev/null 2>&1; then
      echo "$who: unknown package set '$set' (scripts/lib/packages.sh)" >&2
      exit 2
    fi
    local -n packages="esg_packages_$set" about_set="esg_about_$set"
    about+=("$about_set")
    for package in "${packages[@]}"; do
      local alternative present=0
      for alternative in ${package//|/ }; do
        ! dpkg-query -W -f='${Status}' "$alternative" 2>/dev/null |
          grep -q "install ok installed" || present=1
      done
      [ "$present" -eq 1 ] || missing+=("${package%%|*}")
    done
  done
  if [ ${#missing[@]} -gt 0 ]; then
    readarray -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    local joined
    joined=$(printf '%s; ' "${about[@]}")
    echo "$who: installing ${#missing[@]} Debian packages (${joined%; }): ${missing[*]}"
    local sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || {
        echo "$who: run as root, or install sudo, to install: ${missing[*]}" >&2
        exit 1
      }
      sudo_cmd="sudo"
    fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  for set in "$@"; do
    local -n commands="esg_commands_$set"
    local command
    for command in "${commands[@]}"; do
      command -v "$command" >/dev/null || absent+=("$command")
    done
  done
  if [ ${#absent[@]} -gt 0 ]; then
    echo "$who: commands not found on PATH: ${absent[*]}" >&2
    exit 1
  fi
}

# Every set, a line each: NAME, then its packages, then its commands (tab-separated fields,
# space-separated lists). For scripts/check-packages.sh.
esg_sets() {
  local variable set
  for variable in $(compgen -A variable esg_packages_); do
    set="${variable#esg_packages_}"
    local -n packages="esg_packages_$set" commands="esg_commands_$set"
    printf '%s\t%s\t%s\n' "$set" "${packages[*]}" "${commands[*]}"
  done
}
