package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Speculos APDU framing on its TCP port (default 127.0.0.1:9999), as in speculos
// mcu/apdu.py and @ledgerhq/hw-transport-node-speculos. See
// /work/shared/protocols/ledger.md §2.1.
//
//	client → device: u32 BE length ‖ APDU (CLA INS P1 P2 Lc data)
//	device → client: u32 BE length of data ‖ data ‖ SW1 SW2
//
// The reply length counts the data only, never the 2-byte status word. The device side
// writes each reply with a single Write: hw-transport-node-speculos decodes every socket
// "data" event as one whole reply and throws when a reply is split or two are coalesced.
//
// These functions run over a byte stream (a TCP conn, net.Pipe) and read with io.ReadFull.
const (
	speculosHeader = 4
	swLen          = 2

	// SpeculosMaxAPDU caps a command frame: the same 5+255 bytes a device's APDU buffer
	// holds (ledgerjs refuses data of 256 bytes or more).
	SpeculosMaxAPDU = LedgerMaxCommand
	// SpeculosMaxResponse caps a reply's data‖SW, as LedgerMaxResponse does on HID.
	SpeculosMaxResponse = LedgerMaxResponse
)

// WriteSpeculosAPDU sends one command APDU (the host side) in one Write.
func WriteSpeculosAPDU(w io.Writer, apdu []byte) error {
	if len(apdu) > SpeculosMaxAPDU {
		return fmt.Errorf("%w: apdu of %d bytes (max %d)", ErrTooLarge, len(apdu), SpeculosMaxAPDU)
	}
	frame := make([]byte, speculosHeader+len(apdu))
	binary.BigEndian.PutUint32(frame, uint32(len(apdu)))
	copy(frame[speculosHeader:], apdu)
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("transport: write speculos apdu: %w", err)
	}
	return nil
}

// ReadSpeculosAPDU reads one command APDU (the device side). io.EOF (unwrapped by
// errors.Is) means the client closed the connection between commands.
func ReadSpeculosAPDU(r io.Reader) ([]byte, error) {
	var hdr [speculosHeader]byte
	if err := readFull(r, hdr[:], false); err != nil {
		return nil, fmt.Errorf("transport: read speculos apdu length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > SpeculosMaxAPDU {
		return nil, fmt.Errorf("%w: apdu of %d bytes (max %d)", ErrTooLarge, n, SpeculosMaxAPDU)
	}
	apdu := make([]byte, n)
	if err := readFull(r, apdu, true); err != nil {
		return nil, fmt.Errorf("transport: read speculos apdu: %w", err)
	}
	return apdu, nil
}

// WriteSpeculosResponse sends one reply (the device side): header, data and status word in
// a single Write.
func WriteSpeculosResponse(w io.Writer, data []byte, sw uint16) error {
	if len(data)+swLen > SpeculosMaxResponse {
		return fmt.Errorf("%w: reply of %d bytes (max %d)", ErrTooLarge, len(data)+swLen, SpeculosMaxResponse)
	}
	frame := make([]byte, speculosHeader+len(data)+swLen)
	binary.BigEndian.PutUint32(frame, uint32(len(data)))
	copy(frame[speculosHeader:], data)
	binary.BigEndian.PutUint16(frame[speculosHeader+len(data):], sw)
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("transport: write speculos reply: %w", err)
	}
	return nil
}

// ReadSpeculosResponse reads one reply (the host side) and returns data‖SW1 SW2, the same
// shape a HID exchange returns.
func ReadSpeculosResponse(r io.Reader) (dataAndSW []byte, err error) {
	var hdr [speculosHeader]byte
	if err := readFull(r, hdr[:], false); err != nil {
		return nil, fmt.Errorf("transport: read speculos reply length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > SpeculosMaxResponse-swLen {
		return nil, fmt.Errorf("%w: reply of %d data bytes (max %d)", ErrTooLarge, n, SpeculosMaxResponse-swLen)
	}
	buf := make([]byte, int(n)+swLen)
	if err := readFull(r, buf, true); err != nil {
		return nil, fmt.Errorf("transport: read speculos reply: %w", err)
	}
	return buf, nil
}

// readFull is io.ReadFull that reports a frame cut short as ErrTruncated (still matching
// io.ErrUnexpectedEOF). EOF before the first byte of a frame stays io.EOF unless mid is
// set (the frame had begun with an earlier read).
func readFull(r io.Reader, buf []byte, mid bool) error {
	_, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF), mid && errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %w", ErrTruncated, io.ErrUnexpectedEOF)
	}
	return err
}
