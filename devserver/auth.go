package devserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/labstack/echo/v4"
	"github.com/temporalio/ui-server/v2/server/api"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc/metadata"
)

// Auth makes the frontend authenticate every call: Temporal's JWT claim
// mapper verifies the bearer token against JWKSURL and reads the
// caller's roles from its permissions claim ("namespace:role", e.g.
// "default:write"); Temporal's default authorizer allows what the role
// allows. A call without a token, or with one the keys do not verify, is
// refused. The frontend speaks TLS only, with the certificate given, so
// no token crosses the wire in clear. The server's own system workers
// reach the history and matching services through an internal frontend
// on loopback, which does not authenticate.
type Auth struct {
	// CertPEM and KeyPEM are the frontend's certificate and key; CAPEM
	// the CA that signed it and CAFile where that CA is written, for the
	// server's own clients and the Web UI.
	CertPEM, KeyPEM, CAPEM []byte
	CAFile                 string
	// JWKSURL is the identity provider's key set.
	JWKSURL string
	// SystemToken is a token with the temporal-system:admin role, for the
	// server's own calls (preparing the namespace).
	SystemToken func(context.Context) (string, error)
	// UIToken is the token the Web UI calls the frontend with (a reader's:
	// the UI then shows everything and changes nothing).
	UIToken func(context.Context) (string, error)
}

// PermissionsClaim is the claim Temporal's JWT claim mapper reads roles from.
const PermissionsClaim = "permissions"

func (a *Auth) authorization() config.Authorization {
	return config.Authorization{
		JWTKeyProvider:       config.JWTKeyProvider{KeySourceURIs: []string{a.JWKSURL}, RefreshInterval: time.Minute},
		PermissionsClaimName: PermissionsClaim,
	}
}

// serverOptions are the options that turn authentication on.
func (a *Auth) serverOptions(logger *slog.Logger, lvl *slog.LevelVar) []temporal.ServerOption {
	return []temporal.ServerOption{
		temporal.WithAuthorizer(authorization.NewDefaultAuthorizer()),
		temporal.WithClaimMapper(func(cfg *config.Config) authorization.ClaimMapper {
			l := serverLogger{log: logger, minLevel: lvl}
			return authorization.NewDefaultJWTClaimMapper(authorization.NewDefaultTokenKeyProvider(&cfg.Global.Authorization, l), &cfg.Global.Authorization, l)
		}),
	}
}

// clientOptions give an SDK client of the embedded server the system
// token, over TLS to the frontend's CA.
func (a *Auth) clientOptions(o *client.Options) {
	o.Credentials = client.NewAPIKeyDynamicCredentials(a.SystemToken)
	o.ConnectionOptions.TLS = a.ClientTLS()
}

// ClientTLS is a client's TLS configuration for the frontend: its CA.
func (a *Auth) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CAPEM)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}

// serverTLS is the frontend's TLS in Temporal's configuration (base64
// PEM).
func (a *Auth) serverTLS() config.GroupTLS {
	var g config.GroupTLS
	g.Server.CertData = base64.StdEncoding.EncodeToString(a.CertPEM)
	g.Server.KeyData = base64.StdEncoding.EncodeToString(a.KeyPEM)
	return g
}

// uiMiddleware has the Web UI's calls to the frontend carry UIToken.
func (a *Auth) uiMiddleware() []api.Middleware {
	return []api.Middleware{func(echo.Context) runtime.ServeMuxOption {
		return runtime.WithMetadata(func(ctx context.Context, _ *http.Request) metadata.MD {
			tok, err := a.UIToken(ctx)
			if err != nil {
				return metadata.MD{}
			}
			return metadata.Pairs("authorization", "Bearer "+tok)
		})
	}}
}

// internalFrontend is the service name of the unauthenticated frontend
// the server's own workers use.
const internalFrontend = string(primitives.InternalFrontendService)
