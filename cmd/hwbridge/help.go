package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/internal/buildinfo"
)

// globalFlags are the flags every command takes; a command's help lists only its own.
var globalFlags = []string{"device", "socket", "direct", "json", "config", "profile"}

func isHelpFlag(s string) bool { return s == "-h" || s == "--help" || s == "-help" }

// help answers hwbridge help [COMMAND…]: the overview, a group's commands, or one command's
// help (the command's own --help).
func (e *env) help(ctx context.Context, words []string) int {
	if len(words) == 0 {
		e.usage(e.stdout)
		return exitOK
	}
	if cmd, n, ok := findCommand(words); ok && n == len(words) {
		e.cmd = cmd
		return e.finish(cmd.run(ctx, e, []string{"--help"}))
	}
	if group := commandGroup(words[0]); len(group) > 0 && len(words) == 1 {
		e.groupHelp(e.stdout, words[0], group)
		return exitOK
	}
	return e.finish(unknownCommand(words))
}

// commandHelp prints one command's synopsis, summary and own flags.
func (e *env) commandHelp(w io.Writer, cmd command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: hwbridge %s\n\n%s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary)
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(globalFlags, f.Name) {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nflags:")
		for _, f := range own {
			name, usage := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if name != "" {
				line += " " + name
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && !strings.Contains(usage, "(default") {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "%s\n      %s\n", line, usage)
		}
	}
	fmt.Fprintln(w, "\nglobal flags (--device, --socket, --direct, --json, --config, --profile): hwbridge help")
}

// commandGroup lists the commands whose first word is word ("btc" → btc send, …).
func commandGroup(word string) []command {
	var out []command
	for _, c := range commands {
		if first, _, two := strings.Cut(c.name, " "); two && first == word {
			out = append(out, c)
		}
	}
	return out
}

func (e *env) groupHelp(w io.Writer, word string, group []command) {
	fmt.Fprintf(w, "hwbridge %s commands:\n", word)
	for _, c := range group {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nhwbridge help %s COMMAND shows a command's flags.\n", word)
}

// unknownCommand refuses a command line's words (the words before the first flag), with the
// nearest command names as suggestions.
func unknownCommand(args []string) error {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || len(words) == 2 {
			break
		}
		words = append(words, a)
	}
	name := strings.Join(words, " ")
	msg := fmt.Sprintf("unknown command %q", name)
	if s := suggest(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	} else {
		msg += " (hwbridge help lists the commands)"
	}
	return &usageError{msg}
}

// suggest returns the command names (and group words) within two edits of name.
func suggest(name string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range commands {
		cands := []string{c.name}
		if first, _, ok := strings.Cut(c.name, " "); ok {
			cands = append(cands, first)
		}
		for _, cand := range cands {
			if !seen[cand] && cand != name && editDistance(name, cand) <= 2 {
				seen[cand] = true
				out = append(out, strings.TrimSpace(cand))
			}
		}
	}
	return out
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// runVersion prints this build, and hwbridged's when it answers on its socket.
func runVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("version")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	out := struct {
		CLI    buildinfo.Info        `json:"hwbridge"`
		Daemon *daemon.VersionResult `json:"hwbridged,omitempty"`
	}{CLI: buildinfo.Read("hwbridge")}
	lines := []string{out.CLI.String()}
	if sock, err := e.daemonSocket(); err == nil && sock != "" && !e.direct {
		c := &daemon.Client{Socket: sock}
		if v, err := c.Version(ctx); err == nil {
			out.Daemon = &v
			lines = append(lines, v.Build.String()+" (api "+strings.Join(v.APIs, ",")+")")
		}
		c.Close()
	}
	return e.print(out, lines...)
}
