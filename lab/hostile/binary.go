//go:build linux

package hostile

import (
	"context"
	"os"
	"sync"

	"github.com/lispd/lispd/lab/labkit"
)

// BinaryEnv names the environment variable that gives the lispd binary to
// attack instead of one built from this source tree.
const BinaryEnv = "HOSTILE_LISPD"

// Builder provides the lispd binary the suite runs: the one $HOSTILE_LISPD
// names, else one built from this source tree (once, into a temporary
// directory that Close removes).
type Builder struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary returns the path of the lispd binary, building it on first use.
func (b *Builder) Binary(ctx context.Context) (string, error) {
	b.once.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			b.bin, b.err = labkit.FindLispd(ctx, p, "")
			return
		}
		if b.dir, b.err = os.MkdirTemp("", "lispd-hostile-"); b.err != nil {
			return
		}
		b.bin, b.err = labkit.BuildLispd(ctx, b.dir)
	})
	return b.bin, b.err
}

// Close removes the binary Binary built, if any.
func (b *Builder) Close() error {
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}
