#!/usr/bin/env bash
# The bench command: runs every benchmark once over (-count 1), prints go test's lines.
#   scripts/bench.sh              all packages with benchmarks
#   scripts/bench.sh ./device/... only these packages
# BENCHTIME (default 1s) is passed to -benchtime; the daemon's idle-memory benchmark always
# runs once (it measures a process, not a loop). Compare runs with benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
deps_install
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
bt=${BENCHTIME:-1s}
for pkg in $(go list "${pkgs[@]}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -q '^func Benchmark' "$dir"/*_test.go 2>/dev/null || continue
  if [ "$pkg" = github.com/hwbridge/hwbridge/cmd/hwbridged ]; then
    go test -run '^$' -bench . -benchtime 1x -count 1 "$pkg"
  else
    go test -run '^$' -bench . -benchtime "$bt" -benchmem -count 1 "$pkg"
  fi
done
