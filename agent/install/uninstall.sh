#!/bin/sh
# D8 Fleet agent uninstaller. POSIX sh; runs on the slave as the user that installed the agent.
#
#   sh uninstall.sh [--port 7600 | --all] [--stop-only]
#
# Removes every trace of every strategy for the agent on PORT (or for every agent with --all):
# docker containers and d8-agent images, systemd user/system units (the system unit through
# `sudo -n` when not root), the crontab @reboot line, the setsid-detached process, the linger that
# install.sh enabled (only when it enabled it and no other agent's user unit is left), and
# ~/.d8-agent (kept only while another port's agent is still installed there).
# --stop-only (a release being replaced): removes the agent itself (container, units, cron line,
# process, its run directory and token) but keeps what the next install reuses: ~/.d8-agent with
# the venv, the runtime and the bundles, and the images.
# Prints one progress line per thing removed on stderr; exit 0 when nothing is left.
set -u

PORT=7600
ALL=
STOP_ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --port) [ $# -ge 2 ] || { echo "[d8-uninstall] --port needs a value" >&2; exit 2; }; PORT=$2; shift 2 ;;
    --all) ALL=1; shift ;;
    --stop-only) STOP_ONLY=1; shift ;;
    -h | --help) sed -n '2,12p' "$0" >&2; exit 0 ;;
    *) echo "[d8-uninstall] unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PORT" in '' | *[!0-9]*) echo "[d8-uninstall] --port must be a number" >&2; exit 2 ;; esac

STATE_DIR=$HOME/.d8-agent
say() { printf '[d8-uninstall] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
root_ok() { [ "$(id -u)" -eq 0 ] || { have sudo && sudo -n true 2>/dev/null; }; }

if [ -n "$ALL" ]; then
  PORTS=$(ls "$STATE_DIR" 2>/dev/null | sed -n 's/^agent-\([0-9][0-9]*\)$/\1/p; s/^agent-\([0-9][0-9]*\)\.pid$/\1/p; s/^agent-token-\([0-9][0-9]*\)$/\1/p')
  if have docker && docker info >/dev/null 2>&1; then
    # Containers are the engine's, not the user's: --all means every D8 agent container on it.
    PORTS="$PORTS $(docker ps -a --filter label=d8.agent=1 --format '{{.Label "d8.agent.port"}}')"
  fi
  PORTS=$(echo $PORTS | tr ' ' '\n' | grep -E '^[0-9]+$' | sort -u)
  [ -n "$PORTS" ] || PORTS=$PORT
else
  PORTS=$PORT
fi

pid_is_agent() { # $1 = pid, $2 = port
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/cmdline" ] || return 0
  tr '\000' ' ' <"/proc/$1/cmdline" | grep -q "agent-$2/agent.js"
}

remove_port() { # $1 = port
  p=$1
  unit=d8-agent-$p.service
  if have docker && docker info >/dev/null 2>&1; then
    for c in $(docker ps -aq --filter "label=d8.agent.port=$p"); do
      docker rm -f "$c" >/dev/null 2>&1 && say "removed container $c (port $p)"
    done
  fi
  if [ -f "$HOME/.config/systemd/user/$unit" ]; then
    systemctl --user disable --now "$unit" >/dev/null 2>&1
    rm -f "$HOME/.config/systemd/user/$unit"
    systemctl --user daemon-reload >/dev/null 2>&1
    say "removed user unit $unit"
  fi
  if [ -f "/etc/systemd/system/$unit" ]; then
    if root_ok; then
      as_root systemctl disable --now "$unit" >/dev/null 2>&1
      as_root rm -f "/etc/systemd/system/$unit"
      as_root systemctl daemon-reload >/dev/null 2>&1
      say "removed system unit $unit"
    else
      say "cannot remove the system unit /etc/systemd/system/$unit: not root and 'sudo -n' is refused; as root: systemctl disable --now $unit && rm /etc/systemd/system/$unit"
    fi
  fi
  if have crontab && cur=$(crontab -l 2>/dev/null) && printf '%s\n' "$cur" | grep -qF "# d8-agent-$p"; then
    printf '%s\n' "$cur" | grep -vF "# d8-agent-$p" | crontab - && say "removed the crontab @reboot line (port $p)"
  fi
  # The pid file, and any other process running this port's agent.js from our state directory
  # (after POST /api/restart a detached agent is a new process the pid file does not name).
  # (grep lists itself too; it has exited by the time pid_is_agent checks that pid.)
  pids="$(cat "$STATE_DIR/agent-$p.pid" 2>/dev/null) $(grep -lF "$STATE_DIR/agent-$p/agent.js" /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's#^/proc/\([0-9]*\)/cmdline$#\1#p')"
  for pid in $(echo $pids | tr ' ' '\n' | sort -u); do
    if pid_is_agent "$pid" "$p"; then
      kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
      i=0
      while pid_is_agent "$pid" "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      pid_is_agent "$pid" "$p" && { kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; }
      say "stopped agent process $pid (port $p)"
    fi
  done
  rm -rf "$STATE_DIR/agent-$p" "$STATE_DIR/agent-$p.pid" "$STATE_DIR/agent-token-$p"
}

for p in $PORTS; do remove_port "$p"; done
[ -n "$STOP_ONLY" ] && { say "kept $STATE_DIR and the images for the next install (--stop-only)"; exit 0; }

# Images are shared by every port of this docker engine: remove those no container uses any more.
if have docker && docker info >/dev/null 2>&1; then
  for img in $(docker images --format '{{.Repository}}:{{.Tag}}' 'd8-agent'); do
    docker rmi "$img" >/dev/null 2>&1 && say "removed image $img"
  done
fi

# Linger is the user's, shared by every agent of theirs: turn it off only when install.sh turned it on
# and no agent user unit is left.
if [ -f "$STATE_DIR/linger-enabled" ] && ! ls "$HOME"/.config/systemd/user/d8-agent-*.service >/dev/null 2>&1; then
  how=$(cat "$STATE_DIR/linger-enabled")
  me=$(id -un)
  if loginctl disable-linger "$me" 2>/dev/null || { [ "$how" = sudo ] && sudo -n loginctl disable-linger "$me" 2>/dev/null; }; then
    say "disabled linger for $me (install.sh had enabled it)"
    rm -f "$STATE_DIR/linger-enabled"
  else
    say "could not disable linger for $me (install.sh had enabled it): run as root: loginctl disable-linger $me"
  fi
fi

left=$(ls "$STATE_DIR" 2>/dev/null | grep -E '^agent-([0-9]+|[0-9]+\.pid|token-[0-9]+)$' || true)
if [ -d "$STATE_DIR" ]; then
  if [ -z "$left" ]; then
    rm -rf "$STATE_DIR" && say "removed $STATE_DIR"
  else
    say "kept $STATE_DIR: other agents are installed there ($(echo "$left" | tr '\n' ' '))"
  fi
fi
exit 0
