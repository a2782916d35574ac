//go:build !linux

package paper

import (
	"context"
	"fmt"
)

func newNetnsRunner(context.Context, Options, *progress) (runner, error) {
	return nil, fmt.Errorf("%w: --netns needs Linux network namespaces", ErrUnsupported)
}
