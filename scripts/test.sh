#!/usr/bin/env bash
# The test command: installs what the tests need on a bare Debian machine (scripts/deps.sh:
# idempotent, quick when already done; btcd and geth are built here, once, before any test
# binary runs), then runs every test. .ci/run runs exactly this. Each step prints when it
# starts and how long it took; go test prints a line per package as each one ends.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
step() { echo "== test.sh: $* (at $((SECONDS - t0)) s)" >&2; }
. scripts/deps.sh
step "dependencies (apt, npm, btcd and geth)"
deps_install
step "go test ./..."
go test -count=1 -timeout 25m ./...
# The packages where goroutines meet (daemon, hub, drivers, emulators, links, dev chains)
# once more under the race detector.
step "go test -race (daemon, device, emulator, transport, dev chains)"
go test -race -count=1 -timeout 15m ./daemon/... ./device/... ./emulator/... ./transport/ ./internal/devchain/...
step "fuzz targets (5000 executions each)"
scripts/fuzz.sh 5000x
step "done"
