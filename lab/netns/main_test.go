//go:build linux

package netns

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		// Leftovers of crashed runs; live labs are left alone.
		if err := CleanupStale(DefaultPrefix); err != nil {
			fmt.Fprintln(os.Stderr, "CleanupStale:", err)
		}
	}
	goleak.VerifyTestMain(m)
}
