package docgen

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/config"
)

const sampleMD = "# Title\n" +
	"\n" +
	"Text with a [link](other.md#part) and `[not](a-link.md)`.\n" +
	"<!-- include: deploy/x.toml -->\n" +
	"```toml\n" +
	"a = 1\n" +
	"```\n" +
	"\n" +
	"  ~~~~ sh extra\n" +
	"  lispctl status\n" +
	"    indented\n" +
	"  ~~~~\n" +
	"```\n" +
	"[in code](no.md)\n" +
	"## Title\n" +
	"```\n" +
	"## `daemon.roles` and more!\n" +
	"<!-- a comment\n" +
	"[hidden](x.md)\n" +
	"-->\n" +
	"####### not a heading\n" +
	"```toml fragment\n" +
	"unterminated\n"

func TestCodeBlocks(t *testing.T) {
	bs := CodeBlocks([]byte(sampleMD))
	want := []CodeBlock{
		{Lang: "toml", Info: "toml", Text: "a = 1\n", Line: 5, Include: "deploy/x.toml"},
		{Lang: "sh", Info: "sh extra", Text: "lispctl status\n  indented\n", Line: 9},
		{Text: "[in code](no.md)\n## Title\n", Line: 13},
		{Lang: "toml", Info: "toml fragment", Text: "unterminated\n\n", Line: 22},
	}
	if !slices.Equal(bs, want) {
		t.Errorf("CodeBlocks:\n got %+v\nwant %+v", bs, want)
	}
}

func TestLinksAndAnchors(t *testing.T) {
	ls := Links([]byte(sampleMD))
	if !slices.Equal(ls, []Link{{Target: "other.md#part", Line: 3}}) {
		t.Errorf("Links = %+v", ls)
	}
	as := Anchors([]byte(sampleMD))
	if !slices.Equal(as, []string{"title", "daemonroles-and-more"}) {
		t.Errorf("Anchors = %q", as)
	}
	if got := Anchors([]byte("# A\n## A\n### a\n")); !slices.Equal(got, []string{"a", "a-1", "a-2"}) {
		t.Errorf("repeated anchors = %q", got)
	}
	for target, want := range map[string]bool{
		"https://example.net": true, "mailto:x@y": true, "config.md": false, "../deploy/": false, "#x": false, "a:b/c": true, "ver 1:2": false,
	} {
		if IsExternal(target) != want {
			t.Errorf("IsExternal(%q) = %v", target, !want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	md := "| metric | meaning |\n|---|---|\n" +
		"| `lispd_a_total` | Counts a. |\n" +
		"| `lispd_x_<reason>_total` | By reason. |\n" +
		"```\n| `lispd_in_code_total` | no |\n```\n"
	rows, err := ParseMetrics([]byte(md))
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v %+v", err, rows)
	}
	if rows[0].Line != 3 || rows[0].Description != "Counts a." || rows[0].IsPattern() || !rows[1].IsPattern() {
		t.Errorf("%+v", rows)
	}
	names := []string{"lispd_a_total", "lispd_x_bad_afi_total", "lispd_b_total", "lispd_x__total"}
	if got := Undocumented(rows, names); !slices.Equal(got, []string{"lispd_b_total", "lispd_x__total"}) {
		t.Errorf("Undocumented = %q", got)
	}
	if got := Unused(rows, []string{"lispd_a_total"}); len(got) != 1 || got[0].Name != "lispd_x_<reason>_total" {
		t.Errorf("Unused = %+v", got)
	}
	for _, bad := range []string{
		"| `lispd_a_total` | one |\n| `lispd_a_total` | two |\n",
		"| `lispd_a_total` |  |\n",
		"| `lispd_<a_total` | x |\n",
	} {
		if _, err := ParseMetrics([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckGenerated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.md")
	if err := CheckGenerated(path, []byte("a\nb\n"), false); err == nil || !strings.Contains(err.Error(), UpdateCommand) {
		t.Errorf("missing file: %v", err)
	}
	if err := CheckGenerated(path, []byte("a\nb\n"), true); err != nil {
		t.Fatal(err)
	}
	if err := CheckGenerated(path, []byte("a\nb\n"), false); err != nil {
		t.Errorf("same content: %v", err)
	}
	err := CheckGenerated(path, []byte("a\nc\n"), false)
	if err == nil || !strings.Contains(err.Error(), `line 2 is "b", the code says "c"`) || !strings.Contains(err.Error(), "is stale: run "+UpdateCommand) {
		t.Errorf("stale: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a\nb\n" {
		t.Errorf("a check wrote the file: %q", b)
	}
}

func TestConfigReferenceShape(t *testing.T) {
	keys := []config.Key{
		{Path: "t", Name: "t", Type: "table", Doc: "A table. More."},
		{Path: "t.k", Table: "t", Name: "k", Type: "duration", Default: "'3m'", Doc: "A <key> | with a bar."},
		{Path: "t.r", Table: "t", Name: "r", Type: "array of roles", Required: true, RestartRequired: true, Doc: "Roles."},
		{Path: "t.s", Table: "t", Name: "s", Type: "array of tables", Doc: "Elements."},
		{Path: "t.s.x", Table: "t.s", Name: "x", Type: "frob", Default: "1", Doc: "X."},
	}
	md := string(ConfigReference(keys))
	for _, want := range []string{
		generatedNotice,
		"| [`[t]`](#t) | A table. |",
		"## `[t]`\n\nA table. More.\n",
		"### `t.k`\n\n| type | default | on reload |\n|---|---|---|\n| duration | `\"3m\"` | applied by a reload |\n\nA <key> | with a bar.\n",
		"| array of roles | none, **required** | **restart** (a reload keeps the old value) |",
		"## `[[t.s]]`",
		"Inside `[t]`.",
		"| frob | (not yet explained) |",
		"| array of *X* |",
		"| role | ",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("reference lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "\n\n\n") || !strings.HasSuffix(md, ".\n") {
		t.Error("blank lines not tidied")
	}
	if !slices.Contains(Anchors([]byte(md)), "ts") || !slices.Contains(Anchors([]byte(md)), "tsx") {
		t.Errorf("anchors %q", Anchors([]byte(md)))
	}
}

func TestCommandReference(t *testing.T) {
	root := &cobra.Command{Use: "tool", Short: "Do things.", Long: "Long text with <angle> and *stars*.\n\nCodes:\n  0  ok\n  1  not"}
	root.PersistentFlags().String("socket", "/run/x.sock", "the `PATH` of the socket")
	noun := &cobra.Command{Use: "thing", Short: "Things", Long: "About things.", Example: "  tool thing show", RunE: func(*cobra.Command, []string) error { return nil }}
	show := &cobra.Command{Use: "show [NAME]", Short: "Show a thing", Long: "Shows.", Example: "  tool thing show a\n  tool thing show --all", RunE: func(*cobra.Command, []string) error { return nil }}
	show.Flags().Bool("all", false, "every thing")
	show.Flags().Int("count", 3, "how many")
	hidden := &cobra.Command{Use: "secret", Hidden: true, RunE: func(*cobra.Command, []string) error { return nil }}
	noun.AddCommand(show)
	root.AddCommand(noun, hidden)

	cmds := Commands(root)
	var paths []string
	for _, c := range cmds {
		paths = append(paths, c.CommandPath())
	}
	if !slices.Equal(paths, []string{"tool", "tool thing", "tool thing show"}) {
		t.Errorf("Commands = %q", paths)
	}
	md := string(CommandReference(root))
	for _, want := range []string{
		"# tool reference\n\nDo things.\n\nLong text with \\<angle> and \\*stars\\*.\n\nCodes:\n\n```\n0  ok\n1  not\n```\n",
		"| `--socket PATH` | `/run/x.sock` | the PATH of the socket |",
		"| [`tool thing show`](#tool-thing-show) | Show a thing |",
		"## tool thing show\n\nShow a thing.\n\n```\ntool thing show [NAME] [flags]\n```\n\nShows.\n\nExamples:\n\n```sh\ntool thing show a\ntool thing show --all\n```\n\nFlags:\n\n| flag | default | meaning |\n|---|---|---|\n| `--all` |  | every thing |\n| `--count int` | `3` | how many |\n",
		"- [`tool thing show`](#tool-thing-show): Show a thing\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("reference lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "secret") {
		t.Error("a hidden command is documented")
	}
	if !bytes.HasPrefix([]byte(md), []byte(generatedNotice)) {
		t.Error("no generated notice")
	}
}
