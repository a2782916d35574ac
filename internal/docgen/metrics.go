package docgen

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MetricDoc is one row of a metrics table in docs/metrics.md: a metric
// name in a code span and its description. A name may hold placeholders
// in angle brackets, `lispd_mapserver_malformed_<reason>_total`, which
// stand for one or more lower-case letters, digits or underscores; the
// description says which values they take.
type MetricDoc struct {
	// Name is the metric name as written, placeholders included.
	Name string
	// Description is the row's second cell.
	Description string
	// Line is the row's line in the document, from 1.
	Line int

	re *regexp.Regexp
}

// Matches reports whether the metric name is the one documented, or one
// of the family a placeholder describes.
func (m MetricDoc) Matches(name string) bool { return m.re.MatchString(name) }

// IsPattern reports whether the documented name holds a placeholder.
func (m MetricDoc) IsPattern() bool { return strings.Contains(m.Name, "<") }

// metricRow matches a row of a two-column table whose first cell is a
// metric name in a code span; the rest of the row is the description.
var metricRow = regexp.MustCompile("^\\|\\s*`([a-z][a-z0-9_<>]*)`\\s*\\|(.*)\\|\\s*$")

// placeholder matches a placeholder of a metric name.
var placeholder = regexp.MustCompile(`<[a-z0-9_]+>`)

// validMetricName matches the names of metrics lispd documents: the
// Prometheus name syntax, lower case.
var validMetricName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ParseMetrics reads the metric tables of md: every table row whose first
// cell is a code span holding a metric name. It fails on a name that is
// documented twice, a malformed name and an empty description.
func ParseMetrics(md []byte) ([]MetricDoc, error) {
	var out []MetricDoc
	var errs []error
	seen := map[string]int{}
	eachProseLine(md, func(n int, line string) {
		m := metricRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			return
		}
		name := m[1]
		desc := strings.TrimSpace(m[2])
		if first, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("docgen: line %d: %s is documented twice (first on line %d)", n, name, first))
			return
		}
		seen[name] = n
		if !validMetricName.MatchString(placeholder.ReplaceAllString(name, "x")) || strings.Count(name, "<") != strings.Count(name, ">") {
			errs = append(errs, fmt.Errorf("docgen: line %d: %q is not a metric name", n, name))
			return
		}
		if desc == "" {
			errs = append(errs, fmt.Errorf("docgen: line %d: %s has no description", n, name))
			return
		}
		expr := "^" + placeholder.ReplaceAllStringFunc(regexp.QuoteMeta(name), func(string) string { return "[a-z0-9_]+" }) + "$"
		// QuoteMeta leaves < and > alone, so the placeholders survive it.
		out = append(out, MetricDoc{Name: name, Description: desc, Line: n, re: regexp.MustCompile(expr)})
	})
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// Undocumented returns the names that no row of docs documents, in the
// order given.
func Undocumented(docs []MetricDoc, names []string) []string {
	var out []string
	for _, n := range names {
		if !documented(docs, n) {
			out = append(out, n)
		}
	}
	return out
}

// documented reports whether a row of docs documents name: a row that
// names it exactly, else a pattern row that matches it.
func documented(docs []MetricDoc, name string) bool {
	for _, d := range docs {
		if d.Matches(name) {
			return true
		}
	}
	return false
}

// Unused returns the rows of docs that document none of names: metrics
// that the code no longer exports, or names with a typo.
func Unused(docs []MetricDoc, names []string) []MetricDoc {
	var out []MetricDoc
	for _, d := range docs {
		used := false
		for _, n := range names {
			if d.Matches(n) {
				used = true
				break
			}
		}
		if !used {
			out = append(out, d)
		}
	}
	return out
}
