package bitcoin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

func TestCookiePath(t *testing.T) {
	for _, tt := range []struct {
		net  *chaincfg.Params
		want string
	}{
		{&chaincfg.MainNetParams, "d/.cookie"},
		{&chaincfg.TestNet3Params, "d/testnet3/.cookie"},
		{TestNet4Params, "d/testnet4/.cookie"},
		{&chaincfg.SigNetParams, "d/signet/.cookie"},
		{&chaincfg.RegressionNetParams, "d/regtest/.cookie"},
	} {
		if got := CookiePath("d", tt.net); got != filepath.FromSlash(tt.want) {
			t.Errorf("%s: %s, want %s", tt.net.Name, got, tt.want)
		}
	}
	if got := DefaultBitcoinDir("/h", "linux"); got != filepath.FromSlash("/h/.bitcoin") {
		t.Errorf("linux: %s", got)
	}
}

func TestWithAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cookie := write("c", "__cookie__:abc123\n")
	pass := write("p", "s3cret\nignored\n")
	write("btc/regtest/.cookie", "__cookie__:def456")
	regtest := &chaincfg.RegressionNetParams
	tests := []struct {
		name    string
		url     string
		auth    RPCAuth
		want    string
		from    string
		wantErr string
		noCreds bool
	}{
		{"url wins", "http://u:p@127.0.0.1:18443", RPCAuth{DataDir: "-"}, "http://u:p@127.0.0.1:18443", "url", "", false},
		{"cookie file", "http://127.0.0.1:18443", RPCAuth{Cookie: cookie}, "http://__cookie__:abc123@127.0.0.1:18443", "cookie " + cookie, "", false},
		{"password file", "http://127.0.0.1:18443", RPCAuth{User: "alice", PasswordFile: pass}, "http://alice:s3cret@127.0.0.1:18443", "password file " + pass, "", false},
		{"network cookie", "http://127.0.0.1:18443", RPCAuth{DataDir: filepath.Join(dir, "btc")}, "http://__cookie__:def456@127.0.0.1:18443", "cookie " + filepath.Join(dir, "btc", "regtest", ".cookie"), "", false},
		{"nothing found", "http://127.0.0.1:18443", RPCAuth{DataDir: filepath.Join(dir, "none")}, "http://127.0.0.1:18443", "", "", true},
		{"user without file", "http://127.0.0.1:18443", RPCAuth{User: "alice"}, "", "", "go together", false},
		{"both", "http://u:p@127.0.0.1:18443", RPCAuth{Cookie: cookie}, "", "", "give one", false},
		{"missing cookie", "http://127.0.0.1:18443", RPCAuth{Cookie: filepath.Join(dir, "nope")}, "", "", "is the node running", false},
		{"bad cookie", "http://127.0.0.1:18443", RPCAuth{Cookie: pass}, "", "", "want user:password", false},
		{"bad url", "127.0.0.1:18443", RPCAuth{}, "", "", "want http://host:port", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from, err := tt.auth.WithAuth(tt.url, regtest)
			switch {
			case tt.noCreds:
				if !errors.Is(err, ErrNoCredentials) || got != tt.want {
					t.Fatalf("%q %v", got, err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
			default:
				if err != nil || got != tt.want || from != tt.from {
					t.Fatalf("%q from %q (%v), want %q from %q", got, from, err, tt.want, tt.from)
				}
			}
		})
	}
}
