package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/devidp"
)

func TestDiscoverRefusesAnIssuerOverClearTextOffLoopback(t *testing.T) {
	_, err := Discover(context.Background(), nil, "http://login.corp.example")
	if err == nil || !strings.Contains(err.Error(), "over https") {
		t.Fatalf("http issuer off loopback: %v", err)
	}
}

func TestDiscoverRefusesADocumentNamingAnotherIssuer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://evil.example", "jwks_uri": "https://evil.example/keys", "token_endpoint": "https://evil.example/token"})
	}))
	defer srv.Close()
	_, err := Discover(context.Background(), nil, srv.URL)
	if err == nil || !strings.Contains(err.Error(), `names issuer "https://evil.example"`) {
		t.Fatalf("mismatched issuer: %v", err)
	}
}

// A provider's answer is bounded: a huge key set is refused, not read whole.
func TestFetchKeysRefusesAnAnswerOverTheLimit(t *testing.T) {
	var url string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/keys" {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"EC","x":"` + strings.Repeat("A", 2<<20) + `"}]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": url, "jwks_uri": url + "/keys", "token_endpoint": url + "/token"})
	}))
	defer srv.Close()
	url = srv.URL
	p, err := Discover(context.Background(), nil, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.FetchKeys(context.Background()); err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Fatalf("oversized key set: %v", err)
	}
}

// A refresh that fails keeps the last good keys, with the error and the
// time they were fetched, for the policy to judge their age.
func TestKeyRefresherKeepsTheLastGoodKeysWhenTheProviderIsGone(t *testing.T) {
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []Keys
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := &KeyRefresher{
		Issuer: func() string { return idp.URL() },
		Set:    func(_ context.Context, k Keys) error { got = append(got, k); return nil },
		Now:    func() time.Time { return clock },
	}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = idp.Close()
	clock = clock.Add(time.Hour)
	if err := r.Refresh(context.Background()); err == nil {
		t.Fatal("a refresh from a stopped provider succeeded")
	}
	if len(got) != 2 {
		t.Fatalf("Set called %d times", len(got))
	}
	first, second := got[0], got[1]
	if first.Error != "" || len(first.JWKS) == 0 || first.Issuer != idp.URL() {
		t.Errorf("first refresh: %+v", first)
	}
	if second.Error == "" || string(second.JWKS) != string(first.JWKS) || !second.FetchedAt.Equal(first.FetchedAt) {
		t.Errorf("after the provider stopped: error %q, keys kept %v, fetched %s (want %s)", second.Error,
			string(second.JWKS) == string(first.JWKS), second.FetchedAt, first.FetchedAt)
	}
}

func TestUnverifiedClaimsReadsWithoutTrusting(t *testing.T) {
	if _, _, err := UnverifiedClaims("not-a-token"); err == nil {
		t.Error("a non-JWT was read")
	}
	iss, exp, err := UnverifiedClaims("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcCIsImV4cCI6MTc5NjY0MDAwMH0.")
	if err != nil || iss != "https://idp" || exp.Unix() != 1796640000 {
		t.Errorf("claims: %q %v %v", iss, exp, err)
	}
}
