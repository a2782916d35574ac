package capture

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind (the tshark
// runner starts processes and pipe copiers).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
