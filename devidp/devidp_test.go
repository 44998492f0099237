package devidp

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// clock is a movable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func start(t *testing.T, opts Options) *Issuer {
	t.Helper()
	i, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := i.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return i
}

// answer is a decoded JSON answer with its status.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

// post sends form to u, with a Basic header when basic is two strings.
func post(t *testing.T, u string, form url.Values, basic ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("POST %s: %s is not JSON: %v", u, raw, err)
	}
	return a
}

// wantError checks an RFC 6749 error answer.
func wantError(t *testing.T, a answer, status int, code, inDescription string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("got %d %v, want %d %s", a.status, a.body, status, code)
	}
	if !strings.Contains(a.str("error_description"), inDescription) {
		t.Fatalf("error_description %q does not say %q", a.str("error_description"), inDescription)
	}
}

func deviceCode(t *testing.T, i *Issuer) answer {
	t.Helper()
	a := post(t, i.URL()+"/device/code", url.Values{"client_id": {"patchway-cli"}, "scope": {"openid groups"}})
	if a.status != http.StatusOK {
		t.Fatalf("device code: %d %v", a.status, a.body)
	}
	return a
}

func poll(t *testing.T, i *Issuer, device string) answer {
	t.Helper()
	return post(t, i.URL()+"/token", url.Values{"grant_type": {grantDeviceCode}, "device_code": {device}, "client_id": {"patchway-cli"}})
}

// login signs subject in (password = subject) and returns the login token.
func login(t *testing.T, i *Issuer, subject string) string {
	t.Helper()
	d := deviceCode(t, i)
	if err := i.Approve(d.str("user_code"), subject, subject); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	a := poll(t, i, d.str("device_code"))
	if a.status != http.StatusOK {
		t.Fatalf("poll after approval: %d %v", a.status, a.body)
	}
	return a.str("access_token")
}

func exchange(t *testing.T, i *Issuer, subjectToken, audience string) answer {
	t.Helper()
	return post(t, i.URL()+"/token", url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {tokenTypeAccessToken},
		"audience":           {audience},
		"client_id":          {"patchway-cli"},
	})
}

// verified checks tok's signature against the issuer's /keys, as a
// relying party would, and returns its claims.
func verified(t *testing.T, i *Issuer, tok string) map[string]any {
	t.Helper()
	resp, err := http.Get(i.URL() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("/keys Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
		t.Errorf("/keys Cache-Control %q", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.Algorithm != "ES256" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header alg %q typ %v", h.Algorithm, h.ExtraHeaders["typ"])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q names %d keys in /keys", h.KeyID, len(keys))
	}
	thumb, err := keys[0].Thumbprint(crypto.SHA256)
	if err != nil || base64.RawURLEncoding.EncodeToString(thumb) != h.KeyID {
		t.Errorf("kid %q is not the key's RFC 7638 thumbprint", h.KeyID)
	}
	if keys[0].Algorithm != "ES256" || keys[0].Use != "sig" {
		t.Errorf("key alg %q use %q", keys[0].Algorithm, keys[0].Use)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify against /keys: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func num(c map[string]any, k string) int64 { f, _ := c[k].(float64); return int64(f) }

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestDeviceFlowWithOAuth2(t *testing.T) {
	i := start(t, Options{})

	resp, err := http.Get(i.URL() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc discovery
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if disc.Issuer != i.URL() || disc.JWKSURI != i.URL()+"/keys" || !slices.Contains(disc.GrantTypes, grantTokenExchange) {
		t.Fatalf("discovery: %+v", disc)
	}

	cfg := oauth2.Config{ClientID: "patchway-cli", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: disc.DeviceAuthorizationEndpoint, TokenURL: disc.TokenEndpoint}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	auth, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if len(auth.UserCode) != 9 || auth.UserCode[4] != '-' || auth.Interval != 1 ||
		auth.VerificationURIComplete != i.URL()+"/device?user_code="+auth.UserCode {
		t.Fatalf("device authorization: %+v", auth)
	}

	approved := make(chan error, 1)
	go func() { approved <- approveByForm(auth.VerificationURIComplete, auth.UserCode, "alice", "alice") }()

	tok, err := cfg.DeviceAccessToken(ctx, auth)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" {
		t.Errorf("token_type %q", tok.TokenType)
	}
	c := verified(t, i, tok.AccessToken)
	if c["iss"] != i.URL() || c["sub"] != "alice" || c["aud"] != "patchway" || c["preferred_username"] != "alice" ||
		c["name"] != "Alice Martin" || c["email"] != "alice@patchway.example" {
		t.Errorf("claims %v", c)
	}
	if g := strs(c["groups"]); !slices.Equal(g, []string{"security-team", "security-leads"}) {
		t.Errorf("groups %v", g)
	}
	if p := strs(c["permissions"]); !slices.Equal(p, []string{"default:write"}) {
		t.Errorf("permissions %v", p)
	}
	if num(c, "exp")-num(c, "iat") != 3600 || num(c, "nbf") != num(c, "iat") {
		t.Errorf("iat %d nbf %d exp %d", num(c, "iat"), num(c, "nbf"), num(c, "exp"))
	}
	if jti, _ := c["jti"].(string); len(jti) != 32 {
		t.Errorf("jti %q", jti)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if ic := verified(t, i, idToken); ic["aud"] != "patchway-cli" || ic["sub"] != "alice" {
		t.Errorf("id_token claims %v", ic)
	}
}

// approveByForm does what a person does in the browser: open the page,
// then submit the form.
func approveByForm(page, userCode, username, password string) error {
	resp, err := http.Get(page)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `value="`+userCode+`"`) {
		return fmt.Errorf("GET %s: %s, the form does not hold the code %s", page, resp.Status, userCode)
	}
	status, text, err := submit(strings.Split(page, "?")[0], url.Values{"user_code": {userCode}, "username": {username}, "password": {password}})
	if err != nil {
		return err
	}
	if status != http.StatusOK || !strings.Contains(text, "Signed in as Alice Martin (alice). Return to your terminal.") {
		return fmt.Errorf("POST the form: %d %s", status, text)
	}
	return nil
}

// submit posts the verification form and returns the page.
func submit(pageURL string, form url.Values) (int, string, error) {
	resp, err := http.PostForm(pageURL, form)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestTokenExchange(t *testing.T) {
	clk := newClock()
	i := start(t, Options{Now: clk.Now})
	loginToken := login(t, i, "bob")
	const aud = "urn:patchway:r-1:approve:gate-a"

	a := exchange(t, i, loginToken, aud)
	if a.status != http.StatusOK || a.str("issued_token_type") != tokenTypeJWT || a.str("token_type") != "Bearer" || a.body["expires_in"] != 300.0 {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", a.header.Get("Cache-Control"))
	}
	action := a.str("access_token")
	c := verified(t, i, action)
	lc := verified(t, i, loginToken)
	if got := strs(c["aud"]); !slices.Equal(got, []string{aud}) {
		t.Errorf("aud %v", c["aud"])
	}
	if num(c, "exp")-num(c, "iat") != 300 || num(c, "nbf") != num(c, "iat") {
		t.Errorf("iat %d nbf %d exp %d", num(c, "iat"), num(c, "nbf"), num(c, "exp"))
	}
	for _, k := range []string{"iss", "sub", "name", "email", "preferred_username"} {
		if c[k] != lc[k] {
			t.Errorf("%s: %v, the login token says %v", k, c[k], lc[k])
		}
	}
	if !slices.Equal(strs(c["groups"]), strs(lc["groups"])) || !slices.Equal(strs(c["permissions"]), strs(lc["permissions"])) {
		t.Errorf("groups %v permissions %v", c["groups"], c["permissions"])
	}
	if c["jti"] == lc["jti"] {
		t.Error("the action token reuses the login token's jti")
	}

	t.Run("audience outside the prefix", func(t *testing.T) {
		wantError(t, exchange(t, i, loginToken, "https://elsewhere.example"), 400, "invalid_target", "urn:patchway:")
		wantError(t, exchange(t, i, loginToken, "urn:patchway:"), 400, "invalid_target", "name the action")
	})
	t.Run("no audience", func(t *testing.T) {
		wantError(t, exchange(t, i, loginToken, ""), 400, "invalid_request", "audience is required")
	})
	t.Run("wrong subject token type", func(t *testing.T) {
		a := post(t, i.URL()+"/token", url.Values{"grant_type": {grantTokenExchange}, "subject_token": {loginToken},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "audience": {aud}})
		wantError(t, a, 400, "invalid_request", "subject_token_type")
	})
	t.Run("signed by another key", func(t *testing.T) {
		wantError(t, exchange(t, i, foreignToken(t, i), aud), 400, "invalid_grant", "not signed by this issuer's key")
		other := start(t, Options{})
		wantError(t, exchange(t, i, login(t, other, "bob"), aud), 400, "invalid_grant", "not signed by this issuer's key")
	})
	t.Run("not a JWT", func(t *testing.T) {
		wantError(t, exchange(t, i, "not-a-token", aud), 400, "invalid_grant", "not a JSON Web Token")
	})
	t.Run("action token", func(t *testing.T) {
		wantError(t, exchange(t, i, action, aud), 400, "invalid_grant", "audience")
	})
	t.Run("id_token", func(t *testing.T) {
		d := deviceCode(t, i)
		if err := i.Approve(d.str("user_code"), "carol", "carol"); err != nil {
			t.Fatal(err)
		}
		wantError(t, exchange(t, i, poll(t, i, d.str("device_code")).str("id_token"), aud), 400, "invalid_grant", "audience")
	})
	t.Run("expired login token", func(t *testing.T) {
		clk.Advance(time.Hour)
		wantError(t, exchange(t, i, loginToken, aud), 400, "invalid_grant", "expired")
	})
}

// foreignToken is a login token in every claim but signed by a key that
// is not the issuer's.
func foreignToken(t *testing.T, i *Issuer) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := i.now().Unix()
	payload, _ := json.Marshal(claims{Issuer: i.URL(), Audience: "patchway", IssuedAt: now, NotBefore: now, Expiry: now + 3600,
		ID: "x", identity: identity{Subject: "mallory", Groups: []string{"security-leads"}}})
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestClientCredentials(t *testing.T) {
	clk := newClock()
	i := start(t, Options{Now: clk.Now, Clients: []Client{{ID: "worker", Secret: "s3cret:+/", Subject: "patchway-worker",
		Groups: []string{"workers"}, Permissions: []string{"default:admin"}}}})
	cc := url.Values{"grant_type": {grantClientCredentials}}

	for name, a := range map[string]answer{
		"client_secret_basic": post(t, i.URL()+"/token", cc, "worker", "s3cret:+/"),
		"client_secret_post":  post(t, i.URL()+"/token", url.Values{"grant_type": {grantClientCredentials}, "client_id": {"worker"}, "client_secret": {"s3cret:+/"}}),
	} {
		if a.status != http.StatusOK || a.body["expires_in"] != 3600.0 {
			t.Fatalf("%s: %d %v", name, a.status, a.body)
		}
		c := verified(t, i, a.str("access_token"))
		if c["sub"] != "patchway-worker" || c["aud"] != "patchway" || !slices.Equal(strs(c["groups"]), []string{"workers"}) ||
			!slices.Equal(strs(c["permissions"]), []string{"default:admin"}) || num(c, "exp")-num(c, "iat") != 3600 {
			t.Errorf("%s: claims %v", name, c)
		}
		if a := exchange(t, i, a.str("access_token"), "urn:patchway:r-1:report"); a.status != http.StatusOK {
			t.Errorf("%s: exchange the service token: %d %v", name, a.status, a.body)
		}
	}

	bad := post(t, i.URL()+"/token", cc, "worker", "wrong")
	wantError(t, bad, 401, "invalid_client", "wrong secret")
	if !strings.HasPrefix(bad.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("WWW-Authenticate %q", bad.header.Get("WWW-Authenticate"))
	}
	wantError(t, post(t, i.URL()+"/token", url.Values{"grant_type": {grantClientCredentials}, "client_id": {"worker"}, "client_secret": {"wrong"}}), 401, "invalid_client", "wrong secret")
	wantError(t, post(t, i.URL()+"/token", cc, "nobody", "x"), 401, "invalid_client", "no client")
	wantError(t, post(t, i.URL()+"/token", cc), 401, "invalid_client", "authentication")
	wantError(t, post(t, i.URL()+"/token", url.Values{"grant_type": {grantClientCredentials}, "client_id": {"patchway-cli"}}), 400, "unauthorized_client", "public")
}

func TestVerificationPage(t *testing.T) {
	clk := newClock()
	i := start(t, Options{Now: clk.Now})
	page := i.URL() + "/device"

	t.Run("wrong password, unknown person, unknown code", func(t *testing.T) {
		d := deviceCode(t, i)
		code := d.str("user_code")
		for _, c := range []struct {
			form   url.Values
			status int
			says   string
		}{
			{url.Values{"user_code": {code}, "username": {"alice"}, "password": {"bob"}}, 401, "wrong password for alice"},
			{url.Values{"user_code": {code}, "username": {"zed"}, "password": {"zed"}}, 401, "no person here is named &#34;zed&#34;"},
			{url.Values{"user_code": {"BCDF-GHJK"}, "username": {"alice"}, "password": {"alice"}}, 400, "no sign-in is waiting"},
			{url.Values{"user_code": {""}, "username": {"alice"}, "password": {"alice"}}, 400, "enter the code"},
		} {
			status, text, err := submit(page, c.form)
			if err != nil {
				t.Fatal(err)
			}
			if status != c.status || !strings.Contains(text, c.says) {
				t.Errorf("%v: %d, want %d saying %q:\n%s", c.form, status, c.status, c.says, text)
			}
		}
		wantError(t, poll(t, i, d.str("device_code")), 400, "authorization_pending", code)
	})

	t.Run("lower case without the dash", func(t *testing.T) {
		d := deviceCode(t, i)
		code := strings.ToLower(strings.ReplaceAll(d.str("user_code"), "-", ""))
		status, text, err := submit(page, url.Values{"user_code": {code}, "username": {"Eve"}, "password": {"eve"}})
		if err != nil || status != 200 || !strings.Contains(text, "Signed in as Eve Laurent (eve). Return to your terminal.") {
			t.Fatalf("%d %v\n%s", status, err, text)
		}
		a := poll(t, i, d.str("device_code"))
		if a.status != 200 {
			t.Fatalf("poll: %d %v", a.status, a.body)
		}
		if c := verified(t, i, a.str("access_token")); !slices.Equal(strs(c["permissions"]), []string{"default:read"}) {
			t.Errorf("eve's permissions %v", c["permissions"])
		}
		wantError(t, poll(t, i, d.str("device_code")), 400, "invalid_grant", "already used")
		if err := i.Approve(d.str("user_code"), "eve", "eve"); err == nil {
			t.Error("a redeemed code was approved again")
		}
	})

	t.Run("denied", func(t *testing.T) {
		d := deviceCode(t, i)
		status, text, err := submit(page, url.Values{"user_code": {d.str("user_code")}, "deny": {"1"}})
		if err != nil || status != 200 || !strings.Contains(text, "denied") {
			t.Fatalf("%d %v\n%s", status, err, text)
		}
		wantError(t, poll(t, i, d.str("device_code")), 400, "access_denied", "denied")
		wantError(t, poll(t, i, d.str("device_code")), 400, "invalid_grant", "unknown")
	})

	t.Run("expired", func(t *testing.T) {
		d := deviceCode(t, i)
		clk.Advance(10 * time.Minute)
		err := i.Approve(d.str("user_code"), "alice", "alice")
		if ae, ok := errors.AsType[*approveError](err); !ok || ae.status != 400 || !strings.Contains(err.Error(), "expired") {
			t.Errorf("Approve of an expired code: %v", err)
		}
		wantError(t, poll(t, i, d.str("device_code")), 400, "expired_token", "expired")
	})

	t.Run("polling too fast", func(t *testing.T) {
		d := deviceCode(t, i)
		wantError(t, poll(t, i, d.str("device_code")), 400, "authorization_pending", "")
		wantError(t, poll(t, i, d.str("device_code")), 400, "slow_down", "")
		clk.Advance(time.Second)
		wantError(t, poll(t, i, d.str("device_code")), 400, "authorization_pending", "")
	})

	t.Run("escaped", func(t *testing.T) {
		resp, err := http.Get(page + "?user_code=" + url.QueryEscape(`"><script>x</script>`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(body), "<script>") || !strings.Contains(string(body), "&lt;script&gt;") {
			t.Errorf("%s\n%s", resp.Status, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
	})

	t.Run("cross-origin post", func(t *testing.T) {
		d := deviceCode(t, i)
		req, _ := http.NewRequest(http.MethodPost, page, strings.NewReader(url.Values{"user_code": {d.str("user_code")}, "deny": {"1"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site form post: %s", resp.Status)
		}
	})
}

func TestDeviceCodeRequests(t *testing.T) {
	clk := newClock()
	i := start(t, Options{Now: clk.Now, PollInterval: 300 * time.Millisecond})
	d := deviceCode(t, i)
	if d.body["interval"] != 1.0 || d.body["expires_in"] != 600.0 || len(d.str("device_code")) != 43 {
		t.Errorf("device authorization %v", d.body)
	}
	wantError(t, post(t, i.URL()+"/device/code", url.Values{"client_id": {"someone-else"}}), 400, "invalid_client", "")
	wantError(t, post(t, i.URL()+"/device/code", url.Values{}), 400, "invalid_client", "client_id=patchway-cli")
	wantError(t, post(t, i.URL()+"/token", url.Values{"grant_type": {grantDeviceCode}, "device_code": {d.str("device_code")}}), 400, "invalid_request", "client_id")
	wantError(t, post(t, i.URL()+"/token", url.Values{"grant_type": {"password"}}), 400, "unsupported_grant_type", "password")
	wantError(t, post(t, i.URL()+"/token", url.Values{}), 400, "invalid_request", "grant_type")
	wantError(t, post(t, i.URL()+"/token", url.Values{"grant_type": {grantDeviceCode, grantDeviceCode}}), 400, "invalid_request", "once")

	req, _ := http.NewRequest(http.MethodPost, i.URL()+"/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("JSON body: %s", resp.Status)
	}

	for _, m := range []struct{ method, path string }{{"GET", "/token"}, {"POST", "/keys"}, {"PUT", "/device"}, {"GET", "/device/code"}, {"DELETE", "/.well-known/openid-configuration"}} {
		req, _ := http.NewRequest(m.method, i.URL()+m.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %s", m.method, m.path, resp.Status)
		}
	}
}

func TestPendingCodesBounded(t *testing.T) {
	clk := newClock()
	i := start(t, Options{Now: clk.Now})
	for n := range maxPending {
		if _, e := i.newGrant(); e != nil {
			t.Fatalf("code %d: %v", n, e)
		}
	}
	wantError(t, post(t, i.URL()+"/device/code", url.Values{"client_id": {"patchway-cli"}}), 503, "temporarily_unavailable", "waiting")
	clk.Advance(10 * time.Minute)
	deviceCode(t, i)
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.byDevice) != 1 || len(i.byUser) != 1 {
		t.Errorf("expired codes kept: %d, %d", len(i.byDevice), len(i.byUser))
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0", "[::]:0", "127.0.0.1"} {
		if i, err := Start(Options{Addr: addr}); err == nil {
			i.Close()
			t.Errorf("Start(%q) listened", addr)
		}
	}
	i := start(t, Options{Addr: "localhost:0"})
	if !strings.HasPrefix(i.URL(), "http://") {
		t.Errorf("URL %q", i.URL())
	}
}

func TestOptionsRefused(t *testing.T) {
	for name, o := range map[string]Options{
		"audience inside the prefix": {Audience: "urn:patchway:all"},
		"negative ttl":               {ActionTTL: -time.Second},
		"person without password":    {People: []Person{{Subject: "x"}}},
		"client without secret":      {Clients: []Client{{ID: "w", Subject: "w"}}},
		"client named like the cli":  {Clients: []Client{{ID: "patchway-cli", Secret: "s", Subject: "w"}}},
		"two alices":                 {People: []Person{{Subject: "alice", Password: "a"}, {Subject: "Alice", Password: "b"}}},
	} {
		if i, err := Start(o); err == nil {
			i.Close()
			t.Errorf("%s: Start accepted it", name)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	i := start(t, Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(i.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Announce a gigabyte and send 128 KiB: the answer must come without
	// the rest.
	go func() {
		fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\ngrant_type=", 1<<30)
		_, _ = conn.Write([]byte(strings.Repeat("a", 128<<10)))
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e oauthError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Code != "invalid_request" {
		t.Errorf("%s %+v", resp.Status, e)
	}
}

func TestDemoPeople(t *testing.T) {
	people := DemoPeople()
	if len(people) != 5 {
		t.Fatalf("%d people", len(people))
	}
	for _, p := range people {
		want := []string{"default:write"}
		if p.Subject == "eve" {
			want = []string{"default:read"}
		}
		if p.Password != p.Subject || p.Email != p.Subject+"@patchway.example" || !slices.Equal(p.Permissions, want) || p.Name == "" {
			t.Errorf("%+v", p)
		}
	}
	i := start(t, Options{})
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(i.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", i.JWKS(), err)
	}
	k := set.Keys[0]
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] != i.kid || k["d"] != nil {
		t.Errorf("key %v", k)
	}
}
