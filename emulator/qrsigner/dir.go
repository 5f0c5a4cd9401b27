package qrsigner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hwbridge/hwbridge/ur"
	"github.com/hwbridge/hwbridge/ur/qrimage"
)

// The folder a QR signer shares with its host (hwemu --qr DIR) stands for its camera and its
// screen:
//
//	DIR/account.txt, DIR/account.png   the account export (crypto-account), written at start
//	DIR/in/NAME.txt                    a request: UR parts, one a line (write it elsewhere and
//	                                   rename it in, so that it is never read half-written)
//	DIR/in/NAME/*.png                  a request as QR images, frames of an animated code
//	DIR/out/NAME.txt                   the signed PSBT's UR parts, one a line
//	DIR/out/NAME/part-0001.png …       the same as QR images
//	DIR/out/NAME.error                 why the request was not signed (rejected, malformed)
//
// A request whose parts do not yet make a whole PSBT stays in in/ until more frames arrive,
// as a device keeps scanning.

// PNGScale is the pixels a QR module of the account PNG.
const PNGScale = 4

// WriteAccount writes the account export (text and PNG) into dir.
func (s *Signer) WriteAccount(dir string, account uint32) error {
	u, err := s.AccountExport(account)
	if err != nil {
		return err
	}
	text := u.String()
	png, err := qrimage.PNG(text, PNGScale)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "account.txt"), []byte(text+"\n")); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "account.png"), png)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ServeOnce answers every complete request in dir/in once; it returns how many it
// answered (signed or refused).
func (s *Signer) ServeOnce(ctx context.Context, dir string) (int, error) {
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, err
		}
	}
	ents, err := os.ReadDir(in)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") || (!e.IsDir() && !strings.HasSuffix(name, ".txt")) {
			continue
		}
		base := strings.TrimSuffix(name, ".txt")
		parts, err := qrimage.ReadParts(filepath.Join(in, name))
		if err != nil {
			continue // a frame being written: read it on the next round
		}
		d := ur.NewDecoder()
		for _, p := range parts {
			if d.Receive(p) == nil && d.Done() {
				break
			}
		}
		if !d.Done() {
			continue // keep scanning
		}
		signed, err := s.Scan(ctx, parts)
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if werr := writeAtomic(filepath.Join(out, base+".error"), []byte(err.Error()+"\n")); werr != nil {
				return n, werr
			}
		} else if err := qrimage.WriteParts(filepath.Join(out, base+".txt"), filepath.Join(out, base), signed); err != nil {
			return n, err
		}
		if err := os.RemoveAll(filepath.Join(in, name)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Serve writes the account export into dir and answers requests until ctx ends, looking
// for new ones every poll.
func (s *Signer) Serve(ctx context.Context, dir string, account uint32, poll time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := s.WriteAccount(dir, account); err != nil {
		return err
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := s.ServeOnce(ctx, dir); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
