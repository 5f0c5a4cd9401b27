package devicetest

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TypedDataJSON is an eth_signTypedData_v4 document that exercises every EIP-712 type a
// device must stream: nested structs, a dynamic array of structs, fixed and dynamic arrays
// of atoms, negative ints, bytesN, dynamic bytes, bools, strings and addresses.
const TypedDataJSON = `{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
      {"name": "salt", "type": "bytes32"}
    ],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
    "Mail": [
      {"name": "from", "type": "Person"}, {"name": "to", "type": "Person[]"},
      {"name": "contents", "type": "string"}, {"name": "attachment", "type": "bytes"},
      {"name": "urgent", "type": "bool"}, {"name": "delta", "type": "int16"},
      {"name": "scores", "type": "uint8[3]"}, {"name": "tag", "type": "bytes4"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail", "version": "1", "chainId": "1",
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    "salt": "0x000000000000000000000000000000000000000000000000000000000000beef"
  },
  "message": {
    "from": {"name": "Cow", "wallets": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"]},
    "to": [
      {"name": "Bob", "wallets": ["0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"]},
      {"name": "Daisy", "wallets": []}
    ],
    "contents": "Hello, Bob!", "attachment": "0x0102030405",
    "urgent": true, "delta": "-300", "scores": ["1", "2", "255"], "tag": "0xabcdef01"
  }
}`

// TypedData parses TypedDataJSON and hashes it with go-ethereum's apitypes.
func TypedData(t testing.TB) *device.TypedData {
	t.Helper()
	td, err := ParseTypedData()
	if err != nil {
		t.Fatal(err)
	}
	return td
}

// ParseTypedData is TypedData for callers without a testing.TB.
func ParseTypedData() (*device.TypedData, error) {
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(TypedDataJSON), &td); err != nil {
		return nil, err
	}
	ds, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		return nil, err
	}
	mh, err := td.HashStruct(td.PrimaryType, td.Message)
	if err != nil {
		return nil, err
	}
	out := &device.TypedData{Data: td, MessageHash: mh}
	copy(out.DomainSeparator[:], ds)
	return out, nil
}

func testSignTypedData(t *testing.T, d device.Device) {
	ctx := ctxFor(t)
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	td := TypedData(t)
	domainOnly := *td
	domainOnly.Data.PrimaryType = "EIP712Domain"
	domainOnly.MessageHash = nil
	for _, doc := range []*device.TypedData{td, &domainOnly} {
		sig, err := device.SignTypedData(ctx, d, path, doc)
		if err != nil {
			t.Fatalf("primary type %s: %v", doc.Data.PrimaryType, err)
		}
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("signature %x: want 65 bytes ending in 27 or 28", sig)
		}
		rsv := append([]byte{}, sig...)
		rsv[64] -= 27
		pub, err := crypto.SigToPub(device.TypedDataDigest(doc.DomainSeparator, doc.MessageHash), rsv)
		if err != nil || crypto.PubkeyToAddress(*pub).Hex() != VectorETHAddr {
			t.Errorf("primary type %s: signature does not recover %s (%v)", doc.Data.PrimaryType, VectorETHAddr, err)
		}
	}
}
