package devidp

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// identity is who a token names: the claims a token exchange carries from
// the subject token to the action token.
type identity struct {
	Subject           string   `json:"sub"`
	Name              string   `json:"name,omitempty"`
	Email             string   `json:"email,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups"`
	Permissions       []string `json:"permissions"`
}

// claims is a token's payload. Audience is a string for login and
// service tokens and a list of one for action tokens.
type claims struct {
	Issuer    string `json:"iss"`
	Audience  any    `json:"aud"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
	ID        string `json:"jti"`
	identity
}

func personIdentity(p Person) identity {
	return identity{Subject: p.Subject, Name: p.Name, Email: p.Email, PreferredUsername: p.Subject,
		Groups: copyStrings(p.Groups), Permissions: copyStrings(p.Permissions)}
}

func clientIdentity(c Client) identity {
	return identity{Subject: c.Subject, PreferredUsername: c.Subject,
		Groups: copyStrings(c.Groups), Permissions: copyStrings(c.Permissions)}
}

// mint signs a token for who, for audience aud, living ttl from now.
func (i *Issuer) mint(who identity, aud any, ttl time.Duration) (string, error) {
	iat := i.now().Unix()
	c := claims{
		Issuer: i.url, Audience: aud,
		IssuedAt: iat, NotBefore: iat, Expiry: iat + wholeSeconds(ttl),
		ID:       hex.EncodeToString(randomBytes(16)),
		identity: who,
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode the token claims: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: i.key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("prepare the signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign the token: %w", err)
	}
	return jws.CompactSerialize()
}

// verifySubject checks that token is a login or service token of this
// issuer, still valid, and returns whom it names. Each refusal says what
// was wrong, so the person knows whether to sign in again.
func (i *Issuer) verifySubject(token string) (identity, *oauthError) {
	bad := func(format string, args ...any) (identity, *oauthError) {
		return identity{}, failf(http.StatusBadRequest, "invalid_grant", format, args...)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return bad("the subject_token is not a JSON Web Token signed with ES256 (%v); send the access_token of `patchway login`", err)
	}
	payload, err := jws.Verify(&i.key.PublicKey)
	if err != nil {
		return bad("the subject_token is not signed by this issuer's key (kid %s): it comes from another issuer or an earlier run of `patchway dev`; sign in again with `patchway login`", i.kid)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("the subject_token's claims are not a JSON object: %v", err)
	}
	if c.Issuer != i.url {
		return bad("the subject_token was issued by %q, not by this issuer %s; sign in again with `patchway login`", c.Issuer, i.url)
	}
	if !slices.Contains(audiences(c.Audience), i.opts.Audience) {
		return bad("the subject_token's audience is %v, not %q: only a login or service token can be exchanged, never an action token or an id_token", c.Audience, i.opts.Audience)
	}
	now := i.now().Unix()
	if c.Expiry == 0 || now >= c.Expiry {
		return bad("the subject_token expired at %s; sign in again with `patchway login`", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	if now < c.NotBefore {
		return bad("the subject_token is not valid before %s; check the clock", time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	if c.Subject == "" {
		return bad("the subject_token names no subject (sub)")
	}
	return c.identity, nil
}

// audiences reads an aud claim, a string or a list of strings.
func audiences(aud any) []string {
	switch a := aud.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, v := range a {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
