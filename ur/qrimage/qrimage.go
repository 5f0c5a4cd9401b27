// Package qrimage draws UR parts as QR codes (terminal text and PNG frames, through
// github.com/skip2/go-qrcode) and reads them back from images of QR codes (through
// github.com/makiuchi-d/gozxing, a port of ZXing's QR reader).
package qrimage

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // scans saved as JPEG
	_ "image/png"
	"io"
	"strings"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	qrcode "github.com/skip2/go-qrcode"
)

// ErrNoQR: the image holds no readable QR code.
var ErrNoQR = errors.New("no readable QR code in the image")

// MaxImageBytes is the largest image file read.
const MaxImageBytes = 16 << 20

// maxPixels bounds a decoded image's size (a hostile header could claim gigapixels).
const maxPixels = 40_000_000

// Text is the UR as it goes into a QR code: upper-cased, so that the code uses the compact
// alphanumeric mode (URs are case-insensitive).
func Text(part string) string { return strings.ToUpper(part) }

// ErrUnreadable: no QR code drawn for a part read back through the decoder as that part.
var ErrUnreadable = errors.New("qr: the drawn QR code does not read back")

// code is the QR code of part, checked by reading it back with gozxing: go-qrcode draws a
// few (version, level) combinations that ZXing-based readers refuse (seen at version 12 level
// L and version 7 level M), so each level from M up is tried until the image reads back.
func code(part string) (*qrcode.QRCode, error) {
	text := Text(part)
	for _, lvl := range []qrcode.RecoveryLevel{qrcode.Medium, qrcode.High, qrcode.Highest, qrcode.Low} {
		q, err := qrcode.New(text, lvl)
		if err != nil {
			return nil, fmt.Errorf("qr: %w", err)
		}
		img, err := q.PNG(-2)
		if err != nil {
			return nil, fmt.Errorf("qr: %w", err)
		}
		if got, err := Decode(bytes.NewReader(img)); err == nil && got == text {
			return q, nil
		}
	}
	return nil, fmt.Errorf("%w (%d characters)", ErrUnreadable, len(text))
}

// Terminal draws the QR code of part with half-block characters (two modules a line), dark
// on a light terminal background.
func Terminal(part string) (string, error) {
	q, err := code(part)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}

// PNG is the QR code of part as a PNG image, scale pixels a module (whole pixels, so that
// every module stays square and scanners read it).
func PNG(part string, scale int) ([]byte, error) {
	q, err := code(part)
	if err != nil {
		return nil, err
	}
	return q.PNG(-max(scale, 1))
}

// Decode reads the text of the QR code in an image (PNG or JPEG).
func Decode(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return "", err
	}
	if len(data) > MaxImageBytes {
		return "", fmt.Errorf("qr: the image is more than %d bytes", MaxImageBytes)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("qr: not a PNG or JPEG image: %w", err)
	}
	if cfg.Width*cfg.Height > maxPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		return "", fmt.Errorf("qr: a %dx%d image is too large", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("qr: %w", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	return res.GetText(), nil
}

// IsImage says whether data starts like a PNG or JPEG file.
func IsImage(data []byte) bool {
	return bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff})
}
