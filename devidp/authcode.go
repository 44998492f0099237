package devidp

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The authorization code grant with PKCE (RFC 6749 section 4.1, RFC
// 7636), for a web application in the person's browser: `patchway
// console`. The application's redirect URI must be on loopback (RFC 8252
// section 7.3: any port), as the issuer itself is; PKCE with S256 is
// required, so a code caught on its way back is worth nothing without the
// verifier the application kept.

// codeTTL is how long an authorization code may wait to be redeemed.
const codeTTL = time.Minute

// codeGrant is one issued authorization code, redeemable once.
type codeGrant struct {
	person      Person
	clientID    string
	redirectURI string
	challenge   string
	expires     time.Time
}

// authRequest is an authorization request's parameters: from the query
// of GET /authorize, then carried through the sign-in form.
type authRequest struct {
	ClientID, RedirectURI, State, Challenge, Method, Scope string
}

func authRequestOf(v url.Values) authRequest {
	return authRequest{
		ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), State: v.Get("state"),
		Challenge: v.Get("code_challenge"), Method: v.Get("code_challenge_method"), Scope: v.Get("scope"),
	}
}

// maxState bounds the state and challenge echoed back.
const maxState = 512

// checkClient refuses a request whose client or redirect URI is wrong.
// Such a request is never redirected (RFC 6749 section 4.1.2.1): the
// person sees why instead.
func (i *Issuer) checkClient(a authRequest) error {
	if a.ClientID != i.opts.WebClientID {
		return refuse(http.StatusBadRequest, "no web application is registered as %q; the console's client id is %q", a.ClientID, i.opts.WebClientID)
	}
	u, err := url.Parse(a.RedirectURI)
	if err != nil || u.Scheme != "http" || u.Fragment != "" || checkLoopback(u.Host) != nil || u.Port() == "" {
		return refuse(http.StatusBadRequest, "the redirect URI %q is not http on a loopback address and port; this dev issuer sends codes to loopback only", a.RedirectURI)
	}
	return nil
}

// checkRequest refuses a request the application got wrong; its answer
// goes back to the application, which redirected the person here.
func checkRequest(a authRequest, responseType string) *oauthError {
	switch {
	case responseType != "code":
		return failf(http.StatusBadRequest, "unsupported_response_type", "response_type %q: a web application asks for response_type=code", responseType)
	case a.Method != "S256" || len(a.Challenge) < 43 || len(a.Challenge) > 128:
		return failf(http.StatusBadRequest, "invalid_request", "PKCE is required: send code_challenge (43 to 128 characters) with code_challenge_method=S256")
	case len(a.State) > maxState:
		return failf(http.StatusBadRequest, "invalid_request", "state is over %d characters", maxState)
	}
	return nil
}

// redirect sends the person back to the application with params.
func redirect(w http.ResponseWriter, r *http.Request, a authRequest, params url.Values) {
	u, _ := url.Parse(a.RedirectURI)
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if a.State != "" {
		q.Set("state", a.State)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (i *Issuer) handleAuthorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a := authRequestOf(q)
	if err := i.checkClient(a); err != nil {
		i.renderAuthorize(w, err.(*approveError).status, authPage{Error: err.Error()})
		return
	}
	if e := checkRequest(a, q.Get("response_type")); e != nil {
		redirect(w, r, a, url.Values{"error": {e.Code}, "error_description": {e.Description}})
		return
	}
	i.renderAuthorize(w, http.StatusOK, authPage{ShowForm: true, Request: a})
}

func (i *Issuer) handleAuthorizeForm(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		i.renderAuthorize(w, e.status, authPage{Error: e.Description})
		return
	}
	a := authRequestOf(form)
	if err := i.checkClient(a); err != nil {
		i.renderAuthorize(w, err.(*approveError).status, authPage{Error: err.Error()})
		return
	}
	if e := checkRequest(a, "code"); e != nil {
		redirect(w, r, a, url.Values{"error": {e.Code}, "error_description": {e.Description}})
		return
	}
	if form.Has("deny") {
		redirect(w, r, a, url.Values{"error": {"access_denied"}, "error_description": {"the person declined to sign in"}})
		return
	}
	username := form.Get("username")
	p, err := i.signIn(username, form.Get("password"))
	if err != nil {
		status := http.StatusUnauthorized
		if ae, ok := err.(*approveError); ok {
			status = ae.status
		}
		i.renderAuthorize(w, status, authPage{ShowForm: true, Request: a, Error: err.Error(), Username: username})
		return
	}
	code, e := i.issueCode(p, a)
	if e != nil {
		redirect(w, r, a, url.Values{"error": {e.Code}, "error_description": {e.Description}})
		return
	}
	redirect(w, r, a, url.Values{"code": {code}})
}

// issueCode records a code for p, bounded as device codes are.
func (i *Issuer) issueCode(p Person, a authRequest) (string, *oauthError) {
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	for code, g := range i.byCode {
		if !now.Before(g.expires) {
			delete(i.byCode, code)
		}
	}
	if len(i.byCode) >= maxPending {
		return "", failf(http.StatusServiceUnavailable, "temporarily_unavailable", "%d sign-ins wait to be redeemed; try again in a minute", len(i.byCode))
	}
	code := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	i.byCode[code] = &codeGrant{person: p, clientID: a.ClientID, redirectURI: a.RedirectURI, challenge: a.Challenge, expires: now.Add(codeTTL)}
	return code, nil
}

// authorizationCodeGrant redeems a code, once, for the person's login
// token and id_token: only with the redirect URI it was sent to and the
// verifier whose S256 hash the request carried.
func (i *Issuer) authorizationCodeGrant(form url.Values, c caller) (tokenAnswer, *oauthError) {
	if c.id != i.opts.WebClientID {
		return tokenAnswer{}, failf(http.StatusBadRequest, "unauthorized_client", "the authorization code grant is for the web application %q; send client_id=%s", i.opts.WebClientID, i.opts.WebClientID)
	}
	code := form.Get("code")
	i.mu.Lock()
	g := i.byCode[code]
	delete(i.byCode, code)
	i.mu.Unlock()
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	switch {
	case code == "" || g == nil:
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_grant", "the authorization code is unknown or already used; sign in again")
	case !i.now().Before(g.expires):
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_grant", "the authorization code expired (codes live %s); sign in again", codeTTL)
	case g.clientID != c.id || g.redirectURI != form.Get("redirect_uri"):
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_grant", "the authorization code was issued to another client or redirect URI")
	case !equalSecret(g.challenge, base64.RawURLEncoding.EncodeToString(sum[:])):
		return tokenAnswer{}, failf(http.StatusBadRequest, "invalid_grant", "the code_verifier does not match the code_challenge (PKCE)")
	}
	return i.loginTokens(g.person, c.id)
}

// authPage is what the sign-in page of the authorization request shows.
type authPage struct {
	Error    string
	ShowForm bool
	Request  authRequest
	Username string
	People   string
}

var authTemplate = template.Must(template.New("authorize").Parse(pageHead + `
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if .ShowForm}}
<p>Sign in to the Patchway console.</p>
<form method="post" action="/authorize">
{{with .Request}}<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="code_challenge" value="{{.Challenge}}">
<input type="hidden" name="code_challenge_method" value="{{.Method}}">
<input type="hidden" name="scope" value="{{.Scope}}">{{end}}
<label>Username
<input name="username" value="{{.Username}}" autocomplete="username" autofocus></label>
<label>Password
<input name="password" type="password" autocomplete="current-password"></label>
<button type="submit" name="approve" value="1">Sign in</button>
<button type="submit" name="deny" value="1" formnovalidate>Cancel</button>
</form>
<p class="note">This is the development issuer of <code>patchway dev</code>. Demo people: {{.People}} (each one's password is their name).</p>
{{end}}
</body>
</html>
`))

func (i *Issuer) renderAuthorize(w http.ResponseWriter, status int, p authPage) {
	p.People = strings.Join(i.subjects(), ", ")
	// The form posts here and is then redirected to the application:
	// Chromium holds that redirect to form-action too.
	formAction := "'self'"
	if p.ShowForm {
		if u, err := url.Parse(p.Request.RedirectURI); err == nil {
			formAction += " http://" + u.Host
		}
	}
	writePage(w, status, authTemplate, p, formAction)
}
