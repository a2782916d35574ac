//go:build !race

package xtr

const raceEnabled = false
