#!/usr/bin/env bash
# The test command: installs what the tests need on a bare Debian machine (idempotent, quick
# when already done), then runs every test. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
deps_install
go test -count=1 -timeout 25m ./...
scripts/fuzz.sh 5000x
