package qrimage

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxFiles is the most files ReadParts reads from a folder.
const MaxFiles = 10_000

// FrameScale is the pixels a QR module of the PNG frames WriteParts writes.
const FrameScale = 4

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
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), ".tmp") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
		if len(files) > MaxFiles {
			return nil, fmt.Errorf("qr: %d files in %s (at most %d)", len(files), path, MaxFiles)
		}
	}
	var parts []string
	for _, f := range files {
		if st, err := os.Stat(f); err != nil {
			return nil, err
		} else if st.Size() > MaxImageBytes {
			return nil, fmt.Errorf("qr: %s is more than %d bytes", filepath.Base(f), MaxImageBytes)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if IsImage(b) {
			text, err := Decode(strings.NewReader(string(b)))
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

// WriteParts writes parts as text, one a line, to path (unless empty) and, when pngDir is
// not empty, as PNG frames pngDir/part-0001.png … (FrameScale pixels a module).
func WriteParts(path, pngDir string, parts []string) error {
	if pngDir != "" {
		if err := os.MkdirAll(pngDir, 0o755); err != nil {
			return err
		}
		for i, p := range parts {
			img, err := PNG(p, FrameScale)
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
