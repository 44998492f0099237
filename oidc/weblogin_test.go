package oidc

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/patchway/patchway/devidp"
)

// signInAt submits the provider's sign-in form as a browser would and
// returns where the provider sent the browser back.
func signInAt(t *testing.T, authURL, username, password string) *url.URL {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK {
		t.Fatalf("authorize page: %s", page.Status)
	}
	form := url.Values{"username": {username}, "password": {password}, "approve": {"1"}}
	for _, k := range []string{"client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"} {
		form.Set(k, u.Query().Get(k))
	}
	resp, err := noFollow.PostForm(u.Scheme+"://"+u.Host+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in form: %s, want a redirect back", resp.Status)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// TestWebLoginByAuthorizationCodeWithPKCE signs alice in as the console
// does: the authorization code comes back to the loopback callback with
// the state, and redeems once, with the verifier only, for a login token
// that exchanges for an action token.
func TestWebLoginByAuthorizationCodeWithPKCE(t *testing.T) {
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	ctx := context.Background()
	p, err := Discover(ctx, nil, idp.URL())
	if err != nil {
		t.Fatal(err)
	}
	l := WebLogin{Provider: p, ClientID: "patchway-console", RedirectURI: "http://127.0.0.1:9/callback", Scopes: []string{"openid", "groups"}}
	verifier := NewVerifier()
	authURL, err := l.AuthURL("state-1", verifier)
	if err != nil {
		t.Fatal(err)
	}
	back := signInAt(t, authURL, "alice", "alice")
	if got := back.Scheme + "://" + back.Host + back.Path; got != l.RedirectURI || back.Query().Get("state") != "state-1" {
		t.Fatalf("sent back to %s, want %s with state-1", back, l.RedirectURI)
	}
	code := back.Query().Get("code")

	if _, err := l.Redeem(ctx, code, NewVerifier()); err == nil || !strings.Contains(err.Error(), "code_verifier") {
		t.Fatalf("another verifier: %v, want refused by PKCE", err)
	}
	// The failed attempt spent the code: a code is tried once.
	if _, err := l.Redeem(ctx, code, verifier); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("a spent code: %v, want refused", err)
	}

	authURL, _ = l.AuthURL("state-2", verifier)
	code = signInAt(t, authURL, "alice", "alice").Query().Get("code")
	s, err := l.Redeem(ctx, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if sub, _ := UnverifiedSubject(s.AccessToken); sub != "alice" || s.Issuer != idp.URL() {
		t.Fatalf("session for %q at %s", sub, s.Issuer)
	}
	if _, err := p.Exchange(ctx, "patchway-console", s.AccessToken, "urn:patchway:r1:approve:lab"); err != nil {
		t.Fatalf("exchange the console's login token: %v", err)
	}
}

// TestWebLoginRefusesWhatAnAttackerWouldSend: a redirect URI off
// loopback is shown as an error and never redirected to; a request
// without PKCE goes back with the error; a wrong password stays on the
// form.
func TestWebLoginRefusesWhatAnAttackerWouldSend(t *testing.T) {
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(q url.Values) *http.Response {
		t.Helper()
		resp, err := noFollow.Get(idp.URL() + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	good := func() url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {"patchway-console"}, "redirect_uri": {"http://127.0.0.1:9/cb"},
			"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"s"}}
	}
	q := good()
	q.Set("redirect_uri", "https://attacker.example/cb")
	if resp := get(q); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("redirect off loopback: %s to %q, want 400 and no redirect", resp.Status, resp.Header.Get("Location"))
	}
	q = good()
	q.Set("client_id", "patchway-cli")
	if resp := get(q); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("the CLI's client: %s, want 400 and no redirect", resp.Status)
	}
	q = good()
	q.Del("code_challenge")
	resp := get(q)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" {
		t.Errorf("no PKCE: %s to %s, want sent back with invalid_request and the state", resp.Status, loc)
	}
	form := good()
	form.Del("response_type")
	form.Set("username", "alice")
	form.Set("password", "wrong")
	post, err := noFollow.PostForm(idp.URL()+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusUnauthorized || post.Header.Get("Location") != "" {
		t.Errorf("wrong password: %s, want 401 on the form", post.Status)
	}
}
