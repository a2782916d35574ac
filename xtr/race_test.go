//go:build race

package xtr

const raceEnabled = true
