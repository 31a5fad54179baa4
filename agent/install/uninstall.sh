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
# Waits for a running install.sh/uninstall.sh of this user (~/.d8-agent.lock; exit 75 after 30 min).
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
    -h | --help) sed -n '2,14p' "$0" >&2; exit 0 ;;
    *) echo "[d8-uninstall] unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PORT" in '' | *[!0-9]*) echo "[d8-uninstall] --port must be a number" >&2; exit 2 ;; esac

STATE_DIR=$HOME/.d8-agent
say() { printf '[d8-uninstall] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
root_ok() { [ "$(id -u)" -eq 0 ] || { have sudo && sudo -n true 2>/dev/null; }; }

# --- one installer at a time -------------------------------------------------------------------
# The lock install.sh takes too: it evals the marked block below out of this file (one copy of the
# code; this script must stay self-contained, as it also runs alone: see infra/shell.ts purgeCommand).
# The block needs have, is_uint and progress from its host script.
progress() { say "$@"; }
is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
# >>> installer lock
LOCK=$HOME/.d8-agent.lock
LOCK_WAIT=1800
proc_start() { # $1 = pid: its start time (field 22 of /proc/PID/stat), empty without /proc
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  printf '%s\n' "${s##*) }" | cut -d' ' -f20
}
lock_me() { printf '%s %s %s since %s\n' "$$" "$(proc_start $$)" "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"; }
lock_holder_line() { # "pid 123 (install.sh --port 7600 since …)"
  set -- $(cat "$1" 2>/dev/null)
  [ $# -ge 2 ] || { echo "an unknown process"; return; }
  p=$1; shift 2; echo "pid $p ($*)"
}
lock_holder_gone() { # $1 = owner file: its pid is dead, or is now another process
  set -- $(cat "$1" 2>/dev/null)
  [ $# -ge 1 ] && is_uint "$1" || return 1
  kill -0 "$1" 2>/dev/null || return 0
  [ -n "${2:-}" ] && [ -n "$(proc_start "$1")" ] && [ "$(proc_start "$1")" != "$2" ]
}
take_lock() { # $1 = what we are, for others' waiting line; returns 1 when it timed out
  if have flock; then
    exec 9>>"$LOCK" || return 1
    if ! flock -n 9; then
      # The holder writes its line just after it took the lock: give it a moment to, so the waiting line names it.
      lk_holder=$(lock_holder_line "$LOCK") lk_n=0
      while [ "$lk_holder" = "an unknown process" ] && [ "$lk_n" -lt 10 ]; do
        sleep 0.1 2>/dev/null || sleep 1
        lk_n=$((lk_n + 1)) lk_holder=$(lock_holder_line "$LOCK")
      done
      progress "waiting for another D8 installer on this host: $lk_holder"
      flock -w "$LOCK_WAIT" 9 || return 1
    fi
    lock_me "$1" >"$LOCK"
    return 0
  fi
  # The owner line is made first and written by a builtin right after the mkdir, so a lock without
  # one is a holder that died in between; a holder whose directory was taken meanwhile tries again.
  me=$(lock_me "$1") told= waited=0 blank=0
  while ! { mkdir "$LOCK.d" 2>/dev/null && printf '%s\n' "$me" 2>/dev/null >"$LOCK.d/owner" && [ "$(cat "$LOCK.d/owner" 2>/dev/null)" = "$me" ]; }; do
    if [ ! -s "$LOCK.d/owner" ]; then blank=$((blank + 1)); else blank=0; fi
    # A holder that died, or one that died between its mkdir and writing owner (10 s without one).
    if { [ -s "$LOCK.d/owner" ] && lock_holder_gone "$LOCK.d/owner"; } || [ "$blank" -gt 50 ]; then
      seen=$(cat "$LOCK.d/owner" 2>/dev/null)
      if mv "$LOCK.d" "$LOCK.stale.$$" 2>/dev/null; then
        if [ "$(cat "$LOCK.stale.$$/owner" 2>/dev/null)" = "$seen" ]; then
          progress "removed a stale installer lock: ${seen:-no owner} is gone"
          rm -rf "$LOCK.stale.$$"
        else # someone took it in between: theirs is live, put it back
          mv "$LOCK.stale.$$" "$LOCK.d" 2>/dev/null || rm -rf "$LOCK.stale.$$"
        fi
      fi
      blank=0
      continue
    fi
    [ -n "$told" ] || [ "$blank" -gt 0 ] || { told=1; progress "waiting for another D8 installer on this host: $(lock_holder_line "$LOCK.d/owner")"; }
    waited=$((waited + 1))
    [ "$waited" -le $((LOCK_WAIT * 5)) ] || return 1
    sleep 0.2
  done
  trap '[ "$(cat "$LOCK.d/owner" 2>/dev/null)" = "$me" ] && rm -rf "$LOCK.d"' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
# <<< installer lock

if ! take_lock "uninstall.sh --port $PORT${ALL:+ --all}"; then
  say "error: another D8 installer still holds $LOCK after ${LOCK_WAIT}s: $(lock_holder_line "$LOCK")"
  exit 75
fi

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
  tr '\000' ' ' <"/proc/$1/cmdline" | grep -Eq "agent-$2/(agent\.js|run\.sh)"
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
  pids="$(cat "$STATE_DIR/agent-$p.pid" 2>/dev/null) $(grep -lF -e "$STATE_DIR/agent-$p/agent.js" -e "$STATE_DIR/agent-$p/run.sh" /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's#^/proc/\([0-9]*\)/cmdline$#\1#p')"
  for pid in $(echo $pids | tr ' ' '\n' | sort -u); do
    if pid_is_agent "$pid" "$p"; then
      kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
      kill -CONT "-$pid" 2>/dev/null || kill -CONT "$pid" 2>/dev/null # a stopped (hung) agent too
      i=0
      while pid_is_agent "$pid" "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      pid_is_agent "$pid" "$p" && { kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; }
      say "stopped agent process $pid (port $p)"
    fi
  done
  rm -rf "$STATE_DIR/agent-$p" "$STATE_DIR/agent-$p.pid" "$STATE_DIR/agent-token-$p"
  # The agent's TLS key pair stays for the next install (the master's pin stays valid); a real delete removes it.
  [ -n "$STOP_ONLY" ] || rm -rf "$STATE_DIR/tls-$p"
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
    if ! rm -rf "$STATE_DIR" 2>/dev/null; then
      say "error: could not remove all of $STATE_DIR: $(find "$STATE_DIR" ! -user "$(id -un)" 2>/dev/null | head -n 3 | tr '\n' ' ')(files owned by another user: remove them as root)"
      exit 1
    fi
    rm -f "$LOCK"
    say "removed $STATE_DIR"
  else
    say "kept $STATE_DIR: other agents are installed there ($(echo "$left" | tr '\n' ' '))"
  fi
fi
exit 0
