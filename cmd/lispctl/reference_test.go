package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/docgen"
)

// repoRoot is the repository's root, relative to this package.
const repoRoot = "../.."

// referenceRoot is the command tree as the reference documents it: with
// an empty environment, so that $LISPD_SOCKET does not change the
// defaults shown.
func referenceRoot() *cobra.Command {
	return buildRoot(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }, now: time.Now})
}

// TestLispctlReference checks docs/lispctl.md against the command tree;
// -update (shared with the decode golden files) rewrites it.
func TestLispctlReference(t *testing.T) {
	root := referenceRoot()
	got := docgen.CommandReference(root)
	if err := docgen.CheckGenerated(filepath.Join(repoRoot, "docs", "lispctl.md"), got, *updateDecodeGolden); err != nil {
		t.Fatal(err)
	}
	for _, c := range docgen.Commands(root) {
		if !bytes.Contains(got, []byte("\n## "+c.CommandPath()+"\n")) && c != root {
			t.Errorf("the reference has no section for %q", c.CommandPath())
		}
	}
}

// TestExamplesRun checks that every line of every command's Example is a
// valid lispctl command line: the command exists and takes the flags and
// the number of arguments given.
func TestExamplesRun(t *testing.T) {
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	n := 0
	for _, c := range docgen.Commands(root) {
		for _, line := range strings.Split(c.Example, "\n") {
			for _, args := range lispctlInvocations(line) {
				n++
				if err := checkCommandLine(args); err != nil {
					t.Errorf("%s: example %q: %v", c.CommandPath(), strings.TrimSpace(line), err)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d example command lines found", n)
	}
}

// TestDocsCommandLines checks every lispctl command line in the code blocks
// of the operator docs, the README and deploy/ the same way, so that an
// operator who copies one gets a command that exists with flags that
// exist. The generated reference is left out: its usage lines hold
// placeholders, and its examples are checked by TestExamplesRun.
func TestDocsCommandLines(t *testing.T) {
	var files []string
	for _, pattern := range []string{"docs/*.md", "README.md", "deploy/*.md", "deploy/*/*.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "lispctl.md" {
			continue
		}
		md, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range docgen.CodeBlocks(md) {
			if !slices.Contains([]string{"", "sh", "shell", "console", "bash"}, b.Lang) {
				continue
			}
			for i, line := range strings.Split(b.Text, "\n") {
				for _, args := range lispctlInvocations(line) {
					n++
					if err := checkCommandLine(args); err != nil {
						t.Errorf("%s:%d: %q: %v", f, b.Line+1+i, strings.TrimSpace(line), err)
					}
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d lispctl command lines found in the docs", n)
	}
}

// checkCommandLine parses args as lispctl would, without running the
// command: it finds the command, parses its flags and checks the number
// of arguments.
func checkCommandLine(args []string) error {
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if cmd.Args != nil {
		return cmd.ValidateArgs(cmd.Flags().Args())
	}
	if cmd.HasSubCommands() && len(cmd.Flags().Args()) > 0 {
		return usageErrorf("unknown command %q for %q", cmd.Flags().Args()[0], cmd.CommandPath())
	}
	return nil
}

// lispctlInvocations returns the arguments of each lispctl command on a
// shell line: the words after a "lispctl" in command position (first on
// the line or after an operator, possibly behind sudo, env, VAR=value...),
// up to the next shell operator. Lines without one give nothing.
func lispctlInvocations(line string) [][]string {
	words := shellWords(line)
	var out [][]string
	atCmd := true
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case isShellOperator(w) || w == "(":
			atCmd = true
			continue
		case !atCmd:
			continue
		case commandPrefixes[w]:
			// sudo -u user, watch -n 1...: skip the prefix's options.
			for i+1 < len(words) && strings.HasPrefix(words[i+1], "-") {
				i++
				if words[i] == "-u" || words[i] == "-g" || words[i] == "-n" {
					i++
				}
			}
			continue
		case strings.Contains(w, "=") && !strings.HasPrefix(w, "-"):
			continue // VAR=value before the command
		case w != "lispctl" && !strings.HasSuffix(w, "/lispctl"):
			atCmd = false
			continue
		}
		var args []string
		for i++; i < len(words) && !isShellOperator(words[i]); i++ {
			args = append(args, words[i])
		}
		out = append(out, args)
		atCmd = true
	}
	return out
}

// commandPrefixes are the commands that run the command after them, and
// the "$" of a prompt.
var commandPrefixes = map[string]bool{"$": true, "sudo": true, "env": true, "time": true, "exec": true, "command": true, "watch": true, "nice": true}

// isShellOperator reports whether w ends a simple command.
func isShellOperator(w string) bool {
	switch w {
	case "|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", ")", "#":
		return true
	}
	return strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") || strings.HasPrefix(w, "#")
}

// shellWords splits a shell line into words: quotes group and are removed,
// operators are words of their own, "$(" and "<(" open a nested command
// whose words follow.
func shellWords(line string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '\'' || c == '"':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				j = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case (c == '$' || c == '<') && i+1 < len(line) && line[i+1] == '(':
			flush()
			out = append(out, "(") // a nested command starts
			i++
		case c == '|' || c == ';' || c == '&' || c == ')' || c == '>':
			op := string(c)
			if c == '>' && inWord && (cur.String() == "1" || cur.String() == "2") {
				op = cur.String() + op // a redirection of stdout or stderr
				cur.Reset()
				inWord = false
			}
			flush()
			if i+1 < len(line) && (line[i+1] == c || c == '>' && line[i+1] == '&') {
				op += string(line[i+1])
				i++
			}
			out = append(out, op)
		case c == '#' && !inWord:
			return out
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return out
}

func TestShellWords(t *testing.T) {
	for line, want := range map[string][][]string{
		`  lispctl status --json | jq .counters`:                       {{"status", "--json"}},
		`$ sudo lispctl map-cache show 10.2.0.1`:                       {{"map-cache", "show", "10.2.0.1"}},
		`source <(lispctl completion bash)`:                            {{"completion", "bash"}},
		`lispctl etr show --check && echo registered`:                  {{"etr", "show", "--check"}},
		`lispctl decode --hex '10 00' --json 2>/dev/null`:              {{"decode", "--hex", "10 00", "--json"}},
		`x=$(lispctl sync keygen /etc/lispd/sync.key); lispctl reload`: {{"sync", "keygen", "/etc/lispd/sync.key"}, {"reload"}},
		`lispctl status # the daemon's view`:                           {{"status"}},
		`ping -c 3 10.2.0.1`:                                           nil,
		`sudo install -m 0755 lispd lispctl /usr/local/bin/`:           nil,
		`LISPD_SOCKET=/tmp/s sudo -u op lispctl status`:                {{"status"}},
		`watch -n 1 lispctl sync peers`:                                {{"sync", "peers"}},
		`echo x | /usr/local/bin/lispctl decode --pcap -`:              {{"decode", "--pcap", "-"}},
	} {
		if got := lispctlInvocations(line); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
	// checkCommandLine catches what an operator would trip over.
	for _, bad := range [][]string{{"map-cache", "flush"}, {"status", "--frob"}, {"status", "extra"}, {"frobnicate"}} {
		if checkCommandLine(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range [][]string{{"status", "--json"}, {"lookup", "10.1.1.1", "--mr", "192.0.2.1", "--timeout", "5s"}, {"map-cache"}} {
		if err := checkCommandLine(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

// TestDecodeSampleReference decodes each capture of docs/samples with lispctl decode
// and compares the output with the .txt file beside it, which the
// troubleshooting guide includes: the sample it explains is what lispctl
// prints today. -update rewrites the .txt files.
func TestDecodeSampleReference(t *testing.T) {
	caps, err := filepath.Glob(filepath.Join(repoRoot, "docs", "samples", "*.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) == 0 {
		t.Fatal("no sample captures in docs/samples")
	}
	for _, c := range caps {
		r := runCLI(t, nil, "decode", "--pcap", c)
		if r.code != 0 {
			t.Errorf("%s: exit %d: %s", c, r.code, r.stderr)
			continue
		}
		txt := strings.TrimSuffix(c, ".pcapng") + ".txt"
		if err := docgen.CheckGenerated(txt, []byte(r.stdout), *updateDecodeGolden); err != nil {
			t.Error(err)
		}
	}
}
