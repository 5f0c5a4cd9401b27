package psbt

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
)

// Limits on outside input. btcd's parser caps single values (psbt.MaxPsbtValueLength, 4 MB)
// and keys (psbt.MaxPsbtKeyLength); these cap the whole document and its shape.
const (
	// MaxSize is the largest PSBT accepted, in bytes of binary BIP-174.
	MaxSize = 16 << 20
	// MaxInputs and MaxOutputs bound the unsigned transaction.
	MaxInputs  = 10_000
	MaxOutputs = 10_000
)

// Sentinel errors (see the package doc).
var (
	ErrMalformed  = errors.New("malformed psbt")
	ErrMismatch   = errors.New("psbt does not match the request")
	ErrSignature  = errors.New("psbt signature check failed")
	ErrIncomplete = errors.New("psbt is not fully signed")
)

var magic = []byte("psbt\xff")

// Decode parses a PSBT given as binary BIP-174, base64 (as Bitcoin Core prints it) or hex,
// with surrounding white space allowed for the text forms. It never panics: a parser panic on
// hostile bytes is turned into ErrMalformed.
func Decode(raw []byte) (*psbt.Packet, error) {
	if len(raw) > 2*MaxSize {
		return nil, fmt.Errorf("%w: %d bytes is more than the %d accepted", ErrMalformed, len(raw), MaxSize)
	}
	bin := raw
	if !bytes.HasPrefix(raw, magic) {
		text := strings.Join(strings.Fields(string(raw)), "")
		if text == "" {
			return nil, fmt.Errorf("%w: empty input", ErrMalformed)
		}
		var err error
		if strings.HasPrefix(strings.ToLower(text), "70736274ff") {
			bin, err = hex.DecodeString(text)
		} else {
			bin, err = base64.StdEncoding.DecodeString(text)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: not base64, hex or binary BIP-174 (%v)", ErrMalformed, err)
		}
	}
	return DecodeBinary(bin)
}

// DecodeBinary parses binary BIP-174.
func DecodeBinary(bin []byte) (p *psbt.Packet, err error) {
	if len(bin) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes is more than the %d accepted", ErrMalformed, len(bin), MaxSize)
	}
	if !bytes.HasPrefix(bin, magic) {
		return nil, fmt.Errorf("%w: missing the magic bytes \"psbt\\xff\"", ErrMalformed)
	}
	if err := checkStructure(bin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: parser failure: %v", ErrMalformed, r)
		}
	}()
	r := bytes.NewReader(bin)
	p, err = psbt.NewFromRawBytes(r, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last output map", ErrMalformed, r.Len())
	}
	if len(p.UnsignedTx.TxIn) > MaxInputs || len(p.UnsignedTx.TxOut) > MaxOutputs {
		return nil, fmt.Errorf("%w: %d inputs and %d outputs is more than accepted", ErrMalformed, len(p.UnsignedTx.TxIn), len(p.UnsignedTx.TxOut))
	}
	if err := sane(p); err != nil {
		return nil, err
	}
	return p, nil
}

// sane applies the BIP-174 rules btcd's parser leaves to the caller.
func sane(p *psbt.Packet) error {
	for i := range p.Inputs {
		in := &p.Inputs[i]
		if nw := in.NonWitnessUtxo; nw != nil {
			op := p.UnsignedTx.TxIn[i].PreviousOutPoint
			if nw.TxHash() != op.Hash {
				return fmt.Errorf("%w: input %d: non_witness_utxo is transaction %s, but the input spends %s", ErrMalformed, i, nw.TxHash(), op.Hash)
			}
			if int(op.Index) >= len(nw.TxOut) {
				return fmt.Errorf("%w: input %d: non_witness_utxo has no output %d", ErrMalformed, i, op.Index)
			}
		}
	}
	return nil
}

// Encode serializes p as binary BIP-174.
func Encode(p *psbt.Packet) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("serialize psbt: %w", err)
	}
	return buf.Bytes(), nil
}

// EncodeBase64 serializes p as base64 BIP-174.
func EncodeBase64(p *psbt.Packet) (string, error) {
	b, err := Encode(p)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Clone returns a deep copy of p (through its serialization).
func Clone(p *psbt.Packet) (*psbt.Packet, error) {
	b, err := Encode(p)
	if err != nil {
		return nil, err
	}
	return DecodeBinary(b)
}
