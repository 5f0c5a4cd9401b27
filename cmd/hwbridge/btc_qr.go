package main

// btc send --export-qr / --import-qr: the PSBT pipeline of --export-psbt/--import-psbt with
// the unsigned and the signed PSBT carried as Blockchain Commons UR parts (ur:crypto-psbt),
// shown as QR codes (terminal, PNG frames) or as text for scripts, and read back from text
// or from images of QR codes: how SafePal, Keystone, Passport or Jade in QR mode sign.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/ur"
	"github.com/hwbridge/hwbridge/ur/qrimage"
)

// maxQRFragment is the largest --qr-fragment: its part (two bytewords letters a byte) still
// fits the 4296 alphanumeric characters of a version 40 QR code.
const maxQRFragment = 2000

// qrFlags are btc send's QR options.
type qrFlags struct {
	export   bool
	importQR string
	parts    string
	pngDir   string
	count    int
	fragment int
	interval time.Duration
}

func (q *qrFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&q.export, "export-qr", false, "like --export-psbt, for a QR signer (SafePal, Keystone, Passport, Jade): show the unsigned PSBT as UR parts (ur:crypto-psbt): QR codes in the terminal (animated until Enter), or --qr-parts FILE / --qr-png DIR; finish with --import-qr and the same --request-id")
	fs.StringVar(&q.importQR, "import-qr", "", "finish the payment exported with --export-qr (or --export-psbt) under the same --request-id from the signer's UR parts: a text FILE of ur:crypto-psbt parts (one a line, any order; - for stdin), an image of a QR code, or a DIR of frames; every signature is verified and the transaction broadcast once")
	fs.StringVar(&q.parts, "qr-parts", "", "with --export-qr: write the UR parts to FILE (- for stdout), one a line")
	fs.StringVar(&q.pngDir, "qr-png", "", "with --export-qr: write the QR codes as PNG frames DIR/part-0001.png …")
	fs.IntVar(&q.count, "qr-count", 0, "with --export-qr: how many parts to write (default: the fragments twice over, so a scanner that misses frames still completes)")
	fs.IntVar(&q.fragment, "qr-fragment", ur.DefaultMaxFragmentLen, "with --export-qr: the largest fragment of a part, in bytes (smaller: more, simpler QR codes)")
	fs.DurationVar(&q.interval, "qr-interval", 250*time.Millisecond, "with --export-qr in a terminal: how long each animated frame shows")
}

// check validates the QR options against the PSBT-file ones.
func (q *qrFlags) check(exportFile, importFile string) error {
	switch {
	case q.importQR != "" && (q.export || exportFile != "" || importFile != ""):
		return usagef("btc send: --import-qr finishes an export: give it alone with --request-id")
	case q.export && importFile != "":
		return usagef("btc send: give --export-qr or --import-psbt, not both")
	case !q.export && (q.parts != "" || q.pngDir != "" || q.count != 0):
		return usagef("btc send: --qr-parts, --qr-png and --qr-count go with --export-qr")
	case q.count < 0 || q.count > 100_000 || q.fragment < ur.DefaultMinFragmentLen || q.fragment > maxQRFragment:
		return usagef("btc send: --qr-count 0..100000, --qr-fragment %d..%d", ur.DefaultMinFragmentLen, maxQRFragment)
	}
	return nil
}

// readQRPSBT reads the signed PSBT from UR parts at path (text, an image, a folder of
// frames, or - for stdin) and returns it in base64.
func (e *env) readQRPSBT(path string) (string, error) {
	var parts []string
	if path == "-" {
		raw, err := e.readInput("-")
		if err != nil {
			return "", err
		}
		if qrimage.IsImage(raw) {
			text, err := qrimage.Decode(bytes.NewReader(raw))
			if err != nil {
				return "", fmt.Errorf("%w: stdin: %w", device.ErrInvalidInput, err)
			}
			raw = []byte(text)
		}
		parts = strings.Split(string(raw), "\n")
	} else {
		var err error
		if parts, err = qrimage.ReadParts(path); err != nil {
			return "", fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
		}
	}
	d := ur.NewDecoder()
	read := 0
	for i, p := range parts {
		if p = strings.TrimSpace(p); p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if err := d.Receive(p); err != nil {
			return "", fmt.Errorf("%w: UR part %d: %w", device.ErrInvalidInput, i+1, err)
		}
		read++
		if have, want := d.Progress(); !e.json && want > 1 && (read%10 == 0 || d.Done()) {
			e.note(fmt.Sprintf("read %d UR parts: %d of %d fragments", read, have, want))
		}
		if d.Done() {
			break
		}
	}
	u, err := d.Result()
	if err != nil {
		return "", fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	bin, err := ur.DecodePSBT(u)
	if err != nil {
		return "", fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	return base64.StdEncoding.EncodeToString(bin), nil
}

// qrExport is the export's result with its UR parts.
type qrExport struct {
	*daemon.BtcSendResult
	QRSeqLen int      `json:"qr_seq_len"`
	QRParts  []string `json:"qr_parts"`
}

// showQR shows the exported unsigned PSBT as UR parts as q says.
func (e *env) showQR(ctx context.Context, res *daemon.BtcSendResult, q *qrFlags) (*qrExport, error) {
	bin, err := base64.StdEncoding.DecodeString(res.PSBT)
	if err != nil {
		return nil, fmt.Errorf("the exported PSBT: %w", err)
	}
	enc, err := ur.NewEncoder(ur.PSBT(bin), q.fragment)
	if err != nil {
		return nil, err
	}
	n := q.count
	if n == 0 {
		n = enc.SeqLen()
		if n > 1 {
			n *= 2
		}
	}
	out := &qrExport{BtcSendResult: res, QRSeqLen: enc.SeqLen(), QRParts: enc.Parts(n)}
	switch {
	case q.parts == "-":
		if !e.json {
			fmt.Fprintln(e.stdout, strings.Join(out.QRParts, "\n"))
		}
	case q.parts != "":
		if err := qrimage.WriteParts(q.parts, "", out.QRParts); err != nil {
			return nil, fmt.Errorf("write the UR parts (the export is journaled: run the same command again): %w", err)
		}
	}
	if q.pngDir != "" {
		if !e.json {
			e.note(fmt.Sprintf("drawing %d QR codes into %s", n, q.pngDir))
		}
		if err := qrimage.WriteParts("", q.pngDir, out.QRParts); err != nil {
			return nil, fmt.Errorf("write the QR frames (the export is journaled: run the same command again): %w", err)
		}
	}
	if q.parts == "" && q.pngDir == "" && !e.json {
		if err := e.terminalQR(ctx, enc, out.QRParts, q.interval); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// terminalQR draws the parts as QR codes on stdout: animated in place when stdout and stdin
// are terminals (until Enter or an interrupt), else one after another.
func (e *env) terminalQR(ctx context.Context, enc *ur.Encoder, parts []string, interval time.Duration) error {
	f, isFile := e.stdout.(*os.File)
	in, inFile := e.stdin.(*os.File)
	if !isFile || !inFile || !term.IsTerminal(int(f.Fd())) || !term.IsTerminal(int(in.Fd())) || len(parts) == 1 {
		for i, p := range parts {
			code, err := qrimage.Terminal(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s# part %d of %d (%s)\n", code, i+1, len(parts), p[:strings.LastIndex(p, "/")])
		}
		return nil
	}
	done := make(chan struct{})
	go func() { // Enter ends the animation; the goroutine ends with the process
		_, _ = bufio.NewReader(io.LimitReader(in, 1<<10)).ReadString('\n')
		close(done)
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		p := enc.NextPart()
		code, err := qrimage.Terminal(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\x1b[H\x1b[2J%s%s — scan with the signer, then press Enter\n", code, p[:strings.LastIndex(p, "/")])
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// readWalletExport reads --wallet-export: a file (or - for stdin) of JSON or UR text, an
// image of an account QR code, or a folder of frames of an animated one.
func (e *env) readWalletExport(path string) ([]byte, error) {
	if path != "-" {
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			parts, err := qrimage.ReadParts(path)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
			}
			return []byte(strings.Join(parts, "\n")), nil
		}
	}
	raw, err := e.readInput(path)
	if err != nil {
		return nil, err
	}
	if qrimage.IsImage(raw) {
		text, err := qrimage.Decode(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", device.ErrInvalidInput, inputName(path), err)
		}
		return []byte(text), nil
	}
	return raw, nil
}
