#!/usr/bin/env bash
# Runs every Fuzz target for a short time: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $f ($t)"
    if ! out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1); then
      printf '%s\n' "$out" | tail -40
      echo "fuzz $pkg $f: FAILED (a failing input is saved under the package's testdata/fuzz/$f)"
      exit 1
    fi
  done
done
