package docgen

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// CodeBlock is one fenced code block of a Markdown document.
type CodeBlock struct {
	// Lang is the info string's first word ("toml", "sh"), or "".
	Lang string
	// Info is the whole info string ("toml fragment").
	Info string
	// Text is the block's content, with the fence's indentation removed
	// and a final newline after each line.
	Text string
	// Line is the line of the opening fence, from 1.
	Line int
	// Include is the path named by an include marker on the line before
	// the fence, `<!-- include: deploy/lispd.service -->`: the block must
	// be that file's content exactly. Empty when there is no marker.
	Include string
}

// includeMarker matches the include marker comment.
var includeMarker = regexp.MustCompile(`^\s*<!--\s*include:\s*(\S+)\s*-->\s*$`)

// CodeBlocks returns the fenced code blocks (``` or ~~~) of md in order. A
// block that is not closed runs to the end of the document.
func CodeBlocks(md []byte) []CodeBlock {
	lines := strings.Split(string(md), "\n")
	var out []CodeBlock
	for i := 0; i < len(lines); i++ {
		indent, fence, info, ok := openFence(lines[i])
		if !ok {
			continue
		}
		b := CodeBlock{Line: i + 1, Info: info}
		if f := strings.Fields(info); len(f) > 0 {
			b.Lang = f[0]
		}
		if i > 0 {
			if m := includeMarker.FindStringSubmatch(lines[i-1]); m != nil {
				b.Include = m[1]
			}
		}
		var text strings.Builder
		for i++; i < len(lines); i++ {
			if closesFence(lines[i], fence) {
				break
			}
			text.WriteString(dedent(lines[i], indent))
			text.WriteByte('\n')
		}
		b.Text = text.String()
		out = append(out, b)
	}
	return out
}

// openFence reports whether line opens a fenced code block, with the
// fence's indentation, the fence itself (``` or ~~~, possibly longer) and
// the info string.
func openFence(line string) (indent int, fence, info string, ok bool) {
	trimmed := strings.TrimLeft(line, " ")
	indent = len(line) - len(trimmed)
	for _, c := range []byte{'`', '~'} {
		n := 0
		for n < len(trimmed) && trimmed[n] == c {
			n++
		}
		if n >= 3 {
			info = strings.TrimSpace(trimmed[n:])
			if c == '`' && strings.Contains(info, "`") {
				return 0, "", "", false // inline code, not a fence
			}
			return indent, trimmed[:n], info, true
		}
	}
	return 0, "", "", false
}

// closesFence reports whether line closes a block opened by fence.
func closesFence(line, fence string) bool {
	t := strings.TrimSpace(line)
	if len(t) < len(fence) || t[0] != fence[0] {
		return false
	}
	return strings.Trim(t, fence[:1]) == ""
}

// dedent removes up to n leading spaces.
func dedent(line string, n int) string {
	i := 0
	for i < n && i < len(line) && line[i] == ' ' {
		i++
	}
	return line[i:]
}

// Link is one inline link or image of a Markdown document.
type Link struct {
	// Target is the link's destination as written ("config.md#daemon").
	Target string
	// Line is the line the link is on, from 1.
	Line int
}

// linkPattern matches inline links and images: [text](target) and
// [text](target "title").
var linkPattern = regexp.MustCompile(`\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)

// Links returns the inline links of md outside code blocks and code spans,
// in order.
func Links(md []byte) []Link {
	var out []Link
	eachProseLine(md, func(n int, line string) {
		for _, m := range linkPattern.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			out = append(out, Link{Target: m[1], Line: n})
		}
	})
	return out
}

// IsExternal reports whether a link target leaves the repository (a URL
// with a scheme, or a mail address).
func IsExternal(target string) bool {
	i := strings.Index(target, ":")
	if i <= 0 {
		return false
	}
	for _, c := range target[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Anchors returns the anchors of md's headings as GitHub makes them: the
// heading text in lower case, without punctuation other than hyphens and
// underscores, spaces turned into hyphens; a repeated anchor gets "-1",
// "-2"... appended.
func Anchors(md []byte) []string {
	seen := map[string]int{}
	var out []string
	eachProseLine(md, func(_ int, line string) {
		t := strings.TrimLeft(line, " ")
		if len(line)-len(t) > 3 || !strings.HasPrefix(t, "#") {
			return
		}
		level := len(t) - len(strings.TrimLeft(t, "#"))
		if level > 6 || (len(t) > level && t[level] != ' ') {
			return
		}
		text := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(t[level:]), "#"))
		a := Slug(text)
		if n, dup := seen[a]; dup {
			seen[a] = n + 1
			a += "-" + strconv.Itoa(n+1)
		} else {
			seen[a] = 0
		}
		out = append(out, a)
	})
	return out
}

// Slug is the anchor GitHub gives a heading with the given text (without
// the suffix of repeated headings).
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// eachProseLine calls fn with the number and text of each line of md that
// is outside fenced code blocks and HTML comments.
func eachProseLine(md []byte, fn func(n int, line string)) {
	lines := strings.Split(string(md), "\n")
	fence := ""
	comment := false
	for i, line := range lines {
		switch {
		case fence != "":
			if closesFence(line, fence) {
				fence = ""
			}
			continue
		case comment:
			if strings.Contains(line, "-->") {
				comment = false
			}
			continue
		}
		if _, f, _, ok := openFence(line); ok {
			fence = f
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "<!--") {
			comment = !strings.Contains(line, "-->")
			continue
		}
		fn(i+1, line)
	}
}

// stripCodeSpans blanks out `code spans` of a line, so that text inside
// them is not read as links.
func stripCodeSpans(line string) string {
	b := []byte(line)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		end := strings.Index(string(b[i+n:]), strings.Repeat("`", n))
		if end < 0 {
			break
		}
		for j := i; j < i+n+end+n; j++ {
			b[j] = ' '
		}
		i += n + end + n
	}
	return string(b)
}
