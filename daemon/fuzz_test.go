package daemon

import (
	"bytes"
	"encoding/json"
	"io"
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
		`{"name":"Cold","template":"wsh(sortedmulti(2,@0/**,@1/**))","keys":["[73c5da0a/48'/1'/0'/2']tpubA","tpubB"],"change":1,"index":7,"display":true}`,
		`{"script":"wsh","threshold":2,"keys":[{"xpub":"tpubA","steps":"0/5"},{"pub":"02ab"}],"path":"m/48'/1'/0'/2'/0/5"}`,
	} {
		f.Add([]byte(s))
	}
	types := []func() any{
		func() any { return new(XPubParams) },
		func() any { return new(EthSendParams) },
		func() any { return new(BtcSendParams) },
		func() any { return new(SignMessageParams) },
		func() any { return new(PolicyAddressParams) },
		func() any { return new(MultisigAddressParams) },
		func() any { return new(UnlockParams) },
		func() any { return new(SendPINParams) },
		func() any { return new(ForgetParams) },
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

// scanAll feeds in to a fresh scanner in chunks of size step (0: all at once).
func scanAll(in []byte, max, step int) error {
	s := valueScanner{max: max}
	if step <= 0 {
		return s.feed(in)
	}
	for len(in) > 0 {
		n := min(step, len(in))
		if err := s.feed(in[:n]); err != nil {
			return err
		}
		in = in[n:]
	}
	return nil
}

// longestValue is the longest top-level value of a stream of JSON objects and arrays, by
// encoding/json; ok is false when the stream is something else.
func longestValue(in []byte) (longest int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(in))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if err == io.EOF {
			return longest, true
		}
		if err != nil || (v[0] != '{' && v[0] != '[') {
			return 0, false
		}
		longest = max(longest, len(v))
	}
}

func TestValueScanner(t *testing.T) {
	tests := []struct {
		in      string
		tooLong bool
	}{
		{`{"a":1}`, false},
		{`{"a":"0123456789"}`, true},               // 18 bytes
		{`{"a":1} {"b":2} {"c":3} {"d":4}`, false}, // many values under the cap
		{`{"a":"}}}}}}}}}}"}`, true},               // brackets in strings do not end the value
		{`{"a":"\"}}}}}}}"}`, true},                // nor do escaped quotes
		{`[[[[[[[[[[[[[[[[[`, true},                // an unfinished value
		{"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n{}", false},
	}
	for _, tt := range tests {
		for _, step := range []int{0, 1, 3} {
			if err := scanAll([]byte(tt.in), 16, step); (err != nil) != tt.tooLong {
				t.Errorf("%q step %d: %v", tt.in, step, err)
			}
		}
	}
}

// FuzzValueScanner: the result does not depend on how reads split the stream, and for a
// stream of objects and arrays the scanner refuses exactly when one value is above the cap.
func FuzzValueScanner(f *testing.F) {
	for _, s := range []string{`{"a":1} [2]`, `{"a":"\"}"}`, `[[[`, `"x" 1 {}`} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		const max = 16
		whole := scanAll(in, max, 0)
		if split := scanAll(in, max, int(step)); (split == nil) != (whole == nil) {
			t.Fatalf("split by %d: %v, whole: %v", step, split, whole)
		}
		if longest, ok := longestValue(in); ok && (longest > max) != (whole != nil) {
			t.Fatalf("longest value %d bytes, scanner: %v", longest, whole)
		}
	})
}
