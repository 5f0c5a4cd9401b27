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
	if r.code != 0 || !strings.Contains(r.stdout, `ATTRS{idVendor}=="2c97"`) || !strings.Contains(r.stdout, `ATTR{idVendor}=="1209", ATTR{idProduct}=="53c1"`) {
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

// TestUdevRulesCoverVendorRules checks that every device node the vendors' own rules open
// is opened by ours. The selectors below are facts read from (not copies of) those files:
// Trezor common/udev/51-trezor.rules at trezor/trezor-firmware
// 66a19f87e1f08bb995791c7738bcd27f9f4989ca (usb_device nodes of 534c:0001, 1209:53c0,
// 1209:53c1; hidraw of 534c:0001 and 1209:53c1, MODE 0660, GROUP plugdev, uaccess);
// KeepKey 51-usb-keepkey.rules at keepkey/udev-rules cc1e5c3e2c1c3dcf99b40da4b76de6c237f1a628
// (usb_device and hidraw of 2b24:0001), and KeepKey's WebUSB product 2b24:0002 (issue 16);
// Coldcard 51-coinkite.rules at Coldcard/ckcc-protocol 8ffb706ad2e07e916943a9ae6780dbdb98f85a2a
// (usb and hidraw of d13e:cc10).
func TestUdevRulesCoverVendorRules(t *testing.T) {
	type node struct {
		hidraw          bool
		vendor, product string
	}
	vendorNodes := []node{
		{false, "534c", "0001"}, {true, "534c", "0001"},
		{false, "1209", "53c0"}, {false, "1209", "53c1"}, {true, "1209", "53c1"},
		{false, "2b24", "0001"}, {true, "2b24", "0001"},
		{false, "2b24", "0002"}, {true, "2b24", "0002"},
		{false, "2c97", "0001"}, {true, "2c97", "4011"}, // Ledger: any product
		{false, "d13e", "cc10"}, {true, "d13e", "cc10"},
	}
	var rules []map[string]string
	for _, l := range strings.Split(udevRulesText(), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r := map[string]string{}
		for _, f := range strings.Split(l, ", ") {
			k, v, ok := strings.Cut(f, "==")
			if !ok {
				k, v, _ = strings.Cut(f, "=")
			}
			r[k] = strings.Trim(v, `"`)
		}
		rules = append(rules, r)
	}
	for _, n := range vendorNodes {
		found := false
		for _, r := range rules {
			var vendor, product string
			if n.hidraw {
				if r["KERNEL"] != "hidraw*" || r["SUBSYSTEM"] != "" {
					continue
				}
				vendor, product = r["ATTRS{idVendor}"], r["ATTRS{idProduct}"]
			} else {
				if r["SUBSYSTEM"] != "usb" {
					continue
				}
				vendor, product = r["ATTR{idVendor}"], r["ATTR{idProduct}"]
			}
			if vendor == n.vendor && (product == "" || product == n.product) {
				found = r["MODE"] == "0660" && r["GROUP"] == "plugdev" && r["TAG+"] == "uaccess"
				break
			}
		}
		if !found {
			t.Errorf("no rule opens %+v", n)
		}
	}
}
