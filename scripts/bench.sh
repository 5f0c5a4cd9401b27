#!/usr/bin/env bash
# The bench command: runs every benchmark COUNT times (default 5, for benchstat) and prints
# go test's lines. It installs nothing: run scripts/deps.sh first on a new machine (the
# benchmarks that need btcd or geth fail, and say so, when they are missing).
#   scripts/bench.sh                   all packages with benchmarks
#   scripts/bench.sh ./daemon/...      only these packages
#   COUNT=10 BENCHTIME=2s scripts/bench.sh ./device/...
# Compare two runs with: go tool -modfile=tools/bench/go.mod benchstat old.txt new.txt
# (benchstat pinned in tools/bench); count CPU independently of load with scripts/instr.sh.
# Each benchmark names its setup (filesystem under TMPDIR, PSBT shape, cold or warm) in its
# name; the header below says where and how this run was made.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
bt=${BENCHTIME:-1s}
[ "$count" -ge 5 ] || { echo "bench.sh: COUNT=$count: benchstat needs at least 5 runs" >&2; exit 2; }
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
tmp=${TMPDIR:-/tmp}
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(go version | cut -d' ' -f3-)"
echo "# $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'); TMPDIR=$tmp on $(df -T "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 }')"
echo "# count=$count benchtime=$bt (hwbridged start-up: 1x per count)"
for pkg in $(go list "${pkgs[@]}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -q '^func Benchmark' "$dir"/*_test.go 2>/dev/null || continue
  echo "# $pkg" >&2
  if [ "$pkg" = github.com/hwbridge/hwbridge/cmd/hwbridged ]; then
    # Each op starts a process on a 1M-record audit log: once per count is the measure.
    go test -run '^$' -bench . -benchtime 1x -count "$count" -timeout 60m "$pkg"
  else
    go test -run '^$' -bench . -benchtime "$bt" -benchmem -count "$count" -timeout 60m "$pkg"
  fi
done
