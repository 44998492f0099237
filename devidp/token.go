package devidp

import (
	"net/http"
	"net/url"
	"strings"
)

// tokenAnswer is a successful token endpoint answer (RFC 6749 section
// 5.1, with RFC 8693's issued_token_type for an exchange).
type tokenAnswer struct {
	AccessToken     string `json:"access_token"`
	IDToken         string `json:"id_token,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}

func (i *Issuer) handleToken(w http.ResponseWriter, r *http.Request) {
	answer, e := i.token(w, r)
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, answer)
}

// token reads a token request and dispatches it by grant type.
func (i *Issuer) token(w http.ResponseWriter, r *http.Request) (tokenAnswer, *oauthError) {
	form, e := readForm(w, r)
	if e != nil {
		return tokenAnswer{}, e
	}
	c, e := i.authenticate(r, form)
	if e != nil {
		return tokenAnswer{}, e
	}
	switch grant := form.Get("grant_type"); grant {
	case grantDeviceCode:
		return i.deviceCodeGrant(form, c)
	case grantAuthorizationCode:
		return i.authorizationCodeGrant(form, c)
	case grantTokenExchange:
		return i.tokenExchange(form)
	case grantClientCredentials:
		return i.clientCredentials(c)
	case "":
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return tokenAnswer{}, failf(http.StatusBadRequest, "unsupported_grant_type", "this issuer does not speak grant_type %q; it speaks %s", grant, strings.Join([]string{grantDeviceCode, grantAuthorizationCode, grantTokenExchange, grantClientCredentials}, ", "))
	}
}

// caller is the client a token request comes from: none (id ""), the
// public client, or an authenticated confidential client.
type caller struct {
	id           string
	confidential *Client
}

// authenticate identifies the client by client_secret_basic (the Basic
// header, its parts form-encoded as RFC 6749 section 2.3.1 asks),
// client_secret_post or a bare client_id (the public client). A wrong
// secret or an unknown client is a 401.
func (i *Issuer) authenticate(r *http.Request, form url.Values) (caller, *oauthError) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		if form.Has("client_secret") {
			return caller{}, failf(http.StatusBadRequest, "invalid_request", "the client authenticates twice (Basic header and client_secret); use one method")
		}
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return caller{}, failf(http.StatusUnauthorized, "invalid_client", "the Basic header's client id and secret must be form-encoded")
		}
		if id != "" && id != u {
			return caller{}, failf(http.StatusBadRequest, "invalid_request", "client_id %q differs from the Basic header's client %q; send one", id, u)
		}
		id, secret = u, p
	}
	switch {
	case id == "":
		return caller{}, nil
	case id == i.opts.PublicClientID || id == i.opts.WebClientID:
		if secret != "" {
			return caller{}, failf(http.StatusUnauthorized, "invalid_client", "the client %q is public and has no secret; send client_id alone", id)
		}
		return caller{id: id}, nil
	}
	for k := range i.opts.Clients {
		c := &i.opts.Clients[k]
		if c.ID != id {
			continue
		}
		if !equalSecret(c.Secret, secret) {
			return caller{}, failf(http.StatusUnauthorized, "invalid_client", "wrong secret for the client %q; check the client's configured secret", id)
		}
		return caller{id: id, confidential: c}, nil
	}
	return caller{}, failf(http.StatusUnauthorized, "invalid_client", "no client is registered as %q; the CLI's client id is %q", id, i.opts.PublicClientID)
}

// deviceCodeGrant redeems an approved device code for the person's login
// token and id_token (RFC 8628 section 3.4).
func (i *Issuer) deviceCodeGrant(form url.Values, c caller) (tokenAnswer, *oauthError) {
	if c.id == "" {
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "client_id is required: send client_id=%s", i.opts.PublicClientID)
	}
	p, e := i.pollDevice(form.Get("device_code"), c.id)
	if e != nil {
		return tokenAnswer{}, e
	}
	return i.loginTokens(p, c.id)
}

// loginTokens are a signed-in person's login token and id_token for the
// client clientID: what a device code or an authorization code redeems.
func (i *Issuer) loginTokens(p Person, clientID string) (tokenAnswer, *oauthError) {
	who := personIdentity(p)
	access, err := i.mint(who, i.opts.Audience, i.opts.LoginTTL)
	if err != nil {
		return tokenAnswer{}, internal(err)
	}
	id, err := i.mint(who, clientID, i.opts.LoginTTL)
	if err != nil {
		return tokenAnswer{}, internal(err)
	}
	return tokenAnswer{AccessToken: access, IDToken: id, TokenType: "Bearer", ExpiresIn: wholeSeconds(i.opts.LoginTTL)}, nil
}

// tokenExchange trades a login or service token for an action token
// bound to one audience (RFC 8693). The action token names the same
// person, lives ActionTTL, and cannot itself be exchanged again, as its
// audience is not Audience.
func (i *Issuer) tokenExchange(form url.Values) (tokenAnswer, *oauthError) {
	subject := form.Get("subject_token")
	if subject == "" {
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "subject_token is required: send the login token")
	}
	switch t := form.Get("subject_token_type"); t {
	case tokenTypeAccessToken, tokenTypeJWT:
	default:
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "subject_token_type %q is not accepted; send %s or %s", t, tokenTypeAccessToken, tokenTypeJWT)
	}
	switch t := form.Get("requested_token_type"); t {
	case "", tokenTypeAccessToken, tokenTypeJWT:
	default:
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "requested_token_type %q cannot be issued; this issuer issues %s", t, tokenTypeJWT)
	}
	if form.Has("actor_token") {
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "actor_token (delegation) is not supported; send the subject_token alone")
	}
	aud := form.Get("audience")
	if aud == "" {
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_request", "audience is required: the action to bind the token to, starting with %q", i.opts.ActionAudiencePrefix)
	}
	if !strings.HasPrefix(aud, i.opts.ActionAudiencePrefix) || len(aud) == len(i.opts.ActionAudiencePrefix) {
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_target", "the audience %q is not an action of this product: it must start with %q and name the action", aud, i.opts.ActionAudiencePrefix)
	}
	who, e := i.verifySubject(subject)
	if e != nil {
		return tokenAnswer{}, e
	}
	access, err := i.mint(who, []string{aud}, i.opts.ActionTTL)
	if err != nil {
		return tokenAnswer{}, internal(err)
	}
	return tokenAnswer{AccessToken: access, IssuedTokenType: tokenTypeJWT, TokenType: "Bearer", ExpiresIn: wholeSeconds(i.opts.ActionTTL)}, nil
}

// clientCredentials issues a confidential client its service token.
func (i *Issuer) clientCredentials(c caller) (tokenAnswer, *oauthError) {
	switch {
	case c.id == "":
		return tokenAnswer{}, failf(http.StatusUnauthorized, "invalid_client", "the client credentials grant needs client authentication: client_secret_basic or client_secret_post")
	case c.confidential == nil:
		return tokenAnswer{}, failf(http.StatusBadRequest, "unauthorized_client", "the public client %q cannot use client_credentials; configure a confidential client", c.id)
	}
	access, err := i.mint(clientIdentity(*c.confidential), i.opts.Audience, i.opts.LoginTTL)
	if err != nil {
		return tokenAnswer{}, internal(err)
	}
	return tokenAnswer{AccessToken: access, TokenType: "Bearer", ExpiresIn: wholeSeconds(i.opts.LoginTTL)}, nil
}

// internal is a failure of the issuer itself, not of the request.
func internal(err error) *oauthError {
	return failf(http.StatusInternalServerError, "server_error", "the dev issuer failed: %v", err)
}
