// Package labkit holds the small pieces every lab package needs: finding or
// building the lispd binary the lab runs, and writers that several daemons
// or processes can share.
package labkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// LispdPackage and LispctlPackage are the import paths `go build` compiles
// the daemon and the CLI from.
const (
	LispdPackage   = "github.com/lispd/lispd/cmd/lispd"
	LispctlPackage = "github.com/lispd/lispd/cmd/lispctl"
)

// BuildLispd compiles lispd into dir and returns the binary's path. It works
// inside the lispd source tree (a fresh clone is one).
func BuildLispd(ctx context.Context, dir string) (string, error) {
	return build(ctx, LispdPackage, filepath.Join(dir, "lispd"))
}

// BuildLispctl compiles lispctl into dir and returns the binary's path (the
// lab's keepalived runs it, as the documented configs do).
func BuildLispctl(ctx context.Context, dir string) (string, error) {
	return build(ctx, LispctlPackage, filepath.Join(dir, "lispctl"))
}

// build compiles pkg to out.
func build(ctx context.Context, pkg, out string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("lab: go build %s (run inside the lispd source tree, or give --lispd): %w\n%s", pkg, err, b)
	}
	return out, nil
}

// FindLispd returns the lispd binary to run: path when not empty, else a
// lispd next to the running executable, else one on $PATH, else one built
// with BuildLispd into dir.
func FindLispd(ctx context.Context, path, dir string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("lab: --lispd: %w", err)
		}
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "lispd")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("lispd"); err == nil {
		return p, nil
	}
	return BuildLispd(ctx, dir)
}

// LockedWriter serializes the writes of several writers (daemons' loggers,
// processes' output) to one io.Writer.
type LockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLockedWriter returns a LockedWriter around w.
func NewLockedWriter(w io.Writer) *LockedWriter { return &LockedWriter{w: w} }

// Write implements io.Writer.
func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// LockedBuffer is a bytes.Buffer that concurrent writers and readers may
// share; its zero value is ready to use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Bytes returns a copy of what was written so far.
func (l *LockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}
