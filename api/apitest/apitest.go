// Package apitest provides an in-memory api.Backend for tests of the API,
// its client and lispctl, in the way wireguard-go ships tuntest next to
// tun: a stand-in for the daemon with no sockets or goroutines of its own.
package apitest

import (
	"context"
	"slices"
	"sync"

	"github.com/lispd/lispd/api"
)

// Backend is an api.Backend whose answers are set by the test. The zero
// value answers with empty data. It is safe for concurrent use; set its
// fields with Set before serving.
type Backend struct {
	mu sync.Mutex
	// guarded by mu:
	status        api.Status
	registrations []api.Registration
	mapCache      []api.MapCacheEntry
	errs          map[string]error // by method name
	reloads       int
	logLevels     []string
	block         chan struct{}
	waiting       int
}

var _ api.Backend = (*Backend)(nil)

// Data is what a Backend answers.
type Data struct {
	Status        api.Status          // answer of Status (LogLevel: until SetLogLevel)
	Registrations []api.Registration  // answer of Registrations
	MapCache      []api.MapCacheEntry // answer of MapCache
}

// Set replaces the data the Backend answers with.
func (b *Backend) Set(d Data) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = d.Status
	b.registrations = d.Registrations
	b.mapCache = d.MapCache
}

// FailWith makes the method named method ("Status", "Registrations",
// "MapCache", "Reload", "SetLogLevel") return err; nil clears it.
func (b *Backend) FailWith(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.errs == nil {
		b.errs = map[string]error{}
	}
	b.errs[method] = err
}

// Block makes every method wait until Unblock is called or its context is
// done, to test timeouts and shutdown.
func (b *Backend) Block() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.block == nil {
		b.block = make(chan struct{})
	}
}

// Unblock releases the methods waiting because of Block.
func (b *Backend) Unblock() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.block != nil {
		close(b.block)
		b.block = nil
	}
}

// Reloads returns how many times Reload succeeded.
func (b *Backend) Reloads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reloads
}

// LogLevels returns the levels SetLogLevel was called with, in order.
func (b *Backend) LogLevels() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.logLevels)
}

// enter waits while blocked and returns the error set for method.
func (b *Backend) enter(ctx context.Context, method string) error {
	b.mu.Lock()
	block := b.block
	err := b.errs[method]
	b.mu.Unlock()
	if block != nil {
		b.mu.Lock()
		b.waiting++
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
		}()
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// Waiting returns how many calls are waiting because of Block.
func (b *Backend) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

// Status implements api.Backend.
func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	if err := b.enter(ctx, "Status"); err != nil {
		return api.Status{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.status
	st.LogLevel = b.currentLevel()
	return st, nil
}

// currentLevel is the last level set, or the status's level. b.mu is held.
func (b *Backend) currentLevel() string {
	if n := len(b.logLevels); n > 0 {
		return b.logLevels[n-1]
	}
	return b.status.LogLevel
}

// Registrations implements api.Backend.
func (b *Backend) Registrations(ctx context.Context) ([]api.Registration, error) {
	if err := b.enter(ctx, "Registrations"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.registrations), nil
}

// MapCache implements api.Backend.
func (b *Backend) MapCache(ctx context.Context) ([]api.MapCacheEntry, error) {
	if err := b.enter(ctx, "MapCache"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.mapCache), nil
}

// Reload implements api.Backend.
func (b *Backend) Reload(ctx context.Context) error {
	if err := b.enter(ctx, "Reload"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	return nil
}

// SetLogLevel implements api.Backend.
func (b *Backend) SetLogLevel(ctx context.Context, level string) error {
	if err := b.enter(ctx, "SetLogLevel"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logLevels = append(b.logLevels, level)
	return nil
}
