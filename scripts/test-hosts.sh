#!/bin/sh
# SSH test hosts for the system tests and bench:deploy: one real sshd per "host", each on its own
# loopback address with its own unix user and home, key-only login with a generated ed25519 key.
#
#   scripts/test-hosts.sh up       create users/keys (once) and start the sshds (idempotent)
#   scripts/test-hosts.sh down     uninstall agents, stop the sshds, end the users' processes
#   scripts/test-hosts.sh purge    down, then delete the users, their homes and the state dir
#   scripts/test-hosts.sh status   one line per host
#   scripts/test-hosts.sh env      print the env file (host, port, user, key path per host)
#
# The shapes, each real rather than simulated, so every installer path runs for real:
#   docker  user d8-docker, in the docker group                         -> docker strategy wins
#   venv    user d8-venv, no docker access (not in the docker group)     -> venv wins
#   native  user d8-native: this host has no ensurepip, like Debian without python3-venv, so
#           `python3 -m venv` fails with Debian's own error                -> native wins
#   broken  user d8-broken: no docker, no ensurepip, and node is not executable -> every strategy fails
#   venv2, venv3  more hosts shaped like venv (bench:deploy runs four hosts in parallel)
#   nonode  user d8-nonode: no docker, no node (a fresh VPS): the deployer pushes its Node.js runtime
#           over SSH and venv wins with it
#   musl    user d8-musl: no docker, no node, and getconf/ldd say the C library is musl: the probe
#           refuses the host before anything is written to it
# A "host" is an sshd started in its own mount namespace (unshare -m): what is missing on it is
# hidden by bind mounts inside that namespace only (an empty directory over ensurepip, /dev/null
# over node, shims over getconf and ldd). Nothing on this machine is changed for anyone else, and stopping the sshd (plus the
# processes its sessions left) makes the namespace go away.
#
# Environment: D8_TEST_HOSTS_DIR (state, default /var/lib/d8-test-hosts), D8_TEST_HOSTS_SSH_PORT
# (default 2222). Needs root, openssh-server, util-linux (unshare), python3 + python3-venv, node.
set -eu

STATE=${D8_TEST_HOSTS_DIR:-/var/lib/d8-test-hosts}
SSH_PORT=${D8_TEST_HOSTS_SSH_PORT:-2222}
HOSTS="docker venv native broken venv2 venv3 nonode musl"
ENV_FILE=$STATE/hosts.env
KEY=$STATE/id_ed25519
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)

log() { printf 'test-hosts: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

addr_of() {
  case "$1" in
    docker) echo 127.0.0.11 ;; venv) echo 127.0.0.12 ;; native) echo 127.0.0.13 ;; broken) echo 127.0.0.14 ;;
    venv2) echo 127.0.0.15 ;; venv3) echo 127.0.0.16 ;; nonode) echo 127.0.0.17 ;; musl) echo 127.0.0.18 ;;
  esac
}
expect_of() { case "$1" in broken | musl) echo none ;; venv* | nonode) echo venv ;; *) echo "$1" ;; esac; }
user_of() { echo "d8-$1"; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (it creates users and starts sshd)"; }

sshd_pid() { # prints the pid of host $1's sshd when it runs
  pf=$STATE/hosts/$1/sshd.pid
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\000' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$STATE/hosts/$1/sshd_config" || return 1
  echo "$pid"
}

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

ensure_user() { # $1 = shape
  u=$(user_of "$1")
  if ! id -u "$u" >/dev/null 2>&1; then
    useradd --create-home --home-dir "/home/$u" --shell /bin/bash "$u"
    log "created user $u"
  fi
  # '*' = no password login, but not "locked" ('!'), which sshd without PAM would refuse.
  usermod -p '*' "$u"
  if [ "$1" = docker ]; then
    getent group docker >/dev/null || die "there is no docker group: install docker.io"
    id -nG "$u" | tr ' ' '\n' | grep -qx docker || usermod -aG docker "$u"
  elif id -nG "$u" | tr ' ' '\n' | grep -qx docker; then
    gpasswd -d "$u" docker >/dev/null
  fi
}

write_sshd_config() { # $1 = shape
  d=$STATE/hosts/$1
  cat >"$d/sshd_config" <<EOF
# test host "$1" (scripts/test-hosts.sh)
ListenAddress $(addr_of "$1"):$SSH_PORT
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
AllowUsers $(user_of "$1")
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
UseDNS no
X11Forwarding no
PrintMotd no
MaxStartups 50:30:100
MaxSessions 50
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
}

# The mount namespace of a host: what this host does not have.
host_mounts() { # $1 = shape -> shell commands run inside the namespace before sshd
  empty=$STATE/empty
  case "$1" in
    native)
      echo "mount --bind '$empty' '$ENSUREPIP'"
      ;;
    broken)
      echo "mount --bind '$empty' '$ENSUREPIP'"
      for n in $NODES; do echo "mount --bind /dev/null '$n'"; done
      ;;
    nonode)
      for n in $NODES; do echo "mount --bind /dev/null '$n'"; done
      ;;
    musl)
      for n in $NODES; do echo "mount --bind /dev/null '$n'"; done
      echo "mount --bind '$STATE/shims/getconf' '$(readlink -f "$(command -v getconf)")'"
      echo "mount --bind '$STATE/shims/ldd' '$(readlink -f "$(command -v ldd)")'"
      ;;
  esac
}

# What getconf and ldd say on a musl host (Alpine); the real getconf answers everything else.
write_shims() {
  mkdir -p "$STATE/shims" && chmod 755 "$STATE/shims"
  cp "$(readlink -f "$(command -v getconf)")" "$STATE/shims/getconf.real"
  printf '%s\n' '#!/bin/sh' \
    '[ "$1" = GNU_LIBC_VERSION ] && { echo "getconf: Unrecognized variable GNU_LIBC_VERSION" >&2; exit 1; }' \
    "exec '$STATE/shims/getconf.real' \"\$@\"" >"$STATE/shims/getconf"
  printf '%s\n' '#!/bin/sh' \
    "printf 'musl libc (x86_64)\\nVersion 1.2.4\\nDynamic Program Loader\\n' >&2" 'exit 1' >"$STATE/shims/ldd"
  chmod 755 "$STATE/shims/getconf" "$STATE/shims/getconf.real" "$STATE/shims/ldd"
}

start_host() { # $1 = shape
  if pid=$(sshd_pid "$1"); then log "$1: sshd already running (pid $pid)"; return 0; fi
  addr=$(addr_of "$1")
  mounts=$(host_mounts "$1" | tr '\n' ';')
  # sshd daemonizes: the daemon keeps the namespace; unshare's own process exits.
  unshare --mount --propagation private sh -c "set -e; $mounts exec /usr/sbin/sshd -f '$STATE/hosts/$1/sshd_config'" ||
    die "$1: sshd did not start (see: /usr/sbin/sshd -t -f $STATE/hosts/$1/sshd_config)"
  i=0
  until port_open "$addr" "$SSH_PORT"; do
    i=$((i + 1))
    [ $i -lt 100 ] || die "$1: sshd is not accepting connections on $addr:$SSH_PORT"
    sleep 0.1
  done
  log "$1: sshd on $addr:$SSH_PORT (user $(user_of "$1"))"
}

write_env() {
  tmp=$ENV_FILE.tmp
  {
    echo "# written by scripts/test-hosts.sh up"
    echo "D8_TEST_HOSTS_DIR=$STATE"
    echo "D8_TEST_KEY=$KEY"
    echo "D8_TEST_HOSTS='$HOSTS'"
    for h in $HOSTS; do
      H=$(echo "$h" | tr a-z A-Z)
      echo "D8_TEST_${H}_HOST=$(addr_of "$h")"
      echo "D8_TEST_${H}_PORT=$SSH_PORT"
      echo "D8_TEST_${H}_USER=$(user_of "$h")"
      echo "D8_TEST_${H}_EXPECT=$(expect_of "$h")"
      echo "D8_TEST_${H}_HOSTKEY='$(cut -d' ' -f1,2 "$STATE/hosts/$h/ssh_host_ed25519_key.pub")'"
    done
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

cmd_up() {
  need_root
  for tool in /usr/sbin/sshd ssh-keygen unshare useradd timeout bash; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run scripts/ci-setup-system.sh)"
  done
  [ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing (apt-get install python3 python3-venv)"
  ENSUREPIP=$(/usr/bin/python3 -c 'import ensurepip, os; print(os.path.dirname(ensurepip.__file__))' 2>/dev/null) ||
    die "Debian's python3 has no ensurepip (apt-get install python3-venv)"
  # Every node the users could find on sshd's default PATH.
  NODES=
  for d in /usr/local/bin /usr/bin /bin; do
    [ -f "$d/node" ] && NODES="$NODES $(readlink -f "$d/node")"
  done
  NODES=$(echo "$NODES" | tr ' ' '\n' | sort -u | tr '\n' ' ')
  [ -n "$NODES" ] || die "node is not installed in /usr/local/bin or /usr/bin (the venv and native hosts need it)"
  mkdir -p /run/sshd "$STATE/hosts" "$STATE/empty"
  chmod 755 "$STATE" "$STATE/hosts" "$STATE/empty"
  [ -f "$KEY" ] || { ssh-keygen -q -t ed25519 -N '' -C d8-test-hosts -f "$KEY"; log "generated $KEY"; }
  chmod 600 "$KEY"
  cp "$SCRIPT_DIR/../agent/install/uninstall.sh" "$STATE/uninstall.sh"
  write_shims
  chmod 755 "$STATE/uninstall.sh"
  for h in $HOSTS; do
    ensure_user "$h"
    d=$STATE/hosts/$h
    mkdir -p "$d" && chmod 755 "$d"
    [ -f "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "d8-test-$h" -f "$d/ssh_host_ed25519_key"
    cp "$KEY.pub" "$d/authorized_keys" && chmod 644 "$d/authorized_keys"
    write_sshd_config "$h"
    /usr/sbin/sshd -t -f "$d/sshd_config" || die "$h: invalid sshd config $d/sshd_config"
    start_host "$h"
  done
  write_env
  log "ready; env file: $ENV_FILE"
  cat "$ENV_FILE"
}

user_pids() { ps -o pid= -u "$1" 2>/dev/null | tr -d ' '; }

cmd_down() {
  need_root
  for h in $HOSTS; do
    u=$(user_of "$h")
    id -u "$u" >/dev/null 2>&1 || continue
    if [ -f "$STATE/uninstall.sh" ]; then
      # The same uninstaller a real slave runs: containers, units, processes, ~/.d8-agent.
      runuser -u "$u" -- env HOME="/home/$u" PATH=/usr/local/bin:/usr/bin:/bin sh "$STATE/uninstall.sh" --all || true
    fi
    if pid=$(sshd_pid "$h"); then kill "$pid" && log "$h: stopped sshd (pid $pid)"; fi
    # Whatever the sessions of this test user left running (by pid, only this user's).
    pids=$(user_pids "$u")
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      sleep 0.5
      pids=$(user_pids "$u")
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
      log "$h: ended the processes of $u"
    fi
  done
}

cmd_purge() {
  cmd_down
  for h in $HOSTS; do
    u=$(user_of "$h")
    id -u "$u" >/dev/null 2>&1 && userdel -r "$u" 2>/dev/null && log "deleted user $u"
  done
  rm -rf "$STATE"
  log "removed $STATE"
}

cmd_status() {
  for h in $HOSTS; do
    if pid=$(sshd_pid "$h"); then s="up (sshd pid $pid)"; else s=down; fi
    printf '%-7s %s:%s  user %-10s expects %-7s %s\n' "$h" "$(addr_of "$h")" "$SSH_PORT" "$(user_of "$h")" "$(expect_of "$h")" "$s"
  done
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  purge) cmd_purge ;;
  status) cmd_status ;;
  env) [ -f "$ENV_FILE" ] || die "no env file yet: run '$0 up' first"; cat "$ENV_FILE" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
