package transport

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readHexDescriptors reads a testdata/usb file: hex bytes, '#' comments.
func readHexDescriptors(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "usb", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		h, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
		if err != nil {
			t.Fatalf("%s: %q: %v", name, line, err)
		}
		out = append(out, h...)
	}
	return out
}

func TestParseUSBDescriptorsRecorded(t *testing.T) {
	tests := []struct {
		file    string
		product uint16
		release uint16
		ifaces  []uint8 // classes of interfaces 0, 1, …
		wire    rawWire
	}{
		{"trezor1.hex", 0x53C1, 0x0100, []uint8{0xFF, 0x03}, rawWire{0, 0x81, 0x01, 64}},
		{"trezor1-debuglink.hex", 0x53C1, 0x0100, []uint8{0xFF, 0xFF, 0x03}, rawWire{0, 0x81, 0x01, 64}},
		{"trezort.hex", 0x53C1, 0x0200, []uint8{0xFF, 0x03}, rawWire{0, 0x81, 0x01, 64}},
		{"keepkey.hex", 0x0002, 0x0100, []uint8{0xFF, 0x03}, rawWire{0, 0x81, 0x01, 64}},
	}
	for _, tt := range tests {
		b := readHexDescriptors(t, tt.file)
		// wTotalLength of the one configuration matches what follows the device descriptor.
		if got := int(b[18+2]) | int(b[18+3])<<8; got != len(b)-18 {
			t.Errorf("%s: wTotalLength %d, the file has %d bytes of configuration", tt.file, got, len(b)-18)
		}
		d, err := parseUSBDescriptors(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		vendor := uint16(0x1209)
		if tt.product == 0x0002 {
			vendor = 0x2B24
		}
		if d.Vendor != vendor || d.Product != tt.product || d.Release != tt.release || len(d.Configs) != 1 || d.Configs[0].Value != 1 {
			t.Fatalf("%s: %+v", tt.file, d)
		}
		var classes []uint8
		for _, i := range d.Configs[0].Interfaces {
			classes = append(classes, i.Class)
		}
		if !reflect.DeepEqual(classes, tt.ifaces) {
			t.Errorf("%s: interface classes %x, want %x", tt.file, classes, tt.ifaces)
		}
		w, err := d.wireInterface(1, 0)
		if err != nil || w != tt.wire {
			t.Errorf("%s: wire %+v, %v", tt.file, w, err)
		}
		// Interface 1 is the debug link (vendor class) or the FIDO HID interface: never the wire.
		if w, err := d.wireInterface(1, 1); err == nil && tt.file != "trezor1-debuglink.hex" {
			t.Errorf("%s: interface 1 taken as a wire interface: %+v", tt.file, w)
		}
		if _, err := d.wireInterface(2, 0); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: configuration 2: %v", tt.file, err)
		}
	}
}

func TestParseUSBDescriptorsErrors(t *testing.T) {
	good := readHexDescriptors(t, "trezor1.hex")
	bad := map[string][]byte{
		"empty":             nil,
		"short device":      good[:17],
		"not a device":      append([]byte{18, 2}, good[2:]...),
		"zero length":       append(append([]byte{}, good[:18]...), 0, 2),
		"overrun":           good[:len(good)-3],
		"iface outside cfg": append(append([]byte{}, good[:18]...), good[27:36]...),
		"ep outside iface":  append(append([]byte{}, good[:27]...), good[36:43]...),
		"second device":     append(append([]byte{}, good...), good[:18]...),
		"short config":      append(append([]byte{}, good[:18]...), 4, 2, 0, 0),
		"huge":              append(append([]byte{}, good...), make([]byte, usbMaxDescriptors)...),
		"short endpoint":    append(append([]byte{}, good[:36]...), 4, 5, 0x81, 3),
		"short interface":   append(append([]byte{}, good[:27]...), 4, 4, 0, 0),
	}
	for name, b := range bad {
		if _, err := parseUSBDescriptors(b); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// No pair of interrupt endpoints, or a HID interface at 0: no wire interface.
	d, _ := parseUSBDescriptors(good)
	d.Configs[0].Interfaces[0].Endpoints[1].Attributes = 2 // bulk
	if _, err := d.wireInterface(1, 0); !errors.Is(err, ErrBadDescriptor) {
		t.Errorf("bulk OUT endpoint: %v", err)
	}
	d, _ = parseUSBDescriptors(good)
	d.Configs[0].Interfaces[0].Class = usbClassHID
	if _, err := d.wireInterface(1, 0); !errors.Is(err, ErrBadDescriptor) {
		t.Errorf("HID interface 0: %v", err)
	}
}

// FuzzUSBDescriptors: parse, re-encode, parse again; the two parses agree.
func FuzzUSBDescriptors(f *testing.F) {
	for _, name := range []string{"trezor1.hex", "trezor1-debuglink.hex", "trezort.hex", "keepkey.hex"} {
		f.Add(readHexDescriptors(f, name))
	}
	f.Add([]byte{18, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseUSBDescriptors(b)
		if err != nil {
			if !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("error does not wrap ErrBadDescriptor: %v", err)
			}
			return
		}
		again, err := parseUSBDescriptors(appendUSBDescriptors(nil, d))
		if err != nil {
			t.Fatalf("re-encoded descriptors do not parse: %v", err)
		}
		if !reflect.DeepEqual(normDesc(d), normDesc(again)) {
			t.Fatalf("round trip:\n%+v\n%+v", d, again)
		}
		for _, c := range d.Configs {
			for _, i := range c.Interfaces {
				if w, err := d.wireInterface(c.Value, i.Number); err == nil && (w.In&0x80 == 0 || w.Out&0x80 != 0 || w.MaxPacket < 64) {
					t.Fatalf("bad wire interface %+v", w)
				}
			}
		}
	})
}

// normDesc maps empty slices to nil, so that DeepEqual compares content.
func normDesc(d usbDevice) usbDevice {
	if len(d.Configs) == 0 {
		d.Configs = nil
	}
	for i := range d.Configs {
		c := &d.Configs[i]
		if len(c.Interfaces) == 0 {
			c.Interfaces = nil
		}
		for j := range c.Interfaces {
			if len(c.Interfaces[j].Endpoints) == 0 {
				c.Interfaces[j].Endpoints = nil
			}
		}
	}
	return d
}
