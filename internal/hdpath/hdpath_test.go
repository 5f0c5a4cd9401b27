package hdpath

import (
	"errors"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Path
		str  string
	}{
		{"m", Path{}, "m"},
		{"m/84'/0'/0'/0/0", Path{Hardened + 84, Hardened, Hardened, 0, 0}, "m/84'/0'/0'/0/0"},
		{"m/44h/60h/0h/0/7", Path{Hardened + 44, Hardened + 60, Hardened, 0, 7}, "m/44'/60'/0'/0/7"},
		{"84H/1'/2", Path{Hardened + 84, Hardened + 1, 2}, "m/84'/1'/2"},
		{"m/2147483647", Path{2147483647}, "m/2147483647"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if !slices.Equal(got, tt.want) || got.String() != tt.str {
			t.Fatalf("Parse(%q) = %v %q", tt.in, got, got.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "m/", "m//1", "m/x", "m/-1", "m/+1", "m/2147483648", "m/1''", "m/1/", "/1"} {
		if _, err := Parse(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) err = %v, want ErrSyntax", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("m/84'/0'/0'/0/0")
	f.Add("44h/60h")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		q, err := Parse(p.String())
		if err != nil || !slices.Equal(p, q) {
			t.Fatalf("%q -> %q -> %v %v", s, p.String(), q, err)
		}
	})
}
