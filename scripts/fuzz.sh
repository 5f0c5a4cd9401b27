#!/usr/bin/env bash
# Runs every Fuzz target for a short while: scripts/fuzz.sh [BUDGET]
# BUDGET is go test's -fuzztime, by default a count of executions (5000x). A duration (5s)
# works too, but go1.26's fuzz coordinator can fail a target at the end of a duration with a
# bare "context deadline exceeded" and no failing input (golang/go#75804, fixed in go1.27);
# a count has no deadline to race.
# Each package's instrumented test binary is built once (go test -c -fuzz) and run once per
# target from the package's directory, as go test would (same corpus in testdata/fuzz, same
# cache under GOCACHE/fuzz): linking a test binary per target was most of this step's time.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5000x}
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
cache="$(go env GOCACHE)/fuzz"
n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  [ -n "$targets" ] || continue
  n=$((n + 1))
  bin="$bins/$n.test"
  go test -c -fuzz=. -o "$bin" "$pkg"
  for f in $targets; do
    echo "fuzz $pkg $f ($t)"
    if ! out=$(cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^$f\$" -test.fuzztime="$t" -test.fuzzcachedir="$cache/$pkg" 2>&1); then
      printf '%s\n' "$out" | tail -40
      echo "fuzz $pkg $f: FAILED (a failing input is saved under the package's testdata/fuzz/$f)"
      exit 1
    fi
  done
done
