package twosite

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	beforeTests() // removes crashed netns labs (Linux, as root)
	goleak.VerifyTestMain(m)
}
