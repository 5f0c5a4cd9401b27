package ledger_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/ledgercal"
	"github.com/hwbridge/hwbridge/transport"
)

// TestEmbeddedDescriptorsVerify checks every embedded descriptor against Ledger's
// published key, and that mainnet USDT and USDC are there.
func TestEmbeddedDescriptorsVerify(t *testing.T) {
	toks, err := ledger.BuiltinTokens()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"USDT": "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDC": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}
	for _, tok := range toks {
		d, err := ledgercal.Parse(tok.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Verify(ledgercal.LedgerPublicKey) {
			t.Errorf("%s on chain %d does not verify with Ledger's key", tok.Ticker, tok.ChainID)
		}
		if tok.Decimals != 6 || (tok.Ticker != "USDT" && tok.Ticker != "USDC") {
			t.Errorf("unexpected entry %s/%d decimals on chain %d", tok.Ticker, tok.Decimals, tok.ChainID)
		}
		if tok.ChainID == 1 && want[tok.Ticker] == tok.Contract.Hex() {
			delete(want, tok.Ticker)
		}
	}
	if len(want) != 0 || len(toks) < 10 {
		t.Errorf("%d descriptors; missing on mainnet: %v", len(toks), want)
	}
}

func tokenTx(chain int64, token common.Address, selector []byte, to common.Address, amount int64) *types.Transaction {
	data := append(append([]byte{}, selector...), common.LeftPadBytes(to.Bytes(), 32)...)
	data = append(data, common.LeftPadBytes(big.NewInt(amount).Bytes(), 32)...)
	return types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(chain), Nonce: 7, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e10), Gas: 65000, To: &token, Data: data})
}

var (
	transferSel = []byte{0xa9, 0x05, 0x9c, 0xbb}
	approveSel  = []byte{0x09, 0x5e, 0xa7, 0xb3}
)

// TestTokenTransferClearSigned: with blind signing off, a USDC transfer on mainnet (Ledger's
// own descriptor) and a dev-chain token transfer (test-key descriptor, trusted only by an
// emulator told to) are shown as token amounts and signed; an unknown token and a test
// descriptor on an emulator that trusts only Ledger's key fall back to blind signing.
func TestTokenTransferClearSigned(t *testing.T) {
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	dest := common.HexToAddress("0x3535353535353535353535353535353535353535")
	devToken := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	devDesc, err := ledgercal.SignTest("dUSD", devToken, 6, 1337)
	if err != nil {
		t.Fatal(err)
	}
	usdc := common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")

	emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum, TrustTestTokenKey: true})
	d := pipeDriver(t, emu, ledger.Options{TokenDescriptors: [][]byte{devDesc}})
	for _, c := range []struct {
		name  string
		tx    *types.Transaction
		chain int64
		shown string
	}{
		{"mainnet usdc", tokenTx(1, usdc, transferSel, dest, 2_500_000), 1, "Send 2.5 USDC to " + dest.Hex()},
		{"dev token", tokenTx(1337, devToken, transferSel, dest, 2_500_000), 1337, "Send 2.5 dUSD to " + dest.Hex()},
		{"dev token approve", tokenTx(1337, devToken, approveSel, dest, 1), 1337, "Approve " + dest.Hex() + " to spend 0.000001 dUSD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signed, err := d.SignEthTx(t.Context(), path, c.tx, big.NewInt(c.chain))
			if err != nil {
				t.Fatal(err)
			}
			from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(c.chain)), signed)
			if err != nil || from.Hex() != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
				t.Fatalf("sender %s: %v", from.Hex(), err)
			}
			tr := emu.Approver().Transcript()
			last := tr[len(tr)-1]
			if len(last.Lines) == 0 || last.Lines[0] != c.shown {
				t.Errorf("last screen %q %q, want %q", last.Title, last.Lines, c.shown)
			}
			for _, e := range tr {
				if e.Title == "Blind signing" {
					t.Errorf("a blind-signing screen: %+v", e)
				}
			}
		})
	}

	t.Run("unknown token", func(t *testing.T) {
		other := common.HexToAddress("0x1111111111111111111111111111111111111111")
		_, err := d.SignEthTx(t.Context(), path, tokenTx(1337, other, transferSel, dest, 1), big.NewInt(1337))
		if !errors.Is(err, ledger.ErrBlindSigningDisabled) || !strings.Contains(err.Error(), "token information") {
			t.Errorf("unknown token without blind signing: %v", err)
		}
	})
	t.Run("test key not trusted", func(t *testing.T) {
		strict := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum})
		sd := pipeDriver(t, strict, ledger.Options{TokenDescriptors: [][]byte{devDesc}})
		_, err := sd.SignEthTx(t.Context(), path, tokenTx(1337, devToken, transferSel, dest, 1), big.NewInt(1337))
		if !errors.Is(err, ledger.ErrBlindSigningDisabled) {
			t.Errorf("test descriptor on a device that trusts only Ledger's key: %v", err)
		}
		// With blind signing on it signs as a contract call.
		strict.SetBlindSigning(true)
		if _, err := sd.SignEthTx(t.Context(), path, tokenTx(1337, devToken, transferSel, dest, 1), big.NewInt(1337)); err != nil {
			t.Errorf("blind: %v", err)
		}
	})
	t.Run("test key from the named token", func(t *testing.T) {
		kd := pipeDriver(t, emu, ledger.Options{TestTokenKey: true})
		other := common.HexToAddress("0x2222222222222222222222222222222222222222")
		ctx := device.WithToken(t.Context(), device.Token{ChainID: big.NewInt(1337), Contract: other, Symbol: "tUSD", Decimals: 2})
		if _, err := kd.SignEthTx(ctx, path, tokenTx(1337, other, transferSel, dest, 250), big.NewInt(1337)); err != nil {
			t.Fatal(err)
		}
		tr := emu.Approver().Transcript()
		if l := tr[len(tr)-1].Lines; len(l) == 0 || l[0] != "Send 2.5 tUSD to "+dest.Hex() {
			t.Errorf("screen %q", l)
		}
		// A token named for another contract is not described.
		ctx = device.WithToken(t.Context(), device.Token{ChainID: big.NewInt(1337), Contract: devToken, Symbol: "tUSD", Decimals: 2})
		if _, err := kd.SignEthTx(ctx, path, tokenTx(1337, other, transferSel, dest, 250), big.NewInt(1337)); !errors.Is(err, ledger.ErrBlindSigningDisabled) {
			t.Errorf("mismatched token: %v", err)
		}
		// Without Emulator the option is inert.
		plain := ledger.New(transport.NewSpeculosExchanger(emu.Pipe()), ledger.Options{TestTokenKey: true})
		t.Cleanup(func() { _ = plain.Close() })
		ctx = device.WithToken(t.Context(), device.Token{ChainID: big.NewInt(1337), Contract: other, Symbol: "tUSD", Decimals: 2})
		if _, err := plain.SignEthTx(ctx, path, tokenTx(1337, other, transferSel, dest, 250), big.NewInt(1337)); !errors.Is(err, ledger.ErrBlindSigningDisabled) {
			t.Errorf("test key on a non-emulator: %v", err)
		}
	})
}
