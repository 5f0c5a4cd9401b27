package main

import (
	"context"
	"encoding/json"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/nodes"
	"github.com/hwbridge/hwbridge/testdata/erc20"
)

// ethEmulatorAddr is m/44'/60'/0'/0/0 of the emulator's default mnemonic (abandon ×11 about).
const ethEmulatorAddr = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"

// fundedGeth starts geth --dev, pays 10 ETH to the emulators' first address (the default
// seed's m/44'/60'/0'/0/0) and returns the node, a client on it and that address.
func fundedGeth(ctx context.Context, t *testing.T) (*nodes.Geth, *ethereum.Client, common.Address) {
	t.Helper()
	g := nodes.StartGethT(t)
	me := common.HexToAddress(ethEmulatorAddr)
	if _, err := g.Fund(ctx, me, new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18))); err != nil {
		t.Fatal(err)
	}
	c, err := ethereum.Dial(ctx, g.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return g, c, me
}

// deployTUSD deploys the committed test token (6 decimals) from geth's dev account and mints
// 1,000 TUSD to holder.
func deployTUSD(ctx context.Context, t *testing.T, g *nodes.Geth, holder common.Address) common.Address {
	t.Helper()
	data, err := erc20.DeployData("Test USD", "TUSD", big.NewInt(1_000_000_000), holder)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := g.SendFromDev(ctx, nil, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	return rc.ContractAddress
}

func decodeJSON(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout %q: %v (stderr %q)", r.stdout, err, r.stderr)
	}
}

// TestETHCommandsOnGeth drives eth balance, eth send, eth token-transfer and eth
// sign-typed-data end to end: the Trezor-class emulator over UDP, geth --dev.
func TestETHCommandsOnGeth(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := serveTrezorDevice(t, emu)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	g, c, me := fundedGeth(ctx, t)
	rpc := g.URL()
	to := common.BytesToAddress(crypto.Keccak256([]byte("cli recipient"))[12:])
	nonce := func() uint64 {
		n, err := c.Node().PendingNonceAt(ctx, me)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("balance", func(t *testing.T) {
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "balance", "--rpc", rpc)
		var b struct {
			Address, BalanceETH, ChainID string
		}
		var raw map[string]any
		decodeJSON(t, r, &raw)
		b.Address, _ = raw["address"].(string)
		b.BalanceETH, _ = raw["balance_eth"].(string)
		b.ChainID, _ = raw["chain_id"].(string)
		if r.code != exitOK || b.Address != ethEmulatorAddr || b.BalanceETH != "10" || b.ChainID != "1337" {
			t.Fatalf("exit %d: %+v (stderr %q)", r.code, b, r.stderr)
		}
		r = cli(t, "", nil, "eth", "balance", "--rpc", rpc, "--address", strings.ToLower(ethEmulatorAddr))
		if r.code != exitOK || !strings.Contains(r.stdout, "balance: 10 ETH") {
			t.Fatalf("by address: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("send", func(t *testing.T) {
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "send", "--to", to.Hex(), "--value", "1.25", "--rpc", rpc, "--yes")
		var res daemon.EthSendResult
		decodeJSON(t, r, &res)
		if r.code != exitOK || res.Status != "ok" || res.Block == 0 || len(res.Hash) != 66 {
			t.Fatalf("exit %d %+v stderr %q", r.code, res, r.stderr)
		}
		if res.Summary.Value != "1.25" || res.Summary.ChainID != "1337" || res.Summary.To != to.Hex() || res.Summary.MaxFeeGwei == "" {
			t.Fatalf("summary %+v", res.Summary)
		}
		t.Logf("eth send stderr:\n%s", r.stderr)
		for _, want := range []string{"about to sign", "value:      1.25 ETH", "fee cap:", "chain id:   1337"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		if bal, _ := c.Balance(ctx, to); ethereum.FormatEther(bal) != "1.25" {
			t.Fatalf("recipient has %s", bal)
		}
		// The device showed the transfer.
		var shown bool
		for _, e := range emu.Approver().Transcript() {
			if strings.Contains(strings.Join(e.Screen.Lines, " "), "1.25") {
				shown = true
			}
		}
		if !shown {
			t.Errorf("the device never showed 1.25: %+v", emu.Approver().Transcript())
		}
	})

	t.Run("asks unless --yes", func(t *testing.T) {
		n := nonce()
		r := cli(t, "no\n", nil, "--device", dev, "eth", "send", "--to", to.Hex(), "--value", "0.5", "--rpc", rpc)
		if r.code != exitError || !strings.Contains(r.stderr, "send it? [y/N]") || !strings.Contains(r.stderr, "not sent") {
			t.Fatalf("declined: exit %d %q", r.code, r.stderr)
		}
		r = cli(t, "", nil, "--device", dev, "eth", "send", "--to", to.Hex(), "--value", "0.5", "--rpc", rpc)
		if r.code != exitError || !strings.Contains(r.stderr, "pass --yes") {
			t.Fatalf("no answer: exit %d %q", r.code, r.stderr)
		}
		if nonce() != n {
			t.Fatal("a declined send was broadcast")
		}
		r = cli(t, "y\n", nil, "--device", dev, "eth", "send", "--to", to.Hex(), "--value", "0.5", "--rpc", rpc)
		if r.code != exitOK || !strings.Contains(r.stdout, "tx:     0x") || !strings.Contains(r.stdout, "block:  ") {
			t.Fatalf("confirmed: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("token transfer", func(t *testing.T) {
		token := deployTUSD(ctx, t, g, me)
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "token-transfer", "--token", token.Hex(), "--to", to.Hex(), "--amount", "42.5", "--rpc", rpc, "--yes")
		var res daemon.EthSendResult
		decodeJSON(t, r, &res)
		if r.code != exitOK || res.Status != "ok" || res.Summary.TokenAmount != "42.5" || res.Summary.Token == nil || res.Summary.Token.Symbol != "TUSD" {
			t.Fatalf("exit %d %+v stderr %q", r.code, res, r.stderr)
		}
		if !strings.Contains(r.stderr, "amount:     42.5 TUSD") {
			t.Errorf("stderr lacks the token amount:\n%s", r.stderr)
		}
		if got, _ := c.TokenBalance(ctx, token, to); got.Int64() != 42_500_000 {
			t.Fatalf("recipient holds %s base units", got)
		}
		r = cli(t, "", nil, "--device", dev, "eth", "balance", "--rpc", rpc, "--token", token.Hex())
		if r.code != exitOK || !strings.Contains(r.stdout, "token:   957.5 TUSD") {
			t.Fatalf("token balance: %q %q", r.stdout, r.stderr)
		}

		// Negative cases: each a clear error, nothing broadcast.
		n := nonce()
		tests := []struct {
			name string
			args []string
			code int
			want string
		}{
			{"too many decimals", []string{"--token", token.Hex(), "--to", to.Hex(), "--amount", "1.0000001"}, exitUsage, "7 decimal places"},
			{"more than held", []string{"--token", token.Hex(), "--to", to.Hex(), "--amount", "1000"}, exitError, "holds 957.5 TUSD, the transfer needs 1000 TUSD"},
			{"bad token checksum", []string{"--token", "0x" + flipCase(token.Hex()[2:]), "--to", to.Hex(), "--amount", "1"}, exitUsage, "fails its EIP-55 checksum"},
			{"usdc off mainnet", []string{"--token", "USDC", "--to", to.Hex(), "--amount", "1"}, exitError, "not in the built-in list for chain 1337"},
			{"wrong chain", []string{"--token", token.Hex(), "--to", to.Hex(), "--amount", "1", "--chain-id", "1"}, exitError, "the node is on chain 1337, but chain 1 was asked for"},
			{"not a token", []string{"--token", to.Hex(), "--to", to.Hex(), "--amount", "1"}, exitError, "no contract at"},
		}
		for _, tt := range tests {
			args := append([]string{"--device", dev, "eth", "token-transfer", "--rpc", rpc, "--yes"}, tt.args...)
			r := cli(t, "", nil, args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%s: exit %d, stderr %q; want %d, %q", tt.name, r.code, r.stderr, tt.code, tt.want)
			}
		}
		if nonce() != n {
			t.Fatal("a refused transfer was broadcast")
		}
	})

	t.Run("send errors", func(t *testing.T) {
		n := nonce()
		bad := "0x9858EfFD232B4033E47d90003D41EC34EcaEda95"
		tests := []struct {
			name string
			args []string
			code int
			want string
		}{
			{"bad checksum", []string{"--to", bad, "--value", "1"}, exitUsage, "fails its EIP-55 checksum"},
			{"short address", []string{"--to", "0x1234", "--value", "1"}, exitUsage, "has 4 hex digits, want 40"},
			{"zero address", []string{"--to", "0x0000000000000000000000000000000000000000", "--value", "1"}, exitUsage, "zero address"},
			{"too many decimals", []string{"--to", to.Hex(), "--value", "0.0000000000000000001"}, exitUsage, "19 decimal places"},
			{"float-ish", []string{"--to", to.Hex(), "--value", "1e18"}, exitUsage, "decimal number"},
			{"insufficient funds", []string{"--to", to.Hex(), "--value", "1000"}, exitError, "insufficient funds"},
			{"wrong chain", []string{"--to", to.Hex(), "--value", "1", "--chain-id", "1"}, exitError, "wrong chain"},
			{"no rpc", []string{"--to", to.Hex(), "--value", "1", "--rpc", ""}, exitUsage, "--rpc URL is required"},
			{"bad fee", []string{"--to", to.Hex(), "--value", "1", "--max-fee", "0.0000000001"}, exitUsage, "--max-fee"},
		}
		for _, tt := range tests {
			args := append([]string{"--device", dev, "eth", "send", "--rpc", rpc, "--yes"}, tt.args...)
			r := cli(t, "", nil, args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%s: exit %d, stderr %q; want %d, %q", tt.name, r.code, r.stderr, tt.code, tt.want)
			}
		}
		if nonce() != n {
			t.Fatal("a refused send was broadcast")
		}
	})

	t.Run("rejected on the device", func(t *testing.T) {
		n := nonce()
		if err := emu.Approver().SetPolicy(emulator.PolicyReject); err != nil {
			t.Fatal(err)
		}
		defer emu.Approver().SetPolicy(emulator.PolicyAuto)
		r := cli(t, "", nil, "--device", dev, "eth", "send", "--to", to.Hex(), "--value", "0.1", "--rpc", rpc, "--yes")
		if r.code != exitRejected {
			t.Fatalf("exit %d, want %d: %q", r.code, exitRejected, r.stderr)
		}
		if nonce() != n {
			t.Fatal("a rejected send was broadcast")
		}
	})

	t.Run("legacy and fee overrides", func(t *testing.T) {
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "send", "--to", to.Hex(), "--value", "0.01", "--rpc", rpc, "--yes", "--gas-price", "3")
		var res daemon.EthSendResult
		decodeJSON(t, r, &res)
		if r.code != exitOK || res.Summary.Type != "legacy" || res.Summary.GasPriceGwei != "3" {
			t.Fatalf("legacy: exit %d %+v %q", r.code, res.Summary, r.stderr)
		}
		r = cli(t, "", nil, "--device", dev, "--json", "eth", "send", "--to", to.Hex(), "--value", "0.01", "--rpc", rpc, "--yes", "--max-fee", "7.5", "--priority-fee", "1.5")
		decodeJSON(t, r, &res)
		if r.code != exitOK || res.Summary.MaxFeeGwei != "7.5" || res.Summary.TipGwei != "1.5" {
			t.Fatalf("overrides: exit %d %+v %q", r.code, res.Summary, r.stderr)
		}
	})

	t.Run("sign typed data", func(t *testing.T) {
		file := filepath.Join("..", "..", "chains", "ethereum", "testdata", "vectors", "eip712", "mail.json")
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "sign-typed-data", file)
		var out map[string]any
		decodeJSON(t, r, &out)
		if r.code != exitOK || out["domain_separator"] != "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f" ||
			out["message_hash"] != "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e" ||
			out["digest"] != "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2" {
			t.Fatalf("exit %d %v %q", r.code, out, r.stderr)
		}
		sig, _ := hexutil.Decode(out["signature"].(string))
		from, err := ethereum.RecoverSigner(hexutil.MustDecode(out["digest"].(string)), sig)
		if err != nil || from.Hex() != ethEmulatorAddr {
			t.Fatalf("signature recovers %s, %v", from.Hex(), err)
		}
		if !strings.Contains(r.stderr, "domain name: Ether Mail") {
			t.Errorf("stderr %q", r.stderr)
		}
		r = cli(t, "{", nil, "--device", dev, "eth", "sign-typed-data", "-")
		if r.code != exitUsage || !strings.Contains(r.stderr, "eip-712") {
			t.Fatalf("bad json: exit %d %q", r.code, r.stderr)
		}
	})
}

// flipCase swaps the case of the first letter in a hex string: a checksum typo.
func flipCase(h string) string {
	for i, r := range h {
		switch {
		case r >= 'a' && r <= 'f':
			return h[:i] + strings.ToUpper(string(r)) + h[i+1:]
		case r >= 'A' && r <= 'F':
			return h[:i] + strings.ToLower(string(r)) + h[i+1:]
		}
	}
	return h
}

// TestETHCommandsOnGethLedger: the same CLI commands on the Ledger-class family — the
// emulator over TCP (Speculos framing) in its Bitcoin app, which the driver switches to the
// Ethereum app — against geth --dev: eth send, then an ERC-20 transfer refused while the
// app's blind-signing setting is off (nothing broadcast, the error says what to enable),
// then accepted with it on; balances checked on the node.
func TestETHCommandsOnGethLedger(t *testing.T) {
	var emu *ledgeremu.Device
	dev := serveLedger(t, func(d *ledgeremu.Device) { emu = d })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	g, c, me := fundedGeth(ctx, t) // same seed as the Trezor-class one: same address
	rpc := g.URL()
	to := common.BytesToAddress(crypto.Keccak256([]byte("cli ledger recipient"))[12:])

	r := cli(t, "", nil, "--device", dev, "--json", "eth", "send", "--to", to.Hex(), "--value", "0.75", "--rpc", rpc, "--yes")
	var res daemon.EthSendResult
	decodeJSON(t, r, &res)
	if r.code != exitOK || res.Status != "ok" || res.Block == 0 {
		t.Fatalf("eth send: exit %d %+v stderr %q", r.code, res, r.stderr)
	}
	if bal, _ := c.Balance(ctx, to); ethereum.FormatEther(bal) != "0.75" {
		t.Fatalf("recipient has %s wei", bal)
	}

	token := deployTUSD(ctx, t, g, me)
	transfer := []string{"--device", dev, "eth", "token-transfer", "--token", token.Hex(), "--to", to.Hex(), "--amount", "12.5", "--rpc", rpc, "--yes"}
	nonce, err := c.Node().PendingNonceAt(ctx, me)
	if err != nil {
		t.Fatal(err)
	}
	r = cli(t, "", nil, transfer...)
	if r.code != exitError || !strings.Contains(strings.ToLower(r.stderr), "blind signing") {
		t.Fatalf("transfer with blind signing off: exit %d, stderr %q", r.code, r.stderr)
	}
	if n, _ := c.Node().PendingNonceAt(ctx, me); n != nonce {
		t.Fatal("a transfer the device refused was broadcast")
	}
	emu.SetBlindSigning(true)
	r = cli(t, "", nil, append([]string{"--json"}, transfer...)...)
	decodeJSON(t, r, &res)
	if r.code != exitOK || res.Status != "ok" || res.Summary.TokenAmount != "12.5" {
		t.Fatalf("token transfer: exit %d %+v stderr %q", r.code, res, r.stderr)
	}
	if got, _ := c.TokenBalance(ctx, token, to); got.Int64() != 12_500_000 {
		t.Fatalf("recipient holds %s base units", got)
	}
	if got, _ := c.TokenBalance(ctx, token, me); got.Int64() != 1_000_000_000-12_500_000 {
		t.Fatalf("sender holds %s base units", got)
	}
}
