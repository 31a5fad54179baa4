#!/usr/bin/env bash
# `npm test`: every tier, in two phases. First the tiers that share no machine state (unit, pulumi,
# integration: agents and masters on free loopback ports, each test in its own temp directories) on
# D8_TEST_WORKERS jest workers (default 2); then the tiers that drive this machine's shared hosts
# (browser, system, engine, hosts: the SSH test hosts, the docker engine, the swarm, the Pulumi
# toolchain) one file at a time. Extra arguments go to both runs (a path pattern selects within them).
# Ends with one summary line for both phases; exits non-zero when either failed.
set -u
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
jest=node_modules/.bin/jest
# Tests write only under their own temp dirs: a ~/.d8 that appears during the run is a test that forgot D8_HOME.
real_home="${HOME:-/root}/.d8"
home_before=absent
[ -e "$real_home" ] && home_before=present

"$jest" --selectProjects unit pulumi integration --maxWorkers="${D8_TEST_WORKERS:-2}" --passWithNoTests \
  --json --outputFile="$out/light.json" "$@"
light=$?
"$jest" --selectProjects browser system engine hosts --runInBand --passWithNoTests \
  --json --outputFile="$out/heavy.json" "$@"
heavy=$?

node -e '
  const fs = require("fs");
  const sum = { passed: 0, failed: 0, skipped: 0, failedFiles: [] };
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { console.log(`test-tiers: ${f} was not written (jest did not finish that phase)`); continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    sum.passed += r.numPassedTests; sum.failed += r.numFailedTests; sum.skipped += r.numPendingTests;
    for (const t of r.testResults) if (t.status === "failed") sum.failedFiles.push(t.name.replace(process.cwd() + "/", ""));
  }
  console.log(`${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped` +
    (sum.failedFiles.length ? `; failing files: ${sum.failedFiles.join(", ")}` : ""));
' "$out/light.json" "$out/heavy.json"
home_ok=0
if [ "$home_before" = absent ] && [ -e "$real_home" ]; then
  echo "test-tiers: a test wrote into the real $real_home (set D8_HOME to a temp dir in that test):"
  find "$real_home" | head -n 20
  home_ok=1
fi
[ "$light" -eq 0 ] && [ "$heavy" -eq 0 ] && [ "$home_ok" -eq 0 ]
