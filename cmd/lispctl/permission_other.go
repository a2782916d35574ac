//go:build !unix

package main

import "io/fs"

// statGroup reports no group where files have none.
func statGroup(fs.FileInfo) (uint32, bool) { return 0, false }
