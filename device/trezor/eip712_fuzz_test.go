package trezor

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// FuzzTypedDataRequests answers device requests with arbitrary member paths and struct
// names against a fixed document: the driver must answer or refuse (an error), never
// panic, whatever path a device asks for.
func FuzzTypedDataRequests(f *testing.F) {
	const doc = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],
	  "Person":[{"name":"name","type":"string"},{"name":"wallets","type":"address[]"}],
	  "Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person[2]"},{"name":"n","type":"int8[][]"},{"name":"b","type":"bytes3"}]},
	  "primaryType":"Mail","domain":{"name":"x","chainId":"1"},
	  "message":{"from":{"name":"a","wallets":["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"]},
	    "to":[{"name":"b","wallets":[]},{"name":"c","wallets":["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"]}],
	    "n":[["-1","2"],[]],"b":"0x010203"}}`
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(doc), &td); err != nil {
		f.Fatal(err)
	}
	domain := apitypes.TypedDataMessage(td.Domain.Map())
	f.Add([]byte{1, 0, 1, 0}, "Mail")
	f.Add([]byte{1, 2, 0, 1}, "Person")
	f.Add([]byte{0, 1}, "EIP712Domain")
	f.Fuzz(func(t *testing.T, path []byte, name string) {
		if len(path) > 64 {
			return
		}
		p := make([]uint32, len(path))
		for i, b := range path {
			p[i] = uint32(b)
		}
		_, _ = typedValue(&td, domain, p)
		_, _ = structMembers(&td, name)
	})
}
