package mapserver

import "errors"

// ErrInvalidConfig is matched (errors.Is) by every configuration error that
// New, SetSites and SetResolver return.
var ErrInvalidConfig = errors.New("mapserver: invalid configuration")

// ErrNilSender is returned by New when no Sender is given.
var ErrNilSender = errors.New("mapserver: nil sender")

// ConfigError describes one invalid configuration value. It matches
// ErrInvalidConfig.
type ConfigError struct {
	// Where names the item, e.g. `site "campus"` or `map-server 192.0.2.1:4342`.
	Where string
	// Field is the offending field, e.g. "key" or "prefixes".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string {
	s := "mapserver: "
	if e.Where != "" {
		s += e.Where + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Reason
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
