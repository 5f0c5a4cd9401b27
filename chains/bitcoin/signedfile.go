package bitcoin

// What an air-gapped signer gives back, read whatever its form. After signing from its
// microSD card a Coldcard writes `<name>-signed.psbt` (binary BIP-174; current firmware keeps
// the partial signatures) and, when every input is signed, `<name>-final.txn`: the network
// transaction in hex (Coldcard/firmware shared/auth.py _save_to_disk, HexWriter; over USB
// with STXN_FINALIZE the same transaction comes back binary). Other signers hand back
// finalized PSBTs (final_scriptsig/final_scriptwitness, no partial signatures), as base64 or
// hex text. DecodeSigned tells them apart by content, never by file name.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// Signed-file forms (Signed.Format).
const (
	FormPSBTBinary = "psbt-binary"
	FormPSBTBase64 = "psbt-base64"
	FormPSBTHex    = "psbt-hex"
	FormTxBinary   = "tx-binary"
	FormTxHex      = "tx-hex"
	FormTxBase64   = "tx-base64" // a binary transaction carried as base64 (the daemon's import_psbt)
)

// MaxSignedFile is the largest signed file read, in bytes of its text or binary form.
const MaxSignedFile = 2 * hwpsbt.MaxSize

// Signed is a signer's answer: a PSBT (partially signed or finalized) or a final network
// transaction. Exactly one of PSBT and Tx is set.
type Signed struct {
	PSBT   *psbt.Packet
	Tx     *wire.MsgTx
	Format string
}

var psbtMagic = []byte("psbt\xff")

// DecodeSigned reads a signer's answer: a PSBT as binary BIP-174, base64 or hex, or a
// network transaction (witnesses included) as binary, hex or base64. Errors wrap
// device.ErrInvalidInput.
func DecodeSigned(raw []byte) (*Signed, error) {
	if len(raw) > MaxSignedFile {
		return nil, fmt.Errorf("%w: the signed file is %d bytes, more than the %d accepted", device.ErrInvalidInput, len(raw), MaxSignedFile)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark some editors write
	if bytes.HasPrefix(raw, psbtMagic) {
		return signedPSBT(raw, FormPSBTBinary)
	}
	text := strings.Join(strings.Fields(string(raw)), "")
	if text == "" {
		return nil, fmt.Errorf("%w: the signed file is empty", device.ErrInvalidInput)
	}
	if isHex(text) {
		b, err := hex.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("%w: hex of odd length: give a whole PSBT or transaction", device.ErrInvalidInput)
		}
		if bytes.HasPrefix(b, psbtMagic) {
			return signedPSBT(b, FormPSBTHex)
		}
		return signedTx(b, FormTxHex)
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil {
		if bytes.HasPrefix(b, psbtMagic) {
			return signedPSBT(b, FormPSBTBase64)
		}
		return signedTx(b, FormTxBase64)
	}
	if s, err := signedTx(raw, FormTxBinary); err == nil {
		return s, nil
	}
	return nil, fmt.Errorf("%w: the signed file is neither a PSBT (binary, base64 or hex) nor a signed transaction (binary or hex)", device.ErrInvalidInput)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func signedPSBT(bin []byte, form string) (*Signed, error) {
	p, err := hwpsbt.DecodeBinary(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	return &Signed{PSBT: p, Format: form}, nil
}

// signedTx reads a whole network transaction: at least one input and one output, every
// byte used.
func signedTx(b []byte, form string) (*Signed, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("%w: a transaction of %d bytes is more than the %d accepted", device.ErrInvalidInput, len(b), MaxTxBytes)
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	r := bytes.NewReader(b)
	if err := tx.Deserialize(r); err != nil {
		return nil, fmt.Errorf("%w: not a PSBT, and not a transaction: %v", device.ErrInvalidInput, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the transaction", device.ErrInvalidInput, r.Len())
	}
	if len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return nil, fmt.Errorf("%w: a transaction without inputs or outputs", device.ErrInvalidInput)
	}
	return &Signed{Tx: tx, Format: form}, nil
}

// PlanID is the txid of the unsigned transaction s signs: for a network transaction, its
// txid once every scriptSig and witness is taken out (the unsigned form a PSBT carries).
func (s *Signed) PlanID() string {
	if s.PSBT != nil {
		return s.PSBT.UnsignedTx.TxHash().String()
	}
	return unsignedForm(s.Tx).TxHash().String()
}

func unsignedForm(tx *wire.MsgTx) *wire.MsgTx {
	u := tx.Copy()
	for _, in := range u.TxIn {
		in.SignatureScript, in.Witness = nil, nil
	}
	return u
}

// errNoSignatures: a network transaction with an input that carries neither scriptSig nor
// witness.
var errNoSignatures = errors.New("the transaction has an input without signatures")

// asPSBT is s as a PSBT over unsigned (the exported PSBT, whose prevouts and derivations
// the checks use): a PSBT is merged into it (BIP-174 Combiner); a network transaction must
// be unsigned's transaction, and its scriptSigs and witnesses become the inputs' final fields.
// In both cases each input's previous outputs are the exported ones, whatever s claims.
// Anything but unsigned's transaction is ErrNotExported.
func (s *Signed) asPSBT(unsigned *psbt.Packet) (*psbt.Packet, error) {
	want := unsigned.UnsignedTx.TxHash()
	var merged *psbt.Packet
	var err error
	switch {
	case s == nil:
		return nil, ErrNotExported
	case s.PSBT != nil:
		if s.PSBT.UnsignedTx == nil || s.PSBT.UnsignedTx.TxHash() != want {
			return nil, ErrNotExported
		}
		if merged, err = hwpsbt.Combine(unsigned, s.PSBT); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotExported, err)
		}
	case s.Tx != nil:
		if unsignedForm(s.Tx).TxHash() != want {
			return nil, ErrNotExported
		}
		if merged, err = hwpsbt.Clone(unsigned); err != nil {
			return nil, err
		}
		for i, in := range s.Tx.TxIn {
			if len(in.SignatureScript) == 0 && len(in.Witness) == 0 {
				return nil, fmt.Errorf("refusing to broadcast: %w: %w (input %d)", hwpsbt.ErrIncomplete, errNoSignatures, i)
			}
			m := &merged.Inputs[i]
			m.PartialSigs, m.TaprootKeySpendSig, m.TaprootScriptSpendSig = nil, nil, nil
			m.FinalScriptSig, m.FinalScriptWitness = nil, nil
			if len(in.SignatureScript) > 0 {
				m.FinalScriptSig = bytes.Clone(in.SignatureScript)
			}
			if len(in.Witness) > 0 {
				m.FinalScriptWitness = hwpsbt.SerializeWitness(in.Witness)
			}
		}
	default:
		return nil, ErrNotExported
	}
	for i := range merged.Inputs { // the prevouts the plan recorded, never the signer's
		u, m := &unsigned.Inputs[i], &merged.Inputs[i]
		m.NonWitnessUtxo, m.WitnessUtxo = nil, nil
		if u.NonWitnessUtxo != nil {
			m.NonWitnessUtxo = u.NonWitnessUtxo.Copy()
		}
		if u.WitnessUtxo != nil {
			c := *u.WitnessUtxo
			c.PkScript = bytes.Clone(c.PkScript)
			m.WitnessUtxo = &c
		}
	}
	return merged, nil
}

// sameTx reports whether a and b serialize alike (witnesses included).
func sameTx(a, b *wire.MsgTx) bool {
	var x, y bytes.Buffer
	if a.Serialize(&x) != nil || b.Serialize(&y) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}
