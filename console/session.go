package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/patchway/patchway/oidc"
)

// A person's sign-in lives in their browser, sealed (AES-GCM) with a key
// that never leaves this process: the browser's scripts cannot read the
// login token (HttpOnly), nobody can forge or alter it, and a restarted
// console asks everyone to sign in again. The console stores nothing.

const (
	sessionCookie = "patchway_session"
	loginCookie   = "patchway_login"
	// loginTTL bounds a sign-in in progress.
	loginTTL = 10 * time.Minute
)

// session is a signed-in person.
type session struct {
	Issuer      string    `json:"iss"`
	ClientID    string    `json:"cid"`
	Subject     string    `json:"sub"`
	AccessToken string    `json:"tok"`
	Expiry      time.Time `json:"exp"`
	// CSRF is the session's anti-forgery token, in every form.
	CSRF string `json:"csrf"`
}

// pendingLogin is a sign-in on its way to the provider and back.
type pendingLogin struct {
	State    string    `json:"state"`
	Verifier string    `json:"verifier"`
	Next     string    `json:"next"`
	Expiry   time.Time `json:"exp"`
}

// sealer seals cookie values; the cookie's name is the additional data,
// so a value cannot be moved from one cookie to another.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

func (s *sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return errors.New("not a sealed value")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return errors.New("not sealed by this console")
	}
	return json.Unmarshal(plain, v)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) setCookie(w http.ResponseWriter, name string, v any, until time.Time) error {
	value, err := s.seal.seal(name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: until, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// sessionOf is the request's signed-in person, if any and not expired.
func (s *Server) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	var ses session
	if s.seal.open(sessionCookie, c.Value, &ses) != nil || !s.opts.Now().Before(ses.Expiry) {
		return nil
	}
	return &ses
}

// localPath keeps a "next" page on this console: a path, never another
// site ("//evil", "https://...").
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// webLogin is the sign-in, calling back to the console's own address.
func (s *Server) webLogin(r *http.Request, p *oidc.Provider) oidc.WebLogin {
	return oidc.WebLogin{Provider: p, ClientID: s.opts.ClientID, RedirectURI: "http://" + r.Host + "/callback",
		Scopes: []string{"openid", "profile", "email", "groups"}}
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	p, err := s.identityProvider(r.Context())
	if err != nil {
		s.renderError(w, r, http.StatusServiceUnavailable, "Cannot sign in", err.Error())
		return
	}
	pending := pendingLogin{State: randomToken(), Verifier: oidc.NewVerifier(), Next: localPath(r.URL.Query().Get("next")), Expiry: s.opts.Now().Add(loginTTL)}
	to, err := s.webLogin(r, p).AuthURL(pending.State, pending.Verifier)
	if err == nil {
		err = s.setCookie(w, loginCookie, pending, pending.Expiry)
	}
	if err != nil {
		s.renderError(w, r, http.StatusServiceUnavailable, "Cannot sign in", err.Error())
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var pending pendingLogin
	c, err := r.Cookie(loginCookie)
	if err == nil {
		err = s.seal.open(loginCookie, c.Value, &pending)
	}
	clearCookie(w, loginCookie)
	switch {
	case err != nil || !s.opts.Now().Before(pending.Expiry):
		s.renderError(w, r, http.StatusBadRequest, "Sign-in not recognised", "This sign-in was not started here, or took over "+loginTTL.String()+". Sign in again.")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(pending.State)) != 1:
		s.renderError(w, r, http.StatusBadRequest, "Sign-in not recognised", "The provider's answer does not belong to the sign-in this browser started. Sign in again.")
		return
	case q.Get("error") != "":
		s.renderError(w, r, http.StatusUnauthorized, "Not signed in", "The identity provider said: "+q.Get("error")+": "+q.Get("error_description"))
		return
	}
	p, err := s.identityProvider(r.Context())
	if err != nil {
		s.renderError(w, r, http.StatusServiceUnavailable, "Cannot sign in", err.Error())
		return
	}
	got, err := s.webLogin(r, p).Redeem(r.Context(), q.Get("code"), pending.Verifier)
	if err != nil {
		s.renderError(w, r, http.StatusUnauthorized, "Not signed in", err.Error())
		return
	}
	sub, _ := oidc.UnverifiedSubject(got.AccessToken)
	ses := session{Issuer: got.Issuer, ClientID: got.ClientID, Subject: sub, AccessToken: got.AccessToken, Expiry: got.Expiry, CSRF: randomToken()}
	if ses.Expiry.IsZero() {
		ses.Expiry = s.opts.Now().Add(time.Hour)
	}
	if err := s.setCookie(w, sessionCookie, ses, ses.Expiry); err != nil {
		s.renderError(w, r, http.StatusInternalServerError, "Cannot sign in", err.Error())
		return
	}
	http.Redirect(w, r, pending.Next, http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if ses := s.sessionOf(r); ses != nil && !s.checkCSRF(r, ses) {
		s.renderError(w, r, http.StatusForbidden, "Refused", "This form did not come from your console session.")
		return
	}
	clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkCSRF compares the form's anti-forgery token with the session's.
func (s *Server) checkCSRF(r *http.Request, ses *session) bool {
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ses.CSRF)) == 1
}

// loginURL signs in and comes back to the page asked for.
func loginURL(r *http.Request) string {
	return "/login?next=" + url.QueryEscape(r.URL.RequestURI())
}
