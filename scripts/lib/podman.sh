# Podman on a machine without a container engine, systemd or registry: the settings it needs
# (tests/containers/containers.conf: runc, cgroupfs, file events, ulimits) and a Debian 12 base
# image made with debootstrap. Sourced by scripts/test-containers.sh and
# scripts/test-fresh-machine.sh, which call esg_podman_as_root and then esg_need podman.

export CONTAINERS_CONF="$PWD/tests/containers/containers.conf"
esg_base_image=localhost/debian-base:bookworm

# esg_podman_as_root SCRIPT WHY: exits unless root (rootful podman; WHY says what else needs it),
# then leaves only Debian's commands on PATH, as on the machine CI starts from (a Node.js or a
# Python elsewhere on PATH is not what CI has).
esg_podman_as_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1: needs root ($2)" >&2
    exit 1
  fi
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin
}

# esg_make_base_image WORK_DIR: makes $esg_base_image unless podman has it. It is what
# `debootstrap --variant=minbase` installs (Priority: required, and apt): a fresh Debian 12.
esg_make_base_image() {
  local rootfs="$1/rootfs"
  podman image exists "$esg_base_image" && return 0
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import -q - "$esg_base_image" >/dev/null
  rm -rf "$rootfs"
}
