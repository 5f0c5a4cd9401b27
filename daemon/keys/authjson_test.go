package keys

import (
	"encoding/json"
	"testing"
)

// authReflect is Auth without its UnmarshalJSON: what encoding/json's reflection makes of
// an auth object, the oracle of FuzzAuthUnmarshal.
type authReflect Auth

// FuzzAuthUnmarshal: Auth.UnmarshalJSON refuses what reflection refuses and otherwise
// gives the same fields.
func FuzzAuthUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"app":"a1","key":1,"nonce":"00112233445566778899aabbccddeeff","ts":1800000000123,"mac":"99"}`,
		`{"APP":"x","Key":2,"\u212aey":3,"tſ":4,"TS":5,"mac":null,"other":{"a":[1,"}"]},"app":"y"}`,
		`null`, ` null `, `[]`, `"x"`, `1`, `{}`, `{"key":1.0}`, `{"key":1e2}`, `{"key":"1"}`, `{"ts":-0}`,
		`{"key":9223372036854775808}`, `{"ts":-9223372036854775808}`, `{"app":1}`, `{"app":true}`, `{"key":[1]}`,
		`{"app":"\ud800\udc00\ud800x\udc00\ud800\u0041\"\\\/\b\f\n\r\t"}`, "{\"mac\":\"\xff\xfe\xef\xbf\xbd\"}",
		`{"nonce":"a","nonce":null,"nonce":"b"}`, ` { "app" : "a" , "x" : [ { } , [ ] , "" , -1.5e+3 , true , false , null ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			return
		}
		var got Auth
		err := json.Unmarshal(in, &got)
		var want authReflect
		rerr := json.Unmarshal(in, &want)
		if (err == nil) != (rerr == nil) || err == nil && got != Auth(want) {
			t.Fatalf("%q: UnmarshalJSON gives %+v, %v; reflection %+v, %v", in, got, err, want, rerr)
		}
	})
}

// BenchmarkAuthUnmarshal: one auth object as the Go client sends it.
func BenchmarkAuthUnmarshal(b *testing.B) {
	in := []byte(`{"app":"a1b2c3d4e5","key":1,"nonce":"00112233445566778899aabbccddeeff","ts":1800000000123,"mac":"99b3fa0ee0d62e205e8ec9888a3ead2cc8c1adeb953ac2e53bc898053a714c3f"}`)
	b.Run("handwritten", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var a Auth
			if err := json.Unmarshal(in, &a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var a authReflect
			if err := json.Unmarshal(in, &a); err != nil {
				b.Fatal(err)
			}
		}
	})
}
