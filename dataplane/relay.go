package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
)

// maxConsecutiveErrors is how many failed reads in a row end a packet loop.
const maxConsecutiveErrors = 100

// RelayStats is a snapshot of a Relay's counters.
type RelayStats struct {
	// DeviceToConn and ConnToDevice count packets moved each way.
	DeviceToConn, ConnToDevice uint64
	// ReadErrors and WriteErrors count failed calls (not packets).
	ReadErrors, WriteErrors uint64
}

// Relay moves packets between a Device and a Conn with the same batching as
// an xTR but no LISP processing: each packet the device reads is sent as it
// is to one peer address, and each datagram the Conn receives is written to
// the device. It is the baseline that xTR throughput is compared with.
type Relay struct {
	dev     Device
	conn    Conn
	peer    netip.AddrPort
	bufSize int

	toConn, toDev, readErrs, writeErrs atomic.Uint64
}

// NewRelay returns a relay between dev and conn that sends to peer, using
// buffers of bufSize bytes (0 means DefaultBufferSize).
func NewRelay(dev Device, conn Conn, peer netip.AddrPort, bufSize int) (*Relay, error) {
	if bufSize == 0 {
		bufSize = DefaultBufferSize
	}
	if dev == nil || conn == nil || !peer.IsValid() {
		return nil, fmt.Errorf("%w: relay needs a device, a conn and a peer address", ErrInvalidConfig)
	}
	if bufSize < Headroom+ipv6HeaderLen {
		return nil, fmt.Errorf("%w: buffer size %d", ErrInvalidConfig, bufSize)
	}
	return &Relay{dev: dev, conn: conn, peer: peer, bufSize: bufSize}, nil
}

// Stats returns a snapshot of the counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{
		DeviceToConn: r.toConn.Load(),
		ConnToDevice: r.toDev.Load(),
		ReadErrors:   r.readErrs.Load(),
		WriteErrors:  r.writeErrs.Load(),
	}
}

// Run relays until ctx is done or a side fails for good. Run owns the
// device and the Conn: it closes both when it ends (which unblocks the other
// direction) and returns after both directions stopped. It returns nil when
// ctx ended it.
func (r *Relay) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		if err != nil && !errors.Is(err, ErrClosed) {
			errOnce.Do(func() { firstErr = err })
		}
		cancel()
	}
	wg.Add(2)
	go func() { defer wg.Done(); fail(r.routineDeviceToConn()) }()
	go func() { defer wg.Done(); fail(r.routineConnToDevice()) }()
	<-ctx.Done()
	cerr := errors.Join(r.dev.Close(), r.conn.Close())
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if cerr != nil && !errors.Is(cerr, ErrClosed) {
		return cerr
	}
	return nil
}

// routineDeviceToConn reads batches from the device and sends them to the
// peer.
func (r *Relay) routineDeviceToConn() error {
	b, err := NewBatch(max(r.dev.BatchSize(), 1), r.bufSize)
	if err != nil {
		return err
	}
	errs := 0
	for {
		n, err := b.ReadDevice(r.dev)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			r.readErrs.Add(1)
			if errs++; errs > maxConsecutiveErrors {
				return err
			}
			continue
		}
		errs = 0
		for i := range n {
			if b.Sizes[i] <= 0 {
				continue
			}
			b.Out = append(b.Out, out(b.Bufs[i], Headroom, Headroom+b.Sizes[i]))
			b.OutMeta = append(b.OutMeta, Meta{Addr: r.peer})
		}
		if len(b.Out) == 0 {
			continue
		}
		k, err := r.conn.Write(b.Out, b.OutMeta, OutOffset)
		r.toConn.Add(uint64(k))
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			r.writeErrs.Add(1)
		}
	}
}

// routineConnToDevice receives batches from the Conn and writes them to the
// device.
func (r *Relay) routineConnToDevice() error {
	b, err := NewBatch(max(r.conn.BatchSize(), 1), r.bufSize)
	if err != nil {
		return err
	}
	errs := 0
	for {
		b.Reset()
		n, err := r.conn.Read(b.Bufs, b.Sizes, b.Meta, Headroom)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			r.readErrs.Add(1)
			if errs++; errs > maxConsecutiveErrors {
				return err
			}
			continue
		}
		errs = 0
		for i := range n {
			if b.Sizes[i] <= 0 {
				continue
			}
			b.Out = append(b.Out, out(b.Bufs[i], Headroom, Headroom+b.Sizes[i]))
		}
		if len(b.Out) == 0 {
			continue
		}
		k, err := r.dev.Write(b.Out, OutOffset)
		r.toDev.Add(uint64(k))
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			r.writeErrs.Add(1)
		}
	}
}
