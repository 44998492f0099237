package activities

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"

	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func hostErrorType(err error) string {
	var he *contract.HostError
	if errors.As(err, &he) {
		return he.Type
	}
	return ""
}

// transportFunc adapts a function to TransportPolicy for rule-shape tests;
// the real policy is exercised in the fleet tests.
type transportFunc func(ctx context.Context, in policies.TransportInput) (policies.TransportDecision, error)

func (f transportFunc) Transport(ctx context.Context, in policies.TransportInput) (policies.TransportDecision, error) {
	return f(ctx, in)
}

func decision(allow bool, v ...rollout.Violation) (policies.TransportDecision, error) {
	return policies.TransportDecision{Decision: rollout.Decision{Allow: allow, Revision: "rev1", Violations: v}}, nil
}

func TestRunnerTransportRules(t *testing.T) {
	creds := StaticCredentials{"fleet": {Username: "u", Password: "p"}}
	closed := closedAddr(t)
	tests := []struct {
		name     string
		tls      rollout.HostTLS
		policy   TransportPolicy
		wantType string
		wantMsg  string
	}{
		{"plain HTTP without a policy is refused", rollout.HostTLS{Transport: "http"}, nil, contract.TransportRefused, "only HTTPS with certificate verification"},
		{"insecure HTTPS without a policy is refused", rollout.HostTLS{Insecure: true}, nil, contract.TransportRefused, "without certificate verification"},
		{"plain HTTP denied by policy names the rule", rollout.HostTLS{Transport: "http"}, transportFunc(func(context.Context, policies.TransportInput) (policies.TransportDecision, error) {
			return decision(false, rollout.Violation{Code: "http_not_allowed", Msg: "production hosts need HTTPS"})
		}), contract.TransportRefused, "http_not_allowed"},
		{"NTLM over HTTP is named in the refusal", rollout.HostTLS{Transport: "http", Auth: "ntlm"}, transportFunc(func(context.Context, policies.TransportInput) (policies.TransportDecision, error) {
			return decision(false, rollout.Violation{Code: "ntlm_over_http_not_allowed", Msg: "no"})
		}), contract.TransportRefused, "NTLM over plain HTTP"},
		{"policy error fails closed", rollout.HostTLS{Transport: "http"}, transportFunc(func(context.Context, policies.TransportInput) (policies.TransportDecision, error) {
			return policies.TransportDecision{}, errors.New("boom")
		}), contract.TransportRefused, "could not be evaluated"},
		{"allowed plain HTTP connects and finds nobody", rollout.HostTLS{Transport: "http"}, transportFunc(func(context.Context, policies.TransportInput) (policies.TransportDecision, error) {
			return decision(true)
		}), contract.Unreachable, "connection refused"},
		{"default HTTPS needs no policy", rollout.HostTLS{}, nil, contract.Unreachable, "connection refused"},
		{"unknown transport", rollout.HostTLS{Transport: "ftp"}, nil, contract.HostConfigInvalid, "want https or http"},
		{"unknown auth", rollout.HostTLS{Auth: "kerberos"}, nil, contract.HostConfigInvalid, "want basic or ntlm"},
		{"missing CA file", rollout.HostTLS{CAFile: "/nonexistent/ca.pem"}, nil, contract.HostConfigInvalid, "tls.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &WinRMRunner{Credentials: creds, Transport: tt.policy, DialTimeout: time.Second}
			host := rollout.Host{Name: "web-01", Address: closed, Tier: rollout.TierProduction, Credential: "fleet", TLS: tt.tls}
			_, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
			if got := hostErrorType(err); got != tt.wantType {
				t.Fatalf("error type = %q (%v), want %q", got, err, tt.wantType)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), "web-01") {
				t.Errorf("error %q should name the host and contain %q", err, tt.wantMsg)
			}
		})
	}
}

// tlsServer starts an HTTPS server on loopback and writes its CA to a file.
func tlsServer(t *testing.T, h http.Handler) (addr, caFile string) {
	t.Helper()
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(ts.URL, "https://"), caFile
}

func TestRunnerTLSAndAuthentication(t *testing.T) {
	var mu sync.Mutex
	var sawBasic []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Basic ") {
			sawBasic = append(sawBasic, a)
		}
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	addr, ca := tlsServer(t, handler)
	creds := StaticCredentials{"fleet": {Username: "u", Password: "pw-never-sent"}}
	tests := []struct {
		name      string
		tls       rollout.HostTLS
		wantType  string
		wantMsg   string
		wantBasic bool
	}{
		{"unknown CA is a configuration error", rollout.HostTLS{}, contract.HostConfigInvalid, "did not verify", false},
		{"wrong server name is a configuration error", rollout.HostTLS{CAFile: ca, ServerName: "dc01.corp.example"}, contract.HostConfigInvalid, "did not verify", false},
		{"verified listener rejecting Basic is AuthFailed", rollout.HostTLS{CAFile: ca}, contract.AuthFailed, `credential set "fleet"`, true},
		{"NTLM never downgrades to Basic", rollout.HostTLS{CAFile: ca, Auth: "ntlm"}, contract.AuthFailed, "refusing to send Basic", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			sawBasic = nil
			mu.Unlock()
			r := &WinRMRunner{Credentials: creds}
			host := rollout.Host{Name: "dc-01", Address: addr, Credential: "fleet", TLS: tt.tls}
			_, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
			if got := hostErrorType(err); got != tt.wantType {
				t.Fatalf("error type = %q (%v), want %q", got, err, tt.wantType)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "pw-never-sent") {
				t.Errorf("error leaks the password: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := len(sawBasic) > 0; got != tt.wantBasic {
				t.Errorf("server saw Basic credentials = %v, want %v", got, tt.wantBasic)
			}
		})
	}
}

func TestSplitAddressDefaultsPorts(t *testing.T) {
	tests := []struct {
		addr     string
		https    bool
		wantHost string
		wantPort int
	}{
		{"dc01.corp.example", true, "dc01.corp.example", 5986},
		{"dc01.corp.example", false, "dc01.corp.example", 5985},
		{"127.0.0.5:15986", true, "127.0.0.5", 15986},
		{"[::1]:5986", true, "[::1]", 5986},
	}
	for _, tt := range tests {
		h, p, err := splitAddress(tt.addr, tt.https)
		if err != nil || h != tt.wantHost || p != tt.wantPort {
			t.Errorf("splitAddress(%q, %v) = %q, %d, %v; want %q, %d", tt.addr, tt.https, h, p, err, tt.wantHost, tt.wantPort)
		}
	}
	if _, _, err := splitAddress("host:99999", true); err == nil {
		t.Error("port 99999 accepted")
	}
}

func TestRunnerAppliesTheTransportPolicyPerTier(t *testing.T) {
	engine, err := policies.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	r := &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "u", Password: "p"}}, Transport: engine, DialTimeout: time.Second}
	closed := closedAddr(t)
	tests := []struct {
		name     string
		tier     rollout.Tier
		tls      rollout.HostTLS
		wantType string
		wantMsg  string
	}{
		{"production over plain HTTP is refused", rollout.TierProduction, rollout.HostTLS{Transport: "http"}, contract.TransportRefused, "http_not_allowed"},
		{"production without verification is refused", rollout.TierProduction, rollout.HostTLS{Insecure: true}, contract.TransportRefused, "insecure_not_allowed"},
		{"lab over plain HTTP may connect", rollout.TierLab, rollout.HostTLS{Transport: "http"}, contract.Unreachable, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := rollout.Host{Name: "h-" + string(tt.tier), Address: closed, Tier: tt.tier, Credential: "fleet", TLS: tt.tls}
			_, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
			if got := hostErrorType(err); got != tt.wantType || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v (type %q), want type %s containing %q", err, got, tt.wantType, tt.wantMsg)
			}
		})
	}
}
