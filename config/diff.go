package config

import (
	"reflect"
	"slices"
	"strings"
)

// TableDiff lists the elements of an array of tables (such as the sites)
// that a reload adds, removes or changes, each by its id (the site name),
// sorted.
type TableDiff struct {
	Added   []string // in the new config only
	Removed []string // in the old config only
	Changed []string // in both, with different values
}

// Empty reports whether nothing changed.
func (t TableDiff) Empty() bool {
	return len(t.Added) == 0 && len(t.Removed) == 0 && len(t.Changed) == 0
}

// Changes is what a reload must apply to go from one config to the next.
type Changes struct {
	// Sites are the [[map-server.site]] tables added, removed or changed,
	// by name.
	Sites TableDiff
	// ListenersChanged is true when control.listen changed.
	ListenersChanged bool
	// MetricsListenChanged is true when daemon.metrics-listen changed.
	MetricsListenChanged bool
	// LogLevelChanged is true when daemon.log-level changed.
	LogLevelChanged bool
	// Changed lists, in file order, every key that changed and can be
	// applied at run time; a table that appeared or disappeared is listed
	// by its own path ("map-resolver"). Arrays of tables with an id are
	// in Tables instead.
	Changed []string
	// RestartRequired lists the keys that changed but only take effect
	// after a restart (daemon.roles, daemon.api-socket, ...).
	RestartRequired []string
	// Tables holds the diff of every array of tables that has an id,
	// by path; Sites is Tables["map-server.site"].
	Tables map[string]TableDiff
}

// Empty reports whether the two configs are the same.
func (c Changes) Empty() bool {
	for _, t := range c.Tables {
		if !t.Empty() {
			return false
		}
	}
	return len(c.Changed) == 0 && len(c.RestartRequired) == 0
}

// String summarizes the changes on one line, for logs.
func (c Changes) String() string {
	if c.Empty() {
		return "no changes"
	}
	var parts []string
	add := func(what string, list []string) {
		if len(list) > 0 {
			parts = append(parts, what+" "+strings.Join(list, ","))
		}
	}
	paths := make([]string, 0, len(c.Tables))
	for p := range c.Tables {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		t := c.Tables[p]
		add(p+" added", t.Added)
		add(p+" removed", t.Removed)
		add(p+" changed", t.Changed)
	}
	add("changed", c.Changed)
	add("restart required for", c.RestartRequired)
	return strings.Join(parts, "; ")
}

// Diff compares two configs and returns what a reload from old to new must
// apply, and what it cannot. A nil config counts as one with no keys set.
func Diff(old, new *Config) Changes {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	ch := Changes{Tables: map[string]TableDiff{}}
	diffStruct("", reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem(), &ch)
	ch.Sites = ch.Tables["map-server.site"]
	ch.ListenersChanged = slices.Contains(ch.Changed, "control.listen")
	ch.MetricsListenChanged = slices.Contains(ch.Changed, "daemon.metrics-listen")
	ch.LogLevelChanged = slices.Contains(ch.Changed, "daemon.log-level")
	return ch
}

func (c *Changes) record(path string, restart bool) {
	if restart {
		c.RestartRequired = append(c.RestartRequired, path)
	} else {
		c.Changed = append(c.Changed, path)
	}
}

func diffStruct(path string, old, new reflect.Value, ch *Changes) {
	for _, f := range fieldsOf(old.Type()) {
		key := joinKey(path, f.name)
		ov, nv := old.Field(f.index), new.Field(f.index)
		st := sectionType(ov.Type())
		switch {
		case st == nil:
			if !reflect.DeepEqual(ov.Interface(), nv.Interface()) {
				ch.record(key, f.restart)
			}
		case ov.Kind() == reflect.Pointer:
			if ov.IsNil() != nv.IsNil() {
				ch.record(key, f.restart)
			}
			diffStruct(key, elemOrZero(ov, st), elemOrZero(nv, st), ch)
		case ov.Kind() == reflect.Struct:
			diffStruct(key, ov, nv, ch)
		case f.id != "":
			if t := diffTable(ov, nv, f.id); !t.Empty() {
				ch.Tables[key] = t
			}
		default:
			if !reflect.DeepEqual(ov.Interface(), nv.Interface()) {
				ch.record(key, f.restart)
			}
		}
	}
}

func elemOrZero(v reflect.Value, t reflect.Type) reflect.Value {
	if v.IsNil() {
		return reflect.New(t).Elem()
	}
	return v.Elem()
}

// diffTable compares two slices of structs whose elements are named by the
// field with TOML key id.
func diffTable(old, new reflect.Value, id string) TableDiff {
	idField := -1
	for _, f := range fieldsOf(old.Type().Elem()) {
		if f.name == id {
			idField = f.index
		}
	}
	if idField < 0 {
		return TableDiff{}
	}
	byID := func(s reflect.Value) map[string]any {
		m := make(map[string]any, s.Len())
		for i := range s.Len() {
			e := s.Index(i)
			m[e.Field(idField).String()] = e.Interface()
		}
		return m
	}
	om, nm := byID(old), byID(new)
	var t TableDiff
	for k, nv := range nm {
		ov, ok := om[k]
		switch {
		case !ok:
			t.Added = append(t.Added, k)
		case !reflect.DeepEqual(ov, nv):
			t.Changed = append(t.Changed, k)
		}
	}
	for k := range om {
		if _, ok := nm[k]; !ok {
			t.Removed = append(t.Removed, k)
		}
	}
	slices.Sort(t.Added)
	slices.Sort(t.Removed)
	slices.Sort(t.Changed)
	return t
}
