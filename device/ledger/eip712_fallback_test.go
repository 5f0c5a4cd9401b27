package ledger

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TestEIP712FallsBackToHashes: an app without full EIP-712 (older than 1.9.19, or
// answering 0x6D00 to E0 1A) gets the v0 hashes.
func TestEIP712FallsBackToHashes(t *testing.T) {
	doc := `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"n","type":"uint8"}]},"primaryType":"M","domain":{"name":"x"},"message":{"n":"7"}}`
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(doc), &td); err != nil {
		t.Fatal(err)
	}
	ds, _ := td.HashStruct("EIP712Domain", td.Domain.Map())
	mh, _ := td.HashStruct("M", td.Message)
	in := &device.TypedData{Data: td, MessageHash: mh}
	copy(in.DomainSeparator[:], ds)
	key, _ := crypto.GenerateKey()
	for _, c := range []struct {
		version string
		want    []string // APDU headers after B0 01
	}{
		{"1.9.18", []string{"e00c0000"}},
		{"1.12.0", []string{"e01a0000", "e00c0000"}},
	} {
		t.Run(c.version, func(t *testing.T) {
			f := &scripted{app: AppEthereum, version: c.version, handle: func(apdu []byte) ([]byte, uint16) {
				if apdu[1] != insEthEIP712 {
					return nil, swINSNotSupported
				}
				digest := device.TypedDataDigest(in.DomainSeparator, in.MessageHash)
				sig, _ := crypto.Sign(digest, key)
				return append([]byte{27 + sig[64]}, sig[:64]...), swOK
			}}
			sig, err := New(f, Options{}).SignTypedData(context.Background(), hdpath.MustParse("m/44'/60'/0'/0/0"), in)
			if err != nil || len(sig) != 65 {
				t.Fatalf("%x %v", sig, err)
			}
			var got []string
			for _, h := range f.headers() {
				if !strings.HasPrefix(h, "b001") {
					got = append(got, h)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("apdus %v, want %v", got, c.want)
			}
		})
	}
}

// FuzzTypedDataCommands builds the E0 1A/1C commands from arbitrary EIP-712 JSON (what
// API clients send): it never panics, and every command fits one APDU.
func FuzzTypedDataCommands(f *testing.F) {
	f.Add(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"n","type":"uint8"},{"name":"a","type":"M2[][2]"}],"M2":[{"name":"b","type":"bytes4"}]},"primaryType":"M","domain":{"name":"x"},"message":{"n":"7","a":[[{"b":"0x01020304"},{"b":"0x"}]]}}`)
	f.Add(`{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"M":[{"name":"i","type":"int8"},{"name":"s","type":"string[]"}]},"primaryType":"M","domain":{"chainId":1},"message":{"i":-128,"s":["a","b"]}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var td apitypes.TypedData
		if err := json.Unmarshal([]byte(doc), &td); err != nil {
			return
		}
		defs, err := structDefs(&td)
		if err != nil {
			return
		}
		impl, err := structImpls(&td)
		if err != nil {
			return
		}
		for _, c := range append(defs, impl...) {
			if len(c.data) > maxAPDUData {
				t.Fatalf("command of %d bytes", len(c.data))
			}
		}
	})
}
