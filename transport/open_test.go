package transport

import (
	"errors"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
		err  bool
	}{
		{"udp:127.0.0.1:21324", Path{SchemeUDP, "127.0.0.1:21324"}, false},
		{"tcp:127.0.0.1:9999", Path{SchemeTCP, "127.0.0.1:9999"}, false},
		{"tcp:localhost:9999", Path{SchemeTCP, "localhost:9999"}, false},
		{"udp:[::1]:21324", Path{SchemeUDP, "[::1]:21324"}, false},
		{"hid:/dev/hidraw3", Path{SchemeHID, "/dev/hidraw3"}, false},
		{"hid:1-2:1.0", Path{SchemeHID, "1-2:1.0"}, false}, // hidapi libusb paths have colons
		{"hid:IOService:/AppleACPIPlatformExpert/XHC@14", Path{SchemeHID, "IOService:/AppleACPIPlatformExpert/XHC@14"}, false},
		{"", Path{}, true},
		{"127.0.0.1:21324", Path{}, true}, // no scheme: "127.0.0.1" is not one
		{"udp", Path{}, true},
		{"udp:", Path{}, true},
		{"udp:127.0.0.1", Path{}, true},
		{"udp:127.0.0.1:", Path{}, true},
		{"udp::21324", Path{}, true},
		{"udp:127.0.0.1:0", Path{}, true},
		{"udp:127.0.0.1:65536", Path{}, true},
		{"udp:127.0.0.1:port", Path{}, true},
		{"tcp:::1:9999", Path{}, true}, // IPv6 must be bracketed
		{"hid:", Path{}, true},
		{"usb:1-2", Path{SchemeUSB, "1-2"}, false}, // raw usb: the sysfs device name
		{"usb:1-2:1.0", Path{}, true},
		{"UDP:127.0.0.1:21324", Path{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePath(tt.in)
			if tt.err {
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("err = %v, want ErrInvalidPath", err)
				}
				if _, err := Open(t.Context(), tt.in); !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("Open: err = %v, want ErrInvalidPath", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}
