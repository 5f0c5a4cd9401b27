package qrsigner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// PNGScale is the pixels a QR module of the PNG frames it writes.
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

// ReadParts reads UR parts from path: a text file of parts (one a line), a PNG or JPEG of a
// QR code, or a folder of those (in name order).
func ReadParts(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range ents {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	var parts []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if qrimage.IsImage(b) {
			text, err := qrimage.Decode(strings.NewReader(string(b)))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
			}
			parts = append(parts, text)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				parts = append(parts, line)
			}
		}
	}
	return parts, nil
}

// WriteParts writes parts into out.txt-style text (path) and, when pngDir is not empty, as
// PNG frames pngDir/part-0001.png ….
func WriteParts(path, pngDir string, parts []string) error {
	if pngDir != "" {
		if err := os.MkdirAll(pngDir, 0o755); err != nil {
			return err
		}
		for i, p := range parts {
			img, err := qrimage.PNG(p, PNGScale)
			if err != nil {
				return err
			}
			if err := writeAtomic(filepath.Join(pngDir, fmt.Sprintf("part-%04d.png", i+1)), img); err != nil {
				return err
			}
		}
	}
	if path == "" {
		return nil
	}
	return writeAtomic(path, []byte(strings.Join(parts, "\n")+"\n"))
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
		parts, err := ReadParts(filepath.Join(in, name))
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
		} else if err := WriteParts(filepath.Join(out, base+".txt"), filepath.Join(out, base), signed); err != nil {
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
