package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// completionWords are the command words: the first words, and the second words of each group.
func completionWords() (first []string, second map[string][]string) {
	second = map[string][]string{}
	seen := map[string]bool{"help": true}
	first = []string{"help"}
	for _, c := range commands {
		w, rest, two := strings.Cut(c.name, " ")
		if !seen[w] {
			seen[w] = true
			first = append(first, w)
		}
		if two {
			second[w] = append(second[w], rest)
		}
	}
	sort.Strings(first)
	return first, second
}

var completionFlags = []string{"--device", "--socket", "--direct", "--json", "--config", "--profile", "--help", "--version"}

// runCompletion prints a completion script for bash, zsh or fish: command words, then each
// group's commands, and the global flags.
func runCompletion(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("completion")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	first, second := completionWords()
	groups := make([]string, 0, len(second))
	for g := range second {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var b strings.Builder
	switch pos[0] {
	case "bash", "zsh":
		if pos[0] == "zsh" {
			b.WriteString("# hwbridge completion for zsh: eval \"$(hwbridge completion zsh)\" in ~/.zshrc\nautoload -U +X bashcompinit && bashcompinit\n")
		} else {
			b.WriteString("# hwbridge completion for bash: eval \"$(hwbridge completion bash)\" in ~/.bashrc\n")
		}
		b.WriteString("_hwbridge() {\n  local cur=${COMP_WORDS[COMP_CWORD]} i n=0 first=\"\"\n")
		b.WriteString("  for ((i = 1; i < COMP_CWORD; i++)); do\n    case ${COMP_WORDS[i]} in\n      --device|--socket|--config|--profile) ((i++)) ;;\n      -*) ;;\n      *) ((n++)); [ -z \"$first\" ] && first=${COMP_WORDS[i]} ;;\n    esac\n  done\n")
		fmt.Fprintf(&b, "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(completionFlags, " "))
		fmt.Fprintf(&b, "  if ((n == 0)); then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(first, " "))
		b.WriteString("  if ((n == 1)); then\n    case $first in\n")
		for _, g := range groups {
			fmt.Fprintf(&b, "      %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", g, strings.Join(second[g], " "))
		}
		fmt.Fprintf(&b, "      help) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.Join(first, " "))
		b.WriteString("    esac\n  fi\n}\ncomplete -o default -F _hwbridge hwbridge\n")
	case "fish":
		b.WriteString("# hwbridge completion for fish: hwbridge completion fish > ~/.config/fish/completions/hwbridge.fish\n")
		fmt.Fprintf(&b, "complete -c hwbridge -n __fish_use_subcommand -f -a %q\n", strings.Join(first, " "))
		for _, g := range groups {
			fmt.Fprintf(&b, "complete -c hwbridge -n '__fish_seen_subcommand_from %s' -f -a %q\n", g, strings.Join(second[g], " "))
		}
		for _, f := range completionFlags {
			fmt.Fprintf(&b, "complete -c hwbridge -l %s\n", strings.TrimPrefix(f, "--"))
		}
	default:
		return usagef("completion %q: use bash, zsh or fish", pos[0])
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}
