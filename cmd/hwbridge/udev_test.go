package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUdevInstall(t *testing.T) {
	r := cli(t, "", nil, "udev", "install", "--print")
	if r.code != 0 || !strings.Contains(r.stdout, `ATTRS{idVendor}=="2c97"`) || !strings.Contains(r.stdout, `ATTRS{idVendor}=="1209", ATTRS{idProduct}=="53c1"`) {
		t.Fatalf("--print: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	path := filepath.Join(t.TempDir(), "rules.d", "52-hwbridge.rules")
	r = cli(t, "", nil, "--json", "udev", "install", "--path", path, "--no-reload")
	var got struct {
		Path  string
		Steps []string
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Path != path || len(got.Steps) != 1 {
		t.Fatalf("install: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != udevRulesText() {
		t.Fatalf("rules file: %v\n%s", err, b)
	}
	// Every rule line names a vendor of the table and opens it to the seat's user.
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.Contains(l, `TAG+="uaccess"`) || !strings.Contains(l, `MODE="0660"`) {
			t.Errorf("rule %q", l)
		}
	}
}
