#!/bin/sh
# Builds the test-host images of the `hosts` jest tier (scripts/host-images/Dockerfile): Debian
# bookworm with systemd as PID 1 and sshd, one image per shape, tagged d8h-host:<shape>.
# No registry is needed: they are built FROM the local d8-base image (scripts/docker-base-image.sh)
# with apt inside the build.
#
# Cached: `docker save` of all shapes goes to ~/.cache/d8/d8h-host-images-<key>.tar, where <key> is
# a checksum of the Dockerfile and of the base image's build script, so a fresh Docker engine only
# `docker load`s it, and a change to either rebuilds. Does nothing when the images of this key exist.
#
# Environment: D8_CACHE_DIR (default ~/.cache/d8), D8_REBUILD=1 (ignore images and the cache).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_DIR="${D8_CACHE_DIR:-${HOME:-/root}/.cache/d8}"
SHAPES="node cron polkit sudo sudolinger nonode"
REPO=d8h-host

log() { printf 'host-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (start it: dockerd &, or systemctl start docker)"

KEY=$(cat "$HERE/host-images/Dockerfile" "$HERE/docker-base-image.sh" | cksum | cut -d' ' -f1)
TARBALL="$CACHE_DIR/d8h-host-images-$KEY.tar"

have_all() {
  for s in $SHAPES; do
    [ "$(docker image inspect -f '{{index .Config.Labels "d8h.key"}}' "$REPO:$s" 2>/dev/null)" = "$KEY" ] || return 1
  done
}

if [ "${D8_REBUILD:-0}" != 1 ]; then
  if have_all; then log "$REPO:{$(echo $SHAPES | tr ' ' ',')} (key $KEY) exist; nothing to do"; exit 0; fi
  if [ -s "$TARBALL" ]; then
    log "loading $TARBALL"
    docker load -i "$TARBALL" >/dev/null || die "docker load $TARBALL failed (delete it to rebuild)"
    have_all && { log "loaded"; exit 0; }
    log "the cached tarball lacks some shapes; rebuilding"
  fi
fi

sh "$HERE/docker-base-image.sh"
for s in $SHAPES; do
  log "building $REPO:$s"
  docker build -q --label "d8h.key=$KEY" --target "$s" -t "$REPO:$s" "$HERE/host-images" >/dev/null ||
    die "docker build --target $s failed (run: docker build --target $s $HERE/host-images)"
done
mkdir -p "$CACHE_DIR"
tags=
for s in $SHAPES; do tags="$tags $REPO:$s"; done
log "saving to $TARBALL"
# shellcheck disable=SC2086
docker save -o "$TARBALL.partial" $tags && mv "$TARBALL.partial" "$TARBALL" || { rm -f "$TARBALL.partial"; die "docker save failed"; }
for old in "$CACHE_DIR"/d8h-host-images-*.tar; do [ "$old" = "$TARBALL" ] || rm -f "$old"; done
# The previous build's images, untagged by this one.
docker image prune -f --filter label=d8h.key >/dev/null 2>&1 || true
log "built $REPO:{$(echo $SHAPES | tr ' ' ',')}"
