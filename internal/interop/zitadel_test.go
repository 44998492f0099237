// Package interop proves Patchway's identity path against an OpenID
// Connect provider this project did not write: zitadel/oidc's example
// provider (its op package, go-jose v4, RSA keys), run on loopback. Tests
// only; nothing of Patchway imports it.
package interop

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/oidc"
	"github.com/patchway/patchway/policies"
)

// startZitadel runs the example provider on a loopback port and returns
// its issuer URL. Its one user is "test-user@127.0.0.1" (subject id1),
// password "verysecure".
func startZitadel(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + l.Addr().String()
	st := storage.NewStorage(storage.NewUserStore(issuer))
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, st, slog.New(slog.DiscardHandler), false), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return issuer
}

// redirectURI is where the provider sends the person back; nothing
// listens there, the test reads the redirect.
const redirectURI = "http://127.0.0.1:9/callback"

// signIn runs the provider's own sign-in (OpenID Connect implicit flow,
// response_type id_token) for a client whose id is audience, as a browser
// would: authorize, the login form, the callback. It returns the ID
// token, a JWT the provider signed.
func signIn(t *testing.T, issuer, audience string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := func(resp *http.Response, err error) *url.URL {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("%s %s: %s, no redirect", resp.Request.Method, resp.Request.URL.Path, resp.Status)
		}
		return loc
	}
	q := url.Values{"client_id": {audience}, "redirect_uri": {redirectURI}, "response_type": {"id_token"},
		"scope": {"openid profile email"}, "nonce": {"n-0S6_WzA2Mj"}, "state": {"s1"}}
	var disc struct {
		Authorization string `json:"authorization_endpoint"`
	}
	resp, err := c.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Authorization == "" {
		t.Fatalf("discovery: %v, authorization_endpoint %q", err, disc.Authorization)
	}
	login := next(c.Get(disc.Authorization + "?" + q.Encode()))
	if !login.IsAbs() {
		login = must(url.Parse(issuer)).ResolveReference(login)
	}
	id := login.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("authorize sent the browser to %s, not the login page", login)
	}
	callback := next(c.PostForm(issuer+"/login/username", url.Values{"id": {id}, "username": {"test-user@127.0.0.1"}, "password": {"verysecure"}}))
	if !callback.IsAbs() {
		callback = must(url.Parse(issuer)).ResolveReference(callback)
	}
	back := next(c.Get(callback.String()))
	frag, err := url.ParseQuery(back.Fragment)
	if err != nil || frag.Get("id_token") == "" {
		t.Fatalf("the provider sent the browser back to %s without an id_token", back.Redacted())
	}
	return frag.Get("id_token")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestZitadelTokenIsVerifiedByTheProductionPath: the worker's key
// refresher discovers the provider and fetches its JWKS into the policy
// data; the gates policy, through the engine the worker runs, verifies
// the provider's RS256 token (signature, iss, aud, exp, iat) and names
// the person by its verified subject. The same token altered, for
// another action, or after its keys are gone is refused.
func TestZitadelTokenIsVerifiedByTheProductionPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	issuer := startZitadel(t)
	aud := contract.ActionAudience("r1", contract.ActionPause, "")
	// The provider's ID tokens live an hour (its clients' fixed lifetime),
	// so the policy data allows that; the person's groups come from data.
	storage.RegisterClients(storage.WebClient(aud, "secret", redirectURI))

	dir := t.TempDir()
	data := `{"oidc": {"issuer": "` + issuer + `", "action_token_max_seconds": 3700, "groups_from": "data"},
  "groups": {"security-team": ["id1"]}}`
	if err := os.WriteFile(filepath.Join(dir, "interop.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	engine, err := policies.Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	refresher := &oidc.KeyRefresher{
		Issuer: func() string { return engine.DataString(ctx, "oidc/issuer") },
		Set:    func(ctx context.Context, k oidc.Keys) error { return engine.SetData(ctx, "oidc_keys", k) },
	}
	if err := refresher.Refresh(ctx); err != nil {
		t.Fatalf("fetch the provider's keys: %v", err)
	}

	token := signIn(t, issuer, aud)
	gate := func(tok, rolloutID string) policies.GateDecision {
		t.Helper()
		d, err := engine.Gate(ctx, policies.GateInput{RolloutID: rolloutID, FiledBy: "alice", Gate: rolloutID, Action: contract.ActionPause,
			Token: tok, Now: time.Now(), Reason: "interop"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := gate(token, "r1")
	if !d.Allow || d.Person == nil || d.Person.Subject != "id1" || !d.Person.Verified || d.Person.Issuer != issuer || d.Person.KeyID == "" {
		t.Fatalf("zitadel's token: allow %v, person %+v, violations %v; want id1 verified", d.Allow, d.Person, d.Violations)
	}
	t.Logf("zitadel-issued RS256 token verified: %s, key %s", d.Person.Describe(), d.Person.KeyID)

	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1
	for _, tt := range []struct{ name, tok, rollout, want string }{
		{"signature altered", parts[0] + "." + parts[1] + "." + string(sig), "r1", "token_"},
		{"another rollout", token, "r2", "token_audience"},
	} {
		d := gate(tt.tok, tt.rollout)
		if d.Allow || !hasCode(d, tt.want) {
			t.Errorf("%s: allow %v, violations %v; want refused with %s", tt.name, d.Allow, d.Violations, tt.want)
		}
		t.Logf("%s: %v", tt.name, d.Violations)
	}
}

func hasCode(d policies.GateDecision, prefix string) bool {
	for _, v := range d.Violations {
		if strings.HasPrefix(v.Code, prefix) {
			return true
		}
	}
	return false
}
