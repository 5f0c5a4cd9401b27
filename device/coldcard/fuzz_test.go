package coldcard

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/hwbridge/hwbridge/device"
)

// FuzzReply: every reply decoder takes any bytes without panicking, and what it refuses is
// a device error (never a bare one).
func FuzzReply(f *testing.F) {
	mypb := append([]byte("mypb"), make([]byte, 64)...)
	mypb = binary.LittleEndian.AppendUint32(mypb, 0x0ada5c73)
	mypb = binary.LittleEndian.AppendUint32(mypb, 4)
	mypb = append(mypb, "tpub"...)
	for _, s := range [][]byte{
		[]byte("okay"), []byte("refu"), []byte("busy"), []byte("err_Checksum"), []byte("framno key"),
		[]byte("asci5.4.4\nmk4"), []byte("int1\x00\x01\x00\x00"), mypb,
		append(binary.LittleEndian.AppendUint32([]byte("strx"), 472), make([]byte, 32)...),
		append(append(binary.LittleEndian.AppendUint32([]byte("smrx"), 3), "tb1"...), make([]byte, 65)...),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_ = knownReply(msg)
		r, err := decodeReply(opSignTx, msg)
		if err != nil {
			var de *device.Error
			if !errors.As(err, &de) && !errors.Is(err, device.ErrProtocol) {
				t.Fatalf("error is not a device error: %v", err)
			}
			return
		}
		_, _, _, _ = decodeMyPub(r)
		_, _ = decodeASCII(opXPub, r)
		_, _ = decodeInt1(opUpload, r)
		if n, _, done, err := decodeSignedTx(r); err == nil && done && r.code != "strx" {
			t.Fatalf("strx from %q: %d", r.code, n)
		}
		if a, sig, done, err := decodeSignedMessage(r); err == nil && done && len(sig) != 65 {
			t.Fatalf("smrx %q: signature of %d bytes", a, len(sig))
		}
	})
}
