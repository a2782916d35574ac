package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// permissionMessage explains a permission error on the API socket and
// what to do about it: run as root, or join the group that owns the socket
// (or, when the socket itself cannot be seen, its directory).
func permissionMessage(socket string) string {
	msg := fmt.Sprintf("permission denied on %s", socket)
	gid, ok := fileGroup(socket)
	if !ok {
		gid, ok = fileGroup(filepath.Dir(socket))
	}
	if !ok || gid == 0 {
		return msg + `; run lispctl as root (sudo lispctl ...)`
	}
	name := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(name); err == nil {
		name = g.Name
	}
	return fmt.Sprintf(`%s; run lispctl as root, or as a member of group %q (sudo usermod -aG %s "$USER", then log in again)`,
		msg, name, name)
}

// fileGroup returns the group ID that owns path.
func fileGroup(path string) (uint32, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return statGroup(fi)
}
