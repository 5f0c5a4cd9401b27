//go:build unix

// Command buildnodes builds the pinned btcd and geth (tools/go.mod) into the shared cache the
// integration tests use (internal/nodes.CacheDir), printing progress, so that scripts/test.sh
// builds them once, before go test, and no test binary builds them. Usage:
//
//	go run ./internal/nodes/cmd/buildnodes [-timeout 20m]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hwbridge/hwbridge/internal/nodes"
)

func main() {
	timeout := flag.Duration("timeout", 20*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for _, pkg := range []string{nodes.BtcdPackage, nodes.GethPackage} {
		bin, err := nodes.Build(ctx, pkg, os.Stderr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "buildnodes: %v\n", err)
			os.Exit(1)
		}
		fmt.Println(bin)
	}
}
