package trezoremu

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// connectReleases is what @trezor/connect 9.7.3 bundles for each persona's version
// (@trezor/connect-common 0.5.1 files/firmware/<model>/universal/<model>-<v>-universal.json,
// field firmware_revision): Connect compares Features.revision with it.
var connectReleases = map[Model]struct{ version, revision string }{
	ModelOne:   {"1.13.1", "2a65d18200580005dc419b9569ed97fae440806a"},
	ModelT:     {"2.9.1", "acd56d0113a547e9b5983510b0ce9de079e30e05"},
	ModelSafe3: {"2.9.1", "acd56d0113a547e9b5983510b0ce9de079e30e05"},
	ModelSafe5: {"2.9.1", "acd56d0113a547e9b5983510b0ce9de079e30e05"},
}

// featureLines prints every field that is present, in field-number order, one per line.
func featureLines(f *pb.Features) string {
	var lines []string
	f.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		var s string
		switch {
		case fd.Name() == "session_id":
			s = fmt.Sprintf("<%d bytes>", len(v.Bytes()))
		case fd.IsList():
			var xs []string
			for i := 0; i < v.List().Len(); i++ {
				xs = append(xs, pb.Capability(v.List().Get(i).Enum()).String())
			}
			s = strings.Join(xs, " ")
		case fd.Kind() == protoreflect.BytesKind:
			s = hex.EncodeToString(v.Bytes())
		case fd.Kind() == protoreflect.EnumKind:
			s = string(fd.Enum().Values().ByNumber(v.Enum()).Name())
		default:
			s = v.String()
		}
		lines = append(lines, fmt.Sprintf("%02d %s: %s", fd.Number(), fd.Name(), s))
		return true
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestPersonaFeatures pins each model's Features, locked and unlocked, to a golden file
// (testdata/features/), written from the firmware sources named in persona.source, and
// checks what @trezor/connect insists on.
func TestPersonaFeatures(t *testing.T) {
	for _, m := range []Model{ModelOne, ModelT, ModelSafe3, ModelSafe5} {
		for _, locked := range []bool{false, true} {
			name := strings.ReplaceAll(string(m), " ", "")
			opts := Options{Model: m, PassphraseProtection: true}
			if locked {
				name += "-locked"
				opts.PIN = "1234"
			}
			t.Run(name, func(t *testing.T) {
				d := newDevice(t, opts)
				c := newClient(t, d)
				init := callAs[*pb.Features](c, &pb.Initialize{})
				if len(init.SessionId) != 32 {
					t.Fatalf("Initialize: session id of %d bytes", len(init.SessionId))
				}
				f := callAs[*pb.Features](c, &pb.GetFeatures{})
				// Real firmware never sends these outside the bootloader; @trezor/connect
				// refuses bootloader_mode=false ("Features of unexpected shape").
				if f.BootloaderMode != nil || f.FirmwarePresent != nil || f.Imported != nil || f.SessionId != nil {
					t.Fatalf("fields real firmware omits: %v", f)
				}
				rel := connectReleases[m]
				if got := fmt.Sprintf("%d.%d.%d", f.GetMajorVersion(), f.GetMinorVersion(), f.GetPatchVersion()); got != rel.version {
					t.Fatalf("version %s, connect's bundled release is %s", got, rel.version)
				}
				if hex.EncodeToString(f.Revision) != rel.revision {
					t.Fatalf("revision %x, connect expects %s", f.Revision, rel.revision)
				}
				if f.GetModel() != string(m) {
					t.Fatalf("model %q", f.GetModel())
				}
				got := featureLines(f)
				golden := filepath.Join("testdata", "features", name+".txt")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to write it)", err)
				}
				if !bytes.Equal([]byte(got), want) {
					t.Fatalf("features differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
				}
			})
		}
	}
}

func TestParseModel(t *testing.T) {
	for in, want := range map[string]Model{"1": ModelOne, "t": ModelT, "": ModelT, "Safe3": ModelSafe3, "safe 3": ModelSafe3, "Safe5": ModelSafe5, "T3T1": ModelSafe5} {
		if got, err := ParseModel(in); err != nil || got != want {
			t.Errorf("ParseModel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseModel("Safe 7"); err == nil {
		t.Error("ParseModel accepted Safe 7")
	}
}
