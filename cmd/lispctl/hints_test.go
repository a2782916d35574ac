package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

// TestNoMatchMessages checks that a lookup of an EID nothing covers says
// what was searched and what to do, and exits with status 1.
func TestNoMatchMessages(t *testing.T) {
	socket, _ := startDaemon(t, data)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"map-cache", "show", "10.8.8.8", "--iid", "0"},
			`lispctl: no map-cache entry covers 10.8.8.8 in instance 0: the ITR has not needed it, or the mapping expired; "lispctl lookup 10.8.8.8 --mr MAP-RESOLVER" asks the mapping system` + "\n"},
		{[]string{"map-cache", "show", "192.168.1.1"},
			`lispctl: no map-cache entry covers 192.168.1.1 in any instance: the ITR has not needed it, or the mapping expired; "lispctl lookup 192.168.1.1 --mr MAP-RESOLVER" asks the mapping system` + "\n"},
		{[]string{"map-cache", "show", "iid:9/10.0.0.0/8"},
			"lispctl: no map-cache entry inside iid:9/10.0.0.0/8: the ITR has not needed it, or the mapping expired\n"},
		{[]string{"map-cache", "show", "--iid", "9"},
			"lispctl: no map-cache entry in instance 9: the ITR has not needed it, or the mapping expired\n"},
	} {
		r := cli(t, socket, tt.args...)
		if r.code != 1 || r.stdout != "" || r.stderr != tt.want {
			t.Errorf("%v: code %d stdout %q stderr %q, want 1 %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}
}

// TestMissingRole checks that asking a daemon for what another role
// keeps says so instead of printing an empty list.
func TestMissingRole(t *testing.T) {
	xtrStatus := status
	xtrStatus.Roles = []string{"itr", "etr"}
	socket, _ := startDaemon(t, apitest.Data{Status: xtrStatus})
	r := cli(t, socket, "registrations", "show")
	want := `lispctl: this lispd plays itr, etr, not ms, so it holds no registrations; run "lispctl registrations show" on the Map-Server, or "lispctl etr show" here for this ETR's registration state` + "\n"
	if r.code != 1 || r.stdout != "" || r.stderr != want {
		t.Errorf("registrations on an xTR: %+v", r)
	}
	msStatus := status // roles ms, mr
	socket, _ = startDaemon(t, apitest.Data{Status: msStatus})
	r = cli(t, socket, "map-cache", "show", "--json")
	want = `lispctl: this lispd plays ms, mr, not itr, so it has no map-cache; run "lispctl map-cache show" on an xTR` + "\n"
	if r.code != 1 || r.stdout != "[]\n" || r.stderr != want {
		t.Errorf("map-cache on a Map-Server: %+v", r)
	}
	// The role is there and the list is empty: not an error.
	msStatus.Roles = []string{"itr", "ms"}
	socket, _ = startDaemon(t, apitest.Data{Status: msStatus})
	for _, args := range [][]string{{"map-cache", "show"}, {"registrations", "show"}} {
		if r := cli(t, socket, args...); r.code != 0 || r.stdout != "" {
			t.Errorf("%v on a daemon with the role: %+v", args, r)
		}
	}
}

// TestPermissionMessage checks the advice for a socket the user may not
// open: the group to join when a group other than root owns it.
func TestPermissionMessage(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "lispd.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gid, ok := fileGroup(sock)
	if !ok {
		t.Skip("files have no owning group here")
	}
	msg := permissionMessage(sock)
	if gid == 0 {
		if msg != "permission denied on "+sock+"; run lispctl as root (sudo lispctl ...)" {
			t.Errorf("root-owned: %q", msg)
		}
	} else {
		name := strconv.FormatUint(uint64(gid), 10)
		if g, err := user.LookupGroupId(name); err == nil {
			name = g.Name
		}
		if !strings.Contains(msg, `a member of group "`+name+`"`) || !strings.Contains(msg, "usermod -aG "+name) {
			t.Errorf("group-owned: %q", msg)
		}
	}
	// A socket that cannot be seen: the directory's group is used.
	if got := permissionMessage(filepath.Join(dir, "missing", "x.sock")); !strings.HasPrefix(got, "permission denied on ") {
		t.Errorf("missing: %q", got)
	}
	// The message reaches the user through errorMessage.
	err := &runError{err: &api.UnreachableError{Socket: sock, Reason: api.ReasonPermission}}
	if got := errorMessage(err); got != msg {
		t.Errorf("errorMessage = %q, want %q", got, msg)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runCLI(t, nil, "completion", shell)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "lispctl") || len(r.stdout) < 1000 {
			t.Errorf("%s: code %d stderr %q, %d bytes", shell, r.code, r.stderr, len(r.stdout))
		}
	}
	if r := runCLI(t, nil, "completion", "bash", "--no-descriptions"); r.code != 0 || !strings.Contains(r.stdout, "lispctl") {
		t.Errorf("--no-descriptions: %+v", r.code)
	}
	if r := runCLI(t, nil, "completion", "tcsh"); r.code != 2 {
		t.Errorf("unknown shell: %+v", r)
	}
	if r := runCLI(t, nil, "completion", "bash", "--json"); r.code != 2 || !strings.Contains(r.stderr, "--json does not apply") {
		t.Errorf("--json: %+v", r)
	}
	// Completion works end to end: the hidden __complete command that the
	// scripts call completes commands and log levels.
	r := runCLI(t, nil, "__complete", "map")
	if r.code != 0 || !strings.Contains(r.stdout, "map-cache") {
		t.Errorf("__complete map: %+v", r)
	}
	r = runCLI(t, nil, "__complete", "log-level", "")
	if r.code != 0 || !strings.Contains(r.stdout, "debug") || !strings.Contains(r.stdout, "warn") {
		t.Errorf("__complete log-level: %+v", r)
	}
}
