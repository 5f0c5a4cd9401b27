package coldcard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// transcript is one run of Coinkite's ckcc CLI against this emulator, recorded packet by
// packet on the simulator socket (testdata/ckcc/README.md says how).
type transcript struct {
	Command []string `json:"command"`
	Output  string   `json:"output"` // what ckcc printed
	Packets []entry  `json:"packets"`
}

type entry struct {
	Dir string `json:"dir"` // "host": ckcc sent it; "device": the emulator answered it
	Hex string `json:"hex"`
}

// replayKey is the emulator's session key pair in the recorded runs, so that the session
// key ckcc derived then is derived again.
func replayKey() (*btcec.PrivateKey, error) {
	k := sha256.Sum256([]byte("hwbridge coldcard emulator: ckcc transcript session key"))
	priv, _ := btcec.PrivKeyFromBytes(k[:])
	return priv, nil
}

// TestCkccTranscripts replays ckcc's own packets (its encrypted requests under the session
// key its recorded ncry set up) to the emulator on a simulator socket and requires every
// reply packet byte for byte: the vendor client's framing, ECDH, AES-CTR streams, upload,
// signing and download, checked in CI without the client.
func TestCkccTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/ckcc/*.json")
	if err != nil || len(files) < 7 {
		t.Fatalf("transcripts: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var tr transcript
			if err := json.Unmarshal(raw, &tr); err != nil {
				t.Fatal(err)
			}
			d, err := New(Options{Chain: "XTN", Approver: emulator.NewApprover(emulator.PolicyAuto)})
			if err != nil {
				t.Fatal(err)
			}
			d.ephemeral = replayKey
			dir, err := os.MkdirTemp("", "cc")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			srv, err := d.Listen(filepath.Join(dir, "s.sock"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			link, err := transport.DialColdcardSim(ctx, srv.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer link.Close()
			buf := make([]byte, 4096)
			replies := 0
			for i, e := range tr.Packets {
				want, err := hex.DecodeString(e.Hex)
				if err != nil {
					t.Fatal(err)
				}
				if e.Dir == "host" {
					if _, err := link.Write(want); err != nil {
						t.Fatal(err)
					}
					continue
				}
				_ = link.SetDeadline(time.Now().Add(5 * time.Second))
				n, err := link.Read(buf)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if got := hex.EncodeToString(buf[:n]); got != e.Hex {
					t.Fatalf("packet %d differs:\n got %s\nwant %s", i, got, e.Hex)
				}
				replies++
			}
			if replies == 0 {
				t.Fatal("no reply in the transcript")
			}
		})
	}
}
