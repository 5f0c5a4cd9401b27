package main

// Daemon mode: when hwbridged's socket exists (and --direct is not given), commands reach
// the device through the daemon, which owns it. remoteDevice implements device.Device with
// the daemon's methods, so every command runs unchanged in both modes, and errors keep their
// taxonomy (errors.Is(err, device.ErrUserRejected) holds through the daemon).

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// daemonSocket returns the socket to talk to, or "" for direct mode: --direct, or no socket
// at the default place. A --socket that does not exist is an error.
func (e *env) daemonSocket() (string, error) {
	if e.direct {
		return "", nil
	}
	sock := e.socket
	if sock == "" {
		sock = daemon.DefaultSocket(e.getenv)
	}
	if _, err := os.Stat(sock); err != nil {
		if e.socket != "" {
			return "", fmt.Errorf("no hwbridged socket at %s (start hwbridged, or pass --direct to talk to the device yourself): %w", sock, err)
		}
		return "", nil
	}
	return sock, nil
}

// daemonClient connects to the daemon with the CLI's key: $HWBRIDGE_KEY (an app key), else
// the key hwbridged writes for the CLI to its data directory ($HWBRIDGE_DATA_DIR or
// ~/.hwbridge)/cli.key. It asks the daemon's version first (no key needed), so that a socket
// nobody listens on is reported as a stopped daemon, and warns once when that version
// differs from ours.
func (e *env) daemonClient(ctx context.Context, sock, dataDir string) (*daemon.Client, error) {
	c := &daemon.Client{Socket: sock}
	e.opened = append(e.opened, closerFunc(c.Close))
	v, err := c.Version(ctx)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("hwbridged is not running: nothing listens on %s: start hwbridged, or pass --direct to use the device without it (%w)", sock, syscall.ECONNREFUSED)
	}
	if err != nil {
		return nil, err
	}
	if v.Version != daemon.Version() {
		e.log.Warn("hwbridged runs another version than this hwbridge", "daemon", v.Version, "cli", daemon.Version())
	}
	key := strings.TrimSpace(e.getenv("HWBRIDGE_KEY"))
	if key == "" {
		path := filepath.Join(dataDir, daemon.CLIKeyFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("hwbridged runs (socket %s) but its cli key is not readable at %s (set HWBRIDGE_DATA_DIR to its --data-dir, or pass --direct): %w", sock, path, err)
		}
		key = strings.TrimSpace(string(b))
	}
	c.Key = key
	return c, nil
}

// openDaemon returns the device through the daemon when daemon mode applies (ok true).
func (e *env) openDaemon(ctx context.Context) (device.Device, bool, error) {
	sock, err := e.daemonSocket()
	if err != nil || sock == "" {
		return nil, err != nil, err
	}
	c, err := e.daemonClient(ctx, sock, e.dataDir(""))
	if err != nil {
		return nil, true, err
	}
	sel := e.device
	if sel == "" {
		sel = strings.TrimSpace(e.getenv("HWBRIDGE_DEVICE"))
	}
	return &remoteDevice{c: c, sel: sel}, true, nil
}

// daemonDevices lists devices through the daemon when daemon mode applies (ok true).
func (e *env) daemonDevices(ctx context.Context) ([]deviceRow, bool, error) {
	sock, err := e.daemonSocket()
	if err != nil || sock == "" {
		return nil, err != nil, err
	}
	c, err := e.daemonClient(ctx, sock, e.dataDir(""))
	if err != nil {
		return nil, true, err
	}
	var infos []device.Info
	if err := c.Call(ctx, "v1Devices", nil, &infos); err != nil {
		return nil, true, err
	}
	rows := []deviceRow{}
	for _, in := range infos {
		row := deviceRow{Path: in.Path, Kind: in.Kind, Model: in.Model, Fingerprint: in.Fingerprint, Emulator: in.Emulator}
		if f := in.Features; f != nil {
			row.Kind, row.Version, row.Label = string(f.Family), f.Version, f.Label
		}
		if row.Fingerprint == "" {
			var fp daemon.FingerprintResult
			if err := c.Call(ctx, "v1Fingerprint", daemon.DeviceParams{Device: in.Path}, &fp); err != nil {
				row.Error = err.Error()
			}
			row.Fingerprint = fp.Fingerprint
		}
		rows = append(rows, row)
	}
	return rows, true, nil
}

// remoteDevice is a device reached through hwbridged.
type remoteDevice struct {
	c   *daemon.Client
	sel string // path, fingerprint, or "" for the only device
}

var _ device.Device = (*remoteDevice)(nil)

func (r *remoteDevice) Features(ctx context.Context) (device.Features, error) {
	var f device.Features
	err := r.c.Call(ctx, "v1Features", daemon.DeviceParams{Device: r.sel}, &f)
	return f, err
}

func (r *remoteDevice) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	var res daemon.FingerprintResult
	if err := r.c.Call(ctx, "v1Fingerprint", daemon.DeviceParams{Device: r.sel}, &res); err != nil {
		return 0, err
	}
	fp, ok := parseFingerprint(res.Fingerprint)
	if !ok {
		return 0, fmt.Errorf("hwbridged answered fingerprint %q: %w", res.Fingerprint, device.ErrProtocol)
	}
	return fp, nil
}

func netName(n *chaincfg.Params) string {
	if n == nil {
		return ""
	}
	return networkName(n)
}

func (r *remoteDevice) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	var res daemon.XPubResult
	err := r.c.Call(ctx, "v1Xpub", daemon.XPubParams{Device: r.sel, Path: req.Path.String(), Network: netName(req.Network), Display: req.Display,
		SwitchApp: device.AppSwitchAllowed(ctx)}, &res)
	return res.XPub, err
}

func (r *remoteDevice) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	var res daemon.AddressResult
	p := daemon.AddressParams{Device: r.sel, Chain: string(req.Chain), Path: req.Path.String(), Type: string(req.Script), Display: req.Display,
		SwitchApp: device.AppSwitchAllowed(ctx)}
	if req.Chain == device.ChainBTC {
		p.Network = netName(req.Network)
	}
	err := r.c.Call(ctx, "v1Address", p, &res)
	if res.Shown != "" {
		device.NoteShown(ctx, res.Shown)
	}
	return res.Address, err
}

func (r *remoteDevice) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	b64, err := p.B64Encode()
	if err != nil {
		return fmt.Errorf("%w: psbt: %v", device.ErrInvalidInput, err)
	}
	var res daemon.PSBTResult
	if err := r.c.Call(ctx, "v1SignPsbt", daemon.SignPSBTParams{Device: r.sel, PSBT: b64, Network: netName(net)}, &res); err != nil {
		return err
	}
	signed, err := psbt.NewFromRawBytes(strings.NewReader(res.PSBT), true)
	if err != nil {
		return fmt.Errorf("hwbridged answered a psbt that does not parse: %w: %v", device.ErrProtocol, err)
	}
	if signed.UnsignedTx.TxHash() != p.UnsignedTx.TxHash() {
		return fmt.Errorf("hwbridged answered a psbt for another transaction: %w", device.ErrProtocol)
	}
	*p = *signed
	return nil
}

func (r *remoteDevice) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	b, err := tx.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrInvalidInput, err)
	}
	var res daemon.EthTxResult
	if err := r.c.Call(ctx, "v1EthSignTx", daemon.EthSignTxParams{Device: r.sel, Path: path.String(), Tx: hex.EncodeToString(b), ChainID: chainID.String()}, &res); err != nil {
		return nil, err
	}
	signed := new(types.Transaction)
	if err := signed.UnmarshalBinary(res.Raw); err != nil {
		return nil, fmt.Errorf("hwbridged answered a transaction that does not parse: %w: %v", device.ErrProtocol, err)
	}
	return signed, nil
}

func (r *remoteDevice) SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	var sig device.MessageSignature
	if !utf8.Valid(req.Message) {
		return sig, fmt.Errorf("%w: through hwbridged a message must be UTF-8 text", device.ErrInvalidInput)
	}
	p := daemon.SignMessageParams{Device: r.sel, Chain: string(req.Chain), Path: req.Path.String(), Message: string(req.Message), Type: string(req.Script)}
	if req.Chain == device.ChainBTC {
		p.Network = netName(req.Network)
	}
	err := r.c.Call(ctx, "v1SignMessage", p, &sig)
	return sig, err
}

func (r *remoteDevice) SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error) {
	p := daemon.EthTypedHashParams{Device: r.sel, Path: path.String(), DomainSeparator: hex.EncodeToString(domainSeparator[:])}
	if messageHash != nil {
		p.MessageHash = hex.EncodeToString(messageHash)
	}
	var res daemon.SignatureResult
	if err := r.c.Call(ctx, "v1EthSignTypedHash", p, &res); err != nil {
		return nil, err
	}
	return res.Signature, nil
}

// SignTypedData sends the whole document to hwbridged (v1EthSignTypedData), which signs it
// as the device takes it (streamed on a Trezor T/Safe, hashed elsewhere).
func (r *remoteDevice) SignTypedData(ctx context.Context, path hdpath.Path, td *device.TypedData) ([]byte, error) {
	raw, err := json.Marshal(td.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: typed data: %w", device.ErrInvalidInput, err)
	}
	var res daemon.SignatureResult
	if err := r.c.Call(ctx, "v1EthSignTypedData", daemon.EthTypedDataParams{Device: r.sel, Path: path.String(), Data: raw}, &res); err != nil {
		return nil, err
	}
	return res.Signature, nil
}

// Close does nothing: the client is closed with the command.
func (r *remoteDevice) Close() error { return nil }

// errNoDaemon: an apps command that needs the running daemon.
var errNoDaemon = errors.New("hwbridged is not running: pairing requests wait inside it; start hwbridged and have the app ask again")
