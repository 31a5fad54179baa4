/**
 * The probe: one POSIX sh command run on the host (over the deploy's SSH session, or `sh -c` for
 * `host: local`). It only reads: it writes nothing, so a refused host is left exactly as it was.
 * Output: `key=value` lines (master/deploy/probe/parse.ts reads them).
 */
export const PROBE_SCRIPT = String.raw`
p() { printf '%s=%s\n' "$1" "$(printf '%s' "$2" | head -n 1 | tr -d '\r')"; }
have() { command -v "$1" >/dev/null 2>&1; }
yn() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
lim() { if have timeout; then timeout 10 "$@"; else "$@"; fi; }
p user "$(id -un 2>/dev/null)"
p uid "$(id -u 2>/dev/null)"
p home "$HOME"
p os "$( (. /etc/os-release && printf '%s' "$PRETTY_NAME") 2>/dev/null)"
p kernel "$(uname -s 2>/dev/null)"
p machine "$(uname -m 2>/dev/null)"
p long_bit "$(getconf LONG_BIT 2>/dev/null)"
p glibc "$(getconf GNU_LIBC_VERSION 2>/dev/null)"
p ldd "$(ldd --version 2>&1 | head -n 2 | tr '\n' ' ')"
p free_kib "$(df -Pk "$HOME" 2>/dev/null | awk 'NR == 2 { print $4 }')"
p systemd_system "$([ -d /run/systemd/system ] && echo yes || echo no)"
p systemd_user "$(have systemctl && yn systemctl --user show-environment || echo no)"
p linger "$(have loginctl && loginctl show-user "$(id -un)" -p Linger --value 2>/dev/null)"
p sudo "$(have sudo && yn sudo -n true || echo no)"
p docker "$(command -v docker)"
if have docker; then d=$(lim docker info --format '{{.ServerVersion}}' 2>&1); p docker_rc $?; p docker_info "$(printf '%s' "$d" | tail -n 1)"; fi
p python3 "$(command -v python3)"
if have python3; then
  py=$(python3 -c 'import platform; print(platform.python_version())
try:
    import venv, ensurepip; print("yes")
except Exception:
    print("no")' 2>&1)
  p python_version "$py"; p python_venv "$(printf '%s\n' "$py" | sed -n 2p)"
fi
p node "$(command -v node)"
if have node; then v=$(node -e 'process.stdout.write(process.version)' 2>&1); rc=$?; p node_version "$v"; p node_rc "$rc"
else for d in $(printf '%s' "$PATH" | tr ':' ' '); do [ -e "$d/node" ] && { p node_shadow "$d/node"; break; }; done; fi
for t in curl wget tar gzip xz sha256sum shasum openssl; do p "tool_$t" "$(command -v "$t")"; done
echo probe_done=1
`;
