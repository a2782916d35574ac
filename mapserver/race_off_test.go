//go:build !race

package mapserver

// raceEnabled is set when the race detector, which allocates, is on.
const raceEnabled = false
