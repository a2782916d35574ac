package config

import (
	"strconv"
	"strings"
)

// lineIndex maps a key path to the line (from 1) where it is written.
//
// BurntSushi/toml keeps key positions private and keyed without array
// indices (every [[map-server.site]] shares one entry), so this file finds
// them itself with a small scanner. It runs only on documents the TOML
// parser has already accepted, so it can be simple, but it is written to
// stop and never panic on any input.
//
// Paths are built by joinKey: "map-server.site[1].eid-prefixes" is the
// eid-prefixes key of the second [[map-server.site]], and
// "map-server.site[1].eid-prefixes[2]" its third element. Table headers map
// the table's own path.
type lineIndex map[string]int

// joinKey appends key k to path parent, quoting k when it is not a bare
// TOML key.
func joinKey(parent, k string) string {
	if !isBareKey(k) {
		k = strconv.Quote(k)
	}
	if parent == "" {
		return k
	}
	return parent + "." + k
}

// indexPath returns the path of element i of the array at path.
func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBareChar(k[i]) {
			return false
		}
	}
	return true
}

func isBareChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// lineOf returns the line of path, or of its closest indexed ancestor, or 0.
func (ix lineIndex) lineOf(path string) int {
	for path != "" {
		if l, ok := ix[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

type lineScanner struct {
	src   string
	pos   int
	line  int
	index lineIndex
	// arrays counts the elements seen so far of each array of tables, by
	// its path (which includes the indices of enclosing arrays of tables).
	arrays map[string]int
}

// indexLines scans a TOML document and records the line of every key,
// table header and array element.
func indexLines(src string) lineIndex {
	s := &lineScanner{src: src, line: 1, index: lineIndex{}, arrays: map[string]int{}}
	ctx := ""
	for {
		s.skipSpaceNewlinesComments()
		if s.eof() {
			return s.index
		}
		start := s.pos
		if s.peek() == '[' {
			array := strings.HasPrefix(s.src[s.pos:], "[[")
			if array {
				s.pos += 2
			} else {
				s.pos++
			}
			line := s.line
			parts := s.key()
			ctx = s.resolveTable(parts, array, line)
		} else {
			line := s.line
			parts := s.key()
			s.skipSpace()
			if len(parts) > 0 && !s.eof() && s.peek() == '=' {
				s.pos++
				path := ctx
				for _, p := range parts {
					path = joinKey(path, p)
				}
				s.set(path, line)
				s.skipSpace()
				s.value(path)
			}
		}
		s.skipLine()
		if s.pos == start && !s.eof() {
			s.pos++ // guarantee progress on input the parser would refuse
		}
	}
}

// resolveTable returns the path of a [table] or [[array]] header with the
// given key parts, counting array elements, and records its line.
func (s *lineScanner) resolveTable(parts []string, array bool, line int) string {
	path := ""
	for i, part := range parts {
		path = joinKey(path, part)
		n, isArray := s.arrays[path]
		if i == len(parts)-1 && array {
			s.set(path, line)
			s.arrays[path] = n + 1
			path = indexPath(path, n)
			break
		}
		if isArray && n > 0 {
			path = indexPath(path, n-1)
		}
	}
	s.set(path, line)
	return path
}

func (s *lineScanner) set(path string, line int) {
	if _, ok := s.index[path]; !ok {
		s.index[path] = line
	}
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

func (s *lineScanner) peek() byte { return s.src[s.pos] }

func (s *lineScanner) skipSpace() {
	for !s.eof() && (s.peek() == ' ' || s.peek() == '\t') {
		s.pos++
	}
}

func (s *lineScanner) skipSpaceNewlinesComments() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			s.pos++
			s.line++
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *lineScanner) skipComment() {
	for !s.eof() && s.peek() != '\n' {
		s.pos++
	}
}

// skipLine skips the rest of the current line, including its newline.
func (s *lineScanner) skipLine() {
	s.skipComment()
	if !s.eof() {
		s.pos++
		s.line++
	}
}

// key reads a possibly dotted key (also the inside of a table header,
// including its closing brackets) and returns its parts.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		if s.eof() {
			return parts
		}
		switch c := s.peek(); {
		case c == '"':
			parts = append(parts, s.basicKey())
		case c == '\'':
			s.pos++
			start := s.pos
			for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
				s.pos++
			}
			parts = append(parts, s.src[start:s.pos])
			if !s.eof() && s.peek() == '\'' {
				s.pos++
			}
		case isBareChar(c):
			start := s.pos
			for !s.eof() && isBareChar(s.peek()) {
				s.pos++
			}
			parts = append(parts, s.src[start:s.pos])
		default:
			return parts
		}
		s.skipSpace()
		if s.eof() || s.peek() != '.' {
			for !s.eof() && s.peek() == ']' {
				s.pos++
			}
			return parts
		}
		s.pos++
	}
}

// basicKey reads a "quoted" key and returns it unescaped as far as Go's
// quoting rules agree with TOML's (they do for every key this package knows).
func (s *lineScanner) basicKey() string {
	start := s.pos
	s.pos++
	for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
		if s.peek() == '\\' && s.pos+1 < len(s.src) {
			s.pos++
		}
		s.pos++
	}
	if !s.eof() && s.peek() == '"' {
		s.pos++
	}
	raw := s.src[start:s.pos]
	if k, err := strconv.Unquote(raw); err == nil {
		return k
	}
	return strings.Trim(raw, `"`)
}

// value skips one value, recording the lines of array elements and of the
// keys of inline tables under path.
func (s *lineScanner) value(path string) {
	if s.eof() {
		return
	}
	switch c := s.peek(); c {
	case '"', '\'':
		s.str(c)
	case '[':
		s.pos++
		i := 0
		for {
			s.skipSpaceNewlinesComments()
			if s.eof() {
				return
			}
			switch s.peek() {
			case ']':
				s.pos++
				return
			case ',':
				s.pos++
				i++
				continue
			}
			elem := indexPath(path, i)
			s.set(elem, s.line)
			before := s.pos
			s.value(elem)
			if s.pos == before {
				s.pos++
			}
		}
	case '{':
		s.pos++
		for {
			s.skipSpaceNewlinesComments()
			if s.eof() {
				return
			}
			switch s.peek() {
			case '}':
				s.pos++
				return
			case ',':
				s.pos++
				continue
			}
			line := s.line
			before := s.pos
			parts := s.key()
			s.skipSpace()
			if len(parts) > 0 && !s.eof() && s.peek() == '=' {
				s.pos++
				k := path
				for _, p := range parts {
					k = joinKey(k, p)
				}
				s.set(k, line)
				s.skipSpace()
				s.value(k)
			}
			if s.pos == before {
				s.pos++
			}
		}
	default:
		// A scalar: number, boolean or date-time (which may hold a space).
		for !s.eof() {
			switch s.peek() {
			case ',', ']', '}', '#', '\n', '\r':
				return
			}
			s.pos++
		}
	}
}

// str skips a basic or literal string, single- or multi-line, counting
// newlines.
func (s *lineScanner) str(q byte) {
	triple := string([]byte{q, q, q})
	if strings.HasPrefix(s.src[s.pos:], triple) {
		s.pos += 3
		for !s.eof() {
			switch {
			case q == '"' && s.peek() == '\\':
				s.pos++
				if !s.eof() {
					if s.peek() == '\n' {
						s.line++
					}
					s.pos++
				}
			case strings.HasPrefix(s.src[s.pos:], triple):
				s.pos += 3
				// Up to two more quotes belong to the content.
				for n := 0; n < 2 && !s.eof() && s.peek() == q; n++ {
					s.pos++
				}
				return
			default:
				if s.peek() == '\n' {
					s.line++
				}
				s.pos++
			}
		}
		return
	}
	s.pos++
	for !s.eof() && s.peek() != '\n' {
		c := s.peek()
		if q == '"' && c == '\\' {
			s.pos += 2
			continue
		}
		s.pos++
		if c == q {
			return
		}
	}
}
