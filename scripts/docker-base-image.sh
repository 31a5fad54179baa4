#!/bin/sh
# Builds the local Docker image d8-base:bookworm (sh, python3 + venv, nodejs, ca-certificates, curl)
# from a debootstrap'ed Debian bookworm rootfs. No image registry is needed: only a Debian mirror.
#
# Idempotent: does nothing when the image already exists. The rootfs tarball is cached under
# ~/.cache/d8/ so a fresh Docker engine re-imports it in seconds.
#
# Environment:
#   D8_BASE_IMAGE     image name (default d8-base:bookworm)
#   D8_DEBIAN_MIRROR  Debian mirror (default: the one in this machine's apt sources, else deb.debian.org)
#   D8_CACHE_DIR      cache directory (default ~/.cache/d8)
#   D8_REBUILD=1      ignore the existing image and the cached tarball
set -eu

IMAGE="${D8_BASE_IMAGE:-d8-base:bookworm}"
CACHE_DIR="${D8_CACHE_DIR:-${HOME:-/root}/.cache/d8}"
PACKAGES="python3,python3-venv,nodejs,ca-certificates,curl"
# The package list is part of the cache key: changing it rebuilds the rootfs.
TARBALL="$CACHE_DIR/d8-base-bookworm-rootfs-$(printf '%s' "$PACKAGES" | cksum | cut -d' ' -f1).tar"

log() { printf 'docker-base-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (start it: dockerd &, or systemctl start docker)"

if [ "${D8_REBUILD:-0}" != "1" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists; nothing to do (D8_REBUILD=1 to rebuild)"
  exit 0
fi

detect_mirror() {
  # First non-security Debian URI in the apt sources (both one-line and deb822 formats).
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(grep -Eo 'https?://[^ ]+/debian/?( |$)' "$f" 2>/dev/null | grep -v security | head -n 1 | tr -d ' ' || true)
    if [ -n "$uri" ]; then printf '%s\n' "${uri%/}"; return 0; fi
  done
  printf '%s\n' "http://deb.debian.org/debian"
}

if [ "${D8_REBUILD:-0}" = "1" ] || [ ! -s "$TARBALL" ]; then
  [ "$(id -u)" = "0" ] || die "debootstrap needs root: run this script as root (or with sudo)"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
  MIRROR="${D8_DEBIAN_MIRROR:-$(detect_mirror)}"
  mkdir -p "$CACHE_DIR"
  ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/d8-base-rootfs.XXXXXX")
  trap 'rm -rf "$ROOTFS" "$TARBALL.partial"' EXIT INT TERM
  log "debootstrap bookworm from $MIRROR into $ROOTFS (takes a few minutes)"
  if ! debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1; then
    tail -n 20 "$ROOTFS.log" >&2 || true
    rm -f "$ROOTFS.log"
    die "debootstrap failed (mirror $MIRROR; set D8_DEBIAN_MIRROR to use another)"
  fi
  rm -f "$ROOTFS.log"
  # Trim what a task container never needs.
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
         "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
  for bin in sh python3 node; do
    [ -e "$ROOTFS/usr/bin/$bin" ] || [ -e "$ROOTFS/bin/$bin" ] || die "the rootfs has no $bin: debootstrap --include did not install it"
  done
  log "writing the rootfs tarball to $TARBALL"
  tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
  rm -rf "$ROOTFS"
  trap - EXIT INT TERM
else
  log "using the cached rootfs $TARBALL"
fi

log "importing $TARBALL as $IMAGE"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/sh"]' \
  "$TARBALL" "$IMAGE" >/dev/null || die "docker import failed"

docker run --rm --network none "$IMAGE" sh -c 'python3 -c "import venv" && node --version >/dev/null' \
  || die "$IMAGE was imported but its smoke test (python3 venv, node) failed"
log "built $IMAGE"
