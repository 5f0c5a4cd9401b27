package trezoremu

import (
	"bytes"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

const ethAddr0 = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"

func TestEthereumAddressAndKey(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	a := callAs[*pb.EthereumAddress](c, &pb.EthereumGetAddress{AddressN: path("m/44'/60'/0'/0/0"), ShowDisplay: proto.Bool(false)})
	if a.GetAddress() != ethAddr0 {
		t.Fatalf("address %s", a.GetAddress())
	}
	callAs[*pb.EthereumAddress](c, &pb.EthereumGetAddress{AddressN: path("m/44'/60'/0'/0/0"), ShowDisplay: proto.Bool(true)})
	if len(c.buttons) != 1 || lastScreen(t, d).Lines[0] != ethAddr0 {
		t.Fatal("display")
	}
	pk := callAs[*pb.EthereumPublicKey](c, &pb.EthereumGetPublicKey{AddressN: path("m/44'/60'/0'")})
	if !strings.HasPrefix(pk.GetXpub(), "xpub") || pk.Node.GetDepth() != 3 {
		t.Fatal(pk)
	}
}

func TestEthereumSignLegacy(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	data := bytes.Repeat([]byte{0xab}, 1500)
	for _, tc := range []struct {
		chain uint64
		data  []byte
	}{{1, nil}, {1337, data}, {3000000000, nil}} {
		msg := &pb.EthereumSignTx{AddressN: path("m/44'/60'/0'/0/0"), Nonce: []byte{}, GasPrice: big.NewInt(1e9).Bytes(), GasLimit: big.NewInt(21000 + 20000).Bytes(), To: proto.String(to.Hex()), Value: big.NewInt(1e16).Bytes(), ChainId: proto.Uint64(tc.chain)}
		if tc.data != nil {
			msg.DataInitialChunk = tc.data[:1024]
			msg.DataLength = proto.Uint32(uint32(len(tc.data)))
		}
		r := c.call(msg)
		var chunks []uint32
		for {
			req, ok := r.(*pb.EthereumTxRequest)
			if !ok {
				t.Fatalf("chain %d: %T %v", tc.chain, r, r)
			}
			if req.DataLength == nil {
				// Rebuild the transaction with v and recover the sender.
				v := new(big.Int).SetUint64(uint64(req.GetSignatureV()))
				if req.GetSignatureV() <= 1 {
					v.Add(v, new(big.Int).SetUint64(35+2*tc.chain))
				}
				tx := types.NewTx(&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(1e9), Gas: 41000, To: &to, Value: big.NewInt(1e16), Data: tc.data,
					V: v, R: new(big.Int).SetBytes(req.SignatureR), S: new(big.Int).SetBytes(req.SignatureS)})
				from, err := types.Sender(types.NewEIP155Signer(new(big.Int).SetUint64(tc.chain)), tx)
				if err != nil || from.Hex() != ethAddr0 {
					t.Fatalf("chain %d: sender %s %v", tc.chain, from.Hex(), err)
				}
				if tc.chain > maxEIP155Chain && req.GetSignatureV() > 1 {
					t.Fatalf("large chain id: v %d is not a parity", req.GetSignatureV())
				}
				break
			}
			chunks = append(chunks, req.GetDataLength())
			off := 1024
			for _, n := range chunks[:len(chunks)-1] {
				off += int(n)
			}
			r = c.call(&pb.EthereumTxAck{DataChunk: tc.data[off : off+int(req.GetDataLength())]})
		}
		if tc.data != nil && (len(chunks) != 1 || chunks[0] != 476) {
			t.Fatalf("chunks %v", chunks)
		}
	}
	e := d.Approver().Transcript()[0]
	if e.Title != "Confirm sending" || e.Lines[0] != to.Hex() || e.Lines[1] != "0.01 ETH" || e.Lines[2] != "Chain ID: 1" {
		t.Fatalf("screen %+v", e)
	}
	if f := d.Approver().Transcript()[1]; !strings.Contains(strings.Join(f.Lines, "|"), "Maximum fee: 0.000041 ETH") {
		t.Fatalf("fee screen %+v", f)
	}
	// Refusals.
	for _, m := range []*pb.EthereumSignTx{
		{AddressN: path("m/44'/60'/0'/0/0"), GasPrice: []byte{1}, GasLimit: []byte{1}, To: proto.String(to.Hex())},                                                        // no chain id
		{AddressN: path("m/44'/60'/0'/0/0"), GasPrice: []byte{1}, GasLimit: []byte{1}, To: proto.String("0x12"), ChainId: proto.Uint64(1)},                                // bad to
		{AddressN: path("m/44'/60'/0'/0/0"), GasPrice: []byte{1}, GasLimit: []byte{1}, To: proto.String(to.Hex()), ChainId: proto.Uint64(1), DataLength: proto.Uint32(5)}, // no initial chunk
		{AddressN: path("m/44'/60'/0'/0/0"), GasLimit: []byte{1}, To: proto.String(to.Hex()), ChainId: proto.Uint64(1)},                                                   // no gas price
		{AddressN: path("m/44'/60'/0'/0/0"), GasPrice: bytes.Repeat([]byte{1}, 33), GasLimit: []byte{1}, To: proto.String(to.Hex()), ChainId: proto.Uint64(1)},            // too long
	} {
		if f := failureOf(c, m); f.GetCode() != pb.FailureType_Failure_DataError {
			t.Fatalf("%v: %v", m, f)
		}
	}
}

func TestEthereumSign1559(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	key := common.HexToHash("0x01")
	req := callAs[*pb.EthereumTxRequest](c, &pb.EthereumSignTxEIP1559{AddressN: path("m/44'/60'/0'/0/0"), Nonce: []byte{7}, MaxGasFee: big.NewInt(3e9).Bytes(), MaxPriorityFee: big.NewInt(1e9).Bytes(), GasLimit: big.NewInt(60000).Bytes(), To: proto.String(to.Hex()), Value: big.NewInt(5).Bytes(), DataLength: proto.Uint32(0), ChainId: proto.Uint64(1337),
		AccessList: []*pb.EthereumAccessList{{Address: proto.String(to.Hex()), StorageKeys: [][]byte{key[:]}}}})
	if req.GetSignatureV() > 1 {
		t.Fatalf("v %d", req.GetSignatureV())
	}
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 7, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9), Gas: 60000, To: &to, Value: big.NewInt(5),
		AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{key}}},
		V:          big.NewInt(int64(req.GetSignatureV())), R: new(big.Int).SetBytes(req.SignatureR), S: new(big.Int).SetBytes(req.SignatureS)})
	from, err := types.Sender(types.NewLondonSigner(big.NewInt(1337)), tx)
	if err != nil || from.Hex() != ethAddr0 {
		t.Fatalf("sender %s %v", from.Hex(), err)
	}
}

func TestEthereumMessages(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	sig := callAs[*pb.EthereumMessageSignature](c, &pb.EthereumSignMessage{AddressN: path("m/44'/60'/0'/0/0"), Message: []byte("hello")})
	if sig.GetAddress() != ethAddr0 || len(sig.Signature) != 65 || (sig.Signature[64] != 27 && sig.Signature[64] != 28) {
		t.Fatal(sig)
	}
	s := bytes.Clone(sig.Signature)
	s[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash([]byte("hello")), s)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != ethAddr0 {
		t.Fatal("recovery")
	}
	if e := lastScreen(t, d); e.Title != "Sign message" || e.Lines[1] != "hello" {
		t.Fatalf("screen %+v", e)
	}
	callAs[*pb.Success](c, &pb.EthereumVerifyMessage{Address: proto.String(ethAddr0), Signature: sig.Signature, Message: []byte("hello")})
	if f := failureOf(c, &pb.EthereumVerifyMessage{Address: proto.String(ethAddr0), Signature: sig.Signature, Message: []byte("hellO")}); f.GetCode() != pb.FailureType_Failure_InvalidSignature {
		t.Fatal(f)
	}

	// Core (model T) has no EthereumSignTypedHash; the Trezor One has only that.
	dom, msg := crypto.Keccak256([]byte("domain")), crypto.Keccak256([]byte("message"))
	if f := failureOf(c, &pb.EthereumSignTypedHash{AddressN: path("m/44'/60'/0'/0/0"), DomainSeparatorHash: dom}); f.GetCode() != pb.FailureType_Failure_UnexpectedMessage {
		t.Fatal(f)
	}
	c = newClient(t, newDevice(t, Options{Model: ModelOne}))
	if f := failureOf(c, &pb.EthereumSignTypedData{AddressN: path("m/44'/60'/0'/0/0"), PrimaryType: proto.String("Mail")}); f.GetCode() != pb.FailureType_Failure_UnexpectedMessage {
		t.Fatal(f)
	}
	for _, withMsg := range []bool{true, false} {
		m := &pb.EthereumSignTypedHash{AddressN: path("m/44'/60'/0'/0/0"), DomainSeparatorHash: dom}
		pre := append([]byte{0x19, 0x01}, dom...)
		if withMsg {
			m.MessageHash = msg
			pre = append(pre, msg...)
		}
		ts := callAs[*pb.EthereumTypedDataSignature](c, m)
		s := bytes.Clone(ts.Signature)
		s[64] -= 27
		pub, err := crypto.SigToPub(crypto.Keccak256(pre), s)
		if err != nil || crypto.PubkeyToAddress(*pub).Hex() != ethAddr0 || ts.GetAddress() != ethAddr0 {
			t.Fatal("typed hash recovery")
		}
	}
	if f := failureOf(c, &pb.EthereumSignTypedHash{AddressN: path("m/44'/60'/0'/0/0"), DomainSeparatorHash: []byte{1}}); f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal(f)
	}
}
