package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lispd/lispd/config"
)

// Socket permissions: the socket is readable and writable by its owner and
// group (operators in the daemon's group may use lispctl), its directory
// searchable by the same.
const (
	SocketMode    fs.FileMode = 0o660
	SocketDirMode fs.FileMode = 0o750
)

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 1 << 20

// shutdownGrace is how long Serve waits for requests in flight after its
// context is canceled.
const shutdownGrace = 5 * time.Second

// ErrSocketInUse is returned by ListenUnix and Serve when another process
// is already serving on the socket path.
var ErrSocketInUse = errors.New("api: another process is already listening on the API socket")

// Server serves the local API for a Backend.
type Server struct {
	backend Backend
	log     *slog.Logger
	routes  map[string][]route // by path
}

// route is one endpoint: a method on a path under /v1/.
type route struct {
	method string
	path   string
	handle func(s *Server, r *http.Request) (any, error)
}

// routeTable lists the endpoints. To add one, add a line here and a method
// to Backend.
func routeTable() []route {
	return []route{
		{http.MethodGet, "/v1/status", (*Server).status},
		{http.MethodGet, "/v1/registrations", (*Server).registrations},
		{http.MethodGet, "/v1/map-cache", (*Server).mapCache},
		{http.MethodGet, "/v1/etr", (*Server).etr},
		{http.MethodGet, "/v1/subscriptions", (*Server).subscriptions},
		{http.MethodGet, "/v1/sync/status", (*Server).syncStatus},
		{http.MethodGet, "/v1/sync/peers", (*Server).syncPeers},
		{http.MethodGet, "/v1/failover", (*Server).failover},
		{http.MethodPost, "/v1/failover/check", (*Server).failoverCheck},
		{http.MethodPost, "/v1/failover/peer", (*Server).failoverPeer},
		{http.MethodPost, "/v1/drain", (*Server).drain},
		{http.MethodPost, "/v1/undrain", (*Server).undrain},
		{http.MethodPost, "/v1/reload", (*Server).reload},
		{http.MethodPut, "/v1/log-level", (*Server).setLogLevel},
	}
}

// NewServer returns a Server for b. Requests are logged at debug level to
// logger (nil: no logging).
func NewServer(b Backend, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{backend: b, log: logger, routes: map[string][]route{}}
	for _, r := range routeTable() {
		s.routes[r.path] = append(s.routes[r.path], r)
	}
	return s
}

// Serve creates the unix socket at socketPath (see ListenUnix), serves the
// API on it until ctx is canceled, then shuts down gracefully and removes
// the socket. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, socketPath string) error {
	ln, err := ListenUnix(socketPath)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves the API on ln until ctx is canceled. Then, when ln
// is a unix socket whose file is still the one bound, it removes the file,
// waits up to 5 seconds for requests in flight (canceling their contexts
// after that) and closes ln. It returns nil after a shutdown caused by ctx.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	socket := ""
	var socketInfo fs.FileInfo
	if ua, ok := ln.Addr().(*net.UnixAddr); ok && ua.Name != "" && !strings.HasPrefix(ua.Name, "@") {
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false) // removed below, only if it is still ours
		}
		if fi, err := os.Stat(ua.Name); err == nil {
			socket, socketInfo = ua.Name, fi
		}
	}
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // of the request; a drain's answer may take longer
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	removeSocket := func() {
		if socket == "" {
			return
		}
		if fi, err := os.Stat(socket); err == nil && os.SameFile(fi, socketInfo) {
			if err := os.Remove(socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("api: cannot remove socket", "path", socket, "err", err)
			}
		}
		socket = ""
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		// Unlink first: from now on clients see "not running", while
		// the requests in flight finish.
		removeSocket()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if serr := hs.Shutdown(sctx); serr != nil {
			cancelBase() // tell the handlers still running to give up
			hs.Close()
		}
		cancel()
		err = <-errc
	}
	removeSocket()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: serve: %w", err)
}

// ListenUnix creates the API socket at path: it creates the parent
// directory (mode 0750) if needed, removes a stale socket that nothing
// listens on, refuses (ErrSocketInUse) when another process is listening,
// and sets the new socket's mode to 0660.
func ListenUnix(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("api: empty socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), SocketDirMode); err != nil {
		return nil, fmt.Errorf("api: create socket directory: %w", err)
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("api: %s exists and is not a socket; remove it or choose another api-socket", path)
		}
		conn, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			conn.Close()
			return nil, fmt.Errorf("%w (%s); is lispd already running?", ErrSocketInUse, path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("api: cannot check the existing socket %s: %w", path, derr)
		}
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, fmt.Errorf("api: remove stale socket: %w", rerr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("api: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true) // until ServeListener takes over
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: chmod socket: %w", err)
	}
	return ln, nil
}

// Handler returns the API as an http.Handler, for tests and for serving on
// other listeners.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// statusWriter records the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("api: handler panic", "method", r.Method, "path", r.URL.Path, "panic", p)
			if w.code == 0 {
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}
		s.log.Debug("api: request", "method", r.Method, "path", r.URL.Path, "status", w.code,
			"duration", time.Since(start))
	}()
	routes, ok := s.routes[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s", r.URL.Path))
		return
	}
	i := slices.IndexFunc(routes, func(rt route) bool { return rt.method == r.Method })
	if i < 0 {
		var allow []string
		for _, rt := range routes {
			allow = append(allow, rt.method)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s does not allow %s (use %s)", r.URL.Path, r.Method, strings.Join(allow, ", ")))
		return
	}
	if s.backend == nil {
		writeError(w, http.StatusServiceUnavailable, "the daemon has not started its API backend")
		return
	}
	v, err := routes[i].handle(s, r)
	if err != nil {
		code := httpStatus(err)
		if code == http.StatusInternalServerError {
			s.log.Warn("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// The status line is out: an encoding error can only cut the body
	// short, which the client reports as a malformed answer.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

// decodeBody decodes a JSON request body into v, strictly.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return WithKind(ErrInvalidArgument, fmt.Errorf("invalid JSON body: %v", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return WithKind(ErrInvalidArgument, errors.New("invalid JSON body: more than one value"))
	}
	return nil
}

func (s *Server) status(r *http.Request) (any, error) {
	st, err := s.backend.Status(r.Context())
	if err != nil {
		return nil, err
	}
	if st.Roles == nil {
		st.Roles = []string{}
	}
	if st.Listeners == nil {
		st.Listeners = []Listener{}
	}
	if st.Counters == nil {
		st.Counters = map[string]uint64{}
	}
	return st, nil
}

func (s *Server) registrations(r *http.Request) (any, error) {
	regs, err := s.backend.Registrations(r.Context())
	if err != nil {
		return nil, err
	}
	if regs == nil {
		regs = []Registration{}
	}
	for i := range regs {
		if regs[i].RLOCs == nil {
			regs[i].RLOCs = []RLOC{}
		}
	}
	return regs, nil
}

func (s *Server) mapCache(r *http.Request) (any, error) {
	entries, err := s.backend.MapCache(r.Context())
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []MapCacheEntry{}
	}
	for i := range entries {
		if entries[i].RLOCs == nil {
			entries[i].RLOCs = []RLOC{}
		}
	}
	return entries, nil
}

func (s *Server) etr(r *http.Request) (any, error) {
	b, ok := s.backend.(ETRBackend)
	if !ok {
		return nil, WithKind(ErrUnavailable, errors.New("this daemon has no ETR"))
	}
	st, err := b.ETR(r.Context())
	if err != nil {
		return nil, err
	}
	if st.Database == nil {
		st.Database = []ETRMapping{}
	}
	for i := range st.Database {
		if st.Database[i].RLOCs == nil {
			st.Database[i].RLOCs = []RLOC{}
		}
	}
	if st.MapServers == nil {
		st.MapServers = []ETRRegistration{}
	}
	return st, nil
}

func (s *Server) reload(r *http.Request) (any, error) {
	if err := s.backend.Reload(r.Context()); err != nil {
		return nil, err
	}
	return ReloadResult{Reloaded: true}, nil
}

func (s *Server) setLogLevel(r *http.Request) (any, error) {
	var req LogLevel
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	l, err := config.ParseLogLevel(req.Level)
	if err != nil {
		return nil, WithKind(ErrInvalidArgument,
			fmt.Errorf("unknown log level %q: want one of %s", req.Level, strings.Join(config.LogLevelNames(), ", ")))
	}
	name := config.LogLevelName(l)
	if err := s.backend.SetLogLevel(r.Context(), name); err != nil {
		return nil, err
	}
	return LogLevel{Level: name}, nil
}
