package devidp

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

// routes is the issuer's HTTP surface. The method patterns make every
// other method a 405.
func (i *Issuer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.handleDiscovery)
	mux.HandleFunc("GET /keys", i.handleKeys)
	mux.HandleFunc("POST /device/code", i.handleDeviceCode)
	mux.HandleFunc("GET /device", i.handleDevicePage)
	// A page on another site must not approve or deny a code in the
	// person's browser: refuse cross-origin form posts.
	mux.Handle("POST /device", http.NewCrossOriginProtection().Handler(http.HandlerFunc(i.handleDeviceForm)))
	mux.HandleFunc("GET /authorize", i.handleAuthorizePage)
	mux.Handle("POST /authorize", http.NewCrossOriginProtection().Handler(http.HandlerFunc(i.handleAuthorizeForm)))
	mux.HandleFunc("POST /token", i.handleToken)
	return mux
}

// discovery is the OpenID Connect discovery document.
type discovery struct {
	Issuer                      string   `json:"issuer"`
	JWKSURI                     string   `json:"jwks_uri"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	GrantTypes                  []string `json:"grant_types_supported"`
	SigningAlgs                 []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypes               []string `json:"response_types_supported"`
	CodeChallengeMethods        []string `json:"code_challenge_methods_supported"`
	SubjectTypes                []string `json:"subject_types_supported"`
	TokenAuthMethods            []string `json:"token_endpoint_auth_methods_supported"`
	Claims                      []string `json:"claims_supported"`
}

// Grant types and token types this issuer speaks.
const (
	grantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	grantClientCredentials = "client_credentials"
	grantAuthorizationCode = "authorization_code"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
)

func (i *Issuer) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, discovery{
		Issuer:                      i.url,
		JWKSURI:                     i.url + "/keys",
		AuthorizationEndpoint:       i.url + "/authorize",
		DeviceAuthorizationEndpoint: i.url + "/device/code",
		TokenEndpoint:               i.url + "/token",
		GrantTypes:                  []string{grantDeviceCode, grantAuthorizationCode, grantTokenExchange, grantClientCredentials},
		SigningAlgs:                 []string{"ES256"},
		ResponseTypes:               []string{"code", "token"},
		CodeChallengeMethods:        []string{"S256"},
		SubjectTypes:                []string{"public"},
		TokenAuthMethods:            []string{"none", "client_secret_basic", "client_secret_post"},
		Claims:                      []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "name", "email", "preferred_username", "groups", "permissions"},
	})
}

func (i *Issuer) handleKeys(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(i.jwks)
}

// oauthError is an RFC 6749 error answer, with its HTTP status.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func failf(status int, code, format string, args ...any) *oauthError {
	return &oauthError{status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// writeOAuthError answers e; a 401 names the Basic scheme, as RFC 6749
// asks of a refused client authentication.
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="patchway dev issuer"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// readForm reads a form-encoded request body of at most maxBody bytes,
// refusing a parameter sent twice (RFC 6749 section 3.2). Only the body
// counts: parameters in the query are ignored.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, failf(http.StatusBadRequest, "invalid_request", "send the parameters as application/x-www-form-urlencoded, not %q", r.Header.Get("Content-Type"))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, failf(http.StatusRequestEntityTooLarge, "invalid_request", "the request body is over %d KiB; send only the parameters", maxBody>>10)
		}
		return nil, failf(http.StatusBadRequest, "invalid_request", "the request body is not a form: %v", err)
	}
	for name, values := range r.PostForm {
		if len(values) > 1 {
			return nil, failf(http.StatusBadRequest, "invalid_request", "the parameter %q is sent %d times; send it once", name, len(values))
		}
	}
	return r.PostForm, nil
}
