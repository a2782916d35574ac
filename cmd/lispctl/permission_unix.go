//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

// statGroup returns the owning group of a file from its stat data.
func statGroup(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Gid, true
}
