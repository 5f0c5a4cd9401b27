package keepkey

import (
	"context"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/transport"
)

func fuzzFeatures() *keepkeypb.Features {
	return &keepkeypb.Features{Vendor: proto.String("keepkey.com"), MajorVersion: proto.Uint32(7), MinorVersion: proto.Uint32(10), Initialized: proto.Bool(true)}
}

// fuzzPSBT is a one-input p2wpkh spend with a derivation under fingerprint 0 (what the
// fake device reports as m/0's parent).
func fuzzPSBT(t *testing.T) *psbt.Packet {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{1}, 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(1000, append([]byte{0x00, 0x14}, make([]byte, 20)...)))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	pub := append([]byte{0x02}, make([]byte, 32)...)
	pub[32] = 1
	p.Inputs[0].WitnessUtxo = wire.NewTxOut(2000, append([]byte{0x00, 0x14}, make([]byte, 20)...))
	p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub, MasterKeyFingerprint: 0, Bip32Path: hdpath.MustParse("m/84'/0'/0'/0/0")}}
	return p
}

// FuzzReply feeds an arbitrary device reply (as the first answer to an operation's request,
// picked by op) to the driver: it must return a result or an error, never panic or hang.
func FuzzReply(f *testing.F) {
	for _, m := range []proto.Message{
		&keepkeypb.Address{Address: proto.String("bc1qx")},
		&keepkeypb.Failure{Code: keepkeypb.FailureType_Failure_ActionCancelled.Enum()},
		&keepkeypb.ButtonRequest{}, &keepkeypb.PinMatrixRequest{}, fuzzFeatures(),
		&keepkeypb.EthereumTxRequest{SignatureV: proto.Uint32(37), SignatureR: make([]byte, 32), SignatureS: make([]byte, 32)},
		&keepkeypb.EthereumTxRequest{DataLength: proto.Uint32(1024)},
		&keepkeypb.TxRequest{RequestType: keepkeypb.RequestType_TXINPUT.Enum(), Details: &keepkeypb.TxRequestDetailsType{RequestIndex: proto.Uint32(0)}},
		&keepkeypb.TxRequest{RequestType: keepkeypb.RequestType_TXFINISHED.Enum(), Serialized: &keepkeypb.TxRequestSerializedType{SignatureIndex: proto.Uint32(0), Signature: []byte{0x30}}},
		&keepkeypb.PublicKey{Node: &keepkeypb.HDNodeType{Depth: proto.Uint32(1)}, Xpub: proto.String("xpub")},
		&keepkeypb.EthereumTypedDataSignature{Signature: make([]byte, 65)},
	} {
		id, b, _ := keepkeypb.Marshal(m)
		for op := range uint8(6) {
			f.Add(op, uint16(id), b)
		}
	}
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	f.Fuzz(func(t *testing.T, op uint8, typ uint16, body []byte) {
		if len(body) > 4096 {
			return
		}
		host, dev := net.Pipe()
		defer dev.Close()
		go func() {
			first := true
			for {
				mt, _, err := transport.ReadV1(dev)
				if err != nil {
					return
				}
				var id keepkeypb.MessageType
				var b []byte
				switch {
				case keepkeypb.MessageType(mt) == keepkeypb.MessageType_MessageType_Initialize:
					id, b, _ = keepkeypb.Marshal(fuzzFeatures())
				case keepkeypb.MessageType(mt) == keepkeypb.MessageType_MessageType_GetPublicKey && op%6 == 5:
					// SignPSBT asks the fingerprint first: m/0' under fingerprint 0.
					id, b, _ = keepkeypb.Marshal(&keepkeypb.PublicKey{Node: &keepkeypb.HDNodeType{Depth: proto.Uint32(1), Fingerprint: proto.Uint32(0)}})
				case first:
					first = false
					id, b = keepkeypb.MessageType(typ), body
				default:
					id, b, _ = keepkeypb.Marshal(&keepkeypb.Failure{Code: keepkeypb.FailureType_Failure_UnexpectedMessage.Enum()})
				}
				if err := transport.WriteV1(dev, uint16(id), b); err != nil {
					return
				}
			}
		}()
		d := New(host, Options{LinkTimeout: 100 * time.Millisecond})
		defer d.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		path := hdpath.MustParse("m/44'/60'/0'/0/0")
		switch op % 6 {
		case 0:
			addr, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH})
			if err == nil && addr == "" {
				t.Fatal("no address and no error")
			}
		case 1:
			_, _ = d.Features(ctx)
		case 2:
			tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &to, Value: big.NewInt(1), Data: make([]byte, 2000)})
			if signed, err := d.SignEthTx(ctx, path, tx, big.NewInt(1)); err == nil && signed == nil {
				t.Fatal("no transaction and no error")
			}
		case 3:
			_, _ = d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
		case 4:
			_, _ = d.SignTypedHash(ctx, path, [32]byte{}, nil)
		case 5:
			_ = d.SignPSBT(ctx, fuzzPSBT(t), &chaincfg.MainNetParams)
		}
	})
}
