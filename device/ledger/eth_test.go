package ledger

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

var (
	ethPath    = hdpath.MustParse("m/44'/60'/0'/0/0")
	ethPathHex = "058000002c8000003c800000000000000000000000"
	vecETHAddr = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
	dead       = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
)

// TestEthVectors checks the payload bytes, the APDU and the v handling against the
// ledger.md §8.1 vectors (signatures by the abandon×11 about key at m/44'/60'/0'/0/0).
func TestEthVectors(t *testing.T) {
	gwei := big.NewInt(1_000_000_000)
	value := big.NewInt(10_000_000_000_000_000)
	tests := []struct {
		name    string
		tx      *types.Transaction
		payload string
		reply   string // v ‖ r ‖ s
	}{
		{"eip1559", types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 0, GasTipCap: gwei, GasFeeCap: new(big.Int).Mul(gwei, big.NewInt(30)), Gas: 21000, To: &dead, Value: value}),
			"02ef0180843b9aca008506fc23ac0082520894000000000000000000000000000000000000dead872386f26fc1000080c0",
			"00" + "43f248611ec1b427407d955ebedfdb5f139f9bdf8dbd9ef68b513a10d0abc384" + "31dcd7d36dbe5ba95b2a45fc9c6556d2a2f7d01318d12aa656d5b882bd792d25"},
		{"legacy", types.NewTx(&types.LegacyTx{Nonce: 0, GasPrice: new(big.Int).Mul(gwei, big.NewInt(20)), Gas: 21000, To: &dead, Value: value}),
			"eb808504a817c80082520894000000000000000000000000000000000000dead872386f26fc1000080018080",
			"25" + "b25a576263b1c1431be29417f56e96d1f8e9785373f3dbff2c5a92e74aa6fd16" + "0baa4aa5910495fb3192c0b522978e5408c86f5d148a4f7dfd748dc9b51154af"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := ethTxPayload(tt.tx, big.NewInt(1))
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(payload) != tt.payload {
				t.Fatalf("payload %x\nwant    %s", payload, tt.payload)
			}
			wantAPDU := "e0040000" + hex.EncodeToString([]byte{byte(21 + len(payload))}) + ethPathHex + tt.payload
			f := &scripted{app: AppEthereum, version: "1.23.0", handle: func(apdu []byte) ([]byte, uint16) {
				if hex.EncodeToString(apdu) != wantAPDU {
					t.Errorf("apdu %x\nwant %s", apdu, wantAPDU)
				}
				return mustHex(t, tt.reply), swOK
			}}
			signed, err := New(f, Options{}).SignEthTx(t.Context(), ethPath, tt.tx, big.NewInt(1))
			if err != nil {
				t.Fatal(err)
			}
			from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1)), signed)
			if err != nil || from.Hex() != vecETHAddr {
				t.Errorf("sender %s (%v), want %s", from.Hex(), err, vecETHAddr)
			}
		})
	}
}

func TestEthPersonalVector(t *testing.T) {
	const reply = "1c" + "22f6b9cd7ff4f321e11181c4fe64adeea9469908fb514fbb6001fe022002dfda" + "1f4ec9ea436bad14a7823806487d3aeb39b22e2556590922d6a8308971a17e99"
	f := &scripted{app: AppEthereum, handle: func(apdu []byte) ([]byte, uint16) {
		want := "e00800001e" + ethPathHex + "00000005" + hex.EncodeToString([]byte("hello"))
		if hex.EncodeToString(apdu) != want {
			t.Errorf("apdu %x\nwant %s", apdu, want)
		}
		return mustHex(t, reply), swOK
	}}
	sig, err := New(f, Options{}).SignMessage(t.Context(), device.MessageRequest{Chain: device.ChainETH, Path: ethPath, Message: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if sig.Address != vecETHAddr {
		t.Errorf("address %s", sig.Address)
	}
	if hex.EncodeToString(sig.Signature) != reply[2:]+"1c" {
		t.Errorf("signature %x", sig.Signature)
	}
}

func TestEthAddressReply(t *testing.T) {
	pub := mustHex(t, "0437b0bb7a8288d38ed49a524b5dc98cff3eb5ca824c9f9dc0dfdb3d9cd600f299a6179912b7451c09896c4098eca7ce6b2e58330672795e847c4d6af44e024230")
	reply := append(append([]byte{65}, pub...), 40)
	reply = append(reply, vecETHAddr[2:]...)
	f := &scripted{app: AppEthereum, handle: func(apdu []byte) ([]byte, uint16) {
		if want := "e002010015" + ethPathHex; hex.EncodeToString(apdu) != want {
			t.Errorf("apdu %x, want %s", apdu, want)
		}
		return reply, swOK
	}}
	got, err := New(f, Options{}).Address(t.Context(), device.AddressRequest{Chain: device.ChainETH, Path: ethPath, Display: true})
	if err != nil || got != vecETHAddr {
		t.Fatalf("address %s, %v", got, err)
	}
	bad := append([]byte{}, reply...)
	bad[70] ^= 1 // one address character changed
	if _, err := parseEthAddress(bad); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("an address that is not the pubkey's: %v", err)
	}
}

// signingEth answers SIGN_ETH_TRANSACTION with key as the app would: it collects the
// chunks, hashes the streamed tx and computes v the app's way.
func signingEth(t *testing.T, key *ecdsa.PrivateKey, chunks *[][]byte) func([]byte) ([]byte, uint16) {
	var buf []byte
	return func(apdu []byte) ([]byte, uint16) {
		if apdu[1] != insEthSignTx {
			return nil, swINSNotSupported
		}
		*chunks = append(*chunks, apdu[5:])
		if apdu[2] == p1EthFirst {
			buf = append([]byte{}, apdu[5+1+4*int(apdu[5]):]...)
		} else {
			buf = append(buf, apdu[5:]...)
		}
		// Complete when the outer RLP list is consumed.
		typed := buf[0] <= 0x7f
		body := buf
		if typed {
			body = buf[1:]
		}
		_, content, rest, err := rlp.Split(body)
		if err != nil || len(rest) != 0 {
			return nil, swOK // more to come
		}
		sig, err := crypto.Sign(crypto.Keccak256(buf), key)
		if err != nil {
			t.Fatal(err)
		}
		v := sig[64]
		if !typed {
			items, _ := splitList(content)
			cid := new(big.Int).SetBytes(items[6])
			v = byte(uint64(chainIDUint32(cid))*2 + 35 + uint64(sig[64]))
		}
		return append([]byte{v}, sig[:64]...), swOK
	}
}

func splitList(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		_, c, rest, err := rlp.Split(b)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		b = rest
	}
	return out, nil
}

func TestEthSignChainsAndChunks(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	want := crypto.PubkeyToAddress(key.PublicKey)
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	chainIDs := []int64{1, 56, 109, 110, 111, 137, 10000, 11155111, 3_000_000_000, 2716446429837000}
	for _, cid := range chainIDs {
		for _, n := range []int{0, 200, 230, 231, 232, 233, 234, 480, 1500} {
			data := bytes.Repeat([]byte{0xab}, n)
			for _, tx := range []*types.Transaction{
				types.NewTx(&types.LegacyTx{Nonce: 7, GasPrice: big.NewInt(3), Gas: 100000, To: &to, Value: big.NewInt(5), Data: data}),
				types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(cid), Nonce: 7, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 100000, To: &to, Value: big.NewInt(5), Data: data}),
			} {
				var chunks [][]byte
				f := &scripted{app: AppEthereum, version: "1.23.0", handle: signingEth(t, key, &chunks)}
				signed, err := New(f, Options{}).SignEthTx(t.Context(), ethPath, tx, big.NewInt(cid))
				if err != nil {
					t.Fatalf("chain %d, %d data bytes, type %d: %v", cid, n, tx.Type(), err)
				}
				from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(cid)), signed)
				if err != nil || from != want {
					t.Fatalf("chain %d, %d bytes, type %d: sender %s (%v), want %s", cid, n, tx.Type(), from, err, want)
				}
				for i, c := range chunks {
					if len(c) > 255 || (i < len(chunks)-1 && tx.Type() != 0 && len(c) != 255) {
						t.Fatalf("chunk %d of %d bytes", i, len(c))
					}
				}
			}
		}
	}
}

func TestChunkEthTxLegacyTail(t *testing.T) {
	path := mustHex(t, ethPathHex)
	cid := big.NewInt(1) // tail [01 80 80]: 3 bytes
	for n := 250; n < 800; n++ {
		payload := make([]byte, n)
		chunks := chunkEthTx(path, payload, false, cid)
		total := 0
		for _, c := range chunks {
			total += len(c)
		}
		last := len(chunks[len(chunks)-1])
		if total != n+len(path) || (len(chunks) > 1 && last <= 3) {
			t.Fatalf("payload %d: %d chunks, last of %d bytes", n, len(chunks), last)
		}
		if (n+len(path))%255 > 3 || (n+len(path))%255 == 0 {
			if len(chunks[0]) != min(255, n+len(path)) {
				t.Fatalf("payload %d: chunk size %d where 255 fits", n, len(chunks[0]))
			}
		}
	}
}

func TestEthParity(t *testing.T) {
	for _, tt := range []struct {
		cid    int64
		v      byte
		parity byte
	}{
		{1, 37, 0}, {1, 38, 1}, {56, 147, 0}, {137, 53, 0}, {2716446429837000, 19, 0},
	} {
		p, err := ethParity(tt.v, false, big.NewInt(tt.cid))
		if err != nil || p != tt.parity {
			t.Errorf("chain %d v %d: parity %d, %v", tt.cid, tt.v, p, err)
		}
	}
	if got := chainIDUint32(big.NewInt(2716446429837000)); got != 0x09A697F8 {
		t.Errorf("uint32 of a 7-byte chain id: %x", got)
	}
	if _, err := ethParity(2, true, big.NewInt(1)); err == nil {
		t.Error("typed tx with v 2 accepted")
	}
}

func TestEthBlindSigning(t *testing.T) {
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 60000, To: &to, Data: []byte{0xa9, 0x05, 0x9c, 0xbb, 1}})
	f := &scripted{app: AppEthereum, handle: func([]byte) ([]byte, uint16) { return nil, swIncorrectData }}
	d := New(f, Options{})
	_, err := d.SignEthTx(t.Context(), ethPath, tx, big.NewInt(1))
	if !errors.Is(err, ErrBlindSigningDisabled) || !strings.Contains(err.Error(), `enable "Blind signing" in the Ethereum app's settings`) {
		t.Errorf("err %v", err)
	}
	var de *device.Error
	if !errors.As(err, &de) || de.Code != 0x6A80 {
		t.Errorf("raw status word not kept: %v", err)
	}
	var dom [32]byte
	if _, err := d.SignTypedHash(t.Context(), ethPath, dom, make([]byte, 32)); !errors.Is(err, ErrBlindSigningDisabled) {
		t.Errorf("eip-712: %v", err)
	}
	if _, err := d.SignTypedHash(t.Context(), ethPath, dom, nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("domain-only eip-712: %v", err)
	}
}

func TestEIP712HashAPDU(t *testing.T) {
	var dom [32]byte
	copy(dom[:], crypto.Keccak256([]byte("domain")))
	msg := crypto.Keccak256([]byte("message"))
	key, _ := crypto.GenerateKey()
	f := &scripted{app: AppEthereum, handle: func(apdu []byte) ([]byte, uint16) {
		want := "e00c000055" + ethPathHex + hex.EncodeToString(dom[:]) + hex.EncodeToString(msg)
		if hex.EncodeToString(apdu) != want {
			t.Errorf("apdu %x\nwant %s", apdu, want)
		}
		sig, _ := crypto.Sign(device.TypedDataDigest(dom, msg), key)
		return append([]byte{27 + sig[64]}, sig[:64]...), swOK
	}}
	sig, err := New(f, Options{}).SignTypedHash(t.Context(), ethPath, dom, msg)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := recoverEth(device.TypedDataDigest(dom, msg), sig)
	if err != nil || addr != crypto.PubkeyToAddress(key.PublicKey) {
		t.Errorf("signature recovers %s (%v)", addr, err)
	}
}

func TestPersonalChunks(t *testing.T) {
	path := mustHex(t, ethPathHex)
	for _, n := range []int{0, 1, 125, 126, 300, 1000} {
		msg := bytes.Repeat([]byte{'x'}, n)
		chunks := personalChunks(path, msg)
		if len(chunks[0]) > 150 {
			t.Fatalf("first chunk of %d bytes", len(chunks[0]))
		}
		var got []byte
		got = append(got, chunks[0][len(path)+4:]...)
		for _, c := range chunks[1:] {
			if len(c) > 150 || len(c) == 0 {
				t.Fatalf("chunk of %d bytes", len(c))
			}
			got = append(got, c...)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: chunks do not reassemble", n)
		}
	}
}
