// Package oidc talks to an OpenID Connect provider as a client: it reads
// the provider's discovery document, fetches its signing keys (JWKS) for
// the policy that verifies tokens, signs a person in by the device
// authorization grant (RFC 8628) and exchanges their login token for a
// short token bound to one action (RFC 8693). It verifies nothing
// itself: which token proves whom is the oidc policy's to decide.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxDocument bounds every document read from a provider (discovery,
// keys, token responses): a provider's answer cannot exhaust the worker.
const maxDocument = 1 << 20

// Provider is an OpenID Connect provider as its discovery document
// describes it.
type Provider struct {
	Issuer                      string   `json:"issuer"`
	JWKSURI                     string   `json:"jwks_uri"`
	TokenEndpoint               string   `json:"token_endpoint"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint,omitempty"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint,omitempty"`
	GrantTypes                  []string `json:"grant_types_supported,omitempty"`

	client *http.Client
}

// Discover reads issuer's discovery document
// (/.well-known/openid-configuration). The issuer must be https, or http
// on a loopback address (a dev issuer), and the document must name the
// same issuer (OpenID Connect Discovery 1.0, section 4.3) and endpoints
// of the same kind. client nil: a client with a 30 s timeout.
func Discover(ctx context.Context, client *http.Client, issuer string) (*Provider, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	issuer = strings.TrimSuffix(issuer, "/")
	if err := checkURL("issuer", issuer); err != nil {
		return nil, err
	}
	p := &Provider{client: client}
	if err := p.getJSON(ctx, issuer+"/.well-known/openid-configuration", p); err != nil {
		return nil, fmt.Errorf("discover OpenID provider %s: %w", issuer, err)
	}
	if p.Issuer != issuer {
		return nil, fmt.Errorf("discover OpenID provider %s: its document names issuer %q; tokens it signs would not be trusted", issuer, p.Issuer)
	}
	for name, u := range map[string]string{"jwks_uri": p.JWKSURI, "token_endpoint": p.TokenEndpoint} {
		if err := checkURL(name, u); err != nil {
			return nil, fmt.Errorf("discover OpenID provider %s: %w", issuer, err)
		}
	}
	for name, u := range map[string]string{"device_authorization_endpoint": p.DeviceAuthorizationEndpoint, "authorization_endpoint": p.AuthorizationEndpoint} {
		if u == "" {
			continue
		}
		if err := checkURL(name, u); err != nil {
			return nil, fmt.Errorf("discover OpenID provider %s: %w", issuer, err)
		}
	}
	return p, nil
}

// checkURL refuses a provider URL that is not https, except http to a
// loopback address: a token or key fetched in clear text is worth nothing.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", what, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%s %s: an identity provider is reached over https (http only on loopback, for a dev issuer)", what, raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// getJSON fetches u and decodes its JSON body (bounded) into out.
func (p *Provider) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := checkJSON(resp.Header.Get("Content-Type")); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: not a JSON document: %w", u, err)
	}
	return nil
}

// readBounded reads a provider's answer, refusing one over maxDocument.
func readBounded(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDocument {
		return nil, fmt.Errorf("the answer is over %d bytes", maxDocument)
	}
	return body, nil
}

// checkJSON accepts a JSON media type (application/json, or one ending
// in +json such as application/jwk-set+json) or none.
func checkJSON(contentType string) error {
	if contentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return fmt.Errorf("content type %q is not JSON", contentType)
}

// oauthError is an RFC 6749 error answer.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string {
	if e.Description != "" {
		return e.Code + ": " + e.Description
	}
	return e.Code
}

// ErrNoDeviceFlow: the provider's discovery document names no device
// authorization endpoint.
var ErrNoDeviceFlow = errors.New("the identity provider offers no device authorization endpoint (RFC 8628)")
