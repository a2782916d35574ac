package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestIndexLines(t *testing.T) {
	src := strings.Join([]string{
		`# comment with [brackets] and "quotes"`, // 1
		`top = 1`,                                // 2
		`[daemon]   # trailing comment`,          // 3
		`roles = ["ms",`,                         // 4
		`  # a comment inside an array ]`,        // 5
		`  "mr"]`,                                // 6
		`note = """`,                             // 7
		`[not-a-table]`,                          // 8
		`key = "x" """`,                          // 9
		`lit = '''a`,                             // 10
		`b''''`,                                  // 11
		`when = 1979-05-27 07:32:00Z`,            // 12
		`[ a . "b.c" ]`,                          // 13
		`d.e = {f = 1, g = [2, 3]}`,              // 14
		`[[s]]`,                                  // 15
		`name = "x"`,                             // 16
		`[[s.sub]]`,                              // 17
		`k = 'v'`,                                // 18
		`[[s]]`,                                  // 19
		`name = "y"  # "]`,                       // 20
		`[[s.sub]]`,                              // 21
		`[[s.sub]]`,                              // 22
		`k = "\"q\""`,                            // 23
		`[s.tbl]`,                                // 24
		`'lit key' = 1`,                          // 25
		"crlf = 1\r",                             // 26
		`arr = [ {x = 1},`,                       // 27
		`  {x = 2} ]`,                            // 28
	}, "\n")
	got := indexLines(src)
	want := lineIndex{
		"top":                2,
		"daemon":             3,
		"daemon.roles":       4,
		"daemon.roles[0]":    4,
		"daemon.roles[1]":    6,
		"daemon.note":        7,
		"daemon.lit":         10,
		"daemon.when":        12,
		`a."b.c"`:            13,
		`a."b.c".d.e`:        14,
		`a."b.c".d.e.f`:      14,
		`a."b.c".d.e.g`:      14,
		`a."b.c".d.e.g[0]`:   14,
		`a."b.c".d.e.g[1]`:   14,
		"s":                  15,
		"s[0]":               15,
		"s[0].name":          16,
		"s[0].sub":           17,
		"s[0].sub[0]":        17,
		"s[0].sub[0].k":      18,
		"s[1]":               19,
		"s[1].name":          20,
		"s[1].sub":           21,
		"s[1].sub[0]":        21,
		"s[1].sub[1]":        22,
		"s[1].sub[1].k":      23,
		"s[1].tbl":           24,
		`s[1].tbl."lit key"`: 25,
		"s[1].tbl.crlf":      26,
		"s[1].tbl.arr":       27,
		"s[1].tbl.arr[0]":    27,
		"s[1].tbl.arr[0].x":  27,
		"s[1].tbl.arr[1]":    28,
		"s[1].tbl.arr[1].x":  28,
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: line %d, want %d", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s: line %d", k, v)
			}
		}
	}
	if l := got.lineOf("s[1].sub[1].k[3]"); l != 23 {
		t.Errorf("lineOf falls back to %d, want 23", l)
	}
	if l := got.lineOf("nowhere.x"); l != 0 {
		t.Errorf("lineOf unknown = %d", l)
	}
}

func TestJoinKey(t *testing.T) {
	tests := []struct{ parent, k, want string }{
		{"", "a", "a"},
		{"a", "b-c_d", "a.b-c_d"},
		{"a", "b.c", `a."b.c"`},
		{"a", "", `a.""`},
		{"", "é", `"é"`},
	}
	for _, tt := range tests {
		if got := joinKey(tt.parent, tt.k); got != tt.want {
			t.Errorf("joinKey(%q, %q) = %q, want %q", tt.parent, tt.k, got, tt.want)
		}
	}
}

func FuzzIndexLines(f *testing.F) {
	f.Add("[a]\nb = [1,\n2]\n[[c]]\nd = '''\n'''\n")
	f.Add("x = \"\\")
	f.Add("[[")
	f.Add("a = {b = {c = [")
	f.Fuzz(func(t *testing.T, src string) {
		ix := indexLines(src)
		lines := strings.Count(src, "\n") + 1
		for k, l := range ix {
			if l < 1 || l > lines {
				t.Fatalf("%s: line %d outside 1..%d", k, l, lines)
			}
		}
	})
}
