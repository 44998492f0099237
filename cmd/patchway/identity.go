package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/oidc"
)

// Environment of the identity flags.
const (
	envToken  = "PATCHWAY_TOKEN"
	envIssuer = "PATCHWAY_OIDC_ISSUER"
	// defaultClientID is the CLI's public OAuth client.
	defaultClientID = "patchway-cli"
)

// identityFlags say who acts: the sign-in session `patchway login` keeps,
// a login token from a file or PATCHWAY_TOKEN (automation), or, on a dev
// server only, a typed name behind --insecure-dev-identity. Before each
// action the login token is exchanged for a token bound to that action;
// only that one travels with it.
type identityFlags struct {
	tokenFile string
	session   string
	insecure  bool
	as        string
}

func (f *identityFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding a login token (JWT) of the identity provider, for automation (env "+envToken+" holds one too)")
	fs.StringVar(&f.session, "session", "", "the sign-in session `patchway login` wrote (default: the user config directory)")
	fs.BoolVar(&f.insecure, "insecure-dev-identity", false, "send the typed --as name instead of a token: a dev server started with --insecure-dev-identity accepts it, recorded unverified")
	fs.StringVar(&f.as, "as", "", "with --insecure-dev-identity: the name to act as (default: the OS user)")
}

// validate refuses --as without --insecure-dev-identity: a typed name
// proves nothing, and the command says so rather than ignoring it.
func (f *identityFlags) validate() error {
	if f.as != "" && !f.insecure {
		return errors.New("--as proves nothing and is accepted only with --insecure-dev-identity on a dev server; sign in with `patchway login` instead")
	}
	return nil
}

// who is the identity an action sends: a token bound to audience, or
// (insecure dev identity) a typed name.
type who struct {
	token string
	user  string
}

// forAction returns the identity for one action: the login token
// exchanged for one bound to the action's audience
// (contract.ActionAudience).
func (f *identityFlags) forAction(ctx context.Context, audience string) (who, error) {
	if f.insecure {
		user, err := operator(f.as)
		return who{user: user}, err
	}
	s, err := f.login()
	if err != nil {
		return who{}, err
	}
	if !s.Expiry.IsZero() && time.Now().After(s.Expiry) {
		return who{}, fmt.Errorf("your sign-in at %s expired at %s: run `patchway login` again", s.Issuer, s.Expiry.Local().Format(time.RFC3339))
	}
	p, err := oidc.Discover(ctx, nil, s.Issuer)
	if err != nil {
		return who{}, err
	}
	tok, err := p.Exchange(ctx, s.ClientID, s.AccessToken, audience)
	if err != nil {
		return who{}, err
	}
	return who{token: tok}, nil
}

// login finds the login token: --token-file, PATCHWAY_TOKEN, else the
// session `patchway login` saved.
func (f *identityFlags) login() (oidc.Session, error) {
	raw := ""
	switch {
	case f.tokenFile != "":
		b, err := readBoundedFile(f.tokenFile, 64<<10)
		if err != nil {
			return oidc.Session{}, fmt.Errorf("--token-file: %w", err)
		}
		raw = strings.TrimSpace(string(b))
	case os.Getenv(envToken) != "":
		raw = strings.TrimSpace(os.Getenv(envToken))
	}
	if raw != "" {
		iss, exp, err := oidc.UnverifiedClaims(raw)
		if err != nil {
			return oidc.Session{}, fmt.Errorf("the login token: %w", err)
		}
		if iss == "" {
			return oidc.Session{}, errors.New("the login token names no issuer (iss): it cannot be exchanged for an action token")
		}
		return oidc.Session{Issuer: iss, ClientID: defaultClientID, AccessToken: raw, Expiry: exp}, nil
	}
	path, err := f.sessionPath()
	if err != nil {
		return oidc.Session{}, err
	}
	s, err := oidc.LoadSession(path)
	if errors.Is(err, os.ErrNotExist) {
		return oidc.Session{}, errors.New("you are not signed in: run `patchway login` (automation: --token-file or " + envToken + ")")
	}
	return s, err
}

func (f *identityFlags) sessionPath() (string, error) {
	if f.session != "" {
		return f.session, nil
	}
	return oidc.DefaultSessionPath()
}

// readBoundedFile reads a small file, refusing one over limit bytes.
func readBoundedFile(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes: not a token", path, limit)
	}
	return b, nil
}

// loginOptions are the flags of patchway login.
type loginOptions struct {
	ioStreams
	issuer   string
	clientID string
	session  string
	scopes   []string
	// printToken prints the saved session's login token and signs in
	// nobody (--print-token).
	printToken bool
}

func newLoginCmd(_ *globalFlags) *cobra.Command {
	o := &loginOptions{}
	cmd := &cobra.Command{
		Use:   "login [--issuer URL]",
		Short: "Sign in at the identity provider (OpenID Connect device flow): every action then carries a verified token",
		Long: "Sign in at the company's identity provider by the device authorization grant (RFC 8628): the\n" +
			"command prints a link and a code, you open the link on any device and sign in, and the command\n" +
			"saves the session (readable by you only). Gate and control commands then exchange it for a\n" +
			"short token bound to each action, which the gates policy verifies. `patchway dev` prints its\n" +
			"local issuer; production names the company's (Entra ID, Okta, Keycloak, Dex).",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	cmd.Flags().StringVar(&o.issuer, "issuer", os.Getenv(envIssuer), "the identity provider's issuer URL (env "+envIssuer+")")
	cmd.Flags().StringVar(&o.clientID, "client-id", defaultClientID, "the OAuth client id registered for the Patchway CLI")
	cmd.Flags().StringVar(&o.session, "session", "", "where to keep the session (default: the user config directory)")
	cmd.Flags().BoolVar(&o.printToken, "print-token", false, "print the saved session's login token (for TEMPORAL_API_KEY against a frontend that authenticates, as `patchway dev --auth`) and exit")
	cmd.Flags().StringSliceVar(&o.scopes, "scope", []string{"openid", "profile", "email", "groups"}, "scopes to ask for")
	return cmd
}

func (o *loginOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	if o.session == "" {
		p, err := oidc.DefaultSessionPath()
		if err != nil {
			return err
		}
		o.session = p
	}
	return nil
}

func (o *loginOptions) Validate() error {
	if o.printToken {
		return nil
	}
	if o.issuer == "" {
		return errors.New("name the identity provider: --issuer URL or " + envIssuer + " (patchway dev prints its own)")
	}
	return nil
}

// loginTimeout bounds a sign-in: the device code's own expiry is shorter.
const loginTimeout = 15 * time.Minute

func (o *loginOptions) Run(ctx context.Context) error {
	if o.printToken {
		s, err := oidc.LoadSession(o.session)
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("you are not signed in: run `patchway login`")
		}
		if err != nil {
			return err
		}
		if !s.Expiry.IsZero() && time.Now().After(s.Expiry) {
			return fmt.Errorf("your sign-in at %s expired at %s: run `patchway login` again", s.Issuer, s.Expiry.Local().Format(time.RFC3339))
		}
		fmt.Fprintln(o.Out, s.AccessToken)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	p, err := oidc.Discover(ctx, nil, o.issuer)
	if err != nil {
		return err
	}
	s, err := p.DeviceLogin(ctx, o.clientID, o.scopes, func(c oidc.DeviceCode) {
		fmt.Fprintf(o.ErrOut, "To sign in, open %s and enter the code %s\n", c.VerificationURI, c.UserCode)
		if c.VerificationURIComplete != "" {
			fmt.Fprintf(o.ErrOut, "  (or open %s)\n", c.VerificationURIComplete)
		}
		fmt.Fprintln(o.ErrOut, "Waiting for you to sign in...")
	})
	if err != nil {
		return err
	}
	if err := oidc.SaveSession(o.session, s); err != nil {
		return fmt.Errorf("save the session: %w", err)
	}
	sub := subjectOf(s.AccessToken)
	fmt.Fprintf(o.Out, "signed in at %s as %s until %s\n", s.Issuer, sub, s.Expiry.Local().Format(time.RFC3339))
	fmt.Fprintf(o.Out, "  session kept in %s\n", o.session)
	return nil
}

// subjectOf is a token's unverified subject, for messages only.
func subjectOf(token string) string {
	sub, err := oidc.UnverifiedSubject(token)
	if err != nil || sub == "" {
		return "(unknown subject)"
	}
	return sub
}

// personLabel is how a decision's person reads in status and reports:
// the name, marked when it was not verified.
func personLabel(name string, p *contract.Person) string {
	if p != nil && !p.Verified {
		return name + " (unverified)"
	}
	return name
}
