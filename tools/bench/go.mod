// benchstat (golang.org/x/perf), pinned for comparing scripts/bench.sh runs:
//   go tool -modfile=tools/bench/go.mod benchstat old.txt new.txt
// A module of its own so that its golang.org/x versions do not move the btcd and geth
// builds pinned in tools/go.mod.
module github.com/hwbridge/hwbridge/tools/bench

go 1.26.8

tool golang.org/x/perf/cmd/benchstat

require (
	github.com/aclements/go-moremath v0.0.0-20210112150236-f10218a38794 // indirect
	golang.org/x/perf v0.0.0-20260908200009-22c9c6c9d4da // indirect
)
