//go:build !linux

package netns

// Supported reports that the lab needs Linux.
func Supported() error {
	return &SupportError{Problems: []string{"network namespaces need Linux"}}
}
