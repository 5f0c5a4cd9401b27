package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
)

// The README's newcomer section: the shell blocks between these markers, terminal 1's
// first, terminal 2's second.
const (
	newcomerBegin = "<!-- newcomer:begin -->"
	newcomerEnd   = "<!-- newcomer:end -->"
)

// newcomerBlocks returns the command lines of each ```sh block of the newcomer section
// (blank lines and comments left out).
func newcomerBlocks(readme string) ([][]string, error) {
	b, e := strings.Index(readme, newcomerBegin), strings.Index(readme, newcomerEnd)
	if b < 0 || e < b {
		return nil, fmt.Errorf("no %s … %s section", newcomerBegin, newcomerEnd)
	}
	var blocks [][]string
	var cur []string
	in := false
	for _, l := range strings.Split(readme[b:e], "\n") {
		switch {
		case !in && strings.HasPrefix(l, "```sh"):
			in, cur = true, nil
		case in && strings.HasPrefix(l, "```"):
			in = false
			blocks = append(blocks, cur)
		case in:
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				cur = append(cur, l)
			}
		}
	}
	if in {
		return nil, errors.New("a ```sh block of the newcomer section is not closed")
	}
	return blocks, nil
}

// assignment matches the variable lines a user types in the shell (NAME=VALUE, export
// NAME=VALUE); the test keeps them in the environment of the following lines.
var assignment = regexp.MustCompile(`^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(\S+)$`)

// shellProc is a command started from a README line in the background.
type shellProc struct {
	line string
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan error
}

// startLine starts a README line (without its &) as a background process: sh execs it, so
// the process is the program itself and gets the signals sent to it.
func startLine(t *testing.T, env []string, line string) *shellProc {
	t.Helper()
	p := &shellProc{line: line, out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command("sh", "-c", "exec "+line)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor waits until ready(output) holds; it fails if the process exits first.
func (p *shellProc) waitFor(ready func(string) bool, timeout time.Duration) error {
	deadline := time.After(timeout)
	for !ready(p.out.String()) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", p.line, err, p.out.String())
		case <-deadline:
			return fmt.Errorf("%s not ready after %s:\n%s", p.line, timeout, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// stop sends sig and waits for a clean exit (status 0).
func (p *shellProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal: %v", p.line, err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s: on %v: %v\n%s", p.line, sig, err, p.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s: still running 20s after %v", p.line, sig)
	}
}

// readyWhen says when a background program of the README is ready, as the README tells the
// user to wait: devnet prints "devnet ready"; hwbridged logs "hwbridged listening" and one
// "device attached" per --emulator path.
func readyWhen(line string) func(string) bool {
	switch f := strings.Fields(line); f[0] {
	case "hwbridged":
		n := 0
		for i, a := range f {
			if a == "--emulator" && i+1 < len(f) {
				n += strings.Count(f[i+1], ",") + 1
			}
		}
		return func(out string) bool {
			return strings.Contains(out, "hwbridged listening") && strings.Count(out, "device attached") >= n
		}
	}
	return func(out string) bool { return strings.Contains(out, "devnet ready") }
}

// devnetDefaults are the addresses the README's commands use; -flag is devnet's flag.
var devnetDefaults = []struct{ addr, flag, proto string }{
	{devnetTrezorAddr, "--trezor", "udp"},
	{ledgeremu.DefaultAddr, "--ledger", "tcp"},
	{devnetBTCAddr, "--btc-rpc-addr", "tcp"},
	{devnetETHAddr, "--eth-rpc-addr", "tcp"},
}

// portFree reports whether addr can be bound now (for the Trezor-class UDP device, also the
// DebugLink port after it).
func portFree(proto, addr string) bool {
	if proto == "tcp" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	for _, a := range []string{addr, net.JoinHostPort(host, strconv.Itoa(p+1))} {
		c, err := net.ListenPacket("udp", a)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// freeAddr returns a loopback address free now (a free pair for udp).
func freeAddr(t *testing.T, proto string) string {
	t.Helper()
	for range 100 {
		if proto == "tcp" {
			return closedPort(t)
		}
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		if portFree("udp", addr) {
			return addr
		}
	}
	t.Fatal("no free udp port pair")
	return ""
}

// TestREADMENewcomer follows the README's newcomer section as a new user would, with the
// programs built from this tree on PATH and HOME and XDG_RUNTIME_DIR in temporary
// directories: terminal 1's devnet in the background, then terminal 2's lines in order
// (its hwbridged in the background, each line started after the previous one finished or,
// for a background program, once it says it is ready, as the README tells the user to
// wait). It checks what the README says happens: the CLI goes through the daemon, the
// send's txid is confirmed on the chain, the balance shows it, the ETH send has its
// receipt, the audit log verifies and holds the daemon's signing calls; and that devnet
// prints the same commands as the README. The lines run as written on the README's
// addresses; only when one of those is taken on this machine (another devnet, hwemu, a
// node on 8545) are they replaced everywhere by free ones and given to devnet as flags.
func TestREADMENewcomer(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := newcomerBlocks(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || len(blocks[0]) != 1 || !strings.HasPrefix(blocks[0][0], "hwbridge devnet") {
		t.Fatalf("the newcomer section should hold two sh blocks, terminal 1's being `hwbridge devnet`: %q", blocks)
	}
	term1, term2 := blocks[0][0], blocks[1]
	for _, d := range devnetDefaults {
		if !strings.Contains(strings.Join(term2, "\n"), d.addr) {
			t.Fatalf("terminal 2 never uses devnet's %s %s", d.flag, d.addr)
		}
	}

	bin := t.TempDir()
	t0 := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/hwbridge/hwbridge/cmd/hwbridge", "github.com/hwbridge/hwbridge/cmd/hwbridged").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built hwbridge and hwbridged in %s", time.Since(t0).Round(time.Millisecond))

	home, runtime := t.TempDir(), shortTempDir(t)
	env := []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + runtime, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "XDG_RUNTIME_DIR" && k != "PATH" && !strings.HasPrefix(k, "HWBRIDGE_") {
			env = append(env, kv)
		}
	}

	// Terminal 1.
	subst := map[string]string{}
	substitute := func(free bool) {
		clear(subst)
		for _, d := range devnetDefaults {
			if free || !portFree(d.proto, d.addr) {
				subst = map[string]string{}
				for _, d := range devnetDefaults {
					subst[d.addr] = freeAddr(t, d.proto)
				}
				return
			}
		}
	}
	apply := func(line string) string {
		for from, to := range subst {
			line = strings.ReplaceAll(line, from, to)
		}
		return line
	}
	substitute(false)
	var devnet *shellProc
	t1 := time.Now()
	for attempt := 0; ; attempt++ {
		line := term1
		if len(subst) > 0 {
			t.Logf("a README address is taken on this machine: using %v", subst)
			for _, d := range devnetDefaults {
				line += " " + d.flag + " " + subst[d.addr]
			}
		}
		devnet = startLine(t, env, line)
		err := devnet.waitFor(readyWhen(line), time.Minute)
		if err == nil {
			break
		}
		if attempt > 0 || !strings.Contains(err.Error(), "in use") {
			t.Fatal(err)
		}
		substitute(true) // taken between the check and devnet's start
	}
	t.Logf("terminal 1: %s: ready in %s", devnet.line, time.Since(t1).Round(time.Millisecond))

	// Terminal 2.
	t2 := time.Now()
	var (
		hwbridged *shellProc
		btcRPC    string
		txid      string
		balances  int
	)
	for _, line := range term2 {
		line = apply(line)
		if m := assignment.FindStringSubmatch(line); m != nil {
			env = append(env, m[1]+"="+m[2])
			if m[1] == "BTC_RPC" {
				btcRPC = m[2]
			}
			continue
		}
		if bg, ok := strings.CutSuffix(line, "&"); ok {
			bg = strings.TrimSpace(bg)
			p := startLine(t, env, bg)
			if err := p.waitFor(readyWhen(bg), time.Minute); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(bg, "hwbridged ") {
				hwbridged = p
			}
			t.Logf("$ %s &: ready", bg)
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Env = env
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		ts := time.Now()
		err := cmd.Run()
		cancel()
		out := stdout.String()
		t.Logf("$ %s  (%s)\n%s", line, time.Since(ts).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("%s: %v\nstderr:\n%s\nhwbridged:\n%s", line, err, stderr.String(), hwbridged.out.String())
		}
		f := strings.Fields(line)
		cmdName := strings.Join(f[:min(len(f), 3)], " ")
		switch {
		case strings.HasSuffix(line, "hwbridge devices"):
			// Through the daemon: without it, unnamed emulators are never listed.
			for _, d := range devnetDefaults[:2] {
				if !strings.Contains(out, apply(d.addr)) {
					t.Errorf("devices does not list %s: not through hwbridged?", apply(d.addr))
				}
			}
		case strings.Contains(line, " btc send "):
			if txid, err = txidIn(out); err != nil {
				t.Fatal(err)
			}
			waitConfirmed(t, btcRPC, txid)
		case strings.Contains(line, " btc balance "):
			balances++
			if balances == 1 && !strings.Contains(out, "confirmed: 10.") {
				t.Errorf("first balance: want the 10 BTC devnet paid")
			}
			if txid != "" && (!strings.Contains(out, txid+":1") || !strings.Contains(out, " 1 conf")) {
				t.Errorf("balance after the send does not list its change %s:1 with 1 conf", txid)
			}
		case strings.Contains(line, " eth send "):
			if !strings.Contains(out, "status: ok") {
				t.Errorf("eth send: no successful receipt")
			}
		case cmdName == "hwbridge audit verify":
			if !strings.HasPrefix(out, "ok: ") {
				t.Errorf("audit verify: %q", out)
			}
		}
	}
	t.Logf("terminal 2: %d lines in %s", len(term2), time.Since(t2).Round(time.Millisecond))
	if txid == "" || hwbridged == nil {
		t.Fatal("the README's terminal 2 has no btc send or no hwbridged")
	}
	audit, err := os.ReadFile(filepath.Join(home, ".hwbridge", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"v1BtcSend", "v1EthSend"} {
		if !strings.Contains(string(audit), `"`+m+`"`) {
			t.Errorf("the audit log has no %s: the signing did not go through hwbridged", m)
		}
	}
	d := devnet.out.String()
	if !strings.Contains(d, "block 433 mined: 1 transaction(s) confirmed: "+txid) {
		t.Errorf("devnet did not report the block confirming %s:\n%s", txid, d)
	}
	for _, line := range term2 {
		if !strings.Contains(d, "\n  "+apply(line)+"\n") {
			t.Errorf("devnet does not print the README's %q", apply(line))
		}
	}

	hwbridged.stop(t, syscall.SIGTERM)
	devnet.stop(t, os.Interrupt)
	if !strings.Contains(devnet.out.String(), "devnet: stopped") {
		t.Errorf("devnet did not stop cleanly:\n%s", devnet.out.String())
	}
}

// waitConfirmed waits until txid has a confirmation on the node at rpcURL.
func waitConfirmed(t *testing.T, rpcURL, txid string) {
	t.Helper()
	c, err := btcClient(rpcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	h, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for {
		tx, err := c.GetRawTransactionVerbose(h)
		if err == nil && tx.Confirmations >= 1 {
			t.Logf("txid %s confirmed (block %s) %s after the send returned", txid, tx.BlockHash, time.Since(t0).Round(time.Millisecond))
			return
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("txid %s not confirmed 10s after the send: %v", txid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
