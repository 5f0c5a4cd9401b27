package bitbox02

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"
)

// Store keeps what makes pairing happen once per host: the host's static Noise key and the
// static keys of the devices the person has confirmed a pairing code for.
type Store interface {
	Load() (Keys, error)
	// SetHostKey stores a newly generated host private key (32 bytes).
	SetHostKey(priv []byte) error
	// AddDevice remembers a device static public key (32 bytes).
	AddDevice(pub []byte) error
}

// Keys is a Store's content.
type Keys struct {
	HostPrivate []byte
	Devices     [][]byte
}

func (k Keys) knows(pub []byte) bool {
	for _, d := range k.Devices {
		if bytes.Equal(d, pub) {
			return true
		}
	}
	return false
}

// hostKey returns the host's static key pair, generating and storing one the first time.
func (k Keys) hostKey(s Store) (noise.DHKey, error) {
	if len(k.HostPrivate) == 0 {
		kp, err := noise.DH25519.GenerateKeypair(rand.Reader)
		if err != nil {
			return noise.DHKey{}, err
		}
		return kp, s.SetHostKey(kp.Private)
	}
	if len(k.HostPrivate) != 32 {
		return noise.DHKey{}, fmt.Errorf("host key of %d bytes", len(k.HostPrivate))
	}
	pub, err := curve25519.X25519(k.HostPrivate, curve25519.Basepoint)
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: k.HostPrivate, Public: pub}, nil
}

// FileStore keeps the keys in a JSON file (mode 0600), like bitbox-api-rs's
// PersistedNoiseConfig: {"app_static_privkey": hex, "device_static_pubkeys": [hex…]}.
type FileStore struct {
	Path string
	mu   sync.Mutex
}

// DefaultStorePath is where the CLI and hwbridged keep BitBox02 pairings:
// os.UserConfigDir()/hwbridge/bitbox02-noise.json.
func DefaultStorePath() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "hwbridge", "bitbox02-noise.json"), nil
}

type fileKeys struct {
	AppStaticPrivkey    string   `json:"app_static_privkey,omitempty"`
	DeviceStaticPubkeys []string `json:"device_static_pubkeys"`
}

// maxStoreFile caps the file read back: a few hundred paired devices fit in 64 KiB.
const maxStoreFile = 64 << 10

func (f *FileStore) read() (fileKeys, error) {
	var fk fileKeys
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return fk, nil
	}
	if err != nil {
		return fk, err
	}
	if len(b) > maxStoreFile {
		return fk, fmt.Errorf("%s: %d bytes is too large for a pairing store", f.Path, len(b))
	}
	if err := json.Unmarshal(b, &fk); err != nil {
		return fk, fmt.Errorf("%s: %w", f.Path, err)
	}
	return fk, nil
}

func (f *FileStore) write(fk fileKeys) error {
	b, err := json.MarshalIndent(fk, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return err
	}
	tmp := f.Path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.Path)
}

// Load implements Store.
func (f *FileStore) Load() (Keys, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fk, err := f.read()
	if err != nil {
		return Keys{}, err
	}
	var k Keys
	if fk.AppStaticPrivkey != "" {
		if k.HostPrivate, err = hex.DecodeString(fk.AppStaticPrivkey); err != nil {
			return Keys{}, fmt.Errorf("%s: host key: %w", f.Path, err)
		}
	}
	for _, d := range fk.DeviceStaticPubkeys {
		b, err := hex.DecodeString(d)
		if err != nil || len(b) != 32 {
			return Keys{}, fmt.Errorf("%s: device key %q is not 32 hex bytes", f.Path, d)
		}
		k.Devices = append(k.Devices, b)
	}
	return k, nil
}

// SetHostKey implements Store.
func (f *FileStore) SetHostKey(priv []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fk, err := f.read()
	if err != nil {
		return err
	}
	fk.AppStaticPrivkey = hex.EncodeToString(priv)
	return f.write(fk)
}

// AddDevice implements Store.
func (f *FileStore) AddDevice(pub []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fk, err := f.read()
	if err != nil {
		return err
	}
	h := hex.EncodeToString(pub)
	for _, d := range fk.DeviceStaticPubkeys {
		if d == h {
			return nil
		}
	}
	fk.DeviceStaticPubkeys = append(fk.DeviceStaticPubkeys, h)
	return f.write(fk)
}

// MemStore keeps the keys in memory (tests; a host that must pair every time).
type MemStore struct {
	mu   sync.Mutex
	keys Keys
}

// Load implements Store.
func (m *MemStore) Load() (Keys, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Keys{HostPrivate: bytes.Clone(m.keys.HostPrivate), Devices: append([][]byte(nil), m.keys.Devices...)}, nil
}

// SetHostKey implements Store.
func (m *MemStore) SetHostKey(priv []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys.HostPrivate = bytes.Clone(priv)
	return nil
}

// AddDevice implements Store.
func (m *MemStore) AddDevice(pub []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.keys.knows(pub) {
		m.keys.Devices = append(m.keys.Devices, bytes.Clone(pub))
	}
	return nil
}
