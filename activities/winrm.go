package activities

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/patchway/patchway/contract"

	"github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
	"golang.org/x/net/html/charset"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// RunResult is what a host script produced.
type RunResult struct {
	Stdout   string
	Stderr   string
	ExitCode int
	// TLSCertSHA256 is the SHA-256 (hex) of the certificate the listener
	// presented; empty over plain HTTP.
	TLSCertSHA256 string
}

// HostRunner runs one rendered Patchway script on a host. WinRMRunner is
// the implementation; the interface lets activities be driven by anything
// that speaks for a host. Errors are *HostError values classified for
// Temporal (see ClassifyHostError).
type HostRunner interface {
	Run(ctx context.Context, host rollout.Host, script string) (RunResult, error)
}

// TransportRequest says which weaker-than-default transport a host's
// inventory entry asks for. The default (HTTPS, verified certificate) needs
// no permission.
type TransportRequest struct {
	// HTTP is plain HTTP (port 5985): Basic credentials travel base64 in
	// clear and SOAP bodies are readable on the wire.
	HTTP bool `json:"http"`
	// Insecure is HTTPS without certificate verification.
	Insecure bool `json:"insecure"`
	// NTLMOverHTTP is NTLM on plain HTTP: masterzen/winrm's message
	// encryption (NewEncryption("ntlm")) silently falls back to clear text,
	// so Patchway never uses it and the bodies travel unencrypted.
	NTLMOverHTTP bool `json:"ntlm_over_http"`
}

func (t TransportRequest) weak() bool { return t.HTTP || t.Insecure || t.NTLMOverHTTP }

func (t TransportRequest) String() string {
	var parts []string
	if t.HTTP {
		parts = append(parts, "plain HTTP")
	}
	if t.Insecure {
		parts = append(parts, "HTTPS without certificate verification")
	}
	if t.NTLMOverHTTP {
		parts = append(parts, "NTLM over plain HTTP")
	}
	return strings.Join(parts, ", ")
}

// TransportPolicy decides whether a host may be reached over a weaker
// transport than verified HTTPS, from the host's tier; *policies.Engine is
// the implementation. A nil TransportPolicy allows only the default.
type TransportPolicy interface {
	Transport(ctx context.Context, in policies.TransportInput) (policies.TransportDecision, error)
}

// Defaults of WinRMRunner.
const (
	DefaultOperationTimeout = 20 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultRunTimeout       = 30 * time.Minute
	// DefaultIdleTimeout is three OperationTimeouts: a healthy host
	// answers every Receive within one, with output or an
	// OperationTimeout fault, even while the script prints nothing.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxOutputBytes bounds stdout and stderr together per run:
	// the scripts print one JSON object, tens of KiB for the largest scan.
	DefaultMaxOutputBytes = 1 << 20
	defaultHTTPSPort      = 5986
	defaultHTTPPort       = 5985
	// cleanupTimeout bounds the Signal and Delete requests sent after a
	// run ends or is cancelled, so remote shells do not pile up.
	cleanupTimeout = 5 * time.Second
)

// WinRMRunner runs Patchway scripts over WinRM with masterzen/winrm:
// HTTPS on 5986 with certificate verification by default (the host's
// tls.ca_file or the system pool, tls.server_name), plain HTTP or
// unverified HTTPS only when the inventory asks for it and the
// TransportPolicy allows it; Basic or NTLM authentication (NTLM never
// downgrades to Basic). The script travels on stdin behind
// hostscript.CommandLine, so its size is not bounded by cmd.exe's command
// line. Each Run uses its own client, parameters and HTTP transport: never
// winrm.DefaultParameters, which is a shared pointer.
type WinRMRunner struct {
	Credentials CredentialResolver
	Transport   TransportPolicy
	// OperationTimeout is the WS-Management OperationTimeout of each
	// Receive (how long the host holds a poll open); default 20s.
	OperationTimeout time.Duration
	// DialTimeout bounds each TCP connect; default 10s.
	DialTimeout time.Duration
	// RunTimeout bounds a Run whose context carries no deadline; default 30m.
	RunTimeout time.Duration
	// IdleTimeout ends a run when the host has answered nothing for that
	// long: no reply with output or the command's end, no OperationTimeout
	// fault, no answer to Create, Command or Send; default 60s, and never
	// less than OperationTimeout plus one second.
	IdleTimeout time.Duration
	// MaxOutputBytes bounds stdout and stderr together per run; beyond it
	// the run fails as ScriptFailed; default 1 MiB.
	MaxOutputBytes int64
	// NoTLSResumption makes every run a full TLS handshake. By default a
	// host's runs resume the TLS session of its previous one (HTTP.sys
	// issues session tickets), which spares the certificate chain's
	// verification and the server's signature on all but the first; the
	// pin check (tls.cert_sha256, first contact) runs on resumed
	// connections too.
	NoTLSResumption bool

	sessions sessionCache
}

// sessionCache is a runner's TLS session cache, made at its first run and
// keyed (by crypto/tls) by the host's server name.
type sessionCache struct {
	once  sync.Once
	cache tls.ClientSessionCache
	// full and resumed count the runner's TLS handshakes.
	full, resumed atomic.Int64
}

// TLSHandshakes counts the runner's TLS handshakes so far: full ones and
// resumed ones (the benchmark reports the share).
func (r *WinRMRunner) TLSHandshakes() (full, resumed int64) {
	return r.sessions.full.Load(), r.sessions.resumed.Load()
}

// tlsSessions bounds the sessions kept: one per host, for more hosts than
// a worker reaches within a ticket's lifetime.
const tlsSessions = 16384

func (r *WinRMRunner) sessionCache() tls.ClientSessionCache {
	r.sessions.once.Do(func() { r.sessions.cache = tls.NewLRUClientSessionCache(tlsSessions) })
	return r.sessions.cache
}

// CheckCredential resolves a credential set and forgets it: whether a
// run could authenticate, asked before any host is touched.
func (r *WinRMRunner) CheckCredential(ctx context.Context, set string) error {
	if r.Credentials == nil {
		return errors.New("no credential resolver configured")
	}
	_, err := r.Credentials.Resolve(ctx, set)
	return err
}

// Run runs script on host and returns its output and exit code. The error
// is a *HostError whenever the script did not run to completion.
func (r *WinRMRunner) Run(ctx context.Context, host rollout.Host, script string) (RunResult, error) {
	ep, req, err := r.endpoint(host)
	if err != nil {
		return RunResult{}, err
	}
	if r.Credentials == nil {
		return RunResult{}, hostErr(contract.HostConfigInvalid, host.Name, "no credential resolver configured", nil)
	}
	cred, err := r.Credentials.Resolve(ctx, host.Credential)
	if err != nil {
		return RunResult{}, hostErr(contract.HostConfigInvalid, host.Name, "resolve credential set", err)
	}
	// The policy judges the set's worker-side binding against the
	// addresses this worker resolved, and the run dials only those: no
	// byte leaves before the answer, and a second DNS answer cannot move
	// the connection elsewhere.
	if ep.ips, err = resolveHost(ctx, ep.host); err != nil {
		return RunResult{}, hostErr(contract.Unreachable, host.Name, "resolve address", err)
	}
	if err := r.checkTransport(ctx, host, ep, req, cred); err != nil {
		return RunResult{}, err
	}

	// A run whose command never reached the host (the connection was
	// reset or dropped before the shell existed) is safe to repeat for
	// any script, installs included; once the command was sent, only a
	// read-only script (a scan) is repeated here, and for the others only
	// the caller knows (PatchHost scans before it reinstalls). The
	// library sends stdin on a second connection while the first polls
	// for output, so a lossy network cuts runs after the command too. A
	// refused connection is not repeated: nothing listens (the host is
	// down or rebooting), and the callers poll at their own pace.
	readOnly := hostscript.OpOf(script).ReadOnly()
	for attempt := 1; ; attempt++ {
		res, sent, err := r.runOnce(ctx, host, ep, cred, script)
		var he *contract.HostError
		var idle *idleError
		if err == nil || (sent && !readOnly) || attempt >= connectAttempts || ctx.Err() != nil ||
			!errors.As(err, &he) || he.Type != contract.Unreachable || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &idle) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(time.Duration(attempt) * connectBackoff):
		}
	}
}

// Retries of a run whose command never reached the host, or of a
// read-only run cut off by the network.
const (
	connectAttempts = 4
	connectBackoff  = 250 * time.Millisecond
)

// runOnce is one Run attempt over its own client and transport. sent says
// whether the command request left this process (it may have run).
func (r *WinRMRunner) runOnce(ctx context.Context, host rollout.Host, ep endpointConfig, cred Credential, script string) (_ RunResult, sent bool, _ error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if _, ok := runCtx.Deadline(); !ok {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeout(runCtx, cmp.Or(max(r.RunTimeout, 0), DefaultRunTimeout))
		defer stop()
	}

	opTimeout := cmp.Or(max(r.OperationTimeout, 0), DefaultOperationTimeout)
	tr := &runTransport{
		ctx:       runCtx,
		cancel:    cancel,
		cred:      cred,
		ntlm:      ep.ntlm,
		tlsConfig: ep.tlsConfig.Clone(),
		dialer:    &net.Dialer{Timeout: cmp.Or(max(r.DialTimeout, 0), DefaultDialTimeout), KeepAlive: 30 * time.Second},
		ips:       ep.ips,
		// The host answers a Receive within OperationTimeout; allow for
		// the round trip on top.
		requestTimeout: opTimeout + 15*time.Second,
		endpointURL:    ep.url(),
	}
	if tr.tlsConfig != nil {
		pin := tr.pinCertificate(rollout.NormalizeFingerprint(host.TLS.CertSHA256))
		tr.tlsConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.DidResume {
				r.sessions.resumed.Add(1)
			} else {
				r.sessions.full.Add(1)
			}
			return pin(cs)
		}
	}
	defer tr.closeIdle()
	// The idle clock starts now and restarts on each answer (touch).
	idle := max(cmp.Or(max(r.IdleTimeout, 0), DefaultIdleTimeout), opTimeout+time.Second)
	tr.idle = idle
	tr.idleTimer = time.AfterFunc(idle, func() { tr.setFailure(&idleError{after: idle}) })
	defer tr.idleTimer.Stop()

	params := winrm.NewParameters(isoDuration(opTimeout), "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return tr }
	endpoint := winrm.NewEndpoint(ep.host, ep.port, ep.https, false, nil, nil, nil, tr.requestTimeout)
	client, err := winrm.NewClientWithParameters(endpoint, cred.Username, cred.Password, params)
	if err != nil {
		return RunResult{}, false, hostErr(contract.HostConfigInvalid, host.Name, "create WinRM client", err)
	}

	// stdout and stderr share one bound; the library writes each Receive
	// round's output to them as it arrives.
	out := &outputBound{limit: r.MaxOutputBytes, over: tr.setFailure}
	if out.limit <= 0 {
		out.limit = DefaultMaxOutputBytes
	}
	stdout, stderr := &boundedWriter{b: out}, &boundedWriter{b: out}
	exit, runErr := client.RunWithContextWithInput(runCtx, hostscript.CommandLine(), stdout, stderr, strings.NewReader(script))
	res := RunResult{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: exit, TLSCertSHA256: tr.certificate()}
	// A cancelled run can come back with exit code 0 and only ctx.Err():
	// check every failure source before trusting the exit code.
	sent = tr.commandSent()
	if err := tr.failure(); err != nil {
		return res, sent, classifyTransportError(host, err)
	}
	if ctx.Err() != nil {
		return res, sent, hostErr(contract.Unreachable, host.Name, "run cancelled", ctx.Err())
	}
	if runCtx.Err() != nil {
		return res, sent, hostErr(contract.Unreachable, host.Name, "run timed out", context.Cause(runCtx))
	}
	if runErr != nil {
		return res, sent, classifyTransportError(host, runErr)
	}
	return res, sent, nil
}

// endpointConfig is a host's resolved connection settings.
type endpointConfig struct {
	host      string
	port      int
	https     bool
	ntlm      bool
	tlsConfig *tls.Config
	// ips are the addresses host resolved to when the policy was asked:
	// the only ones the run dials.
	ips []string
}

func (ep endpointConfig) url() string {
	scheme := "http"
	if ep.https {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/wsman", scheme, net.JoinHostPort(strings.Trim(ep.host, "[]"), strconv.Itoa(ep.port)))
}

// endpoint reads a host's transport settings; checkTransport polices them.
func (r *WinRMRunner) endpoint(host rollout.Host) (ep endpointConfig, req TransportRequest, _ error) {
	switch t := strings.ToLower(host.TLS.Transport); t {
	case "", "https":
		ep.https = true
	case "http":
	default:
		return ep, req, hostErr(contract.HostConfigInvalid, host.Name, fmt.Sprintf("tls.transport %q: want https or http", host.TLS.Transport), nil)
	}
	switch a := strings.ToLower(host.TLS.Auth); a {
	case "", "basic":
	case "ntlm":
		ep.ntlm = true
	default:
		return ep, req, hostErr(contract.HostConfigInvalid, host.Name, fmt.Sprintf("tls.auth %q: want basic or ntlm", host.TLS.Auth), nil)
	}
	h, p, err := splitAddress(host.Address, ep.https)
	if err != nil {
		return ep, req, hostErr(contract.HostConfigInvalid, host.Name, "address", err)
	}
	ep.host, ep.port = h, p

	req = TransportRequest{HTTP: !ep.https, Insecure: ep.https && host.TLS.Insecure, NTLMOverHTTP: ep.ntlm && !ep.https}
	if ep.https {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host.TLS.ServerName}
		if !r.NoTLSResumption {
			cfg.ClientSessionCache = r.sessionCache()
		}
		if req.Insecure {
			cfg.InsecureSkipVerify = true //nolint:gosec // used only once checkTransport allowed it
		} else if host.TLS.CAFile != "" {
			pem, err := os.ReadFile(host.TLS.CAFile)
			if err != nil {
				return ep, req, hostErr(contract.HostConfigInvalid, host.Name, "read tls.ca_file", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return ep, req, hostErr(contract.HostConfigInvalid, host.Name, fmt.Sprintf("tls.ca_file %s holds no PEM certificate", host.TLS.CAFile), nil)
			}
			cfg.RootCAs = pool
		}
		ep.tlsConfig = cfg
	}
	return ep, req, nil
}

// defaultTransportPolicy is the embedded policy, for a runner configured
// without one: every run is judged, credential binding included.
var defaultTransportPolicy = sync.OnceValues(func() (*policies.Engine, error) {
	return policies.Load(context.Background(), "")
})

// checkTransport asks the transport policy whether the host may be reached
// the way its inventory entry says and whether cred, as the worker binds
// it, may be sent there; it refuses on anything but an allow.
func (r *WinRMRunner) checkTransport(ctx context.Context, host rollout.Host, ep endpointConfig, req TransportRequest, cred Credential) error {
	policy := r.Transport
	if policy == nil {
		engine, err := defaultTransportPolicy()
		if err != nil {
			return hostErr(contract.TransportRefused, host.Name, "the embedded transport policy could not be loaded", err)
		}
		policy = engine
	}
	what := cmp.Or(req.String(), "HTTPS")
	in := policies.TransportInput{
		Host: host, Now: time.Now().UTC(),
		Credential: &policies.TransportCredential{
			Name: host.Credential, Tiers: cred.Binding.Tiers, Addresses: cred.Binding.Addresses, Transports: cred.Binding.Transports,
		},
		Target: &policies.TransportTarget{Host: strings.Trim(ep.host, "[]"), IPs: ep.ips},
	}
	td, err := policy.Transport(ctx, in)
	d := td.Decision
	if err != nil {
		// Fail closed: an unevaluable policy allows nothing.
		return hostErr(contract.TransportRefused, host.Name, fmt.Sprintf("transport policy for %s with credential set %q could not be evaluated", what, host.Credential), err)
	}
	if d.Allow {
		return nil
	}
	var rules []string
	for _, v := range d.Violations {
		rules = append(rules, fmt.Sprintf("%s: %s", v.Code, v.Msg))
	}
	if d.Error != "" {
		rules = append(rules, "policy error: "+d.Error)
	}
	if len(rules) == 0 {
		rules = append(rules, "denied without a reason")
	}
	return hostErr(contract.TransportRefused, host.Name,
		fmt.Sprintf("%s with credential set %q refused for tier %q by policy %s (%s)", what, host.Credential, host.Tier, d.Revision, strings.Join(rules, "; ")), nil)
}

// resolveHost returns the addresses host (a name or an IP literal) resolves
// to, as strings.
func resolveHost(ctx context.Context, host string) ([]string, error) {
	h := strings.Trim(host, "[]")
	if ip := net.ParseIP(h); ip != nil {
		return []string{ip.String()}, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, h)
	if err != nil {
		return nil, err
	}
	ips := make([]string, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP.String())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s resolves to no address", h)
	}
	return ips, nil
}

func splitAddress(addr string, https bool) (string, int, error) {
	if addr == "" {
		return "", 0, errors.New("empty address")
	}
	port := defaultHTTPSPort
	if !https {
		port = defaultHTTPPort
	}
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: the whole address is the host (brackets allowed for IPv6).
		h = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if strings.ContainsAny(h, "/ ") {
			return "", 0, fmt.Errorf("%q is not host or host:port", addr)
		}
		return h, port, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("%q: bad port %q", addr, ps)
	}
	if strings.Contains(h, ":") {
		// IPv6 literal: masterzen builds the URL as host:port.
		h = "[" + h + "]"
	}
	return h, p, nil
}

// runTransport is the winrm.Transporter of one Run. It exists because the
// library's own transports ignore the context for everything but the
// Receive loop, build TLS settings we cannot fully control, retry
// OperationTimeout faults in a tight loop, and let NTLM fall back to Basic.
// It sends every request under the run's context, paces OperationTimeout
// retries, sends cleanup requests (Signal, Delete) under a short detached
// context so remote shells are closed even after cancellation, and records
// the first authentication or stdin failure.
type runTransport struct {
	ctx            context.Context
	cancel         context.CancelCauseFunc
	cred           Credential
	ntlm           bool
	tlsConfig      *tls.Config
	dialer         *net.Dialer
	ips            []string
	requestTimeout time.Duration
	endpointURL    string

	once   sync.Once
	client *http.Client
	base   *http.Transport

	// idleTimer fails the run after idle without an answer (touch).
	idle      time.Duration
	idleTimer *time.Timer

	mu        sync.Mutex
	fail      error
	idleSpins int
	sent      bool
	cert      string
}

// pinCertificate is the TLS VerifyConnection of a run: it records the
// listener's certificate and, when the host's certificate is pinned
// (tls.cert_sha256, or the first contact of the run), refuses any other in
// the handshake, before a credential is sent. It runs after the usual
// chain verification and also when verification is off (tls.insecure),
// where the pin is the only proof of whom the worker talks to.
func (t *runTransport) pinCertificate(pin string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the listener presented no certificate")
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		got := hex.EncodeToString(sum[:])
		t.mu.Lock()
		t.cert = got
		t.mu.Unlock()
		if pin != "" && got != pin {
			return &pinError{want: pin, got: got}
		}
		return nil
	}
}

func (t *runTransport) certificate() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cert
}

// pinError: the listener's certificate is not the pinned one.
type pinError struct{ want, got string }

func (e *pinError) Error() string {
	return fmt.Sprintf("the listener presented a certificate with SHA-256 %s, not the pinned %s: another machine answers at this address; nothing was sent to it", e.got, e.want)
}

// touch restarts the idle clock: the host answered.
func (t *runTransport) touch() {
	if t.idleTimer != nil && t.failure() == nil {
		t.idleTimer.Reset(t.idle)
	}
}

// commandSent says whether a Command request was attempted: from then on
// the host may be running the script.
func (t *runTransport) commandSent() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// Transport implements winrm.Transporter; settings come from the runner,
// not from the endpoint.
func (t *runTransport) Transport(*winrm.Endpoint) error {
	t.once.Do(func() {
		t.base = &http.Transport{
			DialContext:           t.dialChecked,
			TLSClientConfig:       t.tlsConfig,
			TLSHandshakeTimeout:   t.dialer.Timeout,
			ResponseHeaderTimeout: t.requestTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
		}
		var rt http.RoundTripper = noBasicOverPlainHTTP{t.base}
		if t.ntlm {
			rt = ntlmssp.Negotiator{RoundTripper: noBasicRoundTripper{rt}}
		}
		t.client = &http.Client{Transport: rt, Timeout: t.requestTimeout}
	})
	return nil
}

// dialChecked dials the addresses the transport policy was shown, in
// order, never a fresh DNS answer.
func (t *runTransport) dialChecked(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if len(t.ips) == 0 {
		return nil, errors.New("no checked address to dial")
	}
	var firstErr error
	for _, ip := range t.ips {
		c, err := t.dialer.DialContext(ctx, network, net.JoinHostPort(ip, port))
		if err == nil {
			return c, nil
		}
		firstErr = cmp.Or(firstErr, err)
	}
	return nil, firstErr
}

func (t *runTransport) closeIdle() {
	if t.base != nil {
		t.base.CloseIdleConnections()
	}
}

func (t *runTransport) setFailure(err error) {
	t.mu.Lock()
	if t.fail == nil {
		t.fail = err
	}
	t.mu.Unlock()
	t.cancel(err)
}

func (t *runTransport) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fail
}

// Post implements winrm.Transporter.
func (t *runTransport) Post(_ *winrm.Client, request *soap.SoapMessage) (string, error) {
	body := request.String()
	cleanup := strings.Contains(body, "/windows/shell/Signal") || strings.Contains(body, "/transfer/Delete")
	send := strings.Contains(body, "/windows/shell/Send")
	receive := strings.Contains(body, "/windows/shell/Receive")
	if strings.Contains(body, "/windows/shell/Command") {
		t.mu.Lock()
		t.sent = true
		t.mu.Unlock()
	}

	ctx := t.ctx
	if cleanup {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(t.ctx), cleanupTimeout)
		defer cancel()
	} else if t.ctx.Err() != nil {
		// Not a url.Error and no "OperationTimeout"/"EOF" text: the
		// library's Receive loop stops on it instead of spinning.
		return "", fmt.Errorf("winrm request abandoned: %v", context.Cause(t.ctx))
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url(), strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("build WinRM request: %w", err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(t.cred.Username, t.cred.Password)
	resp, err := t.client.Do(req)
	if err != nil {
		if pe := (*plainBasicError)(nil); errors.As(err, &pe) {
			t.setFailure(pe)
		}
		if t.ctx.Err() != nil && !cleanup {
			return "", fmt.Errorf("winrm request abandoned: %v", context.Cause(t.ctx))
		}
		if send {
			// The library drops stdin errors; without the script the
			// remote process would wait for input until the deadline.
			t.setFailure(fmt.Errorf("send script on stdin: %w", err))
		}
		return "", fmt.Errorf("winrm request: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return "", fmt.Errorf("read WinRM response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		err := &authError{status: resp.StatusCode}
		t.setFailure(err)
		return "", err
	case resp.StatusCode == http.StatusOK:
		// masterzen/winrm parses a 200 reply without checking that it is
		// XML (ParseSlurpOutputErrResponse dereferences a nil document for
		// "&" or an empty body, in a goroutine nothing recovers), and loops
		// without pause on a well-formed reply of another shape. Only a
		// reply of the shape its parser reads is handed over.
		op := requestOp(body)
		info, err := validateReply(op, raw)
		if err != nil {
			if !cleanup {
				t.setFailure(err)
			}
			// A fixed text: the library keeps polling on an error that
			// mentions OperationTimeout, and the reply could.
			return "", errReplyRejected
		}
		if !receive || info.output > 0 || info.done {
			t.touch()
		}
		if receive {
			if info.output > 0 || info.done {
				t.resetSpins()
			} else {
				// An empty, unfinished ReceiveResponse answered at once
				// would be polled again at once.
				t.pace()
			}
		}
		return string(raw), nil
	}
	text := string(raw)
	if receive && isOperationTimeout(text) {
		// The host's "still running, nothing to say": an answer.
		t.touch()
		// The library retries OperationTimeout at once; a host that
		// answers it immediately would make that a busy loop.
		t.pace()
		return "", fmt.Errorf("http error %d: OperationTimeout", resp.StatusCode)
	}
	if send {
		t.setFailure(fmt.Errorf("send script on stdin: HTTP %d: %s", resp.StatusCode, faultText(text)))
	}
	return "", fmt.Errorf("WinRM HTTP %d: %s", resp.StatusCode, faultText(text))
}

// url is the endpoint's URL: the winrm.Client builds the same one but
// keeps it private.
func (t *runTransport) url() string { return t.endpointURL }

func (t *runTransport) resetSpins() {
	t.mu.Lock()
	t.idleSpins = 0
	t.mu.Unlock()
}

// pace sleeps 100ms, 200ms, ... up to 2s between consecutive
// OperationTimeout faults, returning early when the run ends.
func (t *runTransport) pace() {
	t.mu.Lock()
	n := t.idleSpins
	t.idleSpins++
	t.mu.Unlock()
	d := min(100*time.Millisecond<<min(n, 5), 2*time.Second)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.ctx.Done():
	}
}

func isOperationTimeout(body string) bool {
	return strings.Contains(body, "2150858793") || strings.Contains(body, "OperationTimeout")
}

// faultText extracts a short, printable reason from a SOAP fault body.
func faultText(body string) string {
	for _, tag := range []string{"<f:Message>", "<s:Text", "<env:Text", "<soap:Text"} {
		if i := strings.Index(body, tag); i >= 0 {
			rest := body[i+len(tag):]
			if j := strings.IndexByte(rest, '>'); j >= 0 && tag[len(tag)-1] != '>' {
				rest = rest[j+1:]
			}
			if k := strings.IndexByte(rest, '<'); k >= 0 {
				rest = rest[:k]
			}
			return hostscript.Truncate(strings.TrimSpace(rest), 200)
		}
	}
	return hostscript.Truncate(strings.TrimSpace(body), 200)
}

// noBasicRoundTripper refuses a request that carries Basic credentials: the
// NTLM negotiator only sends them when the host did not offer NTLM or
// Negotiate, and a host configured for NTLM must not receive the password.
type noBasicRoundTripper struct{ next http.RoundTripper }

func (n noBasicRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.Header.Get("Authorization"), "Basic ") {
		return nil, &authError{downgrade: true}
	}
	return n.next.RoundTrip(req)
}

// noBasicOverPlainHTTP refuses any request to an http:// URL that carries
// Basic credentials, before a byte is written. The decision is the
// transport policy's (basic_over_http); this is a safety net under it, so
// that a replaced or wrong policy still cannot put a password on the wire
// in clear. It sits under the NTLM negotiator, which carries the
// credentials in a Basic header and sends them only if the host offers no
// NTLM.
type noBasicOverPlainHTTP struct{ next http.RoundTripper }

func (n noBasicOverPlainHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.URL.Scheme, "http") && strings.HasPrefix(req.Header.Get("Authorization"), "Basic ") {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &plainBasicError{}
	}
	return n.next.RoundTrip(req)
}

// plainBasicError is a request noBasicOverPlainHTTP refused.
type plainBasicError struct{}

func (*plainBasicError) Error() string {
	return "refusing to send Basic credentials over plain http: they would travel in clear"
}

// authError is a rejected authentication. It never carries the credential.
type authError struct {
	status    int
	downgrade bool
}

func (e *authError) Error() string {
	if e.downgrade {
		return "host did not offer NTLM or Negotiate; refusing to send Basic credentials to a host configured for NTLM"
	}
	return fmt.Sprintf("host rejected the credentials (HTTP %d)", e.status)
}

// classifyTransportError maps a run failure to a HostError class.
func classifyTransportError(host rollout.Host, err error) error {
	var he *contract.HostError
	if errors.As(err, &he) {
		return err
	}
	var oe *outputError
	if errors.As(err, &oe) {
		return hostErr(contract.ScriptFailed, host.Name, oe.Error(), nil)
	}
	var pe *plainBasicError
	if errors.As(err, &pe) {
		return hostErr(contract.TransportRefused, host.Name, pe.Error(), nil)
	}
	var pin *pinError
	if errors.As(err, &pin) {
		return hostErr(contract.IdentityMismatch, host.Name, pin.Error(), nil)
	}
	var ie *idleError
	if errors.As(err, &ie) {
		return hostErr(contract.Unreachable, host.Name, "run ended", ie)
	}
	var re *replyError
	if errors.As(err, &re) {
		// The host answered, so it is not unreachable; what it answered
		// cannot be read, so the script's outcome is unknown: a failed run.
		return hostErr(contract.ScriptFailed, host.Name, "host sent a malformed WS-Management reply", re)
	}
	var ae *authError
	if errors.As(err, &ae) {
		return hostErr(contract.AuthFailed, host.Name, fmt.Sprintf("credential set %q", host.Credential), ae)
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return hostErr(contract.HostConfigInvalid, host.Name, "certificate of the WinRM listener did not verify (set tls.ca_file or tls.server_name)", err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return hostErr(contract.Unreachable, host.Name, "connection refused", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return hostErr(contract.Unreachable, host.Name, "timed out", err)
	}
	return hostErr(contract.Unreachable, host.Name, "WinRM request failed", err)
}

// isoDuration formats d as an xs:duration (PT20S) for OperationTimeout.
func isoDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("PT%dS", s)
}

// Bounds of a WS-Management reply. The runner asks for envelopes of at
// most 150 KiB (MaxEnvelopeSize 153600), and Windows keeps to it; a reply
// many times that size is not one, and would otherwise be held in memory
// several times over (the raw bytes, a string copy, the library's tree).
const (
	maxReplyBytes = 4 << 20
	// maxReplyDepth: WS-Management replies nest about eight elements deep.
	maxReplyDepth = 64
	// maxReplyAttrBytes: attribute values are ids and URIs.
	maxReplyAttrBytes = 8 << 10
	// maxReplyTokens bounds the validation loop on its own, whatever the
	// decoder does with the input.
	maxReplyTokens = maxReplyBytes
)

// errReplyRejected is what the library receives instead of a reply that
// failed validation; the reason is the run's failure (replyError).
var errReplyRejected = errors.New("WS-Management reply rejected")

// replyError is a 200 reply that is not a WS-Management reply of the shape
// its request expects. It never carries the reply's text beyond element
// names.
type replyError struct {
	op     string
	size   int
	reason string
}

func (e *replyError) Error() string {
	op := e.op
	if op == "" {
		op = "a request"
	}
	return fmt.Sprintf("reply to %s (%d bytes) rejected: %s", op, e.size, e.reason)
}

// requestOp names the WS-Management shell operation of a request body.
func requestOp(body string) string {
	for _, op := range []struct{ marker, name string }{
		{"/windows/shell/Receive", "Receive"},
		{"/windows/shell/Send", "Send"},
		{"/windows/shell/Command", "Command"},
		{"/windows/shell/Signal", "Signal"},
		{"/transfer/Create", "Create"},
		{"/transfer/Delete", "Delete"},
	} {
		if strings.Contains(body, op.marker) {
			return op.name
		}
	}
	return ""
}

// replyInfo is what validateReply read from an accepted reply.
type replyInfo struct {
	// output is the number of bytes the library will decode from the
	// stdout and stderr streams of a ReceiveResponse.
	output int
	// done: an element carries State=".../CommandState/Done".
	done bool
}

// expectedBodyChild is the first child of the SOAP Body that the client
// library's parser for each operation relies on (Signal and Delete replies
// are not parsed).
var expectedBodyChild = map[string]xml.Name{
	"Create":  {Space: soap.NS_TRANSFER, Local: "ResourceCreated"},
	"Command": {Space: soap.NS_WIN_SHELL, Local: "CommandResponse"},
	"Send":    {Space: soap.NS_WIN_SHELL, Local: "SendResponse"},
	"Receive": {Space: soap.NS_WIN_SHELL, Local: "ReceiveResponse"},
}

const (
	actionCommandResponse = soap.NS_WIN_SHELL + "/CommandResponse"
	stateDone             = soap.NS_WIN_SHELL + "/CommandState/Done"
)

// textCapture collects the string value (all descendant text) of one
// element, as the library's XPath ResValue reads it.
type textCapture struct {
	depth int
	text  []byte
	dst   *string
	// stream: the text is base64 stream content to count.
	stream bool
}

// validateReply checks that raw, the body of a 200 reply to op, is what
// masterzen/winrm's parser for op reads without failing: well-formed XML
// (decoded as its parser decodes it: strict, with the same charset
// readers), one SOAP 1.2 Envelope as the root with at most one Header and
// exactly one Body, no DTD, bounded depth and attribute sizes, and the Body
// child and elements that op's parser reads (Create: a ShellId selector;
// Command: the CommandResponse action and a CommandId; Receive: a
// ReceiveResponse). The document is read once, token by token.
func validateReply(op string, raw []byte) (replyInfo, error) {
	var info replyInfo
	bad := func(format string, a ...any) (replyInfo, error) {
		return replyInfo{}, &replyError{op: op, size: len(raw), reason: fmt.Sprintf(format, a...)}
	}
	if len(raw) > maxReplyBytes {
		return bad("larger than the %d-byte limit", maxReplyBytes)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.Strict = true
	dec.CharsetReader = charset.NewReaderLabel

	var (
		depth                          int
		rootSeen, rootDone             bool
		inBody                         bool
		headers, bodies, bodyKids      int
		bodyChild                      xml.Name
		action, shellID, commandID     string
		actionSeen, shellSeen, cmdSeen bool
		captures                       []*textCapture
	)
	for tokens := 0; ; tokens++ {
		if tokens >= maxReplyTokens {
			return bad("more than %d XML tokens", maxReplyTokens)
		}
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad("not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if rootDone {
				return bad("a second root element <%s>", shortName(t.Name))
			}
			if depth >= maxReplyDepth {
				return bad("elements nested deeper than %d", maxReplyDepth)
			}
			for _, a := range t.Attr {
				if len(a.Value) > maxReplyAttrBytes {
					return bad("attribute %s of <%s> is %d bytes, over %d", a.Name.Local, shortName(t.Name), len(a.Value), maxReplyAttrBytes)
				}
			}
			switch depth {
			case 0:
				if t.Name != (xml.Name{Space: soap.NS_SOAP_ENV, Local: "Envelope"}) {
					return bad("root element <%s> is not a SOAP 1.2 Envelope", shortName(t.Name))
				}
				rootSeen = true
			case 1:
				switch t.Name {
				case xml.Name{Space: soap.NS_SOAP_ENV, Local: "Header"}:
					headers++
				case xml.Name{Space: soap.NS_SOAP_ENV, Local: "Body"}:
					bodies++
					inBody = true
				default:
					return bad("<%s> in the Envelope, where only Header and Body belong", shortName(t.Name))
				}
				if headers > 1 || bodies > 1 {
					return bad("more than one SOAP %s", t.Name.Local)
				}
			case 2:
				if inBody {
					bodyKids++
					if bodyKids == 1 {
						bodyChild = t.Name
					}
				}
			}
			attr := func(local string) (string, bool) {
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == local {
						return a.Value, true
					}
				}
				return "", false
			}
			if v, _ := attr("State"); v == stateDone {
				info.done = true
			}
			switch t.Name {
			case xml.Name{Space: soap.NS_ADDRESSING, Local: "Action"}:
				if !actionSeen {
					actionSeen = true
					captures = append(captures, &textCapture{depth: depth, dst: &action})
				}
			case xml.Name{Space: soap.NS_WSMAN_DMTF, Local: "Selector"}:
				if v, _ := attr("Name"); v == "ShellId" && !shellSeen {
					shellSeen = true
					captures = append(captures, &textCapture{depth: depth, dst: &shellID})
				}
			case xml.Name{Space: soap.NS_WIN_SHELL, Local: "CommandId"}:
				if !cmdSeen {
					cmdSeen = true
					captures = append(captures, &textCapture{depth: depth, dst: &commandID})
				}
			case xml.Name{Space: soap.NS_WIN_SHELL, Local: "Stream"}:
				if v, _ := attr("Name"); v == "stdout" || v == "stderr" {
					captures = append(captures, &textCapture{depth: depth, stream: true})
				}
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 1 {
				inBody = false
			}
			if depth == 0 {
				rootDone = true
			}
			for len(captures) > 0 && captures[len(captures)-1].depth == depth {
				c := captures[len(captures)-1]
				captures = captures[:len(captures)-1]
				if c.stream {
					// The library decodes with errors ignored, keeping
					// what decoded before the error.
					n, _ := base64.StdEncoding.Decode(make([]byte, base64.StdEncoding.DecodedLen(len(c.text))), c.text)
					info.output += n
				} else {
					*c.dst = string(c.text)
				}
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return bad("text outside the root element")
			}
			for _, c := range captures {
				c.text = append(c.text, t...)
			}
		case xml.Directive:
			return bad("an XML directive (DTD), which WS-Management never sends")
		}
	}
	if !rootSeen {
		return bad("no XML element")
	}
	if bodies == 0 {
		return bad("no SOAP Body")
	}
	want, parsed := expectedBodyChild[op]
	if !parsed {
		return info, nil
	}
	if bodyKids == 0 {
		return bad("empty SOAP Body, want <%s>", shortName(want))
	}
	if bodyChild != want {
		return bad("SOAP Body holds <%s>, want <%s>", shortName(bodyChild), shortName(want))
	}
	switch op {
	case "Create":
		if strings.TrimSpace(shellID) == "" {
			return bad("no ShellId selector")
		}
	case "Command":
		if action != actionCommandResponse {
			return bad("action %q, want %s", hostscript.Truncate(action, 80), actionCommandResponse)
		}
		if strings.TrimSpace(commandID) == "" {
			return bad("no CommandId")
		}
	}
	return info, nil
}

// shortName prints an element name for an error: the local name, with
// the namespace's last path segment, both truncated.
func shortName(n xml.Name) string {
	space := n.Space
	if i := strings.LastIndexByte(space, '/'); i >= 0 {
		space = space[i+1:]
	}
	local := hostscript.Truncate(n.Local, 40)
	if space == "" {
		return local
	}
	return hostscript.Truncate(space, 20) + ":" + local
}

// outputBound is the shared output budget of one run's stdout and stderr.
type outputBound struct {
	limit int64
	over  func(error)

	mu   sync.Mutex
	n    int64
	full bool
}

// boundedWriter keeps what the host printed up to the run's bound. Past it,
// it still accepts (and drops) every write: the library's output goroutine
// blocks on a pipe nobody reads if a writer fails, so the run is ended by
// failing it instead (over cancels the run).
type boundedWriter struct {
	b   *outputBound
	buf bytes.Buffer
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	b := w.b
	b.mu.Lock()
	b.n += int64(len(p))
	keep := !b.full && b.n <= b.limit
	first := !keep && !b.full
	if !keep {
		b.full = true
	}
	n, limit := b.n, b.limit
	if keep {
		w.buf.Write(p)
	}
	b.mu.Unlock()
	if first {
		b.over(&outputError{limit: limit, got: n})
	}
	return len(p), nil
}

func (w *boundedWriter) String() string {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.buf.String()
}

// outputError: the host printed more than the run's bound.
type outputError struct{ limit, got int64 }

func (e *outputError) Error() string {
	return fmt.Sprintf("script output exceeds the %d-byte limit: %d bytes of stdout and stderr received when the run was stopped", e.limit, e.got)
}

// idleError: the host answered nothing for the idle timeout.
type idleError struct{ after time.Duration }

func (e *idleError) Error() string {
	return fmt.Sprintf("host answered nothing for %s (idle timeout): no output, no WS-Management reply", e.after)
}
