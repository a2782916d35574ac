package config

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a config file. Its text is
// "file:line: key: value: message", e.g.
//
//	lispd.toml:14: map-server.site[1].eid-prefixes: "10.1.0.0/33": invalid prefix
//
// The line is left out when unknown, the key for syntax errors, the value
// when the problem is not about one value.
type Error struct {
	// File is the config file name.
	File string
	// Line is the line the problem is on, from 1; 0 when there is none
	// (e.g. a required section that is missing entirely).
	Line int
	// Key is the key path, with array-of-tables indices counted from 0:
	// "map-server.site[1].eid-prefixes".
	Key string
	// Value is the offending value as TOML text ("\"10.1.0.0/33\"", "300"),
	// or empty.
	Value string
	// Msg says what is wrong.
	Msg string

	path string // the exact path located, e.g. an array element
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Value != "" {
		b.WriteString(e.Value)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns every *Error in err, which Parse and Load return joined;
// it returns nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// decoder turns the generic TOML tree into a Config, driven by the struct
// tags, and collects every error with its line.
type decoder struct {
	file  string
	src   string
	lines lineIndex
	errs  []*Error
	// decodeErrs is how many errors decoding found; validation errors on
	// those keys (or below them) would only repeat them and are dropped.
	decodeErrs int
	validating bool
}

func newDecoder(data []byte, name string) *decoder {
	return &decoder{file: name, src: string(data)}
}

// decode runs the whole pipeline: TOML syntax, schema (types, unknown keys,
// defaults, required keys), then semantic checks.
func (d *decoder) decode() (*Config, error) {
	var tree map[string]any
	if _, err := toml.Decode(d.src, &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, errors.Join(&Error{File: d.file, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message})
		}
		return nil, errors.Join(&Error{File: d.file, Msg: "syntax error: " + err.Error()})
	}
	d.lines = indexLines(d.src)
	cfg := &Config{}
	d.decodeStruct("", tree, reflect.ValueOf(cfg).Elem())
	d.decodeErrs = len(d.errs)
	d.validating = true
	validate(cfg, d)
	if len(d.errs) > 0 {
		return nil, d.err()
	}
	return cfg, nil
}

// err returns the collected errors sorted by line (unknown lines last) and
// joined.
func (d *decoder) err() error {
	slices.SortStableFunc(d.errs, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = math.MaxInt
		}
		if lb == 0 {
			lb = math.MaxInt
		}
		return cmp.Compare(la, lb)
	})
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// errorf records an error about key; linePath is the path whose line is
// reported (the key itself, or an array element of it).
func (d *decoder) errorf(key, linePath, value, format string, args ...any) {
	if d.validating {
		for _, e := range d.errs[:d.decodeErrs] {
			if under(key, e.path) || under(linePath, e.path) {
				return
			}
		}
	}
	d.errs = append(d.errs, &Error{
		File:  d.file,
		Line:  d.lines.lineOf(linePath),
		Key:   key,
		Value: value,
		Msg:   fmt.Sprintf(format, args...),
		path:  linePath,
	})
}

// under reports whether path is p or inside it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// fieldInfo is a struct field of the schema with its parsed tags.
type fieldInfo struct {
	index    int
	name     string
	doc      string
	def      string
	hasDef   bool
	required bool
	restart  bool
	optional bool
	port     int // default port for addresses; -1: port required
	id       string
}

// fieldsOf returns the schema fields of struct type t, in order.
func fieldsOf(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fi := fieldInfo{
			index:    i,
			name:     name,
			doc:      f.Tag.Get("doc"),
			required: f.Tag.Get("required") == "true",
			restart:  f.Tag.Get("reload") == "restart",
			optional: f.Tag.Get("optional") == "true",
			port:     -1,
			id:       f.Tag.Get("id"),
		}
		fi.def, fi.hasDef = f.Tag.Lookup("default")
		if p, err := strconv.Atoi(f.Tag.Get("port")); err == nil {
			fi.port = p
		}
		out = append(out, fi)
	}
	return out
}

// parseDefault decodes a default tag, written as a TOML value.
func parseDefault(def string) (any, error) {
	var m map[string]any
	if _, err := toml.Decode("v = "+def, &m); err != nil {
		return nil, err
	}
	return m["v"], nil
}

// decodeStruct fills struct rv from table m; path is the table's path.
func (d *decoder) decodeStruct(path string, m map[string]any, rv reflect.Value) {
	fields := fieldsOf(rv.Type())
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f.name] = true
		key := joinKey(path, f.name)
		fv := rv.Field(f.index)
		v, ok := m[f.name]
		switch {
		case ok:
			d.decodeValue(key, key, v, fv, f)
		case f.required:
			d.errorf(key, path, "", "required key is missing")
		case f.hasDef:
			dv, err := parseDefault(f.def)
			if err != nil {
				d.errorf(key, path, "", "internal error: bad default %s: %v", f.def, err)
				continue
			}
			d.decodeValue(key, key, dv, fv, f)
		case fv.Kind() == reflect.Struct:
			// A section that is always present: fill in its defaults.
			d.decodeStruct(key, map[string]any{}, fv)
		}
	}
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		key := joinKey(path, k)
		msg := "unknown key"
		if s := suggest(k, fields); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.errorf(key, key, "", "%s", msg)
	}
}

// suggest returns the known field name closest to k, if it is close.
func suggest(k string, fields []fieldInfo) string {
	best, bestDist := "", 3
	for _, f := range fields {
		if dist := editDistance(k, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	addrPortType  = reflect.TypeFor[netip.AddrPort]()
	logLevelType  = reflect.TypeFor[slog.Level]()
	unmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// tomlText renders a decoded TOML value for an error message.
func tomlText(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		return "array"
	case map[string]any, []map[string]any:
		return "table"
	}
	return fmt.Sprint(v)
}

// tomlKind names the TOML type of a decoded value.
func tomlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return "a date-time"
}

// decodeValue stores TOML value v into rv. key names the field in errors;
// linePath locates it (it differs from key for array elements).
func (d *decoder) decodeValue(key, linePath string, v any, rv reflect.Value, f fieldInfo) {
	t := rv.Type()
	wrongType := func(want string) {
		d.errorf(key, linePath, tomlText(v), "must be %s, not %s", want, tomlKind(v))
	}
	switch {
	case t == durationType:
		s, ok := v.(string)
		if !ok {
			wrongType(`a duration string such as "90s" or "3m"`)
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(key, linePath, tomlText(v), `invalid duration (write e.g. "500ms", "90s", "3m", "1h")`)
			return
		}
		if dur < 0 {
			d.errorf(key, linePath, tomlText(v), "must not be negative")
			return
		}
		rv.SetInt(int64(dur))
	case t == logLevelType:
		s, ok := v.(string)
		if !ok {
			wrongType("a string")
			return
		}
		l, err := ParseLogLevel(s)
		if err != nil {
			d.valueErr(key, linePath, v, err)
			return
		}
		rv.SetInt(int64(l))
	case t == addrPortType:
		s, ok := v.(string)
		if !ok {
			wrongType(`a string such as "192.0.2.1:4342"`)
			return
		}
		if s == "" && f.optional {
			rv.Set(reflect.ValueOf(netip.AddrPort{}))
			return
		}
		ap, err := ParseAddrPort(s, f.port)
		if err != nil {
			d.valueErr(key, linePath, v, err)
			return
		}
		rv.Set(reflect.ValueOf(ap))
	case reflect.PointerTo(t).Implements(unmarshalType):
		s, ok := v.(string)
		if !ok {
			wrongType("a string")
			return
		}
		if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.valueErr(key, linePath, v, err)
		}
	case t.Kind() == reflect.String:
		s, ok := v.(string)
		if !ok {
			wrongType("a string")
			return
		}
		rv.SetString(s)
	case t.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			wrongType("true or false")
			return
		}
		rv.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			wrongType("an integer")
			return
		}
		if rv.OverflowInt(n) {
			d.errorf(key, linePath, tomlText(v), "out of range")
			return
		}
		rv.SetInt(n)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		n, ok := v.(int64)
		if !ok {
			wrongType("an integer")
			return
		}
		if n < 0 || rv.OverflowUint(uint64(n)) {
			d.errorf(key, linePath, tomlText(v), "out of range 0..%d", maxUint(t))
			return
		}
		rv.SetUint(uint64(n))
	case t.Kind() == reflect.Slice:
		d.decodeSlice(key, linePath, v, rv, f)
	case t.Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			wrongType("a table")
			return
		}
		d.decodeStruct(linePath, m, rv)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			wrongType("a table")
			return
		}
		p := reflect.New(t.Elem())
		d.decodeStruct(linePath, m, p.Elem())
		rv.Set(p)
	default:
		d.errorf(key, linePath, "", "internal error: unsupported field type %s", t)
	}
}

func maxUint(t reflect.Type) uint64 {
	return math.MaxUint64 >> (64 - t.Bits())
}

// valueErr records a parse error of a value, using the short message of a
// *ValueError.
func (d *decoder) valueErr(key, linePath string, v any, err error) {
	msg := err.Error()
	var ve *ValueError
	if errors.As(err, &ve) {
		msg = ve.Msg
	}
	d.errorf(key, linePath, tomlText(v), "%s", msg)
}

// decodeSlice decodes a TOML array (or array of tables) into slice rv.
func (d *decoder) decodeSlice(key, linePath string, v any, rv reflect.Value, f fieldInfo) {
	var elems []any
	switch v := v.(type) {
	case []any:
		elems = v
	case []map[string]any:
		elems = make([]any, len(v))
		for i, m := range v {
			elems[i] = m
		}
	default:
		if _, table := v.(map[string]any); table && sectionType(rv.Type()) != nil {
			d.errorf(key, linePath, "", "must be an array of tables: write [[%s]] (two brackets) for each element", key)
			return
		}
		d.errorf(key, linePath, tomlText(v), "must be an array, not %s", tomlKind(v))
		return
	}
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	structs := rv.Type().Elem().Kind() == reflect.Struct && !reflect.PointerTo(rv.Type().Elem()).Implements(unmarshalType) &&
		rv.Type().Elem() != addrPortType
	for i, e := range elems {
		elemPath := indexPath(linePath, i)
		elemKey := key
		if structs {
			// Tables in an array are named by index: site[1].name.
			elemKey = elemPath
		}
		d.decodeValue(elemKey, elemPath, e, out.Index(i), f)
	}
	rv.Set(out)
}
