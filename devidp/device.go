package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// userCodeAlphabet has no vowels (no words by chance) and none of the
// letters people misread for digits or each other.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen is the length of a user code without its dash.
const userCodeLen = 8

// grantState is where a device code stands.
type grantState int

const (
	pending grantState = iota
	approved
	denied
)

// deviceGrant is one device authorization waiting for, or given, the
// person's answer.
type deviceGrant struct {
	deviceCode string
	userCode   string // normalized: upper case, no dash
	clientID   string
	expires    time.Time
	lastPoll   time.Time
	early      int // polls in a row that came sooner than the interval
	state      grantState
	person     Person
}

// deviceAuthorization is the RFC 8628 section 3.2 answer.
type deviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

func (i *Issuer) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e == nil {
		e = i.checkPublicClient(r, form)
	}
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	g, e := i.newGrant()
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	shown := displayUserCode(g.userCode)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, deviceAuthorization{
		DeviceCode:              g.deviceCode,
		UserCode:                shown,
		VerificationURI:         i.url + "/device",
		VerificationURIComplete: i.url + "/device?user_code=" + url.QueryEscape(shown),
		ExpiresIn:               wholeSeconds(i.opts.DeviceCodeTTL),
		Interval:                i.interval,
	})
}

// checkPublicClient admits only the CLI's public client to the device
// flow: it names itself by client_id (in the form, or as the user of a
// Basic header with an empty password).
func (i *Issuer) checkPublicClient(r *http.Request, form url.Values) *oauthError {
	c, e := i.authenticate(r, form)
	if e != nil {
		e.status = http.StatusBadRequest
		return e
	}
	if c.id != i.opts.PublicClientID || c.confidential != nil {
		return failf(http.StatusBadRequest, "invalid_client", "the device flow is for the public client %q, not %q; set client_id=%s", i.opts.PublicClientID, c.id, i.opts.PublicClientID)
	}
	return nil
}

// newGrant records a fresh device code, dropping the expired ones first.
func (i *Issuer) newGrant() (*deviceGrant, *oauthError) {
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	for code, g := range i.byDevice {
		if !now.Before(g.expires) {
			delete(i.byDevice, code)
			delete(i.byUser, g.userCode)
		}
	}
	if len(i.byDevice) >= maxPending {
		return nil, failf(http.StatusServiceUnavailable, "temporarily_unavailable", "%d sign-ins are already waiting for approval; finish or abandon some, and try again once they expire (%s)", maxPending, i.opts.DeviceCodeTTL)
	}
	user := newUserCode()
	for i.byUser[user] != nil {
		user = newUserCode()
	}
	g := &deviceGrant{
		deviceCode: base64.RawURLEncoding.EncodeToString(randomBytes(32)),
		userCode:   user,
		clientID:   i.opts.PublicClientID,
		expires:    now.Add(i.opts.DeviceCodeTTL),
		lastPoll:   now,
	}
	i.byDevice[g.deviceCode] = g
	i.byUser[g.userCode] = g
	return g, nil
}

// newUserCode draws userCodeLen letters uniformly from userCodeAlphabet.
func newUserCode() string {
	n := len(userCodeAlphabet)
	limit := 256 - 256%n // bytes at or above it would favour the first letters
	var b strings.Builder
	for b.Len() < userCodeLen {
		for _, r := range randomBytes(userCodeLen) {
			if int(r) < limit && b.Len() < userCodeLen {
				b.WriteByte(userCodeAlphabet[int(r)%n])
			}
		}
	}
	return b.String()
}

// displayUserCode shows a normalized code as XXXX-XXXX.
func displayUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:userCodeLen/2] + "-" + code[userCodeLen/2:]
}

// normalizeUserCode accepts a code as people type it: any case, with or
// without the dash, with stray spaces.
func normalizeUserCode(code string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
}

// approveError is a refusal of the verification form, with the status
// the page answers.
type approveError struct {
	status int
	msg    string
}

func (e *approveError) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &approveError{status: status, msg: fmt.Sprintf(format, args...)}
}

// Approve is what submitting the verification form does: it signs
// username in with password and approves the device code userCode, so
// the terminal polling it receives a login token. Tests and the scripted
// demo call it directly.
func (i *Issuer) Approve(userCode, username, password string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	g, err := i.pendingGrant(userCode)
	if err != nil {
		return err
	}
	p, err := i.signIn(username, password)
	if err != nil {
		return err
	}
	g.state, g.person = approved, p
	return nil
}

// deny refuses the device code userCode at the person's request: the
// terminal's next poll gets access_denied.
func (i *Issuer) deny(userCode string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	g, err := i.pendingGrant(userCode)
	if err != nil {
		return err
	}
	g.state = denied
	return nil
}

// pendingGrant finds the device code a person typed, still waiting for
// an answer. The caller holds i.mu.
func (i *Issuer) pendingGrant(userCode string) (*deviceGrant, error) {
	code := normalizeUserCode(userCode)
	if code == "" {
		return nil, refuse(http.StatusBadRequest, "enter the code your terminal shows")
	}
	g := i.byUser[code]
	switch {
	case g == nil:
		return nil, refuse(http.StatusBadRequest, "no sign-in is waiting for the code %q: check the code your terminal shows, or run `patchway login` again for a new one", userCode)
	case !i.now().Before(g.expires):
		return nil, refuse(http.StatusBadRequest, "the code %s expired; run `patchway login` again for a new one", displayUserCode(code))
	case g.state != pending:
		return nil, refuse(http.StatusBadRequest, "the code %s was already answered; run `patchway login` again for a new one", displayUserCode(code))
	}
	return g, nil
}

// signIn checks a person's password, in constant time.
func (i *Issuer) signIn(username, password string) (Person, error) {
	name := strings.TrimSpace(username)
	if name == "" {
		return Person{}, refuse(http.StatusUnauthorized, "enter a username")
	}
	p, ok := i.person(name)
	if !ok {
		return Person{}, refuse(http.StatusUnauthorized, "no person here is named %q; sign in as one of %s", name, strings.Join(i.subjects(), ", "))
	}
	if !equalSecret(p.Password, password) {
		return Person{}, refuse(http.StatusUnauthorized, "wrong password for %s; try again", p.Subject)
	}
	return p, nil
}

func (i *Issuer) subjects() []string {
	out := make([]string, len(i.opts.People))
	for k, p := range i.opts.People {
		out[k] = p.Subject
	}
	return out
}

// equalSecret compares secrets in time that depends on neither, not even
// on their lengths, by comparing their hashes.
func equalSecret(want, got string) bool {
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(w[:], g[:]) == 1
}

// pollDevice answers one poll of the token endpoint for deviceCode
// (RFC 8628 section 3.5). An approved code is redeemed once; a denied or
// expired one is answered once and then forgotten.
func (i *Issuer) pollDevice(deviceCode, clientID string) (Person, *oauthError) {
	if deviceCode == "" {
		return Person{}, failf(http.StatusBadRequest, "invalid_request", "device_code is required: send the device_code the device authorization endpoint gave")
	}
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	g := i.byDevice[deviceCode]
	if g == nil {
		return Person{}, failf(http.StatusBadRequest, "invalid_grant", "the device code is unknown or already used; run `patchway login` again")
	}
	if g.clientID != clientID {
		return Person{}, failf(http.StatusBadRequest, "invalid_grant", "the device code was issued to another client than %q", clientID)
	}
	if !now.Before(g.expires) {
		i.forget(g)
		return Person{}, failf(http.StatusBadRequest, "expired_token", "the code %s expired before anyone approved it; run `patchway login` again", displayUserCode(g.userCode))
	}
	switch g.state {
	case approved:
		i.forget(g)
		return g.person, nil
	case denied:
		i.forget(g)
		return Person{}, failf(http.StatusBadRequest, "access_denied", "the sign-in with code %s was denied on the verification page", displayUserCode(g.userCode))
	}
	if i.tooFast(g, now) {
		return Person{}, failf(http.StatusBadRequest, "slow_down", "poll at most every %d s", i.interval)
	}
	return Person{}, failf(http.StatusBadRequest, "authorization_pending", "waiting for someone to enter %s at %s/device", displayUserCode(g.userCode), i.url)
}

// tooFast records a poll and reports whether the client polls faster
// than the interval. One early poll is forgiven: a client that retries a
// refused request at once (as golang.org/x/oauth2 does while it probes
// how to authenticate) is not slowed; two in a row are. The caller holds
// i.mu.
func (i *Issuer) tooFast(g *deviceGrant, now time.Time) bool {
	minGap := time.Duration(i.interval) * time.Second * 4 / 5 // tolerate timer jitter
	if now.Sub(g.lastPoll) < minGap {
		g.early++
	} else {
		g.early = 0
	}
	g.lastPoll = now
	return g.early >= 2
}

// forget drops a grant. The caller holds i.mu.
func (i *Issuer) forget(g *deviceGrant) {
	delete(i.byDevice, g.deviceCode)
	delete(i.byUser, g.userCode)
}
