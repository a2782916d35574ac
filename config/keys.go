package config

import (
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// Key describes one key (or table) of the config file, as Keys lists it.
type Key struct {
	// Path is the dotted key path, without array indices:
	// "map-server.site.eid-prefixes". Tables have their own entry.
	Path string
	// Table is the TOML table the key is written in ("daemon",
	// "map-server.site"); empty for top-level tables.
	Table string
	// Name is the last part of Path.
	Name string
	// Type is the kind of value: "table", "optional table", "array of
	// tables", "string", "duration", "array of EID prefixes"...
	Type string
	// Doc says what the key means.
	Doc string
	// Default is the default as a TOML value ("'3m'", "3", "['local']"), or
	// empty for required keys and tables.
	Default string
	// Required is true for keys that must be present in their table.
	Required bool
	// RestartRequired is true when a change takes effect only after a
	// daemon restart (a reload reports it in Changes.RestartRequired).
	RestartRequired bool
}

// IsTable reports whether k is a table or array of tables rather than a
// value.
func (k Key) IsTable() bool { return strings.Contains(k.Type, "table") }

// Keys lists every table and key of the config file in file order, with its
// documentation, type and default, all taken from the Config struct tags.
func Keys() []Key {
	var out []Key
	walkKeys("", reflect.TypeFor[Config](), &out)
	return out
}

func walkKeys(table string, t reflect.Type, out *[]Key) {
	for _, f := range fieldsOf(t) {
		ft := t.Field(f.index).Type
		k := Key{
			Path:            joinKey(table, f.name),
			Table:           table,
			Name:            f.name,
			Type:            typeName(ft),
			Doc:             f.doc,
			Default:         f.def,
			Required:        f.required,
			RestartRequired: f.restart,
		}
		*out = append(*out, k)
		if st := sectionType(ft); st != nil {
			walkKeys(k.Path, st, out)
		}
	}
}

// sectionType returns the struct type of a table field (struct, pointer to
// struct or slice of structs), or nil for a value field.
func sectionType(t reflect.Type) reflect.Type {
	switch {
	case t.Kind() == reflect.Struct && !isValueType(t):
		return t
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		return t.Elem()
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !isValueType(t.Elem()):
		return t.Elem()
	}
	return nil
}

// isValueType reports whether struct type t is decoded from one value.
func isValueType(t reflect.Type) bool {
	return t == addrPortType || reflect.PointerTo(t).Implements(unmarshalType)
}

// typeNames names the value types of the schema for documentation.
var typeNames = map[reflect.Type]string{
	reflect.TypeFor[string]():         "string",
	reflect.TypeFor[Secret]():         "string (secret)",
	reflect.TypeFor[bool]():           "boolean",
	reflect.TypeFor[int]():            "integer",
	reflect.TypeFor[uint8]():          "integer 0..255",
	reflect.TypeFor[time.Duration]():  "duration",
	reflect.TypeFor[slog.Level]():     "log level",
	reflect.TypeFor[netip.AddrPort](): "address",
	reflect.TypeFor[Role]():           "role",
	reflect.TypeFor[LogFormat]():      "log format",
	reflect.TypeFor[Algorithm]():      "algorithm",
	reflect.TypeFor[EIDPrefix]():      "EID prefix",
	reflect.TypeFor[MapServerRef]():   "map-server",
	reflect.TypeFor[uint32]():         "integer",
	reflect.TypeFor[uint64]():         "integer",
	reflect.TypeFor[netip.Addr]():     "IP address",
	reflect.TypeFor[netip.Prefix]():   "prefix",
	reflect.TypeFor[MissPolicy]():     "miss policy",
	reflect.TypeFor[XTRID]():          "xTR-ID",
}

func typeName(t reflect.Type) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	switch {
	case t.Kind() == reflect.Struct:
		return "table"
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		return "optional table"
	case t.Kind() == reflect.Slice && sectionType(t) != nil:
		return "array of tables"
	case t.Kind() == reflect.Slice:
		return "array of " + plural(typeName(t.Elem()))
	}
	return t.String()
}

// plural makes the last word of a type name plural.
func plural(s string) string {
	if strings.HasSuffix(s, "s") || strings.HasSuffix(s, "x") {
		return s + "es"
	}
	return s + "s"
}
