package ur

// The UR registry types of air-gapped Bitcoin signers (BCR-2020-006 and -007, -010, -015),
// in CBOR through github.com/fxamacker/cbor: the PSBT a wallet shows and a signer scans back,
// and the account export (xpubs with their origins) that makes a watch-only wallet.

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// UR types.
const (
	TypeCryptoPSBT    = "crypto-psbt" // BCR-2020-006, CBOR tag 310: a byte string holding the PSBT
	TypePSBT          = "psbt"        // its successor type (tag 40310), same payload
	TypeCryptoHDKey   = "crypto-hdkey"
	TypeCryptoOutput  = "crypto-output"
	TypeCryptoAccount = "crypto-account"
)

// CBOR tags of BCR-2020-006/007/010.
const (
	TagHDKey    = 303
	TagKeypath  = 304
	TagCoinInfo = 305
	TagECKey    = 306
	TagOutput   = 308
	TagPSBT     = 310
	TagAccount  = 311

	TagSH    = 400
	TagWSH   = 401
	TagPK    = 402
	TagPKH   = 403
	TagWPKH  = 404
	TagCombo = 405
	TagMulti = 406
	TagSort  = 407
	TagRaw   = 408
	TagTR    = 409 // taproot (BCR-2020-015's test vector; later revisions of BCR-2020-010)
)

// ErrRegistry: a UR's CBOR is not the registry type it claims, or holds something this
// wallet cannot use.
var ErrRegistry = errors.New("invalid UR payload")

// Hardened is the BIP-32 hardened-index bit.
const Hardened = 1 << 31

// keypathCBOR is crypto-keypath: components alternate index (or [] for a wildcard, [lo, hi]
// for a range) and is-hardened.
type keypathCBOR struct {
	Components  []any  `cbor:"1,keyasint,omitempty"`
	Fingerprint uint32 `cbor:"2,keyasint,omitempty"`
	Depth       *uint8 `cbor:"3,keyasint,omitempty"`
}

type coinInfoCBOR struct {
	Type    uint32 `cbor:"1,keyasint,omitempty"`
	Network uint32 `cbor:"2,keyasint,omitempty"`
}

type hdkeyCBOR struct {
	IsMaster          bool          `cbor:"1,keyasint,omitempty"`
	IsPrivate         bool          `cbor:"2,keyasint,omitempty"`
	KeyData           []byte        `cbor:"3,keyasint"`
	ChainCode         []byte        `cbor:"4,keyasint,omitempty"`
	UseInfo           *coinInfoCBOR `cbor:"5,keyasint,omitempty"`
	Origin            *keypathCBOR  `cbor:"6,keyasint,omitempty"`
	Children          *keypathCBOR  `cbor:"7,keyasint,omitempty"`
	ParentFingerprint uint32        `cbor:"8,keyasint,omitempty"`
	Name              string        `cbor:"9,keyasint,omitempty"`
	Note              string        `cbor:"10,keyasint,omitempty"`
}

type accountCBOR struct {
	MasterFingerprint uint32            `cbor:"1,keyasint"`
	Outputs           []cbor.RawMessage `cbor:"2,keyasint"`
}

var regEnc, regDec = func() (cbor.EncMode, cbor.DecMode) {
	tags := cbor.NewTagSet()
	req := cbor.TagOptions{EncTag: cbor.EncTagRequired, DecTag: cbor.DecTagRequired}
	for typ, n := range map[reflect.Type]uint64{reflect.TypeFor[keypathCBOR](): TagKeypath, reflect.TypeFor[coinInfoCBOR](): TagCoinInfo} {
		if err := tags.Add(req, typ, n); err != nil {
			panic(err)
		}
	}
	em, err := cbor.CoreDetEncOptions().EncModeWithTags(tags)
	if err != nil {
		panic(err)
	}
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: 1024,
		MaxMapPairs:      64,
		DefaultMapType:   reflect.TypeFor[map[any]any](),
	}.DecModeWithTags(tags)
	if err != nil {
		panic(err)
	}
	return em, dm
}()

// PSBT is the crypto-psbt UR of a binary PSBT.
func PSBT(psbt []byte) UR {
	b, err := regEnc.Marshal(psbt)
	if err != nil {
		panic(err)
	}
	return UR{Type: TypeCryptoPSBT, CBOR: b}
}

// DecodePSBT is the binary PSBT of a crypto-psbt or psbt UR.
func DecodePSBT(u UR) ([]byte, error) {
	if u.Type != TypeCryptoPSBT && u.Type != TypePSBT {
		return nil, fmt.Errorf("%w: a %s UR, not a PSBT (crypto-psbt)", ErrRegistry, u.Type)
	}
	var b []byte
	if err := regDec.Unmarshal(u.CBOR, &b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRegistry, u.Type, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s: empty", ErrRegistry, u.Type)
	}
	return b, nil
}

// Keypath is a crypto-keypath without wildcards: BIP-32 indexes (Hardened bit set for
// hardened ones), the fingerprint of the key it starts from (0 when absent) and the depth
// (len(Path) when absent).
type Keypath struct {
	Path        []uint32
	Fingerprint uint32
	Depth       int
}

func (k *Keypath) cbor() *keypathCBOR {
	if k == nil {
		return nil
	}
	c := &keypathCBOR{Fingerprint: k.Fingerprint}
	for _, i := range k.Path {
		c.Components = append(c.Components, uint64(i&^Hardened), i&Hardened != 0)
	}
	if k.Depth != len(k.Path) {
		d := uint8(k.Depth)
		c.Depth = &d
	}
	return c
}

func (c *keypathCBOR) keypath() (*Keypath, error) {
	if c == nil {
		return nil, nil
	}
	if len(c.Components)%2 != 0 {
		return nil, fmt.Errorf("keypath: %d components is not index/hardened pairs", len(c.Components))
	}
	k := &Keypath{Fingerprint: c.Fingerprint}
	for i := 0; i < len(c.Components); i += 2 {
		idx, ok1 := c.Components[i].(uint64)
		h, ok2 := c.Components[i+1].(bool)
		if !ok1 || !ok2 || idx >= Hardened {
			return nil, fmt.Errorf("keypath: component %d is not a child index and a hardened flag (wildcards and ranges are not account keys)", i/2)
		}
		if h {
			idx |= Hardened
		}
		k.Path = append(k.Path, uint32(idx))
	}
	k.Depth = len(k.Path)
	if c.Depth != nil {
		k.Depth = int(*c.Depth)
	}
	return k, nil
}

// HDKey is a public crypto-hdkey (BCR-2020-007): the key, its chain code, where it sits in
// the master's tree, and the coin and network it is for (Network 0 mainnet, 1 testnet).
type HDKey struct {
	KeyData           []byte // 33-byte compressed public key
	ChainCode         []byte // 32 bytes
	Origin            *Keypath
	ParentFingerprint uint32
	Testnet           bool
	Name              string
}

func (k *HDKey) cbor() hdkeyCBOR {
	c := hdkeyCBOR{KeyData: k.KeyData, ChainCode: k.ChainCode, Origin: k.Origin.cbor(), ParentFingerprint: k.ParentFingerprint, Name: k.Name}
	if k.Testnet {
		c.UseInfo = &coinInfoCBOR{Network: 1}
	}
	return c
}

func (c *hdkeyCBOR) hdkey() (*HDKey, error) {
	switch {
	case c.IsPrivate:
		return nil, fmt.Errorf("%w: crypto-hdkey holds a private key: export the account's public key only", ErrRegistry)
	case len(c.KeyData) != 33 || (c.KeyData[0] != 2 && c.KeyData[0] != 3):
		return nil, fmt.Errorf("%w: crypto-hdkey: key data is not a 33-byte compressed public key", ErrRegistry)
	case len(c.ChainCode) != 32:
		return nil, fmt.Errorf("%w: crypto-hdkey: no 32-byte chain code (an extended key needs one)", ErrRegistry)
	case c.UseInfo != nil && c.UseInfo.Type != 0:
		return nil, fmt.Errorf("%w: crypto-hdkey: coin type %d is not Bitcoin (0)", ErrRegistry, c.UseInfo.Type)
	case c.UseInfo != nil && c.UseInfo.Network > 1:
		return nil, fmt.Errorf("%w: crypto-hdkey: network %d (0 mainnet, 1 testnet)", ErrRegistry, c.UseInfo.Network)
	}
	origin, err := c.Origin.keypath()
	if err != nil {
		return nil, fmt.Errorf("%w: crypto-hdkey origin: %w", ErrRegistry, err)
	}
	return &HDKey{KeyData: c.KeyData, ChainCode: c.ChainCode, Origin: origin, ParentFingerprint: c.ParentFingerprint,
		Testnet: c.UseInfo != nil && c.UseInfo.Network == 1, Name: c.Name}, nil
}

// DecodeHDKey reads a crypto-hdkey UR.
func DecodeHDKey(u UR) (*HDKey, error) {
	if u.Type != TypeCryptoHDKey {
		return nil, fmt.Errorf("%w: a %s UR, not crypto-hdkey", ErrRegistry, u.Type)
	}
	var c hdkeyCBOR
	if err := regDec.Unmarshal(u.CBOR, &c); err != nil {
		return nil, fmt.Errorf("%w: crypto-hdkey: %v", ErrRegistry, err)
	}
	return c.hdkey()
}

// HDKeyUR is the crypto-hdkey UR of k.
func HDKeyUR(k *HDKey) UR {
	b, err := regEnc.Marshal(k.cbor())
	if err != nil {
		panic(err)
	}
	return UR{Type: TypeCryptoHDKey, CBOR: b}
}

// Output is a single-key crypto-output: its script expressions outermost first (e.g.
// [TagSH, TagWPKH] for sh(wpkh(KEY))) and the account key.
type Output struct {
	Scripts []uint64
	Key     *HDKey
}

// scriptTags are the script expressions a single-key account output may use.
var scriptTags = map[uint64]bool{TagSH: true, TagWSH: true, TagPK: true, TagPKH: true, TagWPKH: true, TagCombo: true, TagTR: true}

func decodeOutput(raw []byte) (*Output, error) {
	var o Output
	for depth := 0; ; depth++ {
		var t cbor.RawTag
		if err := regDec.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("%w: crypto-output: %v", ErrRegistry, err)
		}
		switch {
		case depth > 4:
			return nil, fmt.Errorf("%w: crypto-output: script expressions nested too deep", ErrRegistry)
		case t.Number == TagOutput && depth == 0:
		case scriptTags[t.Number]:
			o.Scripts = append(o.Scripts, t.Number)
		case t.Number == TagHDKey:
			var c hdkeyCBOR
			if err := regDec.Unmarshal(t.Content, &c); err != nil {
				return nil, fmt.Errorf("%w: crypto-output key: %v", ErrRegistry, err)
			}
			k, err := c.hdkey()
			if err != nil {
				return nil, err
			}
			if len(o.Scripts) == 0 {
				return nil, fmt.Errorf("%w: crypto-output: a key without a script expression", ErrRegistry)
			}
			o.Key = k
			return &o, nil
		case t.Number == TagECKey:
			return nil, fmt.Errorf("%w: crypto-output: a bare public key (crypto-eckey): an account needs an extended key (crypto-hdkey)", ErrRegistry)
		default:
			return nil, fmt.Errorf("%w: crypto-output: tag %d (multisig and raw scripts are not single-key accounts)", ErrRegistry, t.Number)
		}
		raw = t.Content
	}
}

// DecodeOutput reads a crypto-output UR holding one account key.
func DecodeOutput(u UR) (*Output, error) {
	if u.Type != TypeCryptoOutput {
		return nil, fmt.Errorf("%w: a %s UR, not crypto-output", ErrRegistry, u.Type)
	}
	return decodeOutput(u.CBOR)
}

func (o *Output) cbor() any {
	var v any = cbor.Tag{Number: TagHDKey, Content: o.Key.cbor()}
	for i := len(o.Scripts) - 1; i >= 0; i-- {
		v = cbor.Tag{Number: o.Scripts[i], Content: v}
	}
	return v
}

// Account is a crypto-account (BCR-2020-015): the master fingerprint and one output
// descriptor per script type.
type Account struct {
	MasterFingerprint uint32
	Outputs           []Output
}

// DecodeAccount reads a crypto-account UR; outputs may be wrapped in crypto-output's tag
// (308) or not (BCR-2020-015's test vector and Keystone's encoder leave it out).
func DecodeAccount(u UR) (*Account, error) {
	if u.Type != TypeCryptoAccount {
		return nil, fmt.Errorf("%w: a %s UR, not crypto-account", ErrRegistry, u.Type)
	}
	var c accountCBOR
	if err := regDec.Unmarshal(u.CBOR, &c); err != nil {
		return nil, fmt.Errorf("%w: crypto-account: %v", ErrRegistry, err)
	}
	if len(c.Outputs) == 0 {
		return nil, fmt.Errorf("%w: crypto-account: no output descriptors", ErrRegistry)
	}
	a := &Account{MasterFingerprint: c.MasterFingerprint}
	for i, raw := range c.Outputs {
		o, err := decodeOutput(raw)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", i+1, err)
		}
		a.Outputs = append(a.Outputs, *o)
	}
	return a, nil
}

// AccountUR is the crypto-account UR of a (outputs without the 308 wrapper, as BCR-2020-015's
// test vector and Keystone write them).
func AccountUR(a *Account) UR {
	outs := make([]any, len(a.Outputs))
	for i := range a.Outputs {
		outs[i] = a.Outputs[i].cbor()
	}
	b, err := regEnc.Marshal(map[uint64]any{1: a.MasterFingerprint, 2: outs})
	if err != nil {
		panic(err)
	}
	return UR{Type: TypeCryptoAccount, CBOR: b}
}
