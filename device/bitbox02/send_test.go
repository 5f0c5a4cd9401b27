package bitbox02_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	bb02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/devchain/ethdev"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Regtest payments through chains/bitcoin's Send pipeline (watch-only scan from the
// device's xpub, coin selection, the PSBT the BitBox02 streams in signing steps, checks,
// finalize, broadcast) on one embedded btcd chain: the wpkh account, funded by the coinbase,
// pays the tr and sh-wpkh accounts, which then pay out in turn.
func TestRegtestSend(t *testing.T) {
	emu := bb02emu.NewForTest(t, bb02emu.Config{})
	d := device.Verify(openPipe(t, emu, &bitbox02.MemStore{}, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	net := &chaincfg.RegressionNetParams
	addr := func(st device.ScriptType) btcutil.Address {
		purpose, _ := st.Purpose()
		a, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: st, Network: net,
			Path: hdpath.Path{purpose + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 0}})
		if err != nil {
			t.Fatal(err)
		}
		ad, err := btcutil.DecodeAddress(a, net)
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	mineTo := addr(device.ScriptWPKH)
	node, err := btcregtest.Start(ctx, btcregtest.NodeOptions{MiningAddr: mineTo})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	send := func(from device.ScriptType, to, amount string) {
		t.Helper()
		res, err := bitcoin.Send(ctx, bitcoin.SendOrder{RPC: node.URL(), Network: "regtest", Type: string(from),
			To: to, Amount: amount, FeeRate: "2"}, d, d, bitcoin.Hooks{}, nil)
		if err != nil {
			t.Fatalf("%s pays %s: %v", from, to, err)
		}
		h, err := chainhash.NewHashFromStr(res.TxID)
		if err != nil || !node.InMempool(h) {
			t.Fatalf("txid %s not in the mempool (%v)", res.TxID, err)
		}
		if _, err := node.Mine(ctx, 1, mineTo); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []device.ScriptType{device.ScriptTR, device.ScriptSHWPKH} {
		send(device.ScriptWPKH, addr(st).EncodeAddress(), "1.25")
	}
	for _, st := range []device.ScriptType{device.ScriptTR, device.ScriptSHWPKH} {
		send(st, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "1")
	}
}

// An ETH payment through chains/ethereum's Send pipeline on the embedded dev chain, signed
// by the BitBox02 (EIP-1559, anti-klepto verified by the driver, signer checked by
// device.Verify).
func TestEthSend(t *testing.T) {
	emu := bb02emu.NewForTest(t, bb02emu.Config{})
	d := device.Verify(openPipe(t, emu, &bitbox02.MemStore{}, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	from := common.HexToAddress("0x9858EfFD232B4033E47d90003D41EC34EcaEda94")
	node, err := ethdev.Start(ctx, ethdev.Options{Prefund: []common.Address{from}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	c, err := ethereum.Dial(ctx, node.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	if _, err := ethereum.Send(ctx, c, ethereum.SendOrder{RPC: node.URL(), To: to.Hex(), Value: "0.5", ChainID: "1337", ReceiptTimeout: 60}, d, ethereum.Hooks{}, nil); err != nil {
		t.Fatal(err)
	}
	ec, err := ethclient.DialContext(ctx, node.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	bal, err := ec.BalanceAt(ctx, to, nil)
	if err != nil || bal.Cmp(new(big.Int).Mul(big.NewInt(5), big.NewInt(1e17))) != 0 {
		t.Fatalf("recipient holds %v wei (%v), want 0.5 ETH", bal, err)
	}
}
