package coldcard

// Signing from the microSD card, as the firmware does when the person picks a PSBT file
// (Ready To Sign): read and check the PSBT, show it, sign, and write next to it what
// Coldcard/firmware shared/auth.py _save_to_disk writes (commit 8eb0e008f63f):
//   - every input signed: NAME-signed.psbt (binary BIP-174 with the partial signatures;
//     psbt.py serialize keeps them and writes no final fields) and NAME-final.txn (the
//     network transaction in lower-case hex and CR LF, shared/utils.py HexWriter);
//   - otherwise (a multisig input still missing signatures): NAME-part.psbt only.
// The firmware reads PSBT files in binary, hex or base64.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"

	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// ErrRefused: the person refused the transaction on the device's screen; nothing was written.
var ErrRefused = errors.New("coldcard: the transaction was refused on the device")

// SignFile signs the PSBT file at path as from the microSD card, after the approver's
// decision on the same "OK TO SEND?" screen as over USB, and returns the paths written.
func (d *Device) SignFile(ctx context.Context, path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > 2*maxTxn+2 { // hex of the largest PSBT
		return nil, fmt.Errorf("coldcard: %s: PSBT too big", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := hwpsbt.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("coldcard: %s: PSBT parse failed: %w", path, err)
	}
	bin, err := hwpsbt.Encode(p)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	tx, err := parseTx(bin, d.w, d.net)
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("coldcard: %s: %w", path, err)
	}
	ok, err := d.approver.Ask(ctx, tx.screen(d.chain))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrRefused
	}
	d.mu.Lock()
	out, err := tx.sign(d.w, false)
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("coldcard: sign: %w", err)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	if i := strings.LastIndex(base, "."); i > 0 {
		base = base[:i]
	}
	signed, err := hwpsbt.DecodeBinary(out)
	if err != nil {
		return nil, err
	}
	if psbt.MaybeFinalizeAll(signed) != nil { // not every input signed: a part file only
		name := filepath.Join(dir, strings.ReplaceAll(base, "-part", "")+"-part.psbt")
		return []string{name}, os.WriteFile(name, out, 0o600)
	}
	final, err := psbt.Extract(signed)
	if err != nil {
		return nil, err
	}
	var txBuf bytes.Buffer
	if err := final.Serialize(&txBuf); err != nil {
		return nil, err
	}
	names := []string{filepath.Join(dir, base+"-signed.psbt"), filepath.Join(dir, base+"-final.txn")}
	if err := os.WriteFile(names[0], out, 0o600); err != nil {
		return nil, err
	}
	return names, os.WriteFile(names[1], []byte(hex.EncodeToString(txBuf.Bytes())+"\r\n"), 0o600)
}

// ServeCard treats dir as the microSD card until ctx ends: every PSBT file put there
// (NAME.psbt; not the NAME-signed.psbt or NAME-part.psbt the device writes) is signed once,
// as SignFile does, looking for new ones every poll. A file refused on the screen or not a
// PSBT the device can sign is logged and left alone, as the firmware leaves it on the card.
func (d *Device) ServeCard(ctx context.Context, dir string, poll time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	done := map[string]time.Time{} // file → modification time when handled
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".psbt") || strings.HasSuffix(name, "-signed.psbt") || strings.HasSuffix(name, "-part.psbt") {
				continue
			}
			info, err := e.Info()
			if err != nil || done[name].Equal(info.ModTime()) {
				continue
			}
			done[name] = info.ModTime()
			files, err := d.SignFile(ctx, filepath.Join(dir, name))
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				d.log.Info("microSD: not signed", "file", name, "err", err)
				continue
			}
			d.log.Info("microSD: signed", "file", name, "wrote", strings.Join(files, " "))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
