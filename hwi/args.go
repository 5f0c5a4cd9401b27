package hwi

import (
	"bufio"
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// parseInterspersed parses flags that may come before or after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// maxStdinArgs bounds what --stdin reads (a large PSBT is a few hundred kB of base64).
const maxStdinArgs = 16 << 20

// readStdinArgs reads lines until an empty line or EOF and splits each as a POSIX shell
// would (HWI uses shlex.split).
func readStdinArgs(r io.Reader) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxStdinArgs))
	sc.Buffer(make([]byte, 0, 64<<10), maxStdinArgs)
	var out []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		words, err := shellSplit(line)
		if err != nil {
			return nil, err
		}
		out = append(out, words...)
	}
	return out, sc.Err()
}

// shellSplit splits a line into words with POSIX shell quoting: single quotes, double
// quotes (with \ escaping \ " $ ` and newline) and backslash escapes.
func shellSplit(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("no closing quotation")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\\\"$`\n", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("no closing quotation")
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parsePath parses a BIP-32 path as HWI's parse_path: an optional leading "m", steps
// hardened by a trailing h, H or ' (or a leading -).
func parsePath(p string) (hdpath.Path, error) {
	if p == "" {
		return hdpath.Path{}, nil
	}
	parts := strings.Split(p, "/")
	if parts[0] == "m" {
		parts = parts[1:]
	}
	out := hdpath.Path{}
	for _, x := range parts {
		hard := false
		switch {
		case strings.HasPrefix(x, "-"):
			hard, x = true, x[1:]
		case strings.HasSuffix(x, "h"), strings.HasSuffix(x, "H"), strings.HasSuffix(x, "'"):
			hard, x = true, x[:len(x)-1]
		}
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil || n >= uint64(hdpath.Hardened) {
			return nil, errorf(CodeBadArgument, "Invalid BIP32 path %q", p)
		}
		if hard {
			n += uint64(hdpath.Hardened)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}
