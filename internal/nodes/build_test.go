package nodes

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestBinaryBtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := Binary(ctx, BtcdPackage)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0.26.2") {
		t.Fatalf("btcd --version: %v %s", err, out)
	}
}
