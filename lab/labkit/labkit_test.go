package labkit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLockedBufferConcurrentWriters(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("0123456789\n"))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if l != "0123456789" {
			t.Fatalf("interleaved write: %q", l)
		}
	}
}

func TestLockedWriter(t *testing.T) {
	var b LockedBuffer
	w := NewLockedWriter(&b)
	w.Write([]byte("a"))
	w.Write([]byte("b"))
	if b.String() != "ab" {
		t.Fatalf("got %q", b.String())
	}
}

func TestFindLispdGivenPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lispd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := FindLispd(context.Background(), p, t.TempDir())
	if err != nil || got != p {
		t.Fatalf("FindLispd(%q) = %q, %v", p, got, err)
	}
	if _, err := FindLispd(context.Background(), filepath.Join(t.TempDir(), "missing"), t.TempDir()); err == nil {
		t.Fatal("a missing --lispd was accepted")
	}
}
