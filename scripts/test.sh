#!/usr/bin/env bash
# The test command: installs what the tests need on a bare Debian machine (idempotent, quick
# when already done), then runs every test. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
deps_install
go test -count=1 -timeout 25m ./...
# The packages where goroutines meet (daemon, hub, drivers, emulators, links, dev chains)
# once more under the race detector.
go test -race -count=1 -timeout 15m ./daemon/... ./device/... ./emulator/... ./transport/ ./internal/devchain/...
scripts/fuzz.sh 5000x
