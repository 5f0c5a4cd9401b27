package bitbox02

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/hwbridge/hwbridge/device"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Vectors from bitbox-api-rs src/antiklepto.rs tests (91321e3), recorded there from runs of
// the protocol with a BitBox02 (BitBoxSwiss/bitbox-api-rs, commit 91321e3, npm 0.13.0).
func TestAntiKleptoVectors(t *testing.T) {
	if got := taggedHash("test tag", []byte("test message")); hex.EncodeToString(got[:]) != "025ee06f5a2db377bd9d7040bae8f6e0ab49784f9c68a1380fba5465d8a99928" {
		t.Fatalf("tagged hash %x", got)
	}
	c := taggedHash("s2c/ecdsa/data", unhex(t, "e8011345fe4851538c30c1fc1a215395e8063fcf6fbdcf8fab9a42e466a74f4a"))
	if hex.EncodeToString(c[:]) != "70a8934f41a1679b4c715c3e6db17f785b67da4e398107a0a00c828980a4be2f" {
		t.Fatalf("host commitment %x", c)
	}
	for _, v := range []struct{ nonce, commitment, sig string }{
		{"8b4c26aa2695a34bdbc34235f6c91be14b93037a063b13f7c814101359561092", "0236ff92fe02c08d0d04851e0ce1516104085215f05a178307de60ea53e207f971",
			"7fd66b48ffea2fe048869880bbb3a1819e262af14980e8885df1e5765750cb8f47e01eca356377870356d54853573a955076228e5044cd3dd3a049abe70d5585"},
		{"9c9471aa529fbad96396b9379938e56195c5aa8e1e22b6e87d226e49d8b1f581", "034e2979d398ce029996ffe99dc310a0f2cf9a5411b166f57a85fc3a24985f16be",
			"48cb61d08c730e36b0285dfd9ece91e88a5ec0898d1c80b93e85b967e0ddcd195ab807640347e8f96e3fad67a971fc52eb4f15b4fa65577bcf4a053e598d057d"},
	} {
		nonce, com, sig := unhex(t, v.nonce), unhex(t, v.commitment), unhex(t, v.sig)
		if err := verifyAntiKlepto(nonce, com, sig); err != nil {
			t.Fatal(err)
		}
		nonce[0]++
		if err := verifyAntiKlepto(nonce, com, sig); !errors.Is(err, device.ErrBadSignature) {
			t.Fatalf("tweaked host nonce: %v", err)
		}
	}
}

// The pairing code of a handshake hash, from bitbox02-firmware workflow/pairing.rs
// test_confirm (a3467ad11).
func TestPairingCode(t *testing.T) {
	h := unhex(t, "59289bdbbbb6b68e8f127f49a525b03013500b3c1af2626f4007ebe44f09c86b")
	if got := PairingCode(h); got != "LEUJX W53W2\n3I5DY SP5E2" {
		t.Fatalf("got %q", got)
	}
}

func TestParseInfo(t *testing.T) {
	b := append([]byte{7}, "v9.21.0"...)
	b = append(b, 0x00, 0x01, 0x01, 0x01)
	in, err := parseInfo(b)
	if err != nil || in.Version != "v9.21.0" || in.Edition != 1 || !in.Unlocked || !in.Initialized {
		t.Fatalf("%+v %v", in, err)
	}
	if _, err := parseInfo(b[:10]); !errors.Is(err, device.ErrProtocol) {
		t.Fatalf("short: %v", err)
	}
	old, err := parseInfo(b[:len(b)-1]) // before 9.20: no initialized byte
	if err != nil || !old.Initialized {
		t.Fatalf("%+v %v", old, err)
	}
}
