package daemon

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hwbridge/hwbridge/daemon/keys"
)

// FuzzParams: the decoding a request's params go through (canonical form for the MAC, then
// a strict decode into the method's params type) never panics, and what it decodes survives
// encode → canonical → decode unchanged.
func FuzzParams(f *testing.F) {
	for _, s := range []string{
		`{"path":"m/84'/0'/0'","network":"regtest","display":true}`,
		`{"request_id":"pay-1","rpc":"http://127.0.0.1:8545","to":"0x1111111111111111111111111111111111111111","value":"0.5","index":3}`,
		`{"request_id":"b","rpc":"http://u:p@h:1","network":"regtest","to":"bcrt1q","amount":"1.25","fee_rate":"2"}`,
		`{"chain":"eth","path":"m/44'/60'/0'/0/0","message":"h\u00e9llo\n"}`,
	} {
		f.Add([]byte(s))
	}
	types := []func() any{
		func() any { return new(XPubParams) },
		func() any { return new(EthSendParams) },
		func() any { return new(BtcSendParams) },
		func() any { return new(SignMessageParams) },
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := keys.Canonical(raw); err != nil {
			return
		}
		for _, newT := range types {
			v := newT()
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if dec.Decode(v) != nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			c, err := keys.Canonical(b)
			if err != nil {
				t.Fatalf("canonical of %s: %v", b, err)
			}
			w := newT()
			if err := json.Unmarshal(c, w); err != nil || !reflect.DeepEqual(v, w) {
				t.Fatalf("round trip %T: %+v != %+v (%v)", v, v, w, err)
			}
		}
	})
}
