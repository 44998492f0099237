package policies

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// The tokens of these tests are minted with golang-jwt, a JOSE library
// neither the dev issuer (go-jose) nor OPA's verifier uses, and checked
// through the production path: the engine, its gates and oidc policies,
// and the provider's keys as data (SetData), as the worker sets them.

const testIssuer = "https://idp.example.com"

var oidcNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

type idpKeys struct {
	ec   *ecdsa.PrivateKey
	rsa  *rsa.PrivateKey
	jwks map[string]any
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad32(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }

func newIDPKeys(t *testing.T) idpKeys {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return idpKeys{ec: ec, rsa: rk, jwks: map[string]any{"keys": []any{
		map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig",
			"x": b64(pad32(ec.PublicKey.X)), "y": b64(pad32(ec.PublicKey.Y))},
		map[string]any{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
			"n": b64(rk.PublicKey.N.Bytes()), "e": b64(big.NewInt(int64(rk.PublicKey.E)).Bytes())},
	}}}
}

// oidcEngine is the default bundle trusting testIssuer, with its keys
// fetched at fetched.
func oidcEngine(t *testing.T, k idpKeys, fetched time.Time, lastError string) *Engine {
	t.Helper()
	ctx := context.Background()
	e, err := Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetData(ctx, "oidc/issuer", testIssuer); err != nil {
		t.Fatal(err)
	}
	if k.jwks != nil {
		keys := map[string]any{"issuer": testIssuer, "jwks": k.jwks, "fetched_at": fetched.Format(time.RFC3339), "error": lastError}
		if err := e.SetData(ctx, "oidc_keys", keys); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// claims of a good action token: bob approving gate lab of r1.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "bob", "preferred_username": "bob", "aud": []string{"urn:patchway:r1:approve:lab"},
		"iat": oidcNow.Add(-time.Minute).Unix(), "nbf": oidcNow.Add(-time.Minute).Unix(), "exp": oidcNow.Add(4 * time.Minute).Unix(),
		"groups": []string{"security-team"}, "jti": "j1",
	}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(c jwt.MapClaims, change func(jwt.MapClaims)) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	change(out)
	return out
}

func gateWith(t *testing.T, e *Engine, token string, change func(*GateInput)) GateDecision {
	t.Helper()
	in := GateInput{RolloutID: "r1", FiledBy: "alice", Gate: "lab", Target: "lab", Action: "approve", Token: token, Now: oidcNow}
	if change != nil {
		change(&in)
	}
	d, err := e.Gate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func codesOf(d GateDecision) []string {
	var out []string
	for _, v := range d.Violations {
		out = append(out, v.Code)
	}
	slices.Sort(out)
	return out
}

func TestOIDCAVerifiedTokenNamesThePersonFromItsClaims(t *testing.T) {
	k := newIDPKeys(t)
	e := oidcEngine(t, k, oidcNow.Add(-time.Minute), "")
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "ec-1", goodClaims())},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", goodClaims())},
	} {
		d := gateWith(t, e, tc.token, nil)
		if !d.Allow || d.Person == nil {
			t.Fatalf("%s: a good token is refused: %+v", tc.name, d.Violations)
		}
		sum := sha256.Sum256([]byte(tc.token))
		p := d.Person
		if p.Subject != "bob" || !p.Verified || p.Issuer != testIssuer || p.TokenSHA256 != hex.EncodeToString(sum[:]) ||
			!slices.Equal(p.Groups, []string{"security-team"}) {
			t.Errorf("%s: person %+v", tc.name, p)
		}
	}
	// The typed name is ignored when a token comes: the token's subject acts.
	d := gateWith(t, e, sign(t, jwt.SigningMethodES256, k.ec, "ec-1", goodClaims()), func(in *GateInput) { in.User = "alice" })
	if !d.Allow || d.Person.Subject != "bob" {
		t.Errorf("the typed name decided: %+v", d)
	}
}

// TestOIDCEveryBadTokenIsRefusedWithItsReason is the list of bad
// tokens: each is refused, with a code and a sentence that says why.
func TestOIDCEveryBadTokenIsRefusedWithItsReason(t *testing.T) {
	k := newIDPKeys(t)
	e := oidcEngine(t, k, oidcNow.Add(-time.Minute), "")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&k.ec.PublicKey)
	good := sign(t, jwt.SigningMethodES256, k.ec, "ec-1", goodClaims())
	es := func(change func(jwt.MapClaims)) string {
		return sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(goodClaims(), change))
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		token  string
		change func(*GateInput)
		want   string
		engine *Engine
	}{
		{name: "expired", token: es(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = oidcNow.Add(-7*time.Minute).Unix(), oidcNow.Add(-7*time.Minute).Unix(), oidcNow.Add(-2*time.Minute).Unix()
		}), want: "token_expired"},
		{name: "not yet valid", token: es(func(c jwt.MapClaims) { c["nbf"] = oidcNow.Add(3 * time.Minute).Unix() }), want: "token_not_yet_valid"},
		{name: "issued in the future (clock skew)", token: es(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = oidcNow.Add(2*time.Minute).Unix(), oidcNow.Unix(), oidcNow.Add(5*time.Minute).Unix()
		}), want: "token_clock_skew"},
		{name: "wrong audience", token: es(func(c jwt.MapClaims) { c["aud"] = "patchway" }), want: "token_audience"},
		{name: "wrong issuer", token: es(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" }), want: "token_issuer"},
		{name: "unknown key", token: sign(t, jwt.SigningMethodES256, other, "ec-2", goodClaims()), want: "token_signature"},
		{name: "alg none", token: none, want: "token_algorithm"},
		{name: "HS256 signed with the public key", token: sign(t, jwt.SigningMethodHS256, pub, "ec-1", goodClaims()), want: "token_algorithm"},
		{name: "missing groups claim", token: es(func(c jwt.MapClaims) { delete(c, "groups") }), want: "token_groups_missing"},
		{name: "another rollout", token: good, change: func(in *GateInput) { in.RolloutID = "r2" }, want: "token_audience"},
		{name: "another action", token: good, change: func(in *GateInput) { in.Action = "reject" }, want: "token_audience"},
		{name: "another gate", token: good, change: func(in *GateInput) { in.Gate, in.Target = "prodlike", "prodlike" }, want: "token_audience"},
		{name: "used before", token: good, change: func(in *GateInput) {
			sum := sha256.Sum256([]byte(good))
			in.UsedTokens = []string{hex.EncodeToString(sum[:])}
		}, want: "token_replayed"},
		{name: "a login token's lifetime", token: es(func(c jwt.MapClaims) { c["exp"] = oidcNow.Add(time.Hour).Unix() }), want: "token_lifetime"},
		{name: "no expiry", token: es(func(c jwt.MapClaims) { delete(c, "exp") }), want: "token_lifetime"},
		{name: "malformed", token: "not.a.jwt", want: "token_malformed"},
		{name: "a header without alg", token: b64([]byte(`{"typ":"JWT"}`)) + "." + strings.Split(good, ".")[1] + ".", want: "token_algorithm"},
		{name: "no token", token: "", change: func(in *GateInput) { in.User = "bob" }, want: "token_missing"},
		{name: "provider unreachable at refresh, keys too old", token: good, want: "idp_keys_stale",
			engine: oidcEngine(t, k, oidcNow.Add(-2*time.Hour), "Get https://idp.example.com/.well-known/openid-configuration: connection refused")},
		{name: "provider never reached", token: good, want: "idp_keys_unavailable", engine: oidcEngine(t, idpKeys{}, time.Time{}, "")},
		{name: "the filer approving her own gate", token: es(func(c jwt.MapClaims) { c["sub"], c["preferred_username"] = "alice", "alice" }), want: "four_eyes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := e
			if tc.engine != nil {
				eng = tc.engine
			}
			d := gateWith(t, eng, tc.token, tc.change)
			if d.Allow || !slices.Contains(codesOf(d), tc.want) {
				t.Fatalf("want refused with %s, got allow=%v %+v", tc.want, d.Allow, d.Violations)
			}
			if tc.want != "four_eyes" && d.Person != nil {
				t.Errorf("a refused token still names a person: %+v", d.Person)
			}
			for _, v := range d.Violations {
				if v.Code == tc.want {
					t.Logf("%s: %s: %s", tc.name, v.Code, v.Msg)
					if strings.TrimSpace(v.Msg) == "" {
						t.Error("no reason given")
					}
				}
			}
		})
	}
}

func TestOIDCTheRecordKeepsTheTokensHashNotTheToken(t *testing.T) {
	k := newIDPKeys(t)
	e := oidcEngine(t, k, oidcNow, "")
	tok := sign(t, jwt.SigningMethodES256, k.ec, "ec-1", goodClaims())
	ctx, rec := WithRecorder(context.Background())
	if _, err := e.Gate(ctx, GateInput{RolloutID: "r1", FiledBy: "alice", Gate: "lab", Target: "lab", Action: "approve", Token: tok, Now: oidcNow}); err != nil {
		t.Fatal(err)
	}
	r, ok := rec.Last(DecisionGates)
	if !ok {
		t.Fatal("no record")
	}
	sum := sha256.Sum256([]byte(tok))
	if strings.Contains(string(r.Input), tok) || strings.Contains(string(r.Result), tok) {
		t.Fatal("the record holds the token")
	}
	if !strings.Contains(string(r.Input), `"token":"sha256:`+hex.EncodeToString(sum[:])+`"`) {
		t.Errorf("the record does not name the token by its hash: %s", r.Input)
	}
}

func TestOIDCKeysSurviveAPolicyReload(t *testing.T) {
	k := newIDPKeys(t)
	dir := t.TempDir()
	e, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = e.SetData(ctx, "oidc/issuer", testIssuer)
	_ = e.SetData(ctx, "oidc_keys", map[string]any{"issuer": testIssuer, "jwks": k.jwks, "fetched_at": oidcNow.Format(time.RFC3339)})
	writeFile(t, dir, "more.json", `{"oidc": {"clock_skew_seconds": 30}}`)
	if _, _, err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.DataString(ctx, "oidc/issuer"); got != testIssuer {
		t.Fatalf("issuer after reload: %q", got)
	}
	if d := gateWith(t, e, sign(t, jwt.SigningMethodES256, k.ec, "ec-1", goodClaims()), nil); !d.Allow {
		t.Fatalf("keys lost on reload: %+v", d.Violations)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
