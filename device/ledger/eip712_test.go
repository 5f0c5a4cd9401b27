package ledger_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/ledger"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// mailJSON is the example of the EIP-712 specification (eips.ethereum.org/EIPS/eip-712,
// Example.js), with a negative int, bytes and an array added in a second document.
const mailJSON = `{
 "types": {
  "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
  "Person": [{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
  "Mail": [{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]
 },
 "primaryType": "Mail",
 "domain": {"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
 "message": {"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}
}`

const richJSON = `{
 "types": {
  "EIP712Domain": [{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"salt","type":"bytes32"}],
  "Person": [{"name":"name","type":"string"},{"name":"wallets","type":"address[]"}],
  "Group": [{"name":"members","type":"Person[]"},{"name":"delta","type":"int16"},{"name":"blob","type":"bytes"},{"name":"flags","type":"bool[2]"},{"name":"tag","type":"bytes4"},{"name":"zero","type":"uint8"}]
 },
 "primaryType": "Group",
 "domain": {"name":"Groups","chainId":"1337","salt":"0x0101010101010101010101010101010101010101010101010101010101010101"},
 "message": {"members":[{"name":"A","wallets":["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"]},{"name":"B","wallets":[]}],
  "delta":"-300","blob":"0x` + "%s" + `","flags":[true,false],"tag":"0xdeadbeef","zero":"0"}
}`

func typedData(t testing.TB, s string) *device.TypedData {
	t.Helper()
	var td apitypes.TypedData
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&td); err != nil {
		t.Fatal(err)
	}
	fixNumbers(td.Message)
	out := &device.TypedData{Data: td}
	ds, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		t.Fatal(err)
	}
	copy(out.DomainSeparator[:], ds)
	if td.PrimaryType != "EIP712Domain" {
		if out.MessageHash, err = td.HashStruct(td.PrimaryType, td.Message); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// fixNumbers turns json.Numbers into *big.Int, as chains/ethereum.ParseTypedData does.
func fixNumbers(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case json.Number:
			n, _ := new(big.Int).SetString(x.String(), 10)
			m[k] = n
		case map[string]any:
			fixNumbers(x)
		}
	}
}

func checkTypedSigner(t *testing.T, td *device.TypedData, sig []byte) {
	t.Helper()
	rsv := append([]byte{}, sig...)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(device.TypedDataDigest(td.DomainSeparator, td.MessageHash), rsv)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != devicetest.VectorETHAddr {
		t.Fatalf("typed data signer: %v", err)
	}
}

// TestEIP712Full streams documents in full (verbose EIP-712 on, blind signing off) and
// compares with the v0 hashes (blind signing on): one signature.
func TestEIP712Full(t *testing.T) {
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	long := strings.Repeat("ab", 600) // a value cut across three APDUs
	for name, doc := range map[string]string{"mail": mailJSON, "rich": strings.Replace(richJSON, "%s", long, 1)} {
		t.Run(name, func(t *testing.T) {
			td := typedData(t, doc)
			emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum, VerboseEIP712: true})
			d := pipeDriver(t, emu, ledger.Options{})
			full, err := d.SignTypedData(t.Context(), path, td)
			if err != nil {
				t.Fatal(err)
			}
			checkTypedSigner(t, td, full)
			tr := emu.Approver().Transcript()
			last := tr[len(tr)-1]
			if last.Title != "Sign typed message" {
				t.Fatalf("last screen %+v", last)
			}
			if name == "mail" {
				want := []string{"name: Ether Mail", "from.name: Cow", "to.wallet: 0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB", "contents: Hello, Bob!"}
				for _, w := range want {
					if !strings.Contains(strings.Join(last.Lines, "\n"), w) {
						t.Errorf("screen lacks %q: %q", w, last.Lines)
					}
				}
			} else if !strings.Contains(strings.Join(last.Lines, "\n"), "delta: -300") {
				t.Errorf("screen lacks the negative int: %q", last.Lines)
			}
			emu.SetVerboseEIP712(false)
			emu.SetBlindSigning(true)
			v0, err := d.SignTypedHash(t.Context(), path, td.DomainSeparator, td.MessageHash)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(full, v0) {
				t.Errorf("full %x and v0 %x signatures differ", full, v0)
			}
			// Blind signing on, verbose off: still full, the message shown as its hash.
			again, err := d.SignTypedData(t.Context(), path, td)
			if err != nil || !bytes.Equal(again, full) {
				t.Errorf("full with blind signing: %x %v", again, err)
			}
		})
	}
}

func TestEIP712Refusals(t *testing.T) {
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum})
	d := pipeDriver(t, emu, ledger.Options{})
	td := typedData(t, mailJSON)
	if _, err := d.SignTypedData(t.Context(), path, td); !errors.Is(err, ledger.ErrBlindSigningDisabled) || !strings.Contains(err.Error(), "Verbose EIP-712") {
		t.Errorf("both settings off: %v", err)
	}
	dom := typedData(t, strings.Replace(mailJSON, `"primaryType": "Mail"`, `"primaryType": "EIP712Domain"`, 1))
	if _, err := d.SignTypedData(t.Context(), path, dom); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("domain-only: %v", err)
	}
	// The device is still usable after the refusal.
	emu.SetVerboseEIP712(true)
	if sig, err := d.SignTypedData(t.Context(), path, td); err != nil {
		t.Errorf("after a refusal: %v", err)
	} else {
		checkTypedSigner(t, td, sig)
	}
}
