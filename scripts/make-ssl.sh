#!/usr/bin/env bash
# Makes a test PKI for mutual TLS between servers (the example's, or any system's), laid out as
# the compose file and the Kubernetes secrets expect: DIR/root/root.{key,crt} and
# DIR/<name>/<name>.{key,crt} plus DIR/<name>/root.crt. Test use only.
#
# Usage: scripts/make-ssl.sh [DIR] [DAYS] [NAME...]  the root and a leaf per NAME (a DNS
#                                                  label, also the certificate's name):
#                                                  orders, reservations, payments and
#                                                  localhost when none is given (DIR:
#                                                  ./ssl, DAYS: $ESG_SSL_DAYS or 825)
#        scripts/make-ssl.sh DIR --expired NAME    DIR/NAME with a certificate that
#                                                  expired yesterday, signed by DIR's
#                                                  root (made first if missing)
# Re-running overwrites (a full run makes a new root, so every leaf is remade).
set -euo pipefail
. "$(dirname "$0")/lib/packages.sh"
esg_need ssl

names=(orders reservations payments localhost)

usage() {
  sed -n '/^# Usage:/,/^# Re-running/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

dir="${1:-./ssl}"
days="${ESG_SSL_DAYS:-825}"
expired_name=""
case "${2:-}" in
  "") ;;
  --expired)
    [[ $# -eq 3 && -n "$3" ]] || usage
    expired_name="$3"
    ;;
  *)
    shift
    if [[ "$1" =~ ^[0-9]+$ ]]; then days="$1"; shift; fi
    if [[ $# -gt 0 ]]; then names=("$@"); fi
    ;;
esac
[[ "$dir" != -* ]] || usage
if ! [[ "$days" =~ ^[0-9]+$ ]] || ((days < 1)); then
  echo "make-ssl.sh: DAYS must be a positive number of days, not '$days'" >&2
  exit 2
fi
# A name becomes a folder, a file name and a DNS name: keep it to what all three allow.
for name in ${expired_name:+"$expired_name"} "${names[@]}"; do
  if [[ ! "$name" =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]]; then
    echo "make-ssl.sh: NAME must be a DNS label (a-z, 0-9, '-'), not '$name'" >&2
    exit 2
  fi
done
command -v openssl >/dev/null || { echo "make-ssl.sh: openssl not found" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# P-256 keys: accepted by gRPC (OpenSSL and BoringSSL) and made in milliseconds.
# The umask keeps a new key from ever being readable by others; chmod covers a
# file that already existed with a wider mode.
make_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
  chmod 600 "$1"
}

# The extensions a leaf needs: gRPC checks the target name against subjectAltName
# (never the CN), and a client certificate without clientAuth is refused.
leaf_extensions() {
  local name="$1" san="DNS:$1"
  [[ "$name" == localhost ]] || san="$san,DNS:localhost"
  cat <<EOF
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $san, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

make_root() {
  mkdir -p "$dir/root"
  cat >"$work/root.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = root
[dn]
CN = eventsourcing-grpc test root
[root]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  make_key "$dir/root/root.key"
  openssl req -x509 -new -config "$work/root.cnf" -key "$dir/root/root.key" -sha256 \
    -days "$days" -set_serial "0x$(openssl rand -hex 16)" -out "$dir/root/root.crt"
  echo "made $dir/root/root.key (CA key, keep private)"
  echo "made $dir/root/root.crt (CA certificate, valid $days days)"
}

# make_leaf NAME: a key and a certificate valid for $days days from now.
make_leaf() {
  local name="$1" out="$dir/$1"
  mkdir -p "$out"
  make_key "$out/$name.key"
  openssl req -new -key "$out/$name.key" -subj "/CN=$name" -out "$work/$name.csr"
  leaf_extensions "$name" >"$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$dir/root/root.crt" -CAkey "$dir/root/root.key" \
    -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "$days" \
    -extfile "$work/$name.ext" -extensions leaf -out "$out/$name.crt" 2>/dev/null
  cp "$dir/root/root.crt" "$out/root.crt"
  # Fail here, not in a handshake, if the chain, the usages or the names are wrong.
  for purpose in sslserver sslclient; do
    openssl verify -CAfile "$dir/root/root.crt" -purpose "$purpose" -verify_hostname "$name" \
      "$out/$name.crt" >/dev/null
  done
  echo "made $out/$name.key, $out/$name.crt (valid $days days), $out/root.crt"
}

# make_expired NAME: as make_leaf, but valid from two days ago until yesterday.
# OpenSSL 3.0's `x509 -req` has no -not_before/-not_after (3.4 has), so this
# signs with `openssl ca`, whose -startdate/-enddate take any dates.
make_expired() {
  local name="$1" out="$dir/$1"
  mkdir -p "$out" "$work/ca"
  : >"$work/ca/index.txt"
  cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $work/ca/index.txt
new_certs_dir = $work/ca
serial = $work/ca/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
EOF
  leaf_extensions "$name" >>"$work/ca.cnf"
  openssl rand -hex 16 >"$work/ca/serial"
  make_key "$out/$name.key"
  openssl req -new -key "$out/$name.key" -subj "/CN=$name" -out "$work/$name.csr"
  openssl ca -batch -notext -config "$work/ca.cnf" -extensions leaf \
    -cert "$dir/root/root.crt" -keyfile "$dir/root/root.key" \
    -startdate "$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)" \
    -enddate "$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)" \
    -in "$work/$name.csr" -out "$out/$name.crt" 2>/dev/null
  cp "$dir/root/root.crt" "$out/root.crt"
  if openssl x509 -in "$out/$name.crt" -noout -checkend 0 >/dev/null; then
    echo "make-ssl.sh: $out/$name.crt was meant to be expired but is not" >&2
    exit 1
  fi
  echo "made $out/$name.key, $out/$name.crt (EXPIRED $(openssl x509 -in "$out/$name.crt" \
    -noout -enddate | cut -d= -f2)), $out/root.crt"
}

mkdir -p "$dir"
if [[ -n "$expired_name" ]]; then
  if [[ ! -f "$dir/root/root.key" || ! -f "$dir/root/root.crt" ]]; then
    make_root
  fi
  make_expired "$expired_name"
else
  make_root
  for name in "${names[@]}"; do
    make_leaf "$name"
  done
fi
