// Package console is Patchway's web console: the rollouts a security
// team runs, each rollout's stages, waves, hosts, evidence and decisions,
// and the gate and control actions, taken as the person signed in at the
// identity provider.
//
// It keeps no state of its own. Every page is read from the rollout
// workflows (their progress, host and report queries) and from Temporal's
// visibility, and every action is a workflow update that the gates policy
// decides, exactly as the CLI's. The only thing it holds is the person's
// sign-in, sealed in their browser's cookie with a key that lives as long
// as the process.
//
// Pages are Go templates, escaped by html/template; one small script
// refreshes the live part of a page by short polling. The assets are
// embedded, so the binary needs nothing at run time.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/oidc"
	"github.com/patchway/patchway/report"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a console.
type Options struct {
	// Client reaches the Temporal namespace the rollouts run in.
	Client client.Client
	// Namespace and Address name it, for links and messages.
	Namespace, Address string
	// WebUI is the Temporal Web UI's base URL, for links into a
	// rollout's history ("" : no links).
	WebUI string
	// Issuer is the identity provider people sign in at ("" : the console
	// is read-only and says so). ClientID is the console's registered
	// client id there (a public client: authorization code with PKCE).
	Issuer, ClientID string
	// Exceptions builds a running rollout's provisional report (the
	// exceptions policy), as `patchway report` does.
	Exceptions report.ExceptionPolicy
	// Logger logs failures; nil discards.
	Logger *slog.Logger
	// Now is the clock of countdowns; nil is time.Now.
	Now func() time.Time
}

// DefaultClientID is the console's client id at the identity provider.
const DefaultClientID = "patchway-console"

// requestTimeout bounds the Temporal calls of one page.
const requestTimeout = 20 * time.Second

// Server is a console. Its handler is safe for concurrent use.
type Server struct {
	opts  Options
	pages map[string]*template.Template
	seal  *sealer

	mu       sync.Mutex
	provider *oidc.Provider
}

// New prepares a console.
func New(o Options) (*Server, error) {
	if o.Client == nil {
		return nil, errors.New("console: a Temporal client is required")
	}
	if o.Exceptions == nil {
		return nil, errors.New("console: the exceptions policy is required (it builds running rollouts' reports)")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	o.WebUI = strings.TrimSuffix(o.WebUI, "/")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Server{opts: o, pages: pages, seal: seal}, nil
}

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// Handler is the console's HTTP surface. Every form post is refused
// when it comes from another origin, and carries the session's own
// anti-forgery token besides.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.handleList)
	mux.HandleFunc("GET /rollouts/{id}", s.handleRollout)
	mux.HandleFunc("GET /rollouts/{id}/hosts/{host}", s.handleHost)
	mux.HandleFunc("POST /rollouts/{id}/act", s.handleAct)
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("GET /callback", s.handleCallback)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
	return loopbackOnly(http.NewCrossOriginProtection().Handler(secureHeaders(mux)))
}

// loopbackOnly refuses a request whose Host is not a loopback address:
// the console listens on loopback, and a page of another site that
// rebinds its own name to 127.0.0.1 must not reach it.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "the console answers requests for a loopback address only", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// secureHeaders keep pages out of caches and frames and let them load
// nothing but the console's own assets.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// Serve serves the console on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// identityProvider discovers the issuer once, and again after a failure.
func (s *Server) identityProvider(ctx context.Context) (*oidc.Provider, error) {
	if s.opts.Issuer == "" {
		return nil, errors.New("this console was started without an identity provider (--issuer): it shows rollouts but cannot act")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	p, err := oidc.Discover(ctx, nil, s.opts.Issuer)
	if err != nil {
		return nil, err
	}
	s.provider = p
	return p, nil
}
