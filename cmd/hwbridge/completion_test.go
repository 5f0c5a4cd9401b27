package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionBash runs the bash script: command words, a group's commands after global
// flags with values, and flags.
func TestCompletionBash(t *testing.T) {
	r := cli(t, "", nil, "completion", "bash")
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	script := filepath.Join(t.TempDir(), "c.bash")
	if err := os.WriteFile(script, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		words string
		want  string
	}{
		{"hwbridge bt", "btc"},
		{"hwbridge --device udp:x btc se", "send"},
		{"hwbridge eth to", "token-transfer"},
		{"hwbridge journal ", "check accept-loss"},
		{"hwbridge btc send --js", "--json"},
		{"hwbridge help dev", "device devices devnet"},
	} {
		words := strings.Fields(tt.words)
		if strings.HasSuffix(tt.words, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + script + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" + strconv.Itoa(len(words)-1) + "; _hwbridge; echo \"${COMPREPLY[*]}\""
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("%q: %q (%v), want %q", tt.words, out, err, tt.want)
		}
	}
	for _, sh := range []string{"zsh", "fish"} {
		if r := cli(t, "", nil, "completion", sh); r.code != 0 || !strings.Contains(r.stdout, "hwbridge") {
			t.Errorf("%s: exit %d", sh, r.code)
		}
	}
	if r := cli(t, "", nil, "completion", "tcsh"); r.code != exitUsage {
		t.Errorf("tcsh: exit %d", r.code)
	}
}
