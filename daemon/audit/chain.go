package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Segments. When the active file (the log's path) would grow past Options.SegmentBytes,
// the commit loop renames it to path + "." + the seq of its first record (20 digits) and
// starts a new active file; the chain runs on across files (the new file's first record
// carries the hash of the sealed file's last). Verify reads the sealed segments in order,
// then the active file.

// segName is the name of the sealed segment whose first record is seq first.
func segName(path string, first uint64) string { return fmt.Sprintf("%s.%020d", path, first) }

type segment struct {
	first uint64
	path  string
}

// segments lists the sealed segments of the log at path, in seq order.
func segments(path string) ([]segment, error) {
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("audit: %w", err)
	}
	prefix := filepath.Base(path) + "."
	var segs []segment
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || len(rest) != 20 {
			continue
		}
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: n, path: filepath.Join(filepath.Dir(path), e.Name())})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return segs, nil
}

// parseLine decodes one line (without its newline) strictly and checks its own hash.
func parseLine(b []byte, line int) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, &VerifyError{Line: line, Err: ErrMalformed, What: err.Error()}
	}
	if dec.More() {
		return r, &VerifyError{Line: line, Seq: r.Seq, Err: ErrMalformed, What: "trailing data"}
	}
	got, err := hashOf(r)
	if err != nil {
		return r, &VerifyError{Line: line, Seq: r.Seq, Err: ErrMalformed, What: err.Error()}
	}
	if got != r.Hash {
		return r, &VerifyError{Line: line, Seq: r.Seq, Err: ErrEdited}
	}
	return r, nil
}

// follows checks that r comes right after last in the chain.
func follows(r Record, last head, line int) error {
	switch {
	case r.Seq <= last.Seq:
		return &VerifyError{Line: line, Seq: r.Seq, Err: ErrReordered, What: fmt.Sprintf("seq %d follows seq %d", r.Seq, last.Seq)}
	case r.Seq > last.Seq+1:
		return &VerifyError{Line: line, Seq: r.Seq, Err: ErrMissing, What: fmt.Sprintf("seq %d follows seq %d", r.Seq, last.Seq)}
	case r.Prev != last.Hash:
		return &VerifyError{Line: line, Seq: r.Seq, Err: ErrMissing, What: "prev does not match the record before"}
	}
	return nil
}

// fileScan is the outcome of walking one file.
type fileScan struct {
	first uint64 // seq of its first record (0: none)
	last  head   // the last good record (the chain so far, if the file had none)
	end   int64  // offset just after the last good record
	torn  bool   // an unterminated, undecodable last line follows end
	lines int    // line number of the last line read (for errors)
}

// scanFile verifies the records of rd (positioned at byte off of its file) as the
// continuation of the chain at last. at is called with each record and the offset just after
// it. A final line without its newline that does not decode is reported as torn, not as an
// error (the caller decides); line numbers start after lineBase.
func scanFile(rd io.Reader, off int64, last head, lineBase int, at func(r Record, end int64) error) (fileScan, error) {
	s := fileScan{last: last, end: off, lines: lineBase}
	br := bufio.NewReaderSize(rd, 64<<10)
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf[:0], chunk...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(buf) > MaxLine {
				return s, &VerifyError{Line: s.lines + 1, Err: ErrMalformed, What: fmt.Sprintf("line longer than %d bytes", MaxLine)}
			}
			chunk, err = br.ReadSlice('\n')
			buf = append(buf, chunk...)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return s, fmt.Errorf("audit: %w", err)
		}
		if len(buf) == 0 {
			return s, nil
		}
		s.lines++
		terminated := buf[len(buf)-1] == '\n'
		body := bytes.TrimSuffix(buf, []byte("\n"))
		r, perr := parseLine(body, s.lines)
		if perr != nil && !terminated {
			s.torn = true
			return s, nil
		}
		if perr != nil {
			return s, perr
		}
		if err := follows(r, s.last, s.lines); err != nil {
			return s, err
		}
		if !terminated {
			// A whole record whose newline was lost: it counts, and the newline is added
			// before the next append (see recoverTail).
			s.torn = false
		}
		if s.first == 0 {
			s.first = r.Seq
		}
		s.last = head{Seq: r.Seq, Hash: r.Hash}
		s.end += int64(len(buf))
		if at != nil {
			if err := at(r, s.end); err != nil {
				return s, err
			}
		}
		if !terminated {
			return s, nil
		}
	}
}

// Summary is what Verify found in a good log.
type Summary struct {
	Records  uint64 // number of records
	Head     string // hash of the last record
	Segments int    // sealed segments read before the active file
}

// Verify checks the whole log at path — its sealed segments, then the active file — and its
// head file, reading one line at a time (memory does not grow with the log). A missing log
// with no head is an empty, valid log.
func Verify(path string) (Summary, error) { return VerifyEach(path, nil) }

// VerifyEach is Verify calling each (if not nil) with every record in order, once the
// record is known to follow the chain; an error from each stops the walk and is returned.
func VerifyEach(path string, each func(Record) error) (Summary, error) {
	want, headExists, err := readHeadFile(path)
	if err != nil {
		return Summary{}, err
	}
	segs, err := segments(path)
	if err != nil {
		return Summary{}, err
	}
	last := head{Hash: zeroHash}
	headSeen := want.Seq == 0
	files := append(segs, segment{path: path})
	for i, sg := range files {
		f, err := os.Open(sg.path)
		if errors.Is(err, os.ErrNotExist) && sg.path == path {
			break
		}
		if err != nil {
			return Summary{}, fmt.Errorf("audit: %w", err)
		}
		sealed := sg.path != path
		var fileFirst uint64
		s, err := scanFile(f, 0, last, 0, func(r Record, end int64) error {
			if fileFirst == 0 {
				fileFirst = r.Seq
			}
			if each != nil {
				if err := each(r); err != nil {
					return err
				}
			}
			if r.Seq != want.Seq {
				return nil
			}
			if r.Hash != want.Hash {
				return &VerifyError{Seq: r.Seq, Err: ErrEdited, What: "the record differs from the one the head file recorded"}
			}
			if want.Base > 0 && fileFirst == want.Base && end != want.Off {
				return &VerifyError{Seq: r.Seq, Err: ErrEdited, What: fmt.Sprintf("the record ends at byte %d of %s, its head says %d", end, sg.path, want.Off)}
			}
			headSeen = true
			return nil
		})
		f.Close()
		if err != nil {
			return Summary{}, inFile(err, sg.path, path)
		}
		if s.torn && (sealed || s.last.Seq < want.Seq) {
			return Summary{}, inFile(&VerifyError{Line: s.lines, Err: ErrMalformed, What: "a record the head covers is cut short"}, sg.path, path)
		}
		// A torn last line beyond the head is a write in progress (hwbridged is running) or
		// cut by a crash before it was acknowledged (hwbridged removes it at its next start).
		if sealed && s.first != sg.first {
			return Summary{}, inFile(&VerifyError{Err: ErrMissing, What: fmt.Sprintf("the segment is named for seq %d but starts at %d", sg.first, s.first)}, sg.path, path)
		}
		if sealed && i+1 < len(segs) && s.last.Seq+1 != segs[i+1].first {
			return Summary{}, inFile(&VerifyError{Err: ErrMissing, What: fmt.Sprintf("the segment ends at seq %d; the next starts at %d", s.last.Seq, segs[i+1].first)}, sg.path, path)
		}
		last = s.last
	}
	if !headExists && last.Seq > 1 {
		return Summary{}, &VerifyError{Err: ErrTruncated, What: "the head file is missing (it is created with the log): the log may have been cut"}
	}
	if !headSeen {
		return Summary{}, &VerifyError{Err: ErrTruncated, What: fmt.Sprintf("the log ends at seq %d but its head file says %d records were written", last.Seq, want.Seq)}
	}
	if last.Seq == 0 {
		last.Hash = ""
	}
	return Summary{Records: last.Seq, Head: last.Hash, Segments: len(segs)}, nil
}

// inFile names a sealed segment in a verification error.
func inFile(err error, file, active string) error {
	var ve *VerifyError
	if file != active && errors.As(err, &ve) {
		ve.What = strings.TrimPrefix(ve.What+" (in segment "+filepath.Base(file)+")", " ")
	}
	return err
}

// recovered is what Open learned: the chain's last record, and the active file's first
// seq and good length.
type recovered struct {
	last head
	base uint64
	size int64
	torn bool // the active file has a torn tail after size: cut it off
	nl   bool // the active file's last record lacks its newline: add it
}

// recoverTail checks the log from its head's checkpoint on: the record the head names (at
// its offset in the active file, or in the sealed segment a rotation left it in) and every
// record after it. It reads only the tail since the last head, so start-up does not depend
// on the log's length. A head without a checkpoint (written by an older hwbridged) or no
// head at all means reading the whole log once.
func recoverTail(path string) (recovered, error) {
	want, headExists, err := readHeadFile(path)
	if err != nil {
		return recovered{}, err
	}
	if !headExists || want.Base == 0 {
		return recoverFull(path, want, headExists)
	}
	files := []segment{{first: want.Base, path: path}}
	if _, err := os.Stat(segName(path, want.Base)); err == nil {
		// A rotation happened after the head was written.
		segs, err := segments(path)
		if err != nil {
			return recovered{}, err
		}
		files = nil
		for _, sg := range segs {
			if sg.first >= want.Base {
				files = append(files, sg)
			}
		}
		files = append(files, segment{path: path})
	}
	last := head{Seq: want.Seq, Hash: want.Hash}
	var rec recovered
	for i, sg := range files {
		f, err := os.Open(sg.path)
		if errors.Is(err, os.ErrNotExist) && sg.path == path && (i > 0 || want.Off == 0) {
			rec.base = last.Seq + 1
			break
		}
		if err != nil {
			return recovered{}, fmt.Errorf("audit: %w", err)
		}
		off := int64(0)
		if i == 0 {
			off = want.Off
			if err := checkHeadRecord(f, sg.path, want); err != nil {
				f.Close()
				return recovered{}, err
			}
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return recovered{}, fmt.Errorf("audit: %w", err)
		}
		s, err := scanFile(f, off, last, 0, nil)
		f.Close()
		if err != nil {
			return recovered{}, inFile(err, sg.path, path)
		}
		if sg.path != path {
			if s.torn {
				return recovered{}, inFile(&VerifyError{Err: ErrMalformed, What: "a sealed segment ends with a torn line"}, sg.path, path)
			}
			last = s.last
			continue
		}
		rec = recovered{last: s.last, size: s.end, torn: s.torn}
		rec.base = want.Base
		if len(files) > 1 || i > 0 {
			rec.base = s.first
			if s.first == 0 {
				rec.base = s.last.Seq + 1
			}
		}
		last = s.last
	}
	rec.last = last
	rec.nl, err = lacksNewline(path, rec.size)
	return rec, err
}

// checkHeadRecord checks that the record ending at want.Off of the file at path is the one
// the head names (or, at offset 0, that the head is the chain just before the file).
func checkHeadRecord(f *os.File, path string, want head) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if fi.Size() < want.Off {
		return &VerifyError{Err: ErrTruncated, What: fmt.Sprintf("%s holds %d bytes but its head says the record %d ends at byte %d", filepath.Base(path), fi.Size(), want.Seq, want.Off)}
	}
	if want.Off == 0 {
		if want.Seq+1 != want.Base {
			return &VerifyError{Err: ErrMalformed, What: fmt.Sprintf("head file: seq %d at the start of a file that begins at seq %d", want.Seq, want.Base)}
		}
		return nil
	}
	from := max(0, want.Off-int64(MaxLine)-2)
	buf := make([]byte, want.Off-from)
	if _, err := f.ReadAt(buf, from); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if buf[len(buf)-1] != '\n' {
		return &VerifyError{Seq: want.Seq, Err: ErrEdited, What: "the head's offset is not at the end of a record (the log was edited)"}
	}
	start := bytes.LastIndexByte(buf[:len(buf)-1], '\n') + 1
	if start == 0 && from > 0 {
		return &VerifyError{Seq: want.Seq, Err: ErrMalformed, What: "no record ends at the head's offset"}
	}
	r, err := parseLine(buf[start:len(buf)-1], 0)
	if err != nil {
		return err
	}
	if r.Seq != want.Seq || r.Hash != want.Hash {
		return &VerifyError{Seq: r.Seq, Err: ErrEdited, What: fmt.Sprintf("the record at the head's offset is seq %d, not the seq %d its head recorded", r.Seq, want.Seq)}
	}
	return nil
}

// recoverFull reads the whole log (no checkpoint to start from): what Open did before heads
// carried one, and what a log from an older hwbridged needs once.
func recoverFull(path string, want head, headExists bool) (recovered, error) {
	segs, err := segments(path)
	if err != nil {
		return recovered{}, err
	}
	last := head{Hash: zeroHash}
	headSeen := want.Seq == 0
	var rec recovered
	for _, sg := range append(segs, segment{path: path}) {
		f, err := os.Open(sg.path)
		if errors.Is(err, os.ErrNotExist) && sg.path == path {
			rec = recovered{base: last.Seq + 1}
			break
		}
		if err != nil {
			return recovered{}, fmt.Errorf("audit: %w", err)
		}
		s, err := scanFile(f, 0, last, 0, func(r Record, _ int64) error {
			if r.Seq == want.Seq {
				if r.Hash != want.Hash {
					return &VerifyError{Seq: r.Seq, Err: ErrEdited, What: "the record differs from the one the head file recorded"}
				}
				headSeen = true
			}
			return nil
		})
		f.Close()
		if err != nil {
			return recovered{}, inFile(err, sg.path, path)
		}
		if s.torn && (sg.path != path || s.last.Seq < want.Seq) {
			return recovered{}, inFile(&VerifyError{Line: s.lines, Err: ErrMalformed, What: "a record the head covers is cut short"}, sg.path, path)
		}
		last = s.last
		rec = recovered{base: s.first, size: s.end, torn: s.torn}
		if s.first == 0 {
			rec.base = last.Seq + 1
		}
	}
	if !headExists && last.Seq > 1 {
		return recovered{}, &VerifyError{Err: ErrTruncated, What: "the head file is missing (it is created with the log): the log may have been cut"}
	}
	if !headSeen {
		return recovered{}, &VerifyError{Err: ErrTruncated, What: fmt.Sprintf("the log ends at seq %d but its head file says %d records were written", last.Seq, want.Seq)}
	}
	rec.last = last
	rec.nl, err = lacksNewline(path, rec.size)
	return rec, err
}

// lacksNewline reports whether the active file's good part ends without its newline.
func lacksNewline(path string, size int64) (bool, error) {
	if size == 0 {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	return b[0] != '\n', nil
}
