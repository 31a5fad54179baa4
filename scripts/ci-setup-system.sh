#!/bin/sh
# System setup for the system tests and bench:deploy on a fresh Debian bookworm machine (CI calls
# it from .ci/run). Idempotent: safe to run again; skips what is already there.
#   - apt packages: openssh-server/client (test hosts), python3 + python3-venv (the slaves' python),
#     docker.io (the docker strategy), debootstrap (base image), ansible (bench), curl,
#     chromium + fonts-liberation + fonts-noto-color-emoji (the dashboard's browser tier and its screenshots)
#   - dockerd running (started in the background when no init system runs it), in swarm mode (single node, loopback)
#   - the local base image d8-base:bookworm (scripts/docker-base-image.sh; no registry needed)
#   - the hosts tier's d8h-host:* images, systemd + sshd per host shape (scripts/host-images.sh; cached)
#   - the SSH test hosts (scripts/test-hosts.sh up)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf 'ci-setup-system: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

PKGS="openssh-server openssh-client python3 python3-venv docker.io debootstrap ansible curl util-linux procps ca-certificates chromium fonts-liberation fonts-noto-color-emoji"
missing=
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
# A docker CLI/engine installed some other way counts too.
case " $missing " in *" docker.io "*) command -v dockerd >/dev/null 2>&1 && missing=$(echo "$missing" | sed 's/ docker.io//') ;; esac
if [ -n "$missing" ]; then
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  (setsid dockerd >/var/log/d8-dockerd.log 2>&1 </dev/null &)
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 120 ] || { log "dockerd did not come up; see /var/log/d8-dockerd.log"; tail -n 20 /var/log/d8-dockerd.log >&2; exit 1; }
    sleep 0.5
  done
fi
getent group docker >/dev/null || groupadd docker
# Swarm mode's system tests run the agents' services on a single-node swarm on loopback (issues 17, 13).
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = inactive ]; then
  log "initialising a single-node swarm on 127.0.0.1"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

sh "$HERE/docker-base-image.sh"
sh "$HERE/host-images.sh"
sh "$HERE/test-hosts.sh" up >/dev/null
log "ready: $(sh "$HERE/test-hosts.sh" status | tr '\n' ';')"
