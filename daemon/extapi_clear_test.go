package daemon

import (
	"context"
	"encoding/json"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/external"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/transport"
)

// mailDoc is the EIP-712 specification's example.
const mailDoc = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},
"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`

// startLedgerDaemon is startDaemon with a Ledger-class emulator (Ethereum app, blind
// signing off, verbose EIP-712 on) behind the hub.
func startLedgerDaemon(t *testing.T) (*testDaemon, *ledgeremu.Device) {
	t.Helper()
	approver := emulator.NewApprover(emulator.PolicyAuto)
	emu, err := ledgeremu.New(ledgeremu.Config{App: ledgeremu.AppEthereum, VerboseEIP712: true, Approver: approver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	hub := device.NewHub(device.HubConfig{
		Drivers: map[string]device.Driver{transport.KindLedger: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(ledger.New(transport.NewSpeculosExchanger(link), ledger.Options{Emulator: c.Emulator, OpenApp: true})), nil
		}},
		Emulators: []string{"tcp:127.0.0.1:9999"}, // named only; the link is an in-process pipe
		Open:      func(ctx context.Context, path string) (transport.Link, error) { return emu.Pipe(), nil },
	})
	dir := shortTempDir(t)
	td := &testDaemon{approver: approver, socket: filepath.Join(dir, "s.sock"), dataDir: filepath.Join(dir, "data"), done: make(chan error, 1)}
	td.d, err = Open(Config{Socket: td.socket, DataDir: td.dataDir, Hub: hub, ExtAPISocket: filepath.Join(dir, "ext.sock"), ExtAPIApp: "geth"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td.cancel = cancel
	go hub.Run(ctx)
	go func() { td.done <- td.d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-td.done; err != nil {
			t.Error(err)
		}
		td.d.Close()
	})
	for range 400 {
		if c, err := net.Dial("unix", td.socket); err == nil {
			c.Close()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return td, emu
}

// extSign signs Mail through account_signData data/typed with go-ethereum's external
// signer client and returns the signature after checking it recovers to the account.
func extSignMail(t *testing.T, td *testDaemon) []byte {
	t.Helper()
	td.pairApp(t, "geth", keys.ScopeRead, keys.ScopeSign)
	ext := filepath.Join(filepath.Dir(td.socket), "ext.sock")
	if _, err := os.Stat(ext); err != nil {
		t.Fatal(err)
	}
	signer, err := external.NewExternalSigner(ext)
	if err != nil {
		t.Fatal(err)
	}
	accts := signer.Accounts()
	if len(accts) == 0 {
		t.Fatal("no accounts")
	}
	sig, err := signer.SignData(accts[0], accounts.MimetypeTypedData, []byte(mailDoc))
	if err != nil {
		t.Fatal(err)
	}
	var doc apitypes.TypedData
	if err := json.Unmarshal([]byte(mailDoc), &doc); err != nil {
		t.Fatal(err)
	}
	digest, _, err := apitypes.TypedDataAndHash(doc)
	if err != nil {
		t.Fatal(err)
	}
	rsv := append([]byte{}, sig...)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(digest, rsv)
	if err != nil || crypto.PubkeyToAddress(*pub) != accts[0].Address {
		t.Fatalf("data/typed signature does not recover to %s: %v", accts[0].Address.Hex(), err)
	}
	return sig
}

// TestExtAPIClearSigning: through the external-signer API, a Ledger signs a mainnet USDC
// transfer with blind signing off (Ledger-signed token information) and EIP-712 Mail given
// as account_signData data/typed in full mode; a Trezor signs the same Mail by streaming,
// with the same signature.
func TestExtAPIClearSigning(t *testing.T) {
	td, emu := startLedgerDaemon(t)
	ledgerSig := extSignMail(t, td)

	signer, err := external.NewExternalSigner(filepath.Join(filepath.Dir(td.socket), "ext.sock"))
	if err != nil {
		t.Fatal(err)
	}
	acct := signer.Accounts()[0]
	usdc := common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	data := append(append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(to.Bytes(), 32)...), common.LeftPadBytes(big.NewInt(2_500_000).Bytes(), 32)...)
	chain := big.NewInt(1)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 1, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e10), Gas: 65000, To: &usdc, Data: data})
	signed, err := signer.SignTx(acct, tx, chain)
	if err != nil {
		t.Fatal(err)
	}
	if from, err := types.Sender(types.LatestSignerForChainID(chain), signed); err != nil || from != acct.Address {
		t.Fatalf("signed by %s: %v", from.Hex(), err)
	}
	var shown []string
	for _, e := range emu.Approver().Transcript() {
		shown = append(shown, e.Lines...)
	}
	if all := strings.Join(shown, "\n"); !strings.Contains(all, "Send 2.5 USDC to "+to.Hex()) || !strings.Contains(all, "contents: Hello, Bob!") {
		t.Errorf("transcript:\n%s", all)
	}

	trezorSig := extSignMail(t, startDaemon(t))
	if string(trezorSig) != string(ledgerSig) {
		t.Errorf("ledger %x and trezor %x signatures of Mail differ", ledgerSig, trezorSig)
	}
}
