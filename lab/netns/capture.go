//go:build linux

package netns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// captureReady bounds how long StartCapture waits for the capture to
// begin.
const captureReady = 10 * time.Second

// A Capture is dumpcap (or tshark) writing a pcapng file from an
// interface of a node.
type Capture struct {
	proc *Process
	path string
}

// StartCapture captures the traffic of an interface of the node (its
// name inside the node, e.g. "eth0", or "any") into a pcapng file, with a
// libpcap capture filter ("" for everything; "udp port 4341 or udp port
// 4342" for LISP). A relative path is taken in the lab's directory. It
// returns once the capture is running, so that packets sent afterwards
// are in the file.
func (n *Node) StartCapture(iface, filter, path string) (*Capture, error) {
	if iface != "any" && !validIfName(iface) {
		return nil, invalidf("capture interface %q", iface)
	}
	if path == "" {
		return nil, invalidf("capture: empty file name")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(n.lab.dir, path)
	}
	tool, err := captureTool()
	if err != nil {
		return nil, err
	}
	// Both tools take the same options: -q keeps per-packet counts out of
	// the log; the file is pcapng, their default.
	args := []string{"-i", iface, "-q", "-w", path}
	if filter != "" {
		args = append(args, "-f", filter)
	}
	p, err := n.Start(context.Background(), Command{Name: tool, Label: "capture-" + iface, Args: args})
	if err != nil {
		return nil, err
	}
	// dumpcap prints "File: PATH" once the interface is open, the filter
	// attached and the file created.
	ctx, cancel := context.WithTimeout(context.Background(), captureReady)
	defer cancel()
	if err := p.WaitOutput(ctx, "File: "); err != nil {
		p.Stop()
		return nil, err
	}
	return &Capture{proc: p, path: path}, nil
}

// drain waits until the capture has caught up with the interface.
func (c *Capture) drain() {
	if c.proc.Exited() {
		return
	}
	start := time.Now()
	size := func() int64 {
		st, err := os.Stat(c.path)
		if err != nil {
			return -1
		}
		return st.Size()
	}
	last, lastChange := size(), start
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		now := time.Now()
		if now.Sub(start) >= drainMax {
			return
		}
		if now.Sub(start) >= drainMin && now.Sub(lastChange) >= drainQuiet {
			return
		}
		select {
		case <-c.proc.done:
			return
		case <-t.C:
		}
		if s := size(); s != last {
			last, lastChange = s, time.Now()
		}
	}
}

// Path returns the capture file.
func (c *Capture) Path() string { return c.path }

// Process returns the capturing process.
func (c *Capture) Process() *Process { return c.proc }

// Capture drain timing: libpcap's TPACKET_V3 ring hands packets to
// dumpcap in blocks, a block at the latest when its timeout (dumpcap's
// 250 ms read timeout) expires, and dumpcap does not read the ring again
// once it is told to stop. Stop therefore waits at least drainMin, and
// then until the file has not grown for drainQuiet (at most drainMax),
// before it signals.
const (
	drainMin   = 400 * time.Millisecond
	drainQuiet = 200 * time.Millisecond
	drainMax   = 3 * time.Second
)

// Stop ends the capture and checks that the file exists. It first gives
// dumpcap time to receive the packets that reached the interface before
// Stop was called (see drainMin), then sends SIGTERM, on which dumpcap
// writes out what it has and closes the file.
func (c *Capture) Stop() error {
	c.drain()
	if err := c.proc.Stop(); err != nil {
		return err
	}
	st, err := os.Stat(c.path)
	if err != nil {
		return fmt.Errorf("netns: capture file: %w", err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("netns: capture file %s is empty", c.path)
	}
	return nil
}
