#!/usr/bin/env bash
# Instructions per op of one benchmark, counted by callgrind: unlike ns/op they do not
# depend on the machine's load, so before/after figures from a shared machine compare.
#   scripts/instr.sh PKG BENCH [N]
#   scripts/instr.sh ./daemon/ 'DaemonLatency/read=v1Address/devices=1/clients=1/daemon' 300
# It counts every thread from the benchmark's last ResetTimer to its StopTimer (the timed
# region of a b.N=N run, after a warm-up run), divided by N. Needs valgrind (apt-get
# install valgrind); installs nothing. GODEBUG=asyncpreemptoff=1: valgrind's callgrind
# aborts on the runtime's preemption signals. Figures include the emulators when they run in
# the benchmark's process: subtract the /direct sub-benchmark for the daemon's own cost.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/instr.sh PKG BENCH [N]" >&2; exit 2; }
pkg=$1 bench=$2 n=${3:-300}
command -v valgrind >/dev/null || { echo "instr.sh: valgrind is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/b.test" "$pkg"
re="^Benchmark${bench%%/*}\$"
[ "$bench" = "${bench#*/}" ] || re="$re/${bench#*/}"
GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/out" \
  --zero-before='testing.(*B).ResetTimer' --dump-after='testing.(*B).StopTimer' \
  "$tmp/b.test" -test.run '^$' -test.bench "$re" -test.benchtime "${n}x" >"$tmp/log" 2>&1 ||
  { tail -20 "$tmp/log" >&2; exit 1; }
# The largest dump is the timed region of the b.N=N run.
max=$(grep -h '^totals:' "$tmp"/out* | awk '{ print $2 }' | sort -n | tail -1)
echo "$bench n=$n instructions=$max per-op=$((max / n))"
