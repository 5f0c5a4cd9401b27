package devicetest

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil/base58"

	"github.com/hwbridge/hwbridge/device"
)

// Mnemonic is the standard test mnemonic every emulator under this suite must run from
// ("abandon" ×11 "about", no passphrase). Never a real wallet's seed.
const Mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// Vectors for Mnemonic. The BIP-84 account zpub and first address, and the BIP-86 account
// xpub and first address, are copied unchanged from the BIPs' "Test vectors" sections
// (github.com/bitcoin/bips bip-0084.mediawiki, bip-0086.mediawiki). The BIP-49 ypub, the
// BIP-44 xpub, their first addresses, the fingerprint and the Ethereum address
// m/44'/60'/0'/0/0 are the widely published values for this mnemonic; all of them were
// cross-checked against an independent BIP-32 derivation (btcutil/hdkeychain, go-bip39)
// when committed.
const (
	VectorFingerprint device.Fingerprint = 0x73c5da0a

	VectorZPub84 = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
	VectorYPub49 = "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP"
	VectorXPub44 = "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj"
	VectorXPub86 = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"

	VectorAddr44 = "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"
	VectorAddr49 = "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"
	VectorAddr84 = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	VectorAddr86 = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"

	VectorETHAddr = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"

	// Testnet (coin type 1), as ledger.md §8.1 lists them.
	VectorTPub84     = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M"
	VectorTestAddr84 = "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
)

// AsXPub rewrites a SLIP-132 ypub/zpub as the same key with mainnet xpub version bytes,
// which is what Device.XPub returns.
func AsXPub(s string) (string, error) {
	payload, ver, err := base58.CheckDecode(s)
	if err != nil || len(payload) != 77 {
		return "", fmt.Errorf("devicetest: %q is not an extended key: %v", s, err)
	}
	full := append([]byte{ver}, payload...)
	copy(full[:4], []byte{0x04, 0x88, 0xb2, 0x1e})
	return base58.CheckEncode(full[1:], full[0]), nil
}
