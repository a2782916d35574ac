package docgen

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/lispd/lispd/config"
)

// valueTypes explains how to write each value type that config.Keys
// reports (Key.Type), for the reference's "Value types" table. A type
// "array of Xs" is explained by its element type X. When the config gains
// a value type, add it here: TestConfigValueTypesExplained fails until then.
var valueTypes = []struct{ name, how string }{
	{"string", `a quoted string: "lisp0"`},
	{"string (secret)", "a quoted string that lispd never prints (logs, `lispctl`, API); keep the file readable by root and lispd only (mode 0640)"},
	{"boolean", "`true` or `false`"},
	{"integer", "a number without quotes: `3`"},
	{"integer 0..255", "a number from 0 to 255 without quotes"},
	{"duration", `a quoted duration with a unit: "500ms", "90s", "3m", "1h30m", "24h"`},
	{"log level", `"debug", "info", "warn" or "error"`},
	{"log format", `"text" (key=value) or "json" (one object a line)`},
	{"role", `"itr", "etr", "ms" (Map-Server) or "mr" (Map-Resolver)`},
	{"algorithm", `"hmac-sha-1" (Algorithm ID 1; also "hmac-sha-1-96"), "hmac-sha-256" (2; also "hmac-sha-256-128") or "hmac-sha-256-hkdf" (3)`},
	{"address", `a quoted IP address with an optional port: "192.0.2.1", "192.0.2.1:4342", "[2001:db8::1]:4342"; the key says which port an address without one gets. Host names are not accepted`},
	{"IP address", `a quoted IP address: "192.0.2.1", "2001:db8::1"`},
	{"prefix", `a quoted address prefix: "10.1.0.0/24", "2001:db8:1::/48"`},
	{"EID prefix", `a quoted EID prefix, "10.1.0.0/16", or with a 24-bit LISP Instance ID, "iid:1000/10.1.0.0/16"; host bits must be zero`},
	{"map-server", `"local" (the Map-Server role of this lispd) or a quoted address, port 4342 when omitted`},
	{"miss policy", `"drop" or "queue"`},
	{"xTR-ID", `32 hexadecimal digits in quotes, or "" for a random one at each start`},
	{"table", "a `[name]` table header followed by its keys; it may be left out when every key has its default"},
	{"optional table", "a `[name]` table header followed by its keys; leave the table out when the role that needs it is off"},
	{"array of tables", "one `[[name]]` header per element, each followed by its keys (or, where the key says so, an array of inline tables `[{...}, {...}]`)"},
}

// arrayPrefix starts the type name of an array of values.
const arrayPrefix = "array of "

// explainType returns how to write a value of type name, and false when
// the type is not in valueTypes.
func explainType(name string) (string, bool) {
	for _, v := range valueTypes {
		if v.name == name {
			return v.how, true
		}
	}
	if base, ok := arrayElem(name); ok {
		return "an array of " + plural(base) + ": `[x, y]`", true
	}
	return "", false
}

// arrayElem returns the element type of an array type name ("array of
// roles" -> "role"), and false when name is not an array of a known type.
func arrayElem(name string) (string, bool) {
	elems, ok := strings.CutPrefix(name, arrayPrefix)
	if !ok {
		return "", false
	}
	for _, v := range valueTypes {
		if plural(v.name) == elems {
			return v.name, true
		}
	}
	return "", false
}

// plural makes the last word of a type name plural, as config does for
// the element types of arrays.
func plural(s string) string {
	if strings.HasSuffix(s, "s") || strings.HasSuffix(s, "x") {
		return s + "es"
	}
	return s + "s"
}

// UnexplainedTypes returns the value types of keys that the reference
// cannot explain (see valueTypes), sorted.
func UnexplainedTypes(keys []config.Key) []string {
	var out []string
	for _, k := range keys {
		if _, ok := explainType(k.Type); !ok && !slices.Contains(out, k.Type) {
			out = append(out, k.Type)
		}
	}
	slices.Sort(out)
	return out
}

// tableHeader returns the TOML header of a table key: [name] or [[name]].
func tableHeader(k config.Key) string {
	if k.Type == "array of tables" {
		return "[[" + k.Path + "]]"
	}
	return "[" + k.Path + "]"
}

// ConfigReference renders the config file reference (docs/config.md) from
// keys, which are config.Keys in file order: an index of the tables, the
// value types, then one section per table with one entry per key.
func ConfigReference(keys []config.Key) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%s\n\n", generatedNotice)
	p(`# lispd configuration reference

lispd reads one TOML file, ` + "`/etc/lispd/lispd.toml`" + ` unless ` + "`lispd -c FILE`" + ` names
another. This page lists every table and key the file may hold, generated from
the schema in ` + "`config/`" + `, so it is complete by construction.

- Keys left out take the default shown. Keys marked **required** have none.
- An unknown key is an error (a typo does not pass silently). Errors name the
  file, line and key: ` + "`lispd.toml:14: map-server.site[1].eid-prefixes: \"10.1.0.0/33\": invalid prefix`" + `.
- Check a file without starting anything: ` + "`lispd -c FILE -check`" + `.
- ` + "`lispctl reload`" + ` (or SIGHUP) applies a changed file without a restart; only the
  keys marked **restart** keep their old value until lispd restarts (the log
  names them). A file with errors is refused and the running config stays.
- Examples: [the getting-started configs](../deploy/getting-started/) and one
  file per role in [config/examples](../config/examples/).

`)
	p("## Tables\n\n")
	p("| table | what it configures |\n|---|---|\n")
	for _, k := range keys {
		if k.IsTable() {
			p("| [`%s`](#%s) | %s |\n", tableHeader(k), Slug("`"+tableHeader(k)+"`"), cell(firstSentence(k.Doc)))
		}
	}
	p("\n## Value types\n\n")
	p("| type | how to write it |\n|---|---|\n")
	used := map[string]bool{}
	for _, k := range keys {
		used[k.Type] = true
		if base, ok := arrayElem(k.Type); ok {
			used[base] = true
			used[arrayPrefix] = true
		}
	}
	for _, v := range valueTypes {
		if used[v.name] {
			p("| %s | %s |\n", v.name, cell(v.how))
		}
	}
	if used[arrayPrefix] {
		p("| array of *X* | values of type *X* in brackets, separated by commas: `[\"10.1.0.0/24\", \"10.2.0.0/24\"]`; `[]` is empty |\n")
	}
	for _, t := range UnexplainedTypes(keys) {
		p("| %s | (not yet explained) |\n", t)
	}
	for _, k := range keys {
		if k.IsTable() {
			p("\n## `%s`\n\n", tableHeader(k))
			p("%s\n\n", k.Doc)
			if k.Table != "" {
				p("Inside `%s`. ", tableHeaderOfPath(keys, k.Table))
			}
			p("Type: %s.\n", k.Type)
			continue
		}
		p("\n### `%s`\n\n", k.Path)
		def := "`" + displayDefault(k.Default) + "`"
		if k.Required {
			def = "none, **required**"
		}
		reload := "applied by a reload"
		if k.RestartRequired {
			reload = "**restart** (a reload keeps the old value)"
		}
		p("| type | default | on reload |\n|---|---|---|\n| %s | %s | %s |\n\n", k.Type, cell(def), reload)
		p("%s\n", k.Doc)
	}
	return tidy(b.Bytes())
}

// displayDefault writes a default the way config files usually do, with
// double-quoted strings: 'text' becomes "text".
func displayDefault(def string) string {
	if strings.ContainsAny(def, "\"\\") {
		return def
	}
	return strings.ReplaceAll(def, "'", "\"")
}

// tableHeaderOfPath returns the header of the table at path.
func tableHeaderOfPath(keys []config.Key, path string) string {
	for _, k := range keys {
		if k.Path == path && k.IsTable() {
			return tableHeader(k)
		}
	}
	return "[" + path + "]"
}

// firstSentence returns s up to and including its first ". ", or all of s.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
