package ledgeremu

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// ledger.md §8.1 vectors (computed with ethers for "abandon"×11 "about").
const (
	vecEth1559Tx = "02ef0180843b9aca008506fc23ac0082520894000000000000000000000000000000000000dead872386f26fc1000080c0"
	vecEth1559R  = "43f248611ec1b427407d955ebedfdb5f139f9bdf8dbd9ef68b513a10d0abc384"
	vecEth1559S  = "31dcd7d36dbe5ba95b2a45fc9c6556d2a2f7d01318d12aa656d5b882bd792d25"
	vecEthLegTx  = "eb808504a817c80082520894000000000000000000000000000000000000dead872386f26fc1000080018080"
	vecEthLegR   = "b25a576263b1c1431be29417f56e96d1f8e9785373f3dbff2c5a92e74aa6fd16"
	vecEthLegS   = "0baa4aa5910495fb3192c0b522978e5408c86f5d148a4f7dfd748dc9b51154af"
	vecPersonalR = "22f6b9cd7ff4f321e11181c4fe64adeea9469908fb514fbb6001fe022002dfda"
	vecPersonalS = "1f4ec9ea436bad14a7823806487d3aeb39b22e2556590922d6a8308971a17e99"
)

const ethPath0 = "m/44'/60'/0'/0/0"

// ethSignTx streams tx in ≤255-byte APDUs (path in the first) and returns the final reply.
func ethSendTx(t testing.TB, c *testClient, tx []byte, chunk int) ([]byte, uint16) {
	t.Helper()
	payload := append(pathBytes(t, ethPath0), tx...)
	p1 := byte(p1First)
	first := len(payload) - len(tx) // the path always travels in the first chunk
	for {
		n := min(chunk+first, len(payload))
		first = 0
		out, sw := c.send(claETH, insEthSignTx, p1, 0, payload[:n])
		payload = payload[n:]
		if len(payload) == 0 || sw != swOK {
			return out, sw
		}
		if len(out) != 0 {
			t.Fatalf("intermediate chunk answered %x", out)
		}
		p1 = p1More
	}
}

func ptr[T any](v T) *T { return &v }

func TestEthereum(t *testing.T) {
	d := newDevice(t, Config{App: AppEthereum})
	c := newTestClient(t, d)
	want, _ := d.Wallet().EthAddress(mustPath(ethPath0))

	if got := c.mustOK(claETH, insEthGetConfig, 0, 0, nil); hex.EncodeToString(got) != "02011100" {
		t.Fatalf("config %x", got)
	}
	out := c.mustOK(claETH, insEthGetAddress, 0, 1, pathBytes(t, ethPath0))
	if out[0] != 65 || out[66] != 40 || "0x"+string(out[67:107]) != vecEthAddr || len(out) != 107+32 || want.Hex() != vecEthAddr {
		t.Fatalf("address reply %x", out)
	}
	if _, sw := c.send(claETH, insEthGetAddress, 0, 2, pathBytes(t, ethPath0)); sw != swWrongP1P2 {
		t.Fatalf("p2 2: %04x", sw)
	}
	if _, sw := c.send(claETH, insEthGetAddress, 0, 0, pathBytes(t, "m/44'/0'/0'/0/0")); sw != swIncorrectData {
		t.Fatalf("bitcoin path in the eth app: %04x", sw)
	}
	if _, sw := c.send(claETH, insEthSignTx, p1More, 0, []byte{1}); sw != swCommandNotAllow {
		t.Fatalf("stray continuation: %04x", sw)
	}
	if _, sw := c.send(claETH, insEthSignTx, 0, 0, append(pathBytes(t, ethPath0), 0x03, 0xc0)); sw != swTxTypeNotSupport {
		t.Fatalf("blob tx: %04x", sw)
	}

	for _, tc := range []struct {
		name, tx, r, s string
		v              byte
		chunk          int
	}{
		{"eip-1559", vecEth1559Tx, vecEth1559R, vecEth1559S, 0, 255},
		{"eip-1559 in small chunks", vecEth1559Tx, vecEth1559R, vecEth1559S, 0, 7},
		{"legacy eip-155", vecEthLegTx, vecEthLegR, vecEthLegS, 0x25, 255},
		{"legacy in small chunks", vecEthLegTx, vecEthLegR, vecEthLegS, 0x25, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, sw := ethSendTx(t, c, unhex(t, tc.tx), tc.chunk)
			if sw != swOK || len(out) != 65 {
				t.Fatalf("sign: %x %04x", out, sw)
			}
			if out[0] != tc.v || hex.EncodeToString(out[1:33]) != tc.r || hex.EncodeToString(out[33:]) != tc.s {
				t.Fatalf("signature %x", out)
			}
		})
	}
	tr := d.Approver().Transcript()
	if last := tr[len(tr)-1]; last.Title != "Review transaction" || last.Lines[0] != "amount: 0.01 ETH" || !strings.Contains(strings.Join(last.Lines, "|"), "chain id: 1") {
		t.Fatalf("review screen %+v", last)
	}

	// Large chain ids: v keeps the low byte of u32(chainId)*2+35+parity.
	big1 := types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 21000, To: ptr(common.Address{1}), Value: big.NewInt(5)})
	for _, chain := range []int64{1, 137, 11155111, 1337} {
		signer := types.NewEIP155Signer(big.NewInt(chain))
		raw := legacyUnsigned(t, big1, chain)
		out, sw := ethSendTx(t, c, raw, 255)
		if sw != swOK {
			t.Fatalf("chain %d: %04x", chain, sw)
		}
		parity := byte((uint32(chain)*2 + 35) & 0xff)
		sig := append(append([]byte(nil), out[1:]...), out[0]-parity)
		signed, err := big1.WithSignature(signer, sig)
		if err != nil {
			t.Fatalf("chain %d: %v", chain, err)
		}
		from, err := types.Sender(signer, signed)
		if err != nil || from != want {
			t.Fatalf("chain %d: sender %s %v", chain, from.Hex(), err)
		}
	}

	// Calldata needs blind signing: 0x6A80 until it is on.
	erc := erc20Raw(t)
	if _, sw := ethSendTx(t, c, erc, 255); sw != swIncorrectData {
		t.Fatalf("erc-20 without blind signing: %04x", sw)
	}
	d.SetBlindSigning(true)
	if got := c.mustOK(claETH, insEthGetConfig, 0, 0, nil); got[0] != 0x03 {
		t.Fatalf("config with blind signing %x", got)
	}
	out, sw := ethSendTx(t, c, erc, 255)
	if sw != swOK {
		t.Fatalf("erc-20 with blind signing: %04x", sw)
	}
	if from := recover1559(t, erc, out); from != want {
		t.Fatalf("erc-20 sender %s", from.Hex())
	}

	// Personal message: "hello" in two chunks.
	msg := []byte("hello")
	first := append(pathBytes(t, ethPath0), 0, 0, 0, byte(len(msg)))
	c.mustOK(claETH, insEthSignPersonal, p1First, 0, append(first, msg[:2]...))
	out = c.mustOK(claETH, insEthSignPersonal, p1More, 0, msg[2:])
	if out[0] != 0x1c || hex.EncodeToString(out[1:33]) != vecPersonalR || hex.EncodeToString(out[33:]) != vecPersonalS {
		t.Fatalf("personal sign %x", out)
	}

	// EIP-712 hashed: blind signing on here; off gives 0x6A80.
	domain, message := crypto.Keccak256([]byte("domain")), crypto.Keccak256([]byte("message"))
	data := append(append(pathBytes(t, ethPath0), domain...), message...)
	out = c.mustOK(claETH, insEthSignEIP712, 0, 0, data)
	pub, err := crypto.SigToPub(crypto.Keccak256([]byte{0x19, 0x01}, domain, message), append(append([]byte(nil), out[1:]...), out[0]-27))
	if err != nil || crypto.PubkeyToAddress(*pub) != want {
		t.Fatalf("eip-712 signer: %v", err)
	}
	d.SetBlindSigning(false)
	if _, sw := c.send(claETH, insEthSignEIP712, 0, 0, data); sw != swIncorrectData {
		t.Fatalf("eip-712 without blind signing: %04x", sw)
	}
	d.Approver().SetPolicy(emulator.PolicyReject)
	if _, sw := ethSendTx(t, c, unhex(t, vecEth1559Tx), 255); sw != swDeny {
		t.Fatalf("rejected: %04x", sw)
	}
}

func mustPath(s string) hdpath.Path { return hdpath.MustParse(s) }

func rlpEncode(v any) ([]byte, error) { return rlp.EncodeToBytes(v) }

// legacyUnsigned is the EIP-155 signing payload RLP([nonce, gasPrice, gas, to, value, data,
// chainId, 0, 0]).
func legacyUnsigned(t testing.TB, tx *types.Transaction, chain int64) []byte {
	t.Helper()
	b, err := rlpEncode([]any{tx.Nonce(), tx.GasPrice(), tx.Gas(), tx.To(), tx.Value(), tx.Data(), big.NewInt(chain), uint(0), uint(0)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// erc20Raw is an unsigned EIP-1559 ERC-20 transfer: type byte ‖ RLP(fields).
func erc20Raw(t testing.TB) []byte {
	t.Helper()
	data := unhex(t, "a9059cbb000000000000000000000000000000000000000000000000000000000000dead00000000000000000000000000000000000000000000000000000000000f4240")
	to := common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	b, err := rlpEncode([]any{big.NewInt(1), uint64(3), big.NewInt(1e9), big.NewInt(3e10), uint64(60000), &to, new(big.Int), data, types.AccessList{}})
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{2}, b...)
}

// recover1559 recovers the sender of a typed transaction from the device's v ‖ r ‖ s.
func recover1559(t testing.TB, raw, sig []byte) common.Address {
	t.Helper()
	pub, err := crypto.SigToPub(crypto.Keccak256(raw), append(append([]byte(nil), sig[1:]...), sig[0]))
	if err != nil {
		t.Fatal(err)
	}
	return crypto.PubkeyToAddress(*pub)
}
