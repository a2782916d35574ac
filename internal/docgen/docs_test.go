package docgen

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/lispd/lispd/config"
)

// docFile is one document the docs tests read.
type docFile struct {
	path string // relative to the repository root
	md   []byte
}

// operatorDocs returns the operator documents: docs/*.md, the README and
// the Markdown files of deploy/.
func operatorDocs(t *testing.T) []docFile {
	t.Helper()
	var out []docFile
	for _, pattern := range []string{"docs/*.md", "README.md", "deploy/*.md", "deploy/*/*.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			md, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(repoRoot, f)
			out = append(out, docFile{path: rel, md: md})
		}
	}
	if len(out) < 6 {
		t.Fatalf("only %d documents found", len(out))
	}
	return out
}

// TestDocsIncludes checks that every code block with an include marker is
// the named file, byte for byte: the guide shows the files the deploy
// tests run.
func TestDocsIncludes(t *testing.T) {
	n := 0
	for _, d := range operatorDocs(t) {
		for _, b := range CodeBlocks(d.md) {
			if b.Include == "" {
				continue
			}
			n++
			want, err := os.ReadFile(filepath.Join(repoRoot, b.Include))
			if err != nil {
				t.Errorf("%s:%d: include: %v", d.path, b.Line, err)
				continue
			}
			if b.Text != string(want) {
				t.Errorf("%s:%d: the block is not %s as it is now; copy the file into the block again", d.path, b.Line, b.Include)
			}
		}
	}
	if n < 4 {
		t.Errorf("only %d included files", n)
	}
}

// TestDocsTOML checks the TOML blocks of the docs: a ```toml block is a
// whole config file that lispd accepts; a ```toml fragment block is a
// piece of one whose every table and key exists.
func TestDocsTOML(t *testing.T) {
	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[k.Path] = true
	}
	n := 0
	for _, d := range operatorDocs(t) {
		if d.path == filepath.Join("docs", "config.md") {
			continue // generated from the schema
		}
		for _, b := range CodeBlocks(d.md) {
			if b.Lang != "toml" {
				continue
			}
			n++
			if b.Include != "" {
				continue // the file's own tests load it
			}
			where := fmt.Sprintf("%s:%d", d.path, b.Line)
			if !strings.Contains(b.Info, "fragment") {
				if _, err := config.Parse([]byte(b.Text), where); err != nil {
					t.Errorf("%s: the config does not load (write ```toml fragment for a piece of a file):\n%v", where, err)
				}
				continue
			}
			var tree map[string]any
			if _, err := toml.Decode(b.Text, &tree); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			for _, p := range tomlPaths("", tree) {
				if !known[p] {
					t.Errorf("%s: %s is not a config key", where, p)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no TOML blocks found")
	}
}

// tomlPaths returns the key paths of a decoded TOML tree, without array
// indices, in the form config.Key.Path has.
func tomlPaths(prefix string, tree map[string]any) []string {
	var out []string
	for k, v := range tree {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, p)
		switch v := v.(type) {
		case map[string]any:
			out = append(out, tomlPaths(p, v)...)
		case []map[string]any:
			for _, e := range v {
				out = append(out, tomlPaths(p, e)...)
			}
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					out = append(out, tomlPaths(p, m)...)
				}
			}
		}
	}
	return out
}

// TestDocsLinks checks that every relative link of the docs points at a
// file or directory that exists, and every #anchor at a heading of the
// document it names.
func TestDocsLinks(t *testing.T) {
	anchors := map[string][]string{}
	n := 0
	for _, d := range operatorDocs(t) {
		for _, l := range Links(d.md) {
			if IsExternal(l.Target) {
				continue
			}
			n++
			file, anchor, _ := strings.Cut(l.Target, "#")
			target := filepath.Join(repoRoot, filepath.Dir(d.path), file)
			if file == "" {
				target = filepath.Join(repoRoot, d.path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s:%d: link to %s: %v", d.path, l.Line, l.Target, err)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: link %s: an anchor in a file that is not Markdown", d.path, l.Line, l.Target)
				continue
			}
			a, ok := anchors[target]
			if !ok {
				md, err := os.ReadFile(target)
				if err != nil {
					t.Fatal(err)
				}
				a = Anchors(md)
				anchors[target] = a
			}
			if !slices.Contains(a, anchor) {
				t.Errorf("%s:%d: link %s: no heading makes the anchor #%s", d.path, l.Line, l.Target, anchor)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d relative links found", n)
	}
}

// metricMention matches a metric name in the docs; shortCounter a counter
// as lispctl status shows it.
var (
	metricMention = regexp.MustCompile(`\blispd_[a-z0-9_<>]+_total\b`)
	shortCounter  = regexp.MustCompile("`((?:control|mapserver|itr|etr|dataplane|sync)_[a-z0-9_]+)`")
)

// TestDocsMetricNames checks that every metric or counter the docs name
// (lispd_x_total, or `x` as lispctl status shows it) is one that
// docs/metrics.md describes, so that renaming a counter cannot leave the
// troubleshooting guide pointing at nothing.
func TestDocsMetricNames(t *testing.T) {
	md, err := os.ReadFile(doc("metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ParseMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range operatorDocs(t) {
		if d.path == filepath.Join("docs", "metrics.md") {
			continue
		}
		for i, line := range strings.Split(string(d.md), "\n") {
			var names []string
			names = append(names, metricMention.FindAllString(line, -1)...)
			for _, m := range shortCounter.FindAllStringSubmatch(line, -1) {
				names = append(names, "lispd_"+m[1]+"_total")
			}
			for _, name := range names {
				n++
				if strings.Contains(name, "<") {
					found := false
					for _, r := range rows {
						if r.Name == name {
							found = true
						}
					}
					if !found {
						t.Errorf("%s:%d: %s is not a row of docs/metrics.md", d.path, i+1, name)
					}
					continue
				}
				if len(Undocumented(rows, []string{name})) > 0 {
					t.Errorf("%s:%d: %s is not described in docs/metrics.md", d.path, i+1, name)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d metric names found in the docs", n)
	}
}

// configKeyMention matches a config key path in a code span.
var configKeyMention = regexp.MustCompile("`([a-z][a-z-]*(?:\\.[a-z][a-z-]*)+)`")

// TestDocsConfigKeys checks that every config key the docs name in a code
// span (`daemon.log-level`) exists.
func TestDocsConfigKeys(t *testing.T) {
	known := map[string]bool{}
	tables := map[string]bool{}
	for _, k := range config.Keys() {
		known[k.Path] = true
		if k.Table == "" {
			tables[k.Path] = true
		}
	}
	n := 0
	for _, d := range operatorDocs(t) {
		for i, line := range strings.Split(string(d.md), "\n") {
			for _, m := range configKeyMention.FindAllStringSubmatch(line, -1) {
				first, _, _ := strings.Cut(m[1], ".")
				if !tables[first] {
					continue // a file name, a host name...
				}
				n++
				if !known[m[1]] {
					t.Errorf("%s:%d: %s is not a config key", d.path, i+1, m[1])
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d config keys named in the docs", n)
	}
}

// logRow matches a row of the log table of docs/deployment.md: the
// message in a code span, then its level.
var logRow = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*(debug|info|warn|error)\\s*\\|")

// TestDocsLogMessages checks that every message of the log table in
// docs/deployment.md is a string that lispd's code logs, so that the table
// cannot drift from the code.
func TestDocsLogMessages(t *testing.T) {
	md, err := os.ReadFile(doc("deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, dir := range []string{"daemon", "mapserver", "xtr", "cachesync", "dataplane", "api", "cmd/lispd"} {
		files, err := filepath.Glob(filepath.Join(repoRoot, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	code := src.String()
	n := 0
	eachProseLine(md, func(line int, text string) {
		m := logRow.FindStringSubmatch(strings.TrimSpace(text))
		if m == nil {
			return
		}
		n++
		if !strings.Contains(code, fmt.Sprintf("%q", m[1])) {
			t.Errorf("docs/deployment.md:%d: lispd never logs %q", line, m[1])
		}
	})
	if n < 15 {
		t.Errorf("only %d log messages in the table", n)
	}
}
