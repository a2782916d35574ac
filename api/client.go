package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// DefaultSocket is where the daemon's API socket is unless configured
// otherwise (daemon.api-socket).
const DefaultSocket = "/run/lispd/lispd.sock"

// DefaultTimeout bounds each Client request unless WithTimeout says
// otherwise or the context has an earlier deadline.
const DefaultTimeout = 10 * time.Second

// maxResponseBytes bounds a response body (a map-cache of a million entries
// is about 300 MB of JSON).
const maxResponseBytes = 1 << 30

// Client talks to the daemon's local API. It is safe for concurrent use.
type Client struct {
	socket  string
	timeout time.Duration
	hc      *http.Client
	tr      *http.Transport
}

// Compile-time check: a Client is a Backend, so it can stand in for the
// daemon (in proxies and tests).
var _ Backend = (*Client)(nil)

// A Client is an ETRBackend too.
var _ ETRBackend = (*Client)(nil)

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithTimeout sets the time limit of each request (DefaultTimeout when not
// set); d <= 0 means no limit other than the context's.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *Client) { c.timeout = d }
}

// NewClient returns a Client for the daemon listening on socketPath.
func NewClient(socketPath string, opts ...ClientOption) *Client {
	c := &Client{socket: socketPath, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	var d net.Dialer
	c.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", c.socket)
		},
		MaxIdleConns:           2,
		IdleConnTimeout:        30 * time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
		MaxResponseHeaderBytes: 64 << 10,
	}
	c.hc = &http.Client{Transport: c.tr}
	return c
}

// Socket returns the socket path the client uses.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections. The Client stays usable.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Registrations returns the Map-Server's registrations.
func (c *Client) Registrations(ctx context.Context) ([]Registration, error) {
	var regs []Registration
	err := c.do(ctx, http.MethodGet, "/v1/registrations", nil, &regs)
	return regs, err
}

// MapCache returns the map-cache.
func (c *Client) MapCache(ctx context.Context) ([]MapCacheEntry, error) {
	var entries []MapCacheEntry
	err := c.do(ctx, http.MethodGet, "/v1/map-cache", nil, &entries)
	return entries, err
}

// ETR returns the ETR's registration state and database.
func (c *Client) ETR(ctx context.Context) (ETRStatus, error) {
	var st ETRStatus
	err := c.do(ctx, http.MethodGet, "/v1/etr", nil, &st)
	return st, err
}

// Reload asks the daemon to re-read its config file.
func (c *Client) Reload(ctx context.Context) error {
	var res ReloadResult
	if err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &res); err != nil {
		return err
	}
	if !res.Reloaded {
		return errors.New("api: the daemon did not confirm the reload")
	}
	return nil
}

// SetLogLevel sets the daemon's log level ("debug", "info", "warn",
// "error").
func (c *Client) SetLogLevel(ctx context.Context, level string) error {
	var res LogLevel
	return c.do(ctx, http.MethodPut, "/v1/log-level", LogLevel{Level: level}, &res)
}

// do sends one request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://lispd"+path, body)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return c.transportError(ctx, err)
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("api: %s %s: answer larger than %d bytes", method, path, maxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return &StatusError{StatusCode: resp.StatusCode, Message: eb.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api: %s %s: malformed answer: %w", method, path, err)
	}
	return nil
}

// transportError classifies a failure to exchange a request with the
// daemon.
func (c *Client) transportError(ctx context.Context, err error) error {
	u := &UnreachableError{Socket: c.socket, Reason: ReasonBroken, Err: err}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		u.Reason = ReasonNotRunning
	case errors.Is(err, syscall.ECONNREFUSED):
		u.Reason = ReasonStale
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		u.Reason = ReasonPermission
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		u.Reason = ReasonTimeout
		u.Timeout = max(c.timeout, 0)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("api: request canceled: %w", err)
	}
	return u
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !strings.Contains(err.Error(), "canceled")
}
