package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// pinnedListener is a WinRM listener over TLS that records the
// Authorization header of every request it gets, and the SHA-256 of its
// certificate.
func pinnedListener(t *testing.T) (addr, fingerprint string, auths func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(srv.Certificate().Raw)
	return srv.Listener.Addr().String(), hex.EncodeToString(sum[:]), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestAPinnedCertificateRefusesAnotherListenerBeforeTheCredential: a host
// whose inventory pins its listener's certificate (tls.cert_sha256) is
// refused as IdentityMismatch when another certificate answers, and the
// listener receives no request, so no credential; with the right pin (in
// the colon form certutil prints) the same listener does get the request,
// so the harness would see a leak.
func TestAPinnedCertificateRefusesAnotherListenerBeforeTheCredential(t *testing.T) {
	const password = "pin-pw-71c2"
	tests := []struct {
		name      string
		pin       func(real string) string
		wantType  string
		wantAuths bool
	}{
		{"another certificate than the pinned one", func(string) string { return strings.Repeat("ab", 32) }, contract.IdentityMismatch, false},
		{"the pinned certificate, written with colons", func(real string) string {
			var parts []string
			for i := 0; i < len(real); i += 2 {
				parts = append(parts, strings.ToUpper(real[i:i+2]))
			}
			return strings.Join(parts, ":")
		}, contract.AuthFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, fp, auths := pinnedListener(t)
			r := &WinRMRunner{
				Credentials: StaticCredentials{"lab": {Username: "patchway", Password: password,
					Binding: CredentialBinding{Addresses: []string{"127.0.0.0/8"}, Tiers: []string{"lab"}, Transports: []string{"https", "https_insecure"}}}},
				DialTimeout: time.Second, IdleTimeout: 3 * time.Second, OperationTimeout: time.Second,
			}
			// Verification off, as lab hosts with self-signed listeners
			// run: the pin is then the only proof of whom the worker
			// talks to.
			host := rollout.Host{Name: "lab-07", Address: addr, Tier: rollout.TierLab, Credential: "lab",
				TLS: rollout.HostTLS{Insecure: true, CertSHA256: rollout.NormalizeFingerprint(tt.pin(fp))}}
			_, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
			if got := hostErrorType(err); got != tt.wantType {
				t.Fatalf("error type = %q (%v), want %s", got, err, tt.wantType)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error leaks the password: %v", err)
			}
			got := auths()
			if tt.wantAuths != (len(got) > 0) {
				t.Errorf("listener saw Authorization headers %q; want some: %v", got, tt.wantAuths)
			}
			if tt.wantType == contract.IdentityMismatch && !strings.Contains(err.Error(), fp) {
				t.Errorf("error %q does not name the certificate presented (%s)", err, fp)
			}
		})
	}
}
