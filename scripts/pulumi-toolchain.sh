#!/usr/bin/env bash
# Builds the Pulumi toolchain from Go modules (Pulumi's download servers are unreachable here):
#   pulumi                         github.com/pulumi/pulumi/pkg/v3/cmd/pulumi      @ the @pulumi/pulumi pin
#   pulumi-language-nodejs         the Node.js language host                        @ the same pin (see fallback)
#   pulumi-resource-pulumi-nodejs  dynamic-provider shim shipped in the sdk module  @ the same pin
#   pulumi-resource-command        github.com/pulumi/pulumi-command/provider        @ the @pulumi/command pin
# into ${XDG_CACHE_HOME:-$HOME/.cache}/d8/pulumi-<version>/ (bin/ + a PULUMI_HOME in home/).
# Parts the module proxy does not serve get a labelled substitute (docs/engine-tier.md): the language
# host from an older sdk release, the command provider from a D8 stand-in.
#
# Usage: scripts/pulumi-toolchain.sh [build|env|check|help]
#   build  (default) build what is missing; a warm cache takes seconds. Exit 1 if a part failed.
#   env    print shell exports:  eval "$(scripts/pulumi-toolchain.sh env)"   (--json: for programs)
#   check  exit 0 iff the toolchain is complete; otherwise print what is missing, exit 1.
#   versions  print what is in the cache and where each part came from.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# The Node.js language host became its own Go module after v3.68.0; the module proxy reachable here
# does not serve that module, so when it is missing we build the host from the last sdk/v3 release
# that still contained it. Override with D8_PULUMI_LANGHOST_FALLBACK=none to disable the fallback.
LANGHOST_FALLBACK_SDK=${D8_PULUMI_LANGHOST_FALLBACK:-v3.68.0}
# The command provider module is not served by the module proxy here either; when it cannot be
# built, a stand-in implementing what D8 Fleet uses (local/remote Command, CopyToRemote) is built
# from tests/engine/support/command-provider and installed under the provider's name and version.
# D8_PULUMI_COMMAND_STANDIN=0 disables that (the toolchain is then incomplete without the real one).
COMMAND_STANDIN=${D8_PULUMI_COMMAND_STANDIN:-1}
STANDIN_SRC=$REPO_ROOT/tests/engine/support/command-provider

die() { echo "pulumi-toolchain: $*" >&2; exit 1; }
say() { echo "pulumi-toolchain: $*" >&2; }

lock_version() {
  local pkg=$1
  [ -f "$REPO_ROOT/package-lock.json" ] || die "no package-lock.json in $REPO_ROOT"
  command -v node >/dev/null || die "node is required (reads package-lock.json, runs Pulumi programs)"
  node -e '
    const lock = require(process.argv[1]);
    const e = (lock.packages || {})["node_modules/" + process.argv[2]];
    if (!e || !e.version) { process.exit(3); }
    process.stdout.write(e.version);
  ' "$REPO_ROOT/package-lock.json" "$pkg" || die "package-lock.json pins no version of $pkg (run npm install)"
}

PULUMI_VERSION=$(lock_version @pulumi/pulumi)
COMMAND_VERSION=$(lock_version @pulumi/command)
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/d8/pulumi-$PULUMI_VERSION
BIN_DIR=$CACHE_DIR/bin
TOOLCHAIN_PULUMI_HOME=$CACHE_DIR/home
LOG_DIR=$CACHE_DIR/logs
MANIFEST=$CACHE_DIR/manifest.tsv # name <TAB> version <TAB> source module@version

print_env() {
  if [ "${1:-}" = --json ]; then
    node -e 'process.stdout.write(JSON.stringify({
      version: process.argv[1], commandVersion: process.argv[2], binDir: process.argv[3],
      env: { PULUMI_HOME: process.argv[4], PULUMI_SKIP_UPDATE_CHECK: "true",
             PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" } }) + "\n")' \
      "$PULUMI_VERSION" "$COMMAND_VERSION" "$BIN_DIR" "$TOOLCHAIN_PULUMI_HOME"
    return 0
  fi
  cat <<EOF
export PATH="$BIN_DIR:\$PATH"
export PULUMI_HOME="$TOOLCHAIN_PULUMI_HOME"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
EOF
}

manifest_get() { # name -> "version<TAB>source" or empty
  [ -f "$MANIFEST" ] || return 0
  awk -F'\t' -v n="$1" '$1 == n { print $2 "\t" $3 }' "$MANIFEST" | tail -n 1
}

manifest_put() { # name version source
  mkdir -p "$CACHE_DIR"
  local tmp
  tmp=$(mktemp "$CACHE_DIR/.manifest.XXXXXX")
  { [ -f "$MANIFEST" ] && awk -F'\t' -v n="$1" '$1 != n' "$MANIFEST"; printf '%s\t%s\t%s\n' "$1" "$2" "$3"; } > "$tmp"
  mv "$tmp" "$MANIFEST"
}

command_plugin_dir() { echo "$TOOLCHAIN_PULUMI_HOME/plugins/resource-command-v$COMMAND_VERSION"; }

# Prints one line per missing piece; returns 1 if anything is missing.
missing_parts() {
  local missing=0 got
  if [ ! -x "$BIN_DIR/pulumi" ]; then
    echo "pulumi CLI not built ($BIN_DIR/pulumi)"; missing=1
  else
    got=$("$BIN_DIR/pulumi" version 2>/dev/null || true)
    if [ "$got" != "v$PULUMI_VERSION" ]; then
      echo "pulumi CLI reports '${got:-nothing}', expected v$PULUMI_VERSION"; missing=1
    fi
  fi
  if [ ! -x "$BIN_DIR/pulumi-language-nodejs" ] || [ -z "$(manifest_get pulumi-language-nodejs)" ]; then
    echo "Node.js language host not built ($BIN_DIR/pulumi-language-nodejs)"; missing=1
  fi
  if [ ! -x "$BIN_DIR/pulumi-resource-pulumi-nodejs" ]; then
    echo "dynamic provider shim not installed ($BIN_DIR/pulumi-resource-pulumi-nodejs)"; missing=1
  fi
  local pdir
  pdir=$(command_plugin_dir)
  if [ ! -x "$pdir/pulumi-resource-command" ] || [ -e "$pdir.partial" ]; then
    echo "command provider v$COMMAND_VERSION not installed in PULUMI_HOME ($pdir)"; missing=1
  elif manifest_get pulumi-resource-command | grep -q 'STAND-IN'; then
    if [ "$COMMAND_STANDIN" = 0 ]; then
      echo "command provider v$COMMAND_VERSION is the D8 stand-in and D8_PULUMI_COMMAND_STANDIN=0"; missing=1
    elif ! manifest_get pulumi-resource-command | grep -q "$(standin_hash)"; then
      echo "command provider stand-in is stale ($STANDIN_SRC changed)"; missing=1
    fi
  fi
  return $missing
}

standin_hash() { cat "$STANDIN_SRC"/*.go 2>/dev/null | sha256sum | cut -c1-16; }

report_versions() {
  say "toolchain in $CACHE_DIR:"
  local n line
  for n in pulumi pulumi-language-nodejs pulumi-resource-pulumi-nodejs pulumi-resource-command; do
    line=$(manifest_get "$n")
    if [ -n "$line" ]; then
      printf '  %-30s %s\n' "$n" "$(printf '%s' "$line" | tr '\t' ' ' | sed 's/ / (from /; s/$/)/')" >&2
    else
      printf '  %-30s %s\n' "$n" "MISSING" >&2
    fi
  done
  [ -x "$BIN_DIR/pulumi" ] && say "pulumi version: $("$BIN_DIR/pulumi" version 2>&1 || true)"
  return 0
}

# ---- Go build helpers -------------------------------------------------------------------------

go_env_setup() {
  command -v go >/dev/null || die "go is required (Go >= the version the pulumi module declares); apt or golang.org tarball"
  export GOTOOLCHAIN=local      # a toolchain download would fail here; say so instead
  export CGO_ENABLED=0
  export GOFLAGS="-trimpath -mod=mod -buildvcs=false"
  # The checksum database reachable here has no record of some pulumi module versions (e.g.
  # pkg/v3); those are taken from the module proxy as served. Everything else is verified.
  export GONOSUMDB=${GONOSUMDB:-github.com/pulumi/pulumi/pkg}
  export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
}

# go mod download module@version; on success prints the path of its go.mod; on failure prints the
# go error on stderr and returns 1.
go_download_mod() {
  local modver=$1 json err
  json=$(cd "$WORK" && go mod download -json "$modver" 2>&1) || true
  err=$(printf '%s' "$json" | node -e '
    let s = require("fs").readFileSync(0, "utf8");
    try { const j = JSON.parse(s); if (j.Error) { console.log(j.Error); } else if (!j.GoMod) { console.log("no go.mod reported"); } }
    catch { console.log(s.trim()); }')
  if [ -n "$err" ]; then
    echo "$err" >&2
    return 1
  fi
  printf '%s' "$json" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).GoMod)'
}

# Writes a wrapper module in $1 requiring module@version with the upstream go.mod's non-local
# replace directives repeated (go install refuses modules that carry replaces).
write_wrapper() {
  local dir=$1 module=$2 version=$3 upstream_gomod=$4 pkg=$5
  mkdir -p "$dir"
  local go_directive replaces
  go_directive=$(go mod edit -json "$upstream_gomod" | node -e '
    const j = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(j.Go || "1.21")')
  replaces=$(go mod edit -json "$upstream_gomod" | node -e '
    const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const isLocal = (p) => p.startsWith("./") || p.startsWith("../") || p.startsWith("/");
    for (const r of j.Replace || []) {
      if (isLocal(r.New.Path)) continue;
      const oldSpec = r.Old.Version ? `${r.Old.Path}@${r.Old.Version}` : r.Old.Path;
      console.log(`-replace=${oldSpec}=${r.New.Path}@${r.New.Version}`);
    }')
  printf 'module d8.local/pulumi-toolchain/%s\n\ngo %s\n' "$(basename "$dir")" "$go_directive" > "$dir/go.mod"
  if [ -n "$pkg" ]; then
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > "$dir/tools.go"
  fi
  # shellcheck disable=SC2086
  (cd "$dir" && go mod edit -require="$module@$version" $replaces)
  if [ -n "$replaces" ]; then
    say "  repeating upstream replaces: $(echo $replaces | sed 's/-replace=//g')"
  fi
}

# build_go_binary name dir pkg out ldflags log
build_go_binary() {
  local name=$1 dir=$2 pkg=$3 out=$4 ldflags=$5 log=$6
  local start=$SECONDS
  say "  resolving dependencies of $pkg (log: $log)"
  # Not `go get pkg`: that queries the proxy for every path prefix of pkg as a module, and this
  # proxy answers 403 (fatal for go) instead of 404 for modules it does not serve.
  if ! (cd "$dir" && go list -deps -f '' "$pkg") >> "$log" 2>&1; then
    return 1
  fi
  say "  compiling $name (go build -p 2; a cold build takes many minutes on 2 cores)"
  if ! (cd "$dir" && go build -p 2 -ldflags "$ldflags" -o "$out.tmp" "$pkg") >> "$log" 2>&1; then
    rm -f "$out.tmp"
    return 1
  fi
  mv "$out.tmp" "$out"
  say "  built $name in $((SECONDS - start))s ($(du -h "$out" | cut -f1))"
}

fail_part() { # name module@version log reason
  FAILED+=("$1")
  say "FAILED: $1 — module $2"
  if [ -s "$3" ]; then
    grep -v '^go: downloading ' "$3" | tail -n 15 | sed 's/^/    /' >&2
  fi
  [ -n "${4:-}" ] && echo "    $4" >&2
  return 0
}

# ---- the parts --------------------------------------------------------------------------------

build_cli() {
  local mod=github.com/pulumi/pulumi/pkg/v3 ver=v$PULUMI_VERSION log=$LOG_DIR/pulumi.log
  local got
  got=$("$BIN_DIR/pulumi" version 2>/dev/null || true)
  if [ "$got" = "$ver" ]; then say "pulumi $ver: cached"; return 0; fi
  say "pulumi $ver: building from $mod"
  : > "$log"
  local gomod
  if ! gomod=$(go_download_mod "$mod@$ver" 2>>"$log"); then fail_part pulumi "$mod@$ver" "$log"; return 0; fi
  write_wrapper "$WORK/cli" "$mod" "$ver" "$gomod" "$mod/cmd/pulumi"
  if ! build_go_binary pulumi "$WORK/cli" "$mod/cmd/pulumi" "$BIN_DIR/pulumi" \
    "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$ver" "$log"; then
    fail_part pulumi "$mod@$ver" "$log"; return 0
  fi
  got=$("$BIN_DIR/pulumi" version 2>&1 || true)
  if [ "$got" != "$ver" ]; then
    fail_part pulumi "$mod@$ver" "$log" "built binary reports '$got', expected $ver (version ldflag not applied?)"
    return 0
  fi
  manifest_put pulumi "$ver" "$mod@$ver"
}

build_langhost() {
  local ver=v$PULUMI_VERSION log=$LOG_DIR/pulumi-language-nodejs.log
  if [ -x "$BIN_DIR/pulumi-language-nodejs" ] && [ -n "$(manifest_get pulumi-language-nodejs)" ]; then
    say "pulumi-language-nodejs: cached ($(manifest_get pulumi-language-nodejs | cut -f1))"; return 0
  fi
  : > "$log"
  local mod=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 pkg built_ver gomod
  say "pulumi-language-nodejs $ver: building from $mod"
  if gomod=$(go_download_mod "$mod@$ver" 2>>"$log"); then
    pkg=$mod; built_ver=$ver
  else
    if [ "$LANGHOST_FALLBACK_SDK" = none ]; then
      fail_part pulumi-language-nodejs "$mod@$ver" "$log"; return 0
    fi
    say "  WARNING: $mod@$ver is not available from the module proxy:"
    sed 's/^/    /' "$log" >&2
    : > "$log"
    mod=github.com/pulumi/pulumi/sdk/v3
    pkg=$mod/nodejs/cmd/pulumi-language-nodejs
    built_ver=$LANGHOST_FALLBACK_SDK
    say "  falling back to $pkg@$built_ver (the language host as it was in that sdk release; older than the CLI)"
    if ! gomod=$(go_download_mod "$mod@$built_ver" 2>>"$log"); then
      fail_part pulumi-language-nodejs "$mod@$built_ver" "$log"; return 0
    fi
  fi
  write_wrapper "$WORK/langhost" "$mod" "$built_ver" "$gomod" "$pkg"
  if ! build_go_binary pulumi-language-nodejs "$WORK/langhost" "$pkg" "$BIN_DIR/pulumi-language-nodejs" \
    "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$built_ver" "$log"; then
    fail_part pulumi-language-nodejs "$mod@$built_ver" "$log"; return 0
  fi
  manifest_put pulumi-language-nodejs "$built_ver" "$mod@$built_ver"
}

install_dynamic_provider_shim() {
  local mod=github.com/pulumi/pulumi/sdk/v3 ver=v$PULUMI_VERSION log=$LOG_DIR/pulumi-resource-pulumi-nodejs.log
  if [ -x "$BIN_DIR/pulumi-resource-pulumi-nodejs" ] && [ -n "$(manifest_get pulumi-resource-pulumi-nodejs)" ]; then
    say "pulumi-resource-pulumi-nodejs: cached"; return 0
  fi
  : > "$log"
  local gomod dir
  if ! gomod=$(go_download_mod "$mod@$ver" 2>>"$log"); then
    fail_part pulumi-resource-pulumi-nodejs "$mod@$ver" "$log"; return 0
  fi
  # go mod download -json reports the cached go.mod; the extracted module lives in GOMODCACHE.
  dir="$(go env GOMODCACHE)/$mod@$ver"
  if [ ! -f "$dir/nodejs/dist/pulumi-resource-pulumi-nodejs" ]; then
    fail_part pulumi-resource-pulumi-nodejs "$mod@$ver" "$log" "no nodejs/dist/pulumi-resource-pulumi-nodejs in $dir"
    return 0
  fi
  install -m 0755 "$dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$BIN_DIR/pulumi-resource-pulumi-nodejs"
  manifest_put pulumi-resource-pulumi-nodejs "$ver" "$mod@$ver (nodejs/dist)"
  say "pulumi-resource-pulumi-nodejs: installed from $mod@$ver"
}

build_command_provider() {
  local ver=v$COMMAND_VERSION log=$LOG_DIR/pulumi-resource-command.log
  local mod=github.com/pulumi/pulumi-command/provider pdir
  pdir=$(command_plugin_dir)
  local cached
  cached=$(manifest_get pulumi-resource-command)
  if [ -x "$pdir/pulumi-resource-command" ] && [ ! -e "$pdir.partial" ]; then
    if ! printf '%s' "$cached" | grep -q 'STAND-IN'; then
      say "pulumi-resource-command $ver: cached (plugin in $pdir)"; return 0
    elif [ "$COMMAND_STANDIN" != 0 ] && printf '%s' "$cached" | grep -q "$(standin_hash)"; then
      say "pulumi-resource-command $ver: cached D8 STAND-IN (plugin in $pdir)"; return 0
    fi
  fi
  : > "$log"
  say "pulumi-resource-command $ver: building from $mod"
  local gomod out=$CACHE_DIR/build/pulumi-resource-command source="$mod@$ver"
  mkdir -p "$(dirname "$out")"
  if gomod=$(go_download_mod "$mod@$ver" 2>>"$log"); then
    write_wrapper "$WORK/command" "$mod" "$ver" "$gomod" "$mod/cmd/pulumi-resource-command"
    if ! build_go_binary pulumi-resource-command "$WORK/command" "$mod/cmd/pulumi-resource-command" "$out" \
      "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$ver" "$log"; then
      fail_part pulumi-resource-command "$mod@$ver" "$log"; return 0
    fi
  else
    local why="the provider module has no release of its own: the repository's tag $ver belongs to github.com/pulumi/pulumi-command, which does not contain it, and no other version of $mod is served by the module proxy here"
    if [ "$COMMAND_STANDIN" = 0 ]; then
      fail_part pulumi-resource-command "$mod@$ver" "$log" "$why"; return 0
    fi
    say "  WARNING: $mod@$ver cannot be built here:"
    grep -v '^go: downloading ' "$log" | sed 's/^/    /' >&2
    echo "    $why" >&2
    say "  building the D8 STAND-IN from ${STANDIN_SRC#"$REPO_ROOT"/} instead (local/remote Command, CopyToRemote)"
    : > "$log"
    local pkgmod=github.com/pulumi/pulumi/pkg/v3
    if ! gomod=$(go_download_mod "$pkgmod@v$PULUMI_VERSION" 2>>"$log"); then
      fail_part pulumi-resource-command "$pkgmod@v$PULUMI_VERSION" "$log"; return 0
    fi
    write_wrapper "$WORK/command-standin" "$pkgmod" "v$PULUMI_VERSION" "$gomod" ""
    cp "$STANDIN_SRC"/*.go "$WORK/command-standin/"
    # The SFTP client the real provider v1.2.1 copies with (its go.mod pins this version).
    (cd "$WORK/command-standin" && go mod edit -require=github.com/pkg/sftp@v1.13.6)
    if ! build_go_binary "pulumi-resource-command (stand-in)" "$WORK/command-standin" . "$out" \
      "-s -w -X main.version=$COMMAND_VERSION" "$log"; then
      fail_part pulumi-resource-command "stand-in ($STANDIN_SRC)" "$log"; return 0
    fi
    source="D8 STAND-IN ${STANDIN_SRC#"$REPO_ROOT"/} sha:$(standin_hash) (the real $mod@$ver is not available)"
  fi
  if [ ! -x "$BIN_DIR/pulumi" ]; then
    fail_part pulumi-resource-command "$mod@$ver" "$log" "built, but cannot install it without the pulumi CLI"
    return 0
  fi
  if ! PULUMI_HOME=$TOOLCHAIN_PULUMI_HOME PULUMI_SKIP_UPDATE_CHECK=true \
    "$BIN_DIR/pulumi" plugin install resource command "$COMMAND_VERSION" --file "$out" --reinstall >> "$log" 2>&1; then
    fail_part pulumi-resource-command "$mod@$ver" "$log" "pulumi plugin install failed"
    return 0
  fi
  rm -f "$out" # pulumi plugin install copied it into PULUMI_HOME
  manifest_put pulumi-resource-command "$ver" "$source"
}

do_build() {
  go_env_setup
  mkdir -p "$BIN_DIR" "$TOOLCHAIN_PULUMI_HOME" "$LOG_DIR"
  command -v flock >/dev/null || die "flock (util-linux) is required"
  exec 9>"$CACHE_DIR/.lock"
  if ! flock -n 9; then
    say "another build holds $CACHE_DIR/.lock; waiting for it"
    flock 9
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/d8-pulumi-toolchain.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  FAILED=()
  local start=$SECONDS
  say "building Pulumi $PULUMI_VERSION toolchain (command provider $COMMAND_VERSION) with $(go version | cut -d' ' -f3)"
  build_cli
  build_langhost
  install_dynamic_provider_shim
  build_command_provider
  say "done in $((SECONDS - start))s; cache uses $(du -sh "$CACHE_DIR" | cut -f1)"
  report_versions
  if [ ${#FAILED[@]} -gt 0 ]; then
    say "INCOMPLETE: failed to build: ${FAILED[*]} (logs in $LOG_DIR)"
    exit 1
  fi
  say "complete. Use it with:  eval \"\$(scripts/pulumi-toolchain.sh env)\""
}

case "${1:-build}" in
  build) do_build ;;
  env) print_env "${2:-}" ;;
  check)
    if out=$(missing_parts); then
      echo "pulumi toolchain $PULUMI_VERSION complete in $CACHE_DIR"
      if manifest_get pulumi-resource-command | grep -q 'STAND-IN'; then
        echo "note: pulumi-resource-command is the D8 stand-in (tests/engine/support/command-provider)"
      fi
      if [ "$(manifest_get pulumi-language-nodejs | cut -f1)" != "v$PULUMI_VERSION" ]; then
        echo "note: pulumi-language-nodejs is $(manifest_get pulumi-language-nodejs | cut -f2)"
      fi
    else
      printf '%s\n' "$out"
      exit 1
    fi
    ;;
  versions) report_versions ;;
  help | -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" ;;
  *) die "unknown subcommand '$1' (build, env, check, versions, help)" ;;
esac
