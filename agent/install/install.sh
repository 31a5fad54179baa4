#!/bin/sh
# D8 Fleet agent installer. POSIX sh (tested with dash); runs on the slave as the SSH user, from the
# bundle directory it was shipped in (see agent/bundle/build.ts and agent/install/command.ts).
#
#   sh install.sh [--strategies docker,venv,native] [--attempts 3] [--delay 10] [--port 7600]
#                 (--token-stdin | --token-file FILE) [--base-image IMAGE (node:22-bookworm-slim)] [--health-timeout 30]
#                 [--node PATH]   (the node the venv and native strategies run the agent with)
#                 [--no-tls]      (plain HTTP; by default the agent serves HTTPS with its own key pair)
#
# Tries each strategy in order, each up to --attempts times with --delay seconds between attempts.
# An attempt succeeds only when https://127.0.0.1:PORT/api/health (http with --no-tls) reports this bundle's commit and
# the strategy being tried. Before every attempt, and after a failed one, what that strategy left is
# removed, and before the first attempt any agent already installed on PORT is stopped, so re-runs
# replace the running agent and two agents never fight for the port.
#
# The token is read from the first line of stdin (or copied from a file) into a 0600 file; it never
# appears in argv, the environment of a process, a log or this script's output. The agent starts
# with an explicit minimal environment (PATH, HOME, LANG, USER, the D8_* it needs), never the
# caller's: a master that runs this for a local slave has secrets in its environment.
#
# One installer (or uninstaller) at a time per user: ~/.d8-agent.lock, held with flock(1) where it
# exists, else an atomic mkdir lock (~/.d8-agent.lock.d) whose holder is checked by pid and start
# time, so a SIGKILLed holder does not block anyone. A later run waits, saying who holds it.
#
# TLS: the agent keeps an ECDSA P-256 key and a self-signed certificate in ~/.d8-agent/tls-PORT
# (key mode 0600; made by the agent itself on its first start, on this host; kept across redeploys
# so the master's pin stays valid; mounted into the container for docker). The result carries the
# certificate's SHA-256 fingerprint, which the master pins. The local health wait skips certificate
# checks: it runs on this host against 127.0.0.1 and only reads the commit.
#
# Output: progress lines "[d8-install] ..." on stderr; exactly one line on stdout, the JSON result
# of core/install-result.ts: {"ok":..,"strategy":..,"attempts":[..],"tls_fingerprint":..}. Exit 0 only on success.
set -u
umask 077

# fd 3 = the caller's stderr, for progress lines while an attempt's own output goes to its log.
# Every process that outlives this script must close it (3>&-), or it holds the SSH channel open.
exec 3>&2

STRATEGIES=docker,venv,native
ATTEMPTS=3
DELAY=10
PORT=7600
TOKEN_SOURCE=
TOKEN_FILE_ARG=
BASE_IMAGE=node:22-bookworm-slim
HEALTH_TIMEOUT=30
NODE_ARG=
TLS=1
TLS_FP=

ATTEMPTS_JSON=
WINNER=

progress() { printf '[d8-install] %s\n' "$*" >&3; }

json_escape() {
  tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$(printf '\t')/\\\\t/g" |
    awk 'BEGIN { ORS = "" } { if (NR > 1) print "\\n"; print }'
}

result_and_exit() { # $1 = exit code
  if [ -n "$WINNER" ]; then ok=true; strat="\"$WINNER\""; else ok=false; strat=null; fi
  fp=
  [ -n "$TLS_FP" ] && fp=",\"tls_fingerprint\":\"$TLS_FP\""
  printf '{"ok":%s,"strategy":%s,"attempts":[%s]%s}\n' "$ok" "$strat" "$ATTEMPTS_JSON" "$fp"
  exit "$1"
}

usage_error() {
  progress "error: $*"
  result_and_exit 2
}

is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# `shift 2` with one argument left would end a non-interactive dash: check first.
value() { [ "$1" -ge 2 ] || usage_error "$2 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --strategies) value $# "$1"; STRATEGIES=$2; shift 2 ;;
    --attempts) value $# "$1"; ATTEMPTS=$2; shift 2 ;;
    --delay) value $# "$1"; DELAY=$2; shift 2 ;;
    --port) value $# "$1"; PORT=$2; shift 2 ;;
    --token-stdin) TOKEN_SOURCE=stdin; shift ;;
    --token-file) value $# "$1"; TOKEN_SOURCE=file; TOKEN_FILE_ARG=$2; shift 2 ;;
    --base-image) value $# "$1"; BASE_IMAGE=$2; shift 2 ;;
    --health-timeout) value $# "$1"; HEALTH_TIMEOUT=$2; shift 2 ;;
    --node) value $# "$1"; NODE_ARG=$2; shift 2 ;;
    --no-tls) TLS=; shift ;;
    -h | --help) sed -n '2,32p' "$0" >&2; exit 0 ;;
    *) usage_error "unknown argument: $1 (see --help)" ;;
  esac
done

is_uint "$ATTEMPTS" && [ "$ATTEMPTS" -ge 1 ] || usage_error "--attempts must be a whole number >= 1, not '$ATTEMPTS'"
is_uint "$DELAY" || usage_error "--delay must be a whole number of seconds, not '$DELAY'"
is_uint "$HEALTH_TIMEOUT" && [ "$HEALTH_TIMEOUT" -ge 1 ] || usage_error "--health-timeout must be a whole number >= 1"
is_uint "$PORT" && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || usage_error "--port must be 1-65535, not '$PORT'"
[ -n "$BASE_IMAGE" ] || usage_error "--base-image must not be empty"
for s in $(printf '%s' "$STRATEGIES" | tr ',' ' '); do
  case "$s" in docker | venv | native) ;; *) usage_error "unknown strategy '$s' (use docker, venv, native)" ;; esac
done
[ -n "$(printf '%s' "$STRATEGIES" | tr -d ', ')" ] || usage_error "--strategies is empty"
[ -n "$TOKEN_SOURCE" ] || usage_error "no token: pass --token-stdin (token on the first line of stdin) or --token-file FILE"
[ -n "${HOME:-}" ] && [ -d "$HOME" ] || usage_error "HOME is not set to a directory"
if [ -n "$NODE_ARG" ]; then # a runtime the deployer shipped: first on PATH for the installer and the agent
  [ -x "$NODE_ARG" ] || usage_error "--node: '$NODE_ARG' is not an executable file"
  PATH=$(dirname "$NODE_ARG"):$PATH && export PATH
fi

BUNDLE_DIR=$(cd "$(dirname "$0")" && pwd) || usage_error "cannot find the bundle directory"
STATE_DIR=$HOME/.d8-agent
mkdir -p "$STATE_DIR" && chmod 700 "$STATE_DIR" || usage_error "cannot create $STATE_DIR"

# --- one installer at a time: the lock code lives in uninstall.sh (which also runs alone), read from it
have() { command -v "$1" >/dev/null 2>&1; }
LOCK_CODE=$(sed -n '/^# >>> installer lock$/,/^# <<< installer lock$/p' "$BUNDLE_DIR/uninstall.sh" 2>/dev/null)
[ -n "$LOCK_CODE" ] || usage_error "bundle $BUNDLE_DIR is incomplete: uninstall.sh (with its installer lock) is missing"
eval "$LOCK_CODE"
RUN_DIR=$STATE_DIR/agent-$PORT
TOKEN_FILE=$STATE_DIR/agent-token-$PORT
TLS_DIR=$STATE_DIR/tls-$PORT
PID_FILE=$STATE_DIR/agent-$PORT.pid
VENV_DIR=$STATE_DIR/venv
LOG_DIR=$STATE_DIR/logs
CONTAINER=d8-agent-$PORT
UNIT=d8-agent-$PORT.service

touch "$BUNDLE_DIR" 2>/dev/null # in use: see the pruning of older bundles below
if ! take_lock "install.sh --port $PORT"; then
  progress "error: another D8 installer still holds $LOCK after ${LOCK_WAIT}s: $(lock_holder_line "$LOCK")"
  result_and_exit 75
fi

for f in agent.js version_info.json requirements.txt Dockerfile; do
  [ -f "$BUNDLE_DIR/$f" ] || usage_error "bundle $BUNDLE_DIR is incomplete: $f is missing"
done
COMMIT=$(sed -n 's/.*"commit"[[:space:]]*:[[:space:]]*"\([0-9a-f]\{40\}\)".*/\1/p' "$BUNDLE_DIR/version_info.json" | head -n 1)
[ -n "$COMMIT" ] || usage_error "$BUNDLE_DIR/version_info.json has no 40-hex commit"
HASH=$(head -n 1 "$BUNDLE_DIR/BUNDLE_HASH" 2>/dev/null | cut -c1-16)
[ -n "$HASH" ] || HASH=$(printf '%s' "$COMMIT" | cut -c1-16)
IMAGE=d8-agent:$HASH

mkdir -p "$LOG_DIR" || usage_error "cannot create $LOG_DIR"

# --- the token -----------------------------------------------------------------------------------
if [ "$TOKEN_SOURCE" = stdin ]; then
  TOKEN=
  IFS= read -r TOKEN || [ -n "$TOKEN" ] || usage_error "--token-stdin: stdin was empty"
  TOKEN=$(printf '%s' "$TOKEN" | tr -d '\r')
  [ -n "$TOKEN" ] || usage_error "--token-stdin: the first line of stdin is empty"
  (umask 077 && printf '%s\n' "$TOKEN" >"$TOKEN_FILE.tmp") && mv -f "$TOKEN_FILE.tmp" "$TOKEN_FILE" ||
    usage_error "cannot write $TOKEN_FILE"
  unset TOKEN
else
  [ -r "$TOKEN_FILE_ARG" ] || usage_error "--token-file: cannot read '$TOKEN_FILE_ARG'"
  [ -s "$TOKEN_FILE_ARG" ] || usage_error "--token-file: '$TOKEN_FILE_ARG' is empty"
  if [ "$TOKEN_FILE_ARG" != "$TOKEN_FILE" ]; then
    (umask 077 && head -n 1 "$TOKEN_FILE_ARG" | tr -d '\r' >"$TOKEN_FILE.tmp") && mv -f "$TOKEN_FILE.tmp" "$TOKEN_FILE" ||
      usage_error "cannot write $TOKEN_FILE"
  fi
fi
chmod 600 "$TOKEN_FILE"

# --- helpers -------------------------------------------------------------------------------------
now_ms() {
  t=$(date +%s%N 2>/dev/null)
  case "$t" in *[!0-9]* | '') echo "$(($(date +%s) * 1000))" ;; *) echo "$((t / 1000000))" ;; esac
}

if [ -n "$TLS" ]; then HEALTH_URL=https://127.0.0.1:$PORT/api/health; else HEALTH_URL=http://127.0.0.1:$PORT/api/health; fi
# Prints the body of $1 or fails. https without certificate checks: only ever 127.0.0.1 on this host.
http_get() {
  if have curl; then curl -kfsS --max-time 3 "$1" 2>/dev/null
  elif have wget; then wget --no-check-certificate -qO- -T 3 "$1" 2>/dev/null
  elif have node; then node -e 'setTimeout(()=>process.exit(1),3000).unref();const u=process.argv[1];require(u.startsWith("https:")?"https":"http").get(u,{rejectUnauthorized:false},(r)=>{let b="";r.on("data",(d)=>b+=d);r.on("end",()=>{process.stdout.write(b);process.exit(r.statusCode===200?0:1)})}).on("error",()=>process.exit(1))' "$1" 2>/dev/null
  elif have python3; then python3 -c 'import ssl,sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=3,context=ssl._create_unverified_context()).read().decode())' "$1" 2>/dev/null
  else return 127
  fi
}

# Anything answering on the port, over either scheme (an older agent speaks plain HTTP).
port_answer() { http_get "https://127.0.0.1:$PORT/api/health" || http_get "http://127.0.0.1:$PORT/api/health"; }

# The fingerprint the agent wrote beside its certificate (it makes the pair on its first start).
read_tls_fingerprint() {
  fp=$(head -n 1 "$TLS_DIR/agent-cert.sha256" 2>/dev/null | tr -d '\r')
  printf '%s' "$fp" | grep -Eq '^[0-9A-F]{2}(:[0-9A-F]{2}){31}$' || return 1
  printf '%s' "$fp"
}

json_has() { # $1 = body, $2 = key, $3 = string value
  printf '%s' "$1" | grep -Eq "\"$2\"[[:space:]]*:[[:space:]]*\"$3\""
}

node_ok() {
  if ! have node; then
    for d in $(printf '%s' "$PATH" | tr ':' ' '); do
      [ -e "$d/node" ] && { echo "$d/node exists but is not executable by $(id -un)"; return 1; }
    done
    echo "node is not on PATH ($PATH)"
    return 1
  fi
  v=$(node -e 'process.stdout.write(process.versions.node)' 2>&1) || { echo "node does not run: $v"; return 1; }
  major=${v%%.*}
  is_uint "$major" && [ "$major" -ge 18 ] || { echo "node $v is too old: the agent needs node >= 18"; return 1; }
  NODE=$(command -v node)
}

has_requirements() { grep -q '^[[:space:]]*[^#[:space:]]' "$BUNDLE_DIR/requirements.txt"; }

# --- supervision ---------------------------------------------------------------------------------
# In this order: a systemd system unit (root, or `sudo -n`), a systemd user unit with linger, a
# crontab @reboot entry plus setsid, setsid alone (not reboot-safe, warned). Every refusal is said on
# stdout (the attempt's log) and as a progress line, so its reason is never lost.
note() { echo "$*"; progress "$*"; }

sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# Runs "$@" as root: directly when we are root, else through passwordless sudo.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# Why a system unit cannot be used (prints the reason), or nothing when it can.
system_unit_refusal() {
  [ -d /run/systemd/system ] && have systemctl || { echo "systemd is not the init system here (no /run/systemd/system)"; return; }
  [ "$(id -u)" -eq 0 ] && return
  have sudo || { echo "not root, and sudo is not installed"; return; }
  out=$(sudo -n true 2>&1) || echo "not root, and 'sudo -n' is refused: $(printf '%s' "$out" | tail -n 1)"
}

# Why a user unit cannot be used, or nothing when it can (enables linger when it is off).
user_unit_refusal() {
  have systemctl || { echo "systemctl is not installed"; return; }
  out=$(systemctl --user show-environment 2>&1 >/dev/null) || { echo "no systemd user manager for $(id -un): $(printf '%s' "$out" | tail -n 1)"; return; }
  have loginctl || { echo "loginctl is not installed, so linger cannot be enabled (the agent would stop at logout)"; return; }
  me=$(id -un)
  [ "$(loginctl show-user "$me" -p Linger --value 2>/dev/null)" = yes ] && return
  # Without lingering, the user's systemd (and the agent with it) stops when the SSH session ends.
  if out=$(loginctl enable-linger "$me" 2>&1); then
    echo loginctl >"$STATE_DIR/linger-enabled"
    note "supervisor: enabled linger for $me (loginctl enable-linger)" >&2
    return
  fi
  why="'loginctl enable-linger $me' was refused: $(printf '%s' "$out" | tail -n 1)"
  if have sudo && out=$(sudo -n loginctl enable-linger "$me" 2>&1); then
    echo sudo >"$STATE_DIR/linger-enabled"
    note "supervisor: $why; enabled linger with sudo -n instead" >&2
    return
  fi
  have sudo && why="$why; 'sudo -n loginctl enable-linger' too: $(printf '%s' "$out" | tail -n 1)"
  echo "$why"
}

# Why a crontab @reboot entry cannot be used, or nothing when it can.
cron_refusal() {
  have crontab || { echo "crontab is not installed"; return; }
  cat /proc/[0-9]*/comm 2>/dev/null | grep -Eqx 'cron|crond' || { echo "no cron daemon is running (an @reboot entry would never run)"; return; }
  out=$(crontab -l 2>&1) || case "$out" in *"no crontab"*) ;; *) echo "crontab -l failed: $(printf '%s' "$out" | tail -n 1)"; return ;; esac
}

CRON_MARK="# d8-agent-$PORT"
remove_cron_line() {
  have crontab || return 0
  cur=$(crontab -l 2>/dev/null) || return 0
  printf '%s\n' "$cur" | grep -qF "$CRON_MARK" || return 0
  printf '%s\n' "$cur" | grep -vF "$CRON_MARK" | crontab -
}

# The agent's whole environment, one NAME=value per line: nothing else of the caller's reaches it.
# $1 = strategy, $2 = python, $3 = supervisor
agent_env() {
  printf '%s\n' "PATH=$PATH" "HOME=$HOME" "LANG=${LANG:-C.UTF-8}" "USER=$(id -un)" "LOGNAME=$(id -un)" \
    "D8_AGENT_PORT=$PORT" "D8_AGENT_TOKEN_FILE=$TOKEN_FILE" "D8_INSTALL_STRATEGY=$1" "D8_SUPERVISOR=$3" \
    "D8_VERSION_FILE=$RUN_DIR/version_info.json" "D8_PYTHON=$2" "D8_VENV_DIR=$VENV_DIR" "D8_LOG_FILE=$RUN_DIR/agent.log"
  [ -n "$TLS" ] && printf '%s\n' "D8_TLS_DIR=$TLS_DIR"
  # A rootless docker engine is found through these (the docker execution method).
  [ -n "${DOCKER_HOST:-}" ] && printf '%s\n' "DOCKER_HOST=$DOCKER_HOST"
  [ -n "${XDG_RUNTIME_DIR:-}" ] && printf '%s\n' "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
  return 0
}

# The agent's command, written once: setsid and cron both run it, through env -i (agent_env only).
write_runner() { # $1 = strategy, $2 = python, $3 = supervisor
  {
    printf '#!/bin/sh\n# Starts the D8 agent on port %s (%s strategy, supervisor %s). Written by install.sh.\n' "$PORT" "$1" "$3"
    # Written whole (a temp file renamed): a reader never sees it empty.
    printf 'echo $$ >%s.$$ && mv -f %s.$$ %s\n' "$(sq "$PID_FILE")" "$(sq "$PID_FILE")" "$(sq "$PID_FILE")"
    printf 'exec env -i'
    agent_env "$@" | while IFS= read -r kv; do printf ' \\\n  %s' "$(sq "$kv")"; done
    # The agent writes agent.log itself, capped (D8_LOG_FILE); agent.out holds only what node prints
    # before or instead of logging (a crash), and starts empty at each start.
    printf ' \\\n  %s %s </dev/null >%s 2>&1\n' "$(sq "$NODE")" "$(sq "$RUN_DIR/agent.js")" "$(sq "$RUN_DIR/agent.out")"
  } >"$RUN_DIR/run.sh"
}

systemd_system_ok() { [ -d /run/systemd/system ] && have systemctl && { [ "$(id -u)" -eq 0 ] || { have sudo && sudo -n true 2>/dev/null; }; }; }

# The agent's own files live outside the bundle (which is pruned on the next deploy).
prepare_run_dir() {
  rm -rf "$RUN_DIR" && mkdir -p "$RUN_DIR" &&
    cp "$BUNDLE_DIR/agent.js" "$BUNDLE_DIR/version_info.json" "$BUNDLE_DIR/requirements.txt" "$RUN_DIR/"
}

pid_is_agent() { # $1 = pid
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/cmdline" ] || return 0
  # run.sh too: between its start and its exec of node (a check there must not call the agent dead).
  tr '\000' ' ' <"/proc/$1/cmdline" | grep -Eq "agent-$PORT/(agent\.js|run\.sh)"
}

# Pids running this port's agent.js from our state directory. After POST /api/restart a detached
# agent is a new process the pid file does not name, so the pid file alone is not enough.
# (grep lists itself too; it has exited by the time stop_pid checks that pid.)
agent_pids_by_path() {
  grep -lF -e "$RUN_DIR/agent.js" -e "$RUN_DIR/run.sh" /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's#^/proc/\([0-9]*\)/cmdline$#\1#p'
}

stop_pid() { # $1 = pid
  pid_is_agent "$1" || return 0
  # CONT too: a stopped (hung) agent would hold TERM pending and the port for the whole grace period.
  kill -TERM "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
  kill -CONT "-$1" 2>/dev/null || kill -CONT "$1" 2>/dev/null
  i=0
  while pid_is_agent "$1" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  pid_is_agent "$1" && { kill -KILL "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null; }
  return 0
}

stop_pidfile_agent() {
  [ -f "$PID_FILE" ] && stop_pid "$(cat "$PID_FILE" 2>/dev/null)"
  for pid in $(agent_pids_by_path); do stop_pid "$pid"; done
  rm -f "$PID_FILE"
}

stop_user_unit() {
  [ -f "$HOME/.config/systemd/user/$UNIT" ] || return 0
  systemctl --user disable --now "$UNIT" >/dev/null 2>&1
  rm -f "$HOME/.config/systemd/user/$UNIT"
  systemctl --user daemon-reload >/dev/null 2>&1
  return 0
}

stop_system_unit() {
  [ -f "/etc/systemd/system/$UNIT" ] && systemd_system_ok || return 0
  as_root systemctl disable --now "$UNIT" >/dev/null 2>&1
  as_root rm -f "/etc/systemd/system/$UNIT"
  as_root systemctl daemon-reload >/dev/null 2>&1
  return 0
}

stop_cron_agent() {
  remove_cron_line
  stop_pidfile_agent
}

docker_usable() { have docker && docker info >/dev/null 2>&1; }

stop_container() {
  docker_usable || return 0
  docker rm -f "$CONTAINER" >/dev/null 2>&1
  return 0
}

# Starts run.sh detached: own session, all three fds redirected, fd 3 closed. run.sh records the pid.
start_detached() {
  : >"$RUN_DIR/agent.log"
  setsid sh "$RUN_DIR/run.sh" </dev/null >"$RUN_DIR/agent.out" 2>&1 3>&- 9>&- &
  STARTED_PID=$!
  echo "$STARTED_PID" >"$PID_FILE.$$" && mv -f "$PID_FILE.$$" "$PID_FILE"
}

write_unit() { # $1 = file, $2 = strategy, $3 = python, $4 = WantedBy, $5 = supervisor, $6 = extra [Service] line
  # Quoted for systemd: % is a specifier, \ and " escape.
  unit_env=$(agent_env "$2" "$3" "$5" | sed -e 's/%/%%/g' -e 's/[\\"]/\\&/g' -e 's/^/Environment="/' -e 's/$/"/')
  cat >"$1" <<EOF
[Unit]
Description=D8 Fleet agent on port $PORT ($2 strategy)
After=network-online.target

[Service]
$6
ExecStart=$NODE $RUN_DIR/agent.js
$unit_env
WorkingDirectory=$RUN_DIR
Restart=always
RestartSec=3
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=$4
EOF
}

# Runs the agent for strategy $1 with python $2 under the best supervisor this host allows.
launch_agent() {
  why=$(system_unit_refusal)
  if [ -z "$why" ]; then
    note "supervisor: systemd system unit $UNIT (runs as $(id -un))"
    if write_unit "$STATE_DIR/$UNIT" "$1" "$2" multi-user.target system-unit "User=$(id -un)" &&
      as_root install -m 644 "$STATE_DIR/$UNIT" "/etc/systemd/system/$UNIT" && rm -f "$STATE_DIR/$UNIT" &&
      as_root systemctl daemon-reload && as_root systemctl enable --now "$UNIT" 3>&-; then
      SUPERVISOR=system-unit
      return 0
    fi
    rm -f "$STATE_DIR/$UNIT"
    stop_system_unit
    note "supervisor: the system unit failed to start (see above); trying the next supervisor"
  else
    note "supervisor: no system unit: $why"
  fi
  why=$(user_unit_refusal)
  if [ -z "$why" ]; then
    note "supervisor: systemd user unit $UNIT with linger"
    if mkdir -p "$HOME/.config/systemd/user" && write_unit "$HOME/.config/systemd/user/$UNIT" "$1" "$2" default.target user-unit "" &&
      systemctl --user daemon-reload && systemctl --user enable --now "$UNIT" 3>&-; then
      SUPERVISOR=user-unit
      return 0
    fi
    stop_user_unit
    note "supervisor: the user unit failed to start (see above); trying the next supervisor"
  else
    note "supervisor: no user unit: $why"
  fi
  why=$(cron_refusal)
  if [ -z "$why" ]; then
    note "supervisor: crontab @reboot entry, started now with setsid"
    write_runner "$1" "$2" cron
    remove_cron_line
    if (crontab -l 2>/dev/null; echo "@reboot sh $(sq "$RUN_DIR/run.sh") $CRON_MARK") | crontab -; then
      start_detached
      SUPERVISOR=cron
      return 0
    fi
    note "supervisor: writing the crontab failed (see above)"
  else
    note "supervisor: no cron: $why"
  fi
  if [ "$(id -u)" -eq 0 ]; then fix="run systemd as init, or install cron and run its daemon"
  else fix="give $(id -un) passwordless sudo, install polkit (so logind allows linger), or install cron"; fi
  note "warning: the agent runs under setsid only and will NOT come back after a reboot; for reboot safety $fix"
  write_runner "$1" "$2" setsid
  start_detached
  SUPERVISOR=setsid
}

# Our own child: running and not a zombie. Not pid_is_agent: /proc/PID/cmdline reads empty for an
# instant while run.sh execs env and node, which would call a starting agent dead.
proc_alive() { # $1 = pid
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  st=${st##*) }
  [ "${st%% *}" != Z ]
}

# Is the agent we just started still alive? (a crashed agent fails the attempt at once)
agent_alive() { # $1 = strategy
  case "$SUPERVISOR" in
    docker) [ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ] ;;
    user-unit) case "$(systemctl --user show -p ActiveState --value "$UNIT" 2>/dev/null)" in active | activating) ;; *) return 1 ;; esac ;;
    system-unit) case "$(systemctl show -p ActiveState --value "$UNIT" 2>/dev/null)" in active | activating) ;; *) return 1 ;; esac ;;
    # The pid we started, not the pid file: run.sh rewrites that file as it starts, and a read in
    # between could find it empty and call a starting agent dead.
    setsid | cron) proc_alive "${STARTED_PID:-$(cat "$PID_FILE" 2>/dev/null)}" ;;
    *) return 0 ;;
  esac
}

agent_log_tail() {
  case "$SUPERVISOR" in
    docker) docker logs --tail 20 "$CONTAINER" 2>&1 ;;
    user-unit) tail -n 20 "$RUN_DIR/agent.log" 2>/dev/null; journalctl --user -u "$UNIT" -n 10 --no-pager 2>/dev/null ;;
    system-unit) tail -n 20 "$RUN_DIR/agent.log" 2>/dev/null; journalctl -u "$UNIT" -n 10 --no-pager 2>/dev/null ;;
    *) tail -n 20 "$RUN_DIR/agent.log" 2>/dev/null; tail -n 10 "$RUN_DIR/agent.out" 2>/dev/null ;;
  esac
}

wait_health() { # $1 = strategy
  deadline=$(($(date +%s) + HEALTH_TIMEOUT))
  body=
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if body=$(http_get "$HEALTH_URL"); then
      if json_has "$body" commit "$COMMIT" && json_has "$body" install_strategy "$1"; then
        echo "health: $HEALTH_URL reports commit $COMMIT, install_strategy $1"
        [ -z "$TLS" ] && return 0
        if TLS_FP=$(read_tls_fingerprint); then echo "tls: certificate sha256 $TLS_FP"; return 0; fi
        TLS_FP=
        echo "the agent serves HTTPS but $TLS_DIR/agent-cert.sha256 holds no fingerprint"
        return 1
      fi
    fi
    if ! agent_alive "$1"; then
      echo "the agent exited during startup; its last output:"
      agent_log_tail
      return 1
    fi
    sleep 0.3
  done
  echo "timed out after ${HEALTH_TIMEOUT}s waiting for $HEALTH_URL to report commit $COMMIT ($1)"
  [ -n "$body" ] && echo "last answer: $(printf '%s' "$body" | cut -c1-400)"
  echo "agent output:"
  agent_log_tail
  return 1
}

# --- strategies ----------------------------------------------------------------------------------
# Exit code 127 means "not available on this host" (a tool is missing): retried like any failure,
# but without the delay, since waiting does not make a missing binary appear.

cleanup_docker() {
  stop_container
  [ "${1:-}" = failed ] && docker_usable && docker rmi -f "$IMAGE" >/dev/null 2>&1
  return 0
}

install_docker() {
  have docker || { echo "docker: not installed"; return 127; }
  out=$(docker info 2>&1 >/dev/null) || { echo "docker: the engine is not usable by $(id -un): $(printf '%s' "$out" | tail -n 2)"; return 127; }
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "base image $BASE_IMAGE is not on this host; trying to pull it"
    docker pull "$BASE_IMAGE" || {
      echo "docker: base image $BASE_IMAGE is not on this host and cannot be pulled here: d8 up ships it from the master when the master has it (its docker engine, or ~/.d8/images/); or load it yourself (docker save $BASE_IMAGE | ssh THIS-HOST docker load), or set d8:baseImage to an image with node >= 18 that this host has"
      return 127
    }
  fi
  progress "docker: building image $IMAGE from $BASE_IMAGE"
  docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$BUNDLE_DIR" || { echo "docker build failed"; return 1; }
  progress "docker: starting container $CONTAINER"
  TLS_MOUNT=
  [ -n "$TLS" ] && TLS_MOUNT="-v $TLS_DIR:/run/d8/tls -e D8_TLS_DIR=/run/d8/tls"
  SUPERVISOR=docker
  # The token file is mounted writable: a rotation (POST /api/token) rewrites it in place, so the
  # file stays this user's and 0600, and a restarted container comes back with the new token.
  # Capped like the agent's own file (json-file, 2 x 5 MB): docker's default keeps every line for ever.
  docker run -d --name "$CONTAINER" --restart unless-stopped --network host \
    --log-driver json-file --log-opt max-size=5m --log-opt max-file=2 \
    --label d8.agent=1 --label "d8.agent.port=$PORT" \
    -v "$TOKEN_FILE:/run/d8/agent-token" $TLS_MOUNT \
    -e D8_AGENT_TOKEN_FILE=/run/d8/agent-token -e "D8_AGENT_PORT=$PORT" -e D8_INSTALL_STRATEGY=docker \
    "$IMAGE" 3>&- || { echo "docker run failed"; return 1; }
}

cleanup_venv() {
  stop_system_unit
  stop_user_unit
  stop_cron_agent
  # A venv that failed to build is removed; a good one is kept, so a redeploy does not rebuild it.
  [ "${1:-}" = failed ] && [ ! -x "$VENV_DIR/bin/python" ] && rm -rf "$VENV_DIR"
  return 0
}

install_venv() {
  msg=$(node_ok) || { echo "venv: $msg"; return 127; }
  node_ok >/dev/null
  have python3 || { echo "venv: python3 is not on PATH"; return 127; }
  if ! "$VENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1; then
    progress "venv: creating $VENV_DIR"
    rm -rf "$VENV_DIR"
    python3 -m venv "$VENV_DIR" || { echo "venv: 'python3 -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"; rm -rf "$VENV_DIR"; return 1; }
  fi
  if has_requirements && ! cmp -s "$BUNDLE_DIR/requirements.txt" "$VENV_DIR/.d8-requirements"; then
    progress "venv: pip install -r requirements.txt"
    "$VENV_DIR/bin/python" -m pip install -r "$BUNDLE_DIR/requirements.txt" || { echo "venv: pip install failed"; return 1; }
    cp "$BUNDLE_DIR/requirements.txt" "$VENV_DIR/.d8-requirements"
  fi
  prepare_run_dir || { echo "venv: cannot write $RUN_DIR"; return 1; }
  progress "venv: starting the agent"
  launch_agent venv "$VENV_DIR/bin/python"
}

cleanup_native() {
  stop_system_unit
  stop_user_unit
  stop_cron_agent
  return 0
}

install_native() {
  msg=$(node_ok) || { echo "native: $msg"; return 127; }
  node_ok >/dev/null
  have python3 || { echo "native: python3 is not on PATH"; return 127; }
  PY=$(command -v python3)
  if has_requirements; then
    progress "native: pip install --user -r requirements.txt"
    if ! out=$(python3 -m pip install --user -r "$BUNDLE_DIR/requirements.txt" 2>&1); then
      echo "$out"
      # Debian 12+ marks the system python externally managed (PEP 668); native means we accept that.
      case "$out" in *externally-managed*)
        python3 -m pip install --user --break-system-packages -r "$BUNDLE_DIR/requirements.txt" || { echo "native: pip install --user failed"; return 1; } ;;
      *) echo "native: pip install --user failed"; return 1 ;;
      esac
    fi
  fi
  prepare_run_dir || { echo "native: cannot write $RUN_DIR"; return 1; }
  progress "native: starting the agent"
  launch_agent native "$PY"
}

# --- runtime cleanup -----------------------------------------------------------------------------
# Once the agent runs on a shipped runtime (--node under $STATE_DIR/runtime), the other runtime
# versions there go, unless a running process uses one or another agent's runner or unit names it.
prune_runtimes() {
  rt_root=$(cd "$STATE_DIR/runtime" 2>/dev/null && pwd) || return 0
  cur=$(cd "$(dirname "$NODE_ARG")/.." 2>/dev/null && pwd) || return 0
  [ "$(dirname "$cur")" = "$rt_root" ] || return 0
  for d in "$rt_root"/node-v*; do
    [ -d "$d" ] && [ "$d" != "$cur" ] || continue
    # grep's own argv names $d too: keep only pids still alive after it exited.
    users=
    for f in $(grep -lF "$d/" /proc/[0-9]*/cmdline 2>/dev/null); do
      pid=${f#/proc/}; pid=${pid%/cmdline}
      [ -d "/proc/$pid" ] && users="$users $pid"
    done
    if [ -n "$users" ]; then progress "runtime: keeping $(basename "$d"): running process(es)$users use it"; continue; fi
    refs=$(grep -lF "$d/" "$STATE_DIR"/agent-*/run.sh "$HOME"/.config/systemd/user/d8-agent-*.service /etc/systemd/system/d8-agent-*.service 2>/dev/null | tr '\n' ' ')
    if [ -n "$refs" ]; then progress "runtime: keeping $(basename "$d"): named by ${refs% }"; continue; fi
    rm -rf "$d" && progress "runtime: removed $(basename "$d") (the agent runs on $(basename "$cur"))"
  done
  return 0
}

stop_everything() {
  stop_container
  stop_system_unit
  stop_user_unit
  stop_cron_agent
}

# --- main ----------------------------------------------------------------------------------------
progress "bundle $HASH, commit $COMMIT, port $PORT, strategies $STRATEGIES, $ATTEMPTS attempt(s) each"
if [ -n "$TLS" ]; then
  mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR" || usage_error "cannot create $TLS_DIR"
fi
stop_everything

for s in $(printf '%s' "$STRATEGIES" | tr ',' ' '); do
  n=1
  while [ "$n" -le "$ATTEMPTS" ]; do
    progress "$s attempt $n/$ATTEMPTS: starting"
    # Per port: slaves sharing this HOME (one user, several agents) each keep their own attempt logs.
    log=$LOG_DIR/install-$PORT-$s-$n.log
    started=$(now_ms)
    SUPERVISOR=
    "cleanup_$s" >/dev/null 2>&1
    {
      if busy=$(port_answer); then
        echo "port $PORT is already in use by a process this installer did not start (it answers: $(printf '%s' "$busy" | cut -c1-160)): stop it, or give this slave another agentPort"
        rc=98
      else
        "install_$s"
        rc=$?
        [ "$rc" -eq 0 ] && { progress "$s attempt $n/$ATTEMPTS: waiting for /api/health"; wait_health "$s"; rc=$?; }
      fi
      echo "$rc" >"$log.rc"
    } >"$log" 2>&1
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    rm -f "$log.rc"
    secs=$(awk -v a="$started" -v b="$(now_ms)" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
    tail_json=$(tail -n 15 "$log" | cut -c1-300 | json_escape)
    [ -n "$ATTEMPTS_JSON" ] && ATTEMPTS_JSON="$ATTEMPTS_JSON,"
    if [ "$rc" -eq 0 ]; then
      ATTEMPTS_JSON="$ATTEMPTS_JSON{\"strategy\":\"$s\",\"attempt\":$n,\"ok\":true,\"exit_code\":0,\"stderr_tail\":\"$tail_json\",\"seconds\":$secs}"
      WINNER=$s
      progress "$s attempt $n/$ATTEMPTS: ok in ${secs}s: the agent answers on port $PORT"
      # Older bundles are no longer needed (the running agent has its own copy); one placed or
      # used in the last 10 minutes may belong to a deploy waiting for the lock, and stays.
      for d in "$STATE_DIR"/bundles/*; do
        [ -d "$d" ] && [ "$(cd "$d" && pwd)" != "$BUNDLE_DIR" ] && [ -n "$(find "$d" -prune -mmin +10 2>/dev/null)" ] && rm -rf "$d"
      done
      [ -n "$NODE_ARG" ] && prune_runtimes
      # A replace keeps images for the next install (uninstall.sh --stop-only): older agent images go
      # here, once this one runs (images another port's container uses are refused by docker and stay).
      if [ "$s" = docker ]; then
        for img in $(docker images --format '{{.Repository}}:{{.Tag}}' d8-agent); do
          [ "$img" != "$IMAGE" ] && docker rmi "$img" >/dev/null 2>&1
        done
      fi
      result_and_exit 0
    fi
    ATTEMPTS_JSON="$ATTEMPTS_JSON{\"strategy\":\"$s\",\"attempt\":$n,\"ok\":false,\"exit_code\":$rc,\"stderr_tail\":\"$tail_json\",\"seconds\":$secs}"
    progress "$s attempt $n/$ATTEMPTS: failed (exit $rc) after ${secs}s:"
    tail -n 3 "$log" | sed 's/^/[d8-install]   | /' >&3
    "cleanup_$s" failed >/dev/null 2>&1
    if [ "$n" -lt "$ATTEMPTS" ] && [ "$rc" -ne 127 ] && [ "$DELAY" -gt 0 ]; then
      progress "$s: retrying in ${DELAY}s"
      sleep "$DELAY"
    fi
    n=$((n + 1))
  done
done

progress "every strategy failed ($STRATEGIES): see the attempts above and $LOG_DIR"
result_and_exit 1
