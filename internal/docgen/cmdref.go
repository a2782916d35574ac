package docgen

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Commands returns root and every command below it that a user sees
// (not hidden, not cobra's help command), depth first in the order cobra
// lists them (by name).
func Commands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		out = append(out, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// CommandReference renders the reference of a command tree
// (docs/lispctl.md): the root's description, its global flags, an index of
// every command, then one section per command with its usage, description,
// examples, flags and subcommands. Text is taken from each command's Use,
// Short, Long, Example and flag usages, so the reference says exactly what
// --help says.
func CommandReference(root *cobra.Command) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cmds := Commands(root)
	name := root.Name()
	p("%s\n\n", generatedNotice)
	p("# %s reference\n\n", name)
	p("%s.\n\n", strings.TrimSuffix(root.Short, "."))
	writeLong(&b, root.Long)
	p("\n## Global flags\n\nEvery command accepts these:\n\n")
	writeFlags(&b, root.PersistentFlags())
	p("\n## Commands\n\n")
	p("| command | what it does |\n|---|---|\n")
	for _, c := range cmds[1:] {
		p("| [`%s`](#%s) | %s |\n", c.CommandPath(), Slug(c.CommandPath()), cell(c.Short))
	}
	for _, c := range cmds[1:] {
		p("\n## %s\n\n", c.CommandPath())
		p("%s.\n\n", strings.TrimSuffix(c.Short, "."))
		p("```\n%s\n```\n\n", strings.TrimSpace(c.UseLine()))
		writeLong(&b, c.Long)
		if ex := strings.TrimRight(c.Example, "\n "); ex != "" {
			p("\nExamples:\n\n```sh\n%s\n```\n", dedentBlock(ex))
		}
		if fs := c.NonInheritedFlags(); hasVisibleFlags(fs, true) {
			p("\nFlags:\n\n")
			writeFlags(&b, fs)
		}
		var subs []*cobra.Command
		for _, s := range c.Commands() {
			if !s.Hidden && s.Name() != "help" {
				subs = append(subs, s)
			}
		}
		if len(subs) > 0 {
			p("\nSubcommands:\n\n")
			for _, s := range subs {
				p("- [`%s`](#%s): %s\n", s.CommandPath(), Slug(s.CommandPath()), s.Short)
			}
		}
	}
	return tidy(b.Bytes())
}

// hasVisibleFlags reports whether fs has a flag to document (--help aside,
// when skipHelp).
func hasVisibleFlags(fs *pflag.FlagSet, skipHelp bool) bool {
	found := false
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && !(skipHelp && f.Name == "help") {
			found = true
		}
	})
	return found
}

// writeFlags writes fs as a table: flag, default, meaning. --help is left
// out: every command has it.
func writeFlags(b *bytes.Buffer, fs *pflag.FlagSet) {
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "--" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", " + name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if varname != "" {
			name += " " + varname
		}
		def := f.DefValue
		switch {
		case f.Value.Type() == "bool" && def == "false", def == "" || def == "[]":
			def = ""
		default:
			def = "`" + def + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", name, def, cell(usage))
	})
}

// writeLong writes a command's long description as Markdown: paragraphs
// stay paragraphs (one source line per line, so Markdown reflows them) and
// indented lines (lists of exit codes, columns) become preformatted
// blocks.
func writeLong(b *bytes.Buffer, long string) {
	long = strings.TrimSpace(long)
	if long == "" {
		return
	}
	lines := strings.Split(long, "\n")
	for i := 0; i < len(lines); {
		if strings.TrimSpace(lines[i]) == "" {
			i++
			continue
		}
		indented := strings.HasPrefix(lines[i], " ") || strings.HasPrefix(lines[i], "\t")
		j := i
		for j < len(lines) && strings.TrimSpace(lines[j]) != "" &&
			(strings.HasPrefix(lines[j], " ") || strings.HasPrefix(lines[j], "\t")) == indented {
			j++
		}
		if indented {
			b.WriteString("```\n" + dedentBlock(strings.Join(lines[i:j], "\n")) + "\n```\n\n")
		} else {
			for _, l := range lines[i:j] {
				b.WriteString(escapeText(l) + "\n")
			}
			b.WriteString("\n")
		}
		i = j
	}
}

// escapeText escapes the characters that Markdown would take for HTML or
// emphasis in plain text.
func escapeText(s string) string {
	r := strings.NewReplacer("<", `\<`, "*", `\*`, "_", `\_`)
	return r.Replace(s)
}

// dedentBlock removes the indentation common to the non-blank lines of s.
func dedentBlock(s string) string {
	lines := strings.Split(s, "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	if common <= 0 {
		return s
	}
	for i, l := range lines {
		if len(l) >= common {
			lines[i] = l[common:]
		} else {
			lines[i] = strings.TrimLeft(l, " \t")
		}
	}
	return strings.Join(lines, "\n")
}
