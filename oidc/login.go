package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Session is a person's sign-in, as `patchway login` keeps it: the login
// token, which the CLI exchanges for one short token per action and
// never sends to the rollout itself.
type Session struct {
	Issuer      string    `json:"issuer"`
	ClientID    string    `json:"client_id"`
	AccessToken string    `json:"access_token"`
	Expiry      time.Time `json:"expiry,omitzero"`
}

// DeviceCode is what a person does to finish a device sign-in: open
// VerificationURI (or VerificationURIComplete) and enter UserCode.
type DeviceCode struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	Expiry                  time.Time
}

// DeviceLogin signs a person in by the device authorization grant (RFC
// 8628): it asks for a code, hands it to show, and polls the token
// endpoint at the provider's interval until the person approves, denies
// or the code expires.
func (p *Provider) DeviceLogin(ctx context.Context, clientID string, scopes []string, show func(DeviceCode)) (Session, error) {
	if p.DeviceAuthorizationEndpoint == "" {
		return Session{}, ErrNoDeviceFlow
	}
	cfg := p.oauth(clientID, scopes)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	auth, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return Session{}, fmt.Errorf("start the device sign-in at %s: %w", p.Issuer, describe(err))
	}
	show(DeviceCode{UserCode: auth.UserCode, VerificationURI: auth.VerificationURI,
		VerificationURIComplete: auth.VerificationURIComplete, Expiry: auth.Expiry})
	tok, err := cfg.DeviceAccessToken(ctx, auth)
	if err != nil {
		return Session{}, fmt.Errorf("device sign-in at %s: %w", p.Issuer, describe(err))
	}
	return Session{Issuer: p.Issuer, ClientID: clientID, AccessToken: tok.AccessToken, Expiry: tok.Expiry}, nil
}

func (p *Provider) oauth(clientID string, scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID,
		Scopes:   scopes,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: p.DeviceAuthorizationEndpoint,
			TokenURL:      p.TokenEndpoint,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

// describe turns an oauth2 error into the provider's own words.
func describe(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return &oauthError{Code: re.ErrorCode, Description: re.ErrorDescription}
	}
	return err
}

// Token types of RFC 8693.
const (
	tokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
)

// Exchange trades a login token for a token bound to audience (RFC 8693
// token exchange): a short-lived token that names one action, which is
// what travels with the action, so a copy of it in a rollout's history
// proves nothing for any other.
func (p *Provider) Exchange(ctx context.Context, clientID, subjectToken, audience string) (string, error) {
	form := url.Values{
		"grant_type":         {tokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {accessTokenType},
		"audience":           {audience},
	}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("exchange the login token at %s: %w", p.Issuer, err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return "", fmt.Errorf("exchange the login token at %s: %w", p.Issuer, err)
	}
	if resp.StatusCode != http.StatusOK {
		var oe oauthError
		if json.Unmarshal(body, &oe) == nil && oe.Code != "" {
			return "", fmt.Errorf("exchange the login token at %s for %s: %w", p.Issuer, audience, &oe)
		}
		return "", fmt.Errorf("exchange the login token at %s for %s: %s", p.Issuer, audience, resp.Status)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("exchange the login token at %s: the answer holds no access_token", p.Issuer)
	}
	return out.AccessToken, nil
}

// UnverifiedSubject reads a JWT's sub claim, for messages only.
func UnverifiedSubject(token string) (string, error) {
	var c struct {
		Sub string `json:"sub"`
	}
	err := unverifiedPayload(token, &c)
	return c.Sub, err
}

// UnverifiedClaims reads a JWT's claims without verifying anything: the
// CLI learns from them where to exchange a token and when it expires.
// Nothing it reads decides anything; the policy verifies.
func UnverifiedClaims(token string) (iss string, exp time.Time, err error) {
	var c struct {
		Iss string  `json:"iss"`
		Exp float64 `json:"exp"`
	}
	if err := unverifiedPayload(token, &c); err != nil {
		return "", time.Time{}, err
	}
	if c.Exp > 0 {
		exp = time.Unix(int64(c.Exp), 0)
	}
	return c.Iss, exp, nil
}

// DefaultSessionPath is where `patchway login` keeps the session:
// $XDG_CONFIG_HOME/patchway/session.json (os.UserConfigDir).
func DefaultSessionPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for the sign-in session: %w", err)
	}
	return filepath.Join(dir, "patchway", "session.json"), nil
}

// SaveSession writes s to path, readable by its owner only, replacing
// the file atomically.
func SaveSession(path string, s Session) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".session-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LoadSession reads a session SaveSession wrote.
func LoadSession(path string) (Session, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Session{}, err
	}
	var s Session
	if err := json.Unmarshal(raw, &s); err != nil || s.AccessToken == "" {
		return Session{}, fmt.Errorf("%s is not a sign-in session: run `patchway login` again", path)
	}
	return s, nil
}

// unverifiedPayload decodes a JWT's payload into out, verifying nothing.
func unverifiedPayload(token string, out any) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("not a JSON Web Token (three dot-separated parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("not a JSON Web Token: %w", err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("not a JSON Web Token: %w", err)
	}
	return nil
}

// ServiceToken returns a source of a service's token by the client
// credentials grant (a worker's identity, the Web UI's): fetched when
// first asked for and again shortly before it expires
// (golang.org/x/oauth2/clientcredentials caches it).
func (p *Provider) ServiceToken(ctx context.Context, clientID, secret string) func(context.Context) (string, error) {
	cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: p.TokenEndpoint, AuthStyle: oauth2.AuthStyleInHeader}
	ts := cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, p.client))
	return func(context.Context) (string, error) {
		t, err := ts.Token()
		if err != nil {
			return "", fmt.Errorf("service token of %s from %s: %w", clientID, p.Issuer, describe(err))
		}
		return t.AccessToken, nil
	}
}

// ErrNoBrowserFlow: the provider's discovery document names no
// authorization endpoint, so a web application cannot sign people in.
var ErrNoBrowserFlow = errors.New("the identity provider offers no authorization endpoint (authorization code grant); register the console as a web application there")

// WebLogin is a browser sign-in by the authorization code grant with
// PKCE (RFC 7636), for a web application whose callback is RedirectURI.
type WebLogin struct {
	Provider    *Provider
	ClientID    string
	RedirectURI string
	Scopes      []string
}

func (l WebLogin) config() *oauth2.Config {
	cfg := l.Provider.oauth(l.ClientID, l.Scopes)
	cfg.RedirectURL = l.RedirectURI
	cfg.Endpoint.AuthURL = l.Provider.AuthorizationEndpoint
	return cfg
}

// NewVerifier is a fresh PKCE code verifier, to keep until the callback.
func NewVerifier() string { return oauth2.GenerateVerifier() }

// AuthURL is where to send the person's browser: the provider's sign-in,
// which comes back to RedirectURI with a code and state.
func (l WebLogin) AuthURL(state, verifier string) (string, error) {
	if l.Provider.AuthorizationEndpoint == "" {
		return "", ErrNoBrowserFlow
	}
	return l.config().AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

// Redeem trades the callback's code, with the verifier kept since
// AuthURL, for the person's session.
func (l WebLogin) Redeem(ctx context.Context, code, verifier string) (Session, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, l.Provider.client)
	tok, err := l.config().Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Session{}, fmt.Errorf("sign-in at %s: %w", l.Provider.Issuer, describe(err))
	}
	return Session{Issuer: l.Provider.Issuer, ClientID: l.ClientID, AccessToken: tok.AccessToken, Expiry: tok.Expiry}, nil
}
