package bitcoin

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
)

// RPCAuth is how to log in to a node's JSON-RPC when its URL carries no credentials, the
// ways Bitcoin Core's own tools do: a user with a password read from a file (never from a
// command line, where ps and shell history show it), or a cookie file ("user:password", as
// bitcoind writes to <datadir>/<network>/.cookie at each start).
type RPCAuth struct {
	User         string // with PasswordFile
	PasswordFile string // its first line is the password
	Cookie       string // a cookie file
	// DataDir is bitcoind's data directory whose network cookie is tried last
	// (DefaultBitcoinDir if empty; "-" tries none).
	DataDir string
}

// DefaultBitcoinDir is bitcoind's default data directory on this OS for home.
func DefaultBitcoinDir(home, goos string) string {
	switch goos {
	case "darwin":
		return filepath.Join(home, "Library", "Application Support", "Bitcoin")
	case "windows":
		return filepath.Join(home, "AppData", "Roaming", "Bitcoin")
	}
	return filepath.Join(home, ".bitcoin")
}

// CookiePath is where bitcoind with data directory dir writes the cookie for net: the
// directory itself for mainnet, else its network subdirectory (testnet3, testnet4, signet,
// regtest).
func CookiePath(dir string, net *chaincfg.Params) string {
	switch net.Name {
	case chaincfg.MainNetParams.Name:
		return filepath.Join(dir, ".cookie")
	case chaincfg.TestNet3Params.Name:
		return filepath.Join(dir, "testnet3", ".cookie")
	case chaincfg.RegressionNetParams.Name:
		return filepath.Join(dir, "regtest", ".cookie")
	case chaincfg.SigNetParams.Name:
		return filepath.Join(dir, "signet", ".cookie")
	}
	return filepath.Join(dir, net.Name, ".cookie") // testnet4
}

// ErrNoCredentials: the URL has none and no password file or cookie was found.
var ErrNoCredentials = errors.New("no node credentials")

// WithAuth returns rawURL with credentials: those in the URL win; else User and
// PasswordFile; else the Cookie file; else the network's cookie under DataDir if it exists.
// It says where the credentials came from (never the secret itself). A URL without
// credentials and nothing found is returned as it is (some nodes take none) with
// ErrNoCredentials for the caller to mention if the node then refuses.
func (a RPCAuth) WithAuth(rawURL string, net *chaincfg.Params) (string, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("rpc url %q: want http://host:port (credentials from --rpc-cookie, --rpc-user with --rpc-password-file, or the node's cookie)", redact(rawURL))
	}
	if u.User != nil {
		if a.Cookie != "" || a.PasswordFile != "" {
			return "", "", errors.New("the rpc url has credentials and a cookie or password file is given too: give one")
		}
		return rawURL, "url", nil
	}
	set := func(user, pass, from string) (string, string, error) {
		if user == "" || pass == "" {
			return "", "", fmt.Errorf("%s: want user:password", from)
		}
		u.User = url.UserPassword(user, pass)
		return u.String(), from, nil
	}
	switch {
	case a.PasswordFile != "" || a.User != "":
		if a.PasswordFile == "" || a.User == "" {
			return "", "", errors.New("--rpc-user and --rpc-password-file go together")
		}
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("rpc password file: %w", err)
		}
		pass, _, _ := strings.Cut(string(b), "\n")
		return set(a.User, strings.TrimRight(pass, "\r"), "password file "+a.PasswordFile)
	case a.Cookie != "":
		return readCookie(a.Cookie, set)
	}
	if a.DataDir == "-" {
		return rawURL, "", ErrNoCredentials
	}
	dir := a.DataDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return rawURL, "", ErrNoCredentials
		}
		dir = DefaultBitcoinDir(home, runtime.GOOS)
	}
	path := CookiePath(dir, net)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return rawURL, "", ErrNoCredentials
	}
	return readCookie(path, set)
}

func readCookie(path string, set func(user, pass, from string) (string, string, error)) (string, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("rpc cookie: %w (is the node running? bitcoind writes it at start)", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return "", "", fmt.Errorf("rpc cookie %s: want user:password", path)
	}
	return set(user, pass, "cookie "+path)
}
