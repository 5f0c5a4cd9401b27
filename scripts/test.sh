#!/usr/bin/env bash
# The test command: installs what the tests need on a bare Debian machine (scripts/deps.sh:
# idempotent, quick when already done; btcd and geth are built here, once, before any test
# binary runs), then runs every test. .ci/run runs exactly this. Each step prints when it
# starts; go test prints a line per package as each one ends. A failing test step does not
# stop the later ones (one run shows every failure); the script then exits 1 naming them.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
step() { echo "== test.sh: $* (at $((SECONDS - t0)) s)" >&2; }
failed=()
run() { local name=$1; shift; step "$name"; "$@" || failed+=("$name"); }
. scripts/deps.sh
step "dependencies (apt, npm, btcd and geth)"
deps_install
# The packages where goroutines meet (daemon, hub, drivers, emulators, links, dev chains)
# run once, under the race detector; every other package runs once without it (they used to
# run twice, plain then -race). Measured on the project's 2-core machine shared with other
# work: the whole script 20:45 before, 7:30-9:10 after (with the one-binary-per-package fuzz.sh).
race=$(go list ./daemon/... ./device/... ./emulator/... ./transport/ ./internal/devchain/...)
plain=$(go list ./... | grep -vxF "$race")
# shellcheck disable=SC2086
run "go test ($(echo "$plain" | wc -l) packages)" go test -count=1 -timeout 25m $plain
# shellcheck disable=SC2086
run "go test -race ($(echo "$race" | wc -l) packages: daemon, device, emulator, transport, dev chains)" go test -race -count=1 -timeout 25m $race
run "fuzz targets (5000 executions each)" scripts/fuzz.sh 5000x
# Builds for the platforms CI cannot run (no cgo: what a plain cross-compile gives; the
# transport then reaches HID-less paths and says "no USB in this build" for the rest).
cross() { local t; for t in darwin/arm64 windows/amd64; do echo "cross-build $t" >&2; GOOS=${t%/*} GOARCH=${t#*/} CGO_ENABLED=0 go build ./... || return 1; done; }
run "cross-builds (darwin/arm64, windows/amd64, CGO_ENABLED=0)" cross
if [ ${#failed[@]} -gt 0 ]; then
  step "FAILED: ${failed[*]}"
  exit 1
fi
step "done"
