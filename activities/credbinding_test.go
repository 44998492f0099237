package activities

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// recordingListener is the attacker's listener: it counts connections and
// records every request's Authorization header.
type recordingListener struct {
	addr  string
	mu    sync.Mutex
	conns int
	auths []string
}

func (l *recordingListener) seen() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns, append([]string(nil), l.auths...)
}

type countingListener struct {
	net.Listener
	rec *recordingListener
}

func (c countingListener) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.rec.mu.Lock()
		c.rec.conns++
		c.rec.mu.Unlock()
	}
	return conn, err
}

// attackerListener listens on 127.0.0.2, an address the credential sets
// below are not bound to, over plain HTTP.
func attackerListener(t *testing.T) *recordingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	rec := &recordingListener{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auths = append(rec.auths, r.Header.Get("Authorization"))
		rec.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(countingListener{ln, rec}) }()
	t.Cleanup(func() { srv.Close() })
	return rec
}

// allowAll is a transport policy replaced by one that allows everything.
var allowAll = transportFunc(func(context.Context, policies.TransportInput) (policies.TransportDecision, error) {
	return decision(true)
})

// TestCredentialAttackIsReplayedAndTheListenerReceivesNothing replays issue
// 17's finding: one inventory host with tier "lab", transport "http",
// credential "fleet" and an address the attacker listens on. The set's
// binding lives on the worker, so the host is refused before a byte is
// sent, and naming the set and the binding that refused it.
func TestCredentialAttackIsReplayedAndTheListenerReceivesNothing(t *testing.T) {
	const password = "fleet-pw-9f3c1e"
	engine, err := policies.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	fleetEnv := func(extra map[string]string) CredentialResolver {
		env := map[string]string{"PATCHWAY_CRED_FLEET_USER": "patchway", "PATCHWAY_CRED_FLEET_PASSWORD": password}
		for k, v := range extra {
			env[k] = v
		}
		return &EnvCredentials{LookupEnv: envMap(env)}
	}
	tests := []struct {
		name     string
		creds    CredentialResolver
		policy   TransportPolicy
		auth     string
		wantMsgs []string
	}{
		{"the fleet's set bound to 127.0.0.1 over https", fleetEnv(map[string]string{"PATCHWAY_CRED_FLEET_ADDRESSES": "127.0.0.1/32"}), engine, "",
			[]string{`credential set "fleet"`, "credential_address_not_bound", "credential_transport_not_bound", "basic_over_http"}},
		{"a set with no binding at all (an upgraded worker)", fleetEnv(nil), engine, "",
			[]string{"credential_addresses_unbound", "ADDRESSES key"}},
		{"a set bound to all of loopback over http still never sends Basic in clear", fleetEnv(map[string]string{"PATCHWAY_CRED_FLEET_ADDRESSES": "127.0.0.0/8", "PATCHWAY_CRED_FLEET_TRANSPORTS": "https,http"}), engine, "",
			[]string{"basic_over_http"}},
		{"NTLM over http to an address the set is not bound to", fleetEnv(map[string]string{"PATCHWAY_CRED_FLEET_ADDRESSES": "127.0.0.1/32", "PATCHWAY_CRED_FLEET_TRANSPORTS": "https,http"}), engine, "ntlm",
			[]string{"credential_address_not_bound", "127.0.0.2"}},
		{"a policy replaced by allow-all: the transport layer refuses Basic over http", fleetEnv(nil), allowAll, "",
			[]string{"refusing to send Basic credentials over plain http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := attackerListener(t)
			r := &WinRMRunner{Credentials: tt.creds, Transport: tt.policy, DialTimeout: time.Second, IdleTimeout: 3 * time.Second, OperationTimeout: time.Second}
			host := rollout.Host{Name: "lab-07", Address: rec.addr, Tier: rollout.TierLab, Credential: "fleet",
				TLS: rollout.HostTLS{Transport: "http", Auth: tt.auth}}
			_, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
			if got := hostErrorType(err); got != contract.TransportRefused {
				t.Fatalf("error type = %q (%v), want %s", got, err, contract.TransportRefused)
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error leaks the password: %v", err)
			}
			// Give a stray request time to land.
			time.Sleep(50 * time.Millisecond)
			conns, auths := rec.seen()
			if conns != 0 || len(auths) != 0 {
				t.Errorf("listener saw %d connections, Authorization headers %q; want nothing", conns, auths)
			}
		})
	}
}

// TestAttackListenerSeesWhatIsSent is the control of the test above: the
// same listener does record a request the runner is allowed to send (NTLM
// over http under an allow-all policy: an anonymous first request), and no
// Basic credentials even then.
func TestAttackListenerSeesWhatIsSent(t *testing.T) {
	rec := attackerListener(t)
	r := &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "patchway", Password: "pw-control"}}, Transport: allowAll, DialTimeout: time.Second}
	host := rollout.Host{Name: "lab-07", Address: rec.addr, Tier: rollout.TierLab, Credential: "fleet", TLS: rollout.HostTLS{Transport: "http", Auth: "ntlm"}}
	_, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
	if err == nil {
		t.Fatal("run against a listener that answers 401 succeeded")
	}
	conns, auths := rec.seen()
	if conns == 0 || len(auths) == 0 {
		t.Fatalf("listener saw %d connections, %d requests: the harness would not see a leak", conns, len(auths))
	}
	for _, a := range auths {
		if strings.HasPrefix(a, "Basic ") {
			t.Errorf("listener received Basic credentials %q", a)
		}
	}
}
