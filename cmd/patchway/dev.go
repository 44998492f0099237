package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/console"
	"github.com/patchway/patchway/devidp"
	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/internal/devcert"
	"github.com/patchway/patchway/oidc"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/workflows"
)

// Defaults of `patchway dev`: the Temporal CLI's dev server ports, so the
// other commands' default --address reaches it.
const (
	devFrontendPort = 7233
	devUIPort       = 8233
)

// defaultStateDir is where `patchway dev` keeps its SQLite file (and the
// simulated fleet's inventory) between runs: $XDG_STATE_HOME/patchway, or
// ~/.local/state/patchway.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "patchway")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "patchway-state")
	}
	return filepath.Join(home, ".local", "state", "patchway")
}

// devOptions are the flags of patchway dev, and what runDev runs with.
type devOptions struct {
	ioStreams
	global       *globalFlags
	stateDir     string
	inMemory     bool
	ip           string
	frontendPort int
	uiPort       int
	headless     bool
	namespace    string
	policyDir    string
	// scenario is the simulated fleet to run ("" = none).
	scenario string
	// noWorker runs the server (and fleet) only, for a separate worker.
	noWorker bool
	// inbox prints the notifications of unconfigured channels on out.
	inbox bool
	// cpuProfile is the --cpuprofile file ("" = none), see profile.go.
	cpuProfile string
	// insecureIdentity lets people act with a typed --as name, recorded
	// unverified (--insecure-dev-identity).
	insecureIdentity bool
	// idpPort is the local identity provider's port (0: any free one).
	idpPort int
	// consolePort is the web console's port (0: any free one, -1: none).
	consolePort int
	// auth makes the Temporal frontend authenticate every call (--auth).
	auth bool
}

func newDevCmd(g *globalFlags) *cobra.Command {
	o := &devOptions{global: g}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a Temporal dev server, its Web UI and a worker in one process",
		Long: "Run everything Patchway needs on one machine: an embedded Temporal server persisted in SQLite\n" +
			"under --state-dir, its Web UI, Patchway's search attributes and namespace retention (set at every\n" +
			"start), and a worker. Ctrl-C stops everything cleanly; running it again resumes the rollouts\n" +
			"from the SQLite file. Everything listens on loopback only unless --ip says otherwise.",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "directory of the SQLite file that keeps rollouts between runs")
	f.BoolVar(&o.inMemory, "in-memory", false, "keep nothing: an in-memory server, gone at exit")
	f.StringVar(&o.ip, "ip", devserver.DefaultIP, "address the frontend and the Web UI listen on")
	f.IntVar(&o.frontendPort, "port", devFrontendPort, "Temporal frontend (gRPC) port")
	f.IntVar(&o.uiPort, "ui-port", devUIPort, "Web UI port")
	f.BoolVar(&o.headless, "headless", false, "run without the Web UI")
	f.StringVarP(&o.namespace, "namespace", "n", devserver.DefaultNamespace, "namespace to create and run in")
	f.StringVar(&o.scenario, "scenario", "examples/fleet-demo.hcl", "simulated fleet to run (\"\" for none); its inventory goes to STATE-DIR/fleet/inventory.hcl")
	f.BoolVar(&o.noWorker, "no-worker", false, "run no worker (start `patchway worker` yourself)")
	f.BoolVar(&o.inbox, "inbox", true, "print here the notifications of every channel with no PATCHWAY_CHANNEL_<NAME>_* settings (--inbox=false: such channels fail as they would in production)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", cpuProfileUsage)
	f.BoolVar(&o.insecureIdentity, "insecure-dev-identity", false, "also accept a typed name (--as with --insecure-dev-identity) instead of a token; every such action is recorded and reported unverified")
	f.BoolVar(&o.auth, "auth", false, "make the Temporal frontend authenticate every call with a token of the local provider (Temporal's JWT claim mapper and default authorizer); the Web UI reads as a reader, the worker acts as a writer")
	f.IntVar(&o.consolePort, "console-port", devConsolePort, "port of the web console (patchway console) on 127.0.0.1 (0: any free port, -1: no console)")
	f.IntVar(&o.idpPort, "idp-port", devIDPPort, "port of the local OpenID Connect issuer for the demo's people")
	return cmd
}

// Complete takes the policies the worker runs with.
func (o *devOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	o.policyDir = o.global.policyDir
	return nil
}

// Validate has nothing to check: the ports and the state directory are
// found out when the server starts.
func (o *devOptions) Validate() error { return nil }

// Run runs the dev environment until SIGINT or SIGTERM, profiled with
// --cpuprofile.
func (o *devOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return withCPUProfile(o.cpuProfile, func() error { return runDev(ctx, o.Out, o.ErrOut, *o) })
}

// runDev starts the server, the UI and a worker, prints where they are and
// what to run next, and stops them all when ctx ends.
func runDev(ctx context.Context, out, errOut io.Writer, o devOptions) error {
	logger := newLogger(errOut, slog.LevelInfo)
	stateDir := o.stateDir
	if o.inMemory {
		stateDir = ""
	}
	started := time.Now()
	idp, auth, workerToken, err := startDevIdentity(ctx, o)
	if err != nil {
		return err
	}
	defer idp.Close()
	srv, err := devserver.Start(ctx, devserver.Options{
		Auth:             auth,
		StateDir:         stateDir,
		Namespace:        o.namespace,
		IP:               o.ip,
		FrontendPort:     o.frontendPort,
		UIPort:           o.uiPort,
		DisableUI:        o.headless,
		SearchAttributes: patchwaySearchAttributes(),
		Logger:           logger,
	})
	if err != nil {
		return fmt.Errorf("start dev server: %w", err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			logger.Error("stop dev server", "error", err)
		}
	}()

	co := client.Options{
		HostPort:  srv.FrontendAddress(),
		Namespace: srv.Namespace(),
		Logger:    sdklog.NewStructuredLogger(logger),
	}
	if workerToken != nil {
		// The worker's own service identity (client credentials).
		co.Credentials = client.NewAPIKeyDynamicCredentials(workerToken)
		co.ConnectionOptions.TLS = auth.ClientTLS()
	}
	c, err := client.DialContext(ctx, co)
	if err != nil {
		return fmt.Errorf("connect to the dev server: %w", err)
	}
	defer c.Close()
	var creds activities.CredentialResolver = &activities.EnvCredentials{}
	var fleet *runningFleet
	if o.scenario != "" {
		if fleet, creds, err = startDevFleet(ctx, o, stateDir, creds); err != nil {
			return err
		}
		defer fleet.Close()
	}
	revision := ""
	inbox := false
	var exceptions report.ExceptionPolicy
	if !o.noWorker {
		var channels activities.ChannelResolver
		if o.inbox {
			in, err := startDevInbox(ctx, out)
			if err != nil {
				return err
			}
			channels, inbox = in, true
		}
		w, engine, err := newWorker(ctx, c, workerConfig{
			PolicyDir:   o.policyDir,
			Credentials: creds,
			Channels:    channels,
			Logger:      logger,
			Identity:    "patchway-dev",
			PolicyData:  devPolicyData(idp.URL(), o.insecureIdentity),
		})
		if err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop()
		revision = engine.Revision()
		exceptions = engine
		if o.policyDir != "" {
			go watchPolicies(ctx, engine, defaultPolicyReload, nil, logger)
		}
	}

	id := devIdentity{issuer: idp.URL(), insecure: o.insecureIdentity, noWorker: o.noWorker}
	if auth != nil {
		id.caFile = auth.CAFile
	}
	consoleURL := ""
	if o.consolePort >= 0 {
		if exceptions == nil {
			engine, err := policies.Load(ctx, o.policyDir)
			if err != nil {
				return err
			}
			exceptions = engine
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(devserver.DefaultIP, strconv.Itoa(o.consolePort)))
		if err != nil {
			return fmt.Errorf("console: %w (--console-port 0 picks a free port, -1 starts none)", err)
		}
		consoleURL = "http://" + ln.Addr().String()
		copts := console.Options{Client: c, Namespace: srv.Namespace(), Address: srv.FrontendAddress(), WebUI: srv.UIAddress(),
			Issuer: idp.URL(), Exceptions: exceptions, Logger: logger}
		go func() {
			if err := serveConsole(ctx, ln, copts, io.Discard); err != nil {
				logger.Error("console stopped", "error", err)
			}
		}()
	}
	printDevBanner(out, srv, fleet, revision, inbox, id, consoleURL, time.Since(started))
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping: worker, then server and Web UI...")
	return nil
}

// startDevIdentity starts the local identity provider and, with --auth,
// the service identities of the dev server's own calls, the Web UI's and
// the worker's: confidential clients with secrets made here and never
// shown, whose tokens carry the Temporal roles Temporal's claim mapper
// reads (temporal-system:admin, default:read, default:write).
func startDevIdentity(ctx context.Context, o devOptions) (*devidp.Issuer, *devserver.Auth, func(context.Context) (string, error), error) {
	opts := devidp.Options{Addr: net.JoinHostPort(devserver.DefaultIP, strconv.Itoa(o.idpPort))}
	secrets := map[string]string{}
	if o.auth {
		for _, c := range []struct {
			id, perm string
		}{{"patchway-dev-system", "temporal-system:admin"}, {"patchway-dev-ui", o.namespace + ":read"}, {"patchway-dev-worker", o.namespace + ":write"}} {
			secret, err := randomPassword()
			if err != nil {
				return nil, nil, nil, err
			}
			secrets[c.id] = secret
			opts.Clients = append(opts.Clients, devidp.Client{ID: c.id, Secret: secret, Subject: c.id, Permissions: []string{c.perm}})
		}
	}
	idp, err := devidp.Start(opts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("start the local identity provider: %w", err)
	}
	if !o.auth {
		return idp, nil, nil, nil
	}
	p, err := oidc.Discover(ctx, nil, idp.URL())
	if err != nil {
		_ = idp.Close()
		return nil, nil, nil, err
	}
	token := func(id string) func(context.Context) (string, error) { return p.ServiceToken(ctx, id, secrets[id]) }
	pair, err := devcert.New("Patchway dev frontend CA", "Patchway dev frontend")
	if err != nil {
		_ = idp.Close()
		return nil, nil, nil, fmt.Errorf("frontend certificate: %w", err)
	}
	caFile, err := writeDevCA(ctx, o, pair.CAPEM)
	if err != nil {
		_ = idp.Close()
		return nil, nil, nil, err
	}
	auth := &devserver.Auth{JWKSURL: p.JWKSURI, SystemToken: token("patchway-dev-system"), UIToken: token("patchway-dev-ui"),
		CertPEM: pair.CertPEM, KeyPEM: pair.KeyPEM, CAPEM: pair.CAPEM, CAFile: caFile}
	return idp, auth, token("patchway-dev-worker"), nil
}

// writeDevCA writes the frontend's CA where clients can name it
// (TEMPORAL_TLS_CA): STATE-DIR/frontend-ca.pem, or a temporary directory
// removed at exit in memory mode.
func writeDevCA(ctx context.Context, o devOptions, caPEM []byte) (string, error) {
	dir := o.stateDir
	if o.inMemory || dir == "" {
		tmp, err := os.MkdirTemp("", "patchway-dev-")
		if err != nil {
			return "", fmt.Errorf("frontend CA directory: %w", err)
		}
		context.AfterFunc(ctx, func() { _ = os.RemoveAll(tmp) })
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("frontend CA directory: %w", err)
	}
	path := filepath.Join(dir, "frontend-ca.pem")
	if err := os.WriteFile(path, caPEM, 0o644); err != nil {
		return "", fmt.Errorf("write the frontend CA: %w", err)
	}
	return path, nil
}

// devIDPPort is the local identity provider's default port, next to the
// Web UI's.
const devIDPPort = 8234

// devPolicyData is what the dev worker's policies are told of the dev
// environment: the local issuer is the trusted one, and typed names are
// accepted only when --insecure-dev-identity asks.
func devPolicyData(issuer string, insecure bool) map[string]any {
	d := map[string]any{"oidc/issuer": issuer}
	if insecure {
		d["oidc/insecure_dev_identity"] = true
	}
	return d
}

// devIdentity is what the banner says of the local identity provider.
type devIdentity struct {
	issuer             string
	insecure, noWorker bool
	// caFile is the frontend's CA when it authenticates (--auth).
	caFile string
}

// print says who can sign in and how.
func (d devIdentity) print(out io.Writer) {
	var names []string
	for _, p := range devidp.DemoPeople() {
		names = append(names, p.Subject)
	}
	fmt.Fprintf(out, "  identity provider  %s (OpenID Connect on loopback; people %s, dev only: each one's password is the name)\n",
		d.issuer, strings.Join(names, ", "))
	if d.caFile != "" {
		fmt.Fprintf(out, "  frontend auth      on, over TLS: every call needs a token of the provider with a Temporal role\n")
		fmt.Fprintf(out, "                     export TEMPORAL_TLS_CA=%s TEMPORAL_API_KEY=$(patchway login --print-token)\n", d.caFile)
	}
	if d.insecure {
		fmt.Fprintln(out, "  insecure identity  on: --insecure-dev-identity --as NAME is accepted, and recorded and reported unverified")
	}
	if d.noWorker {
		fmt.Fprintf(out, "  your worker        trusts the provider with {\"oidc\": {\"issuer\": %q}} in its --policy-dir\n", d.issuer)
	}
}

// startDevFleet starts the simulated fleet next to the server's state (a
// temporary directory in memory mode). The hosts accept
// PATCHWAY_FLEET_PASSWORD when set (a separate worker needs it), else a
// random password only the in-process worker knows; the returned resolver
// gives the worker the fleet's set before the environment's.
func startDevFleet(ctx context.Context, o devOptions, stateDir string, env activities.CredentialResolver) (*runningFleet, activities.CredentialResolver, error) {
	dir := filepath.Join(stateDir, "fleet")
	if stateDir == "" {
		tmp, err := os.MkdirTemp("", "patchway-fleet-")
		if err != nil {
			return nil, nil, fmt.Errorf("fleet directory: %w", err)
		}
		context.AfterFunc(ctx, func() { _ = os.RemoveAll(tmp) })
		dir = tmp
	}
	user := cmp.Or(os.Getenv(envFleetUser), "patchway")
	password := os.Getenv(envFleetPassword)
	if password == "" {
		if o.noWorker {
			return nil, nil, errors.New("--no-worker with a fleet: set " + envFleetPassword + " so that your worker can reach the hosts")
		}
		var err error
		if password, err = randomPassword(); err != nil {
			return nil, nil, err
		}
	}
	f, err := startFleet(ctx, fleetConfig{scenario: o.scenario, dir: dir, seed: 1, username: user, password: password,
		rebootDowntime: 2 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	return f, firstCredentials{f.credentials(user, password), env}, nil
}

// firstCredentials resolves a set from the first resolver that knows it.
type firstCredentials []activities.CredentialResolver

// Resolve implements activities.CredentialResolver.
func (fc firstCredentials) Resolve(ctx context.Context, name string) (activities.Credential, error) {
	var err error
	for _, r := range fc {
		var c activities.Credential
		if c, err = r.Resolve(ctx, name); err == nil || !errors.Is(err, activities.ErrCredentialNotFound) {
			return c, err
		}
	}
	return activities.Credential{}, err
}

func printDevBanner(out io.Writer, srv *devserver.Server, fleet *runningFleet, policyRevision string, inbox bool, id devIdentity, consoleURL string, took time.Duration) {
	fmt.Fprintf(out, "Patchway dev environment ready in %s\n", took.Round(100*time.Millisecond))
	fmt.Fprintf(out, "  Temporal frontend  %s (namespace %s)\n", srv.FrontendAddress(), srv.Namespace())
	if srv.UIAddress() != "" {
		fmt.Fprintf(out, "  Web UI             %s/namespaces/%s/workflows\n", srv.UIAddress(), srv.Namespace())
	}
	if consoleURL != "" {
		fmt.Fprintf(out, "  console            %s (sign in as any demo person)\n", consoleURL)
	}
	if p := srv.DatabasePath(); p != "" {
		fmt.Fprintf(out, "  state              %s (rollouts survive a restart)\n", p)
	} else {
		fmt.Fprintln(out, "  state              in memory (gone at exit)")
	}
	if policyRevision != "" {
		fmt.Fprintf(out, "  worker             task queue %s, policy revision %s\n", workflows.TaskQueue, shortRevision(policyRevision))
	} else {
		fmt.Fprintf(out, "  worker             none (--no-worker): run `patchway worker` against this server\n")
	}
	if inbox {
		fmt.Fprintln(out, "  notifications      printed below for every channel without PATCHWAY_CHANNEL_<NAME>_* settings")
	}
	inventory := ""
	if fleet != nil {
		fmt.Fprintf(out, "  fleet              %d simulated Windows hosts, WinRM over HTTPS on 127.0.0.1\n", len(fleet.Hosts()))
		fmt.Fprintf(out, "  fleet inventory    %s\n", fleet.inventoryPath)
		inventory = " --inventory " + fleet.inventoryPath
	}
	addr := ""
	if srv.FrontendAddress() != fmt.Sprintf("127.0.0.1:%d", devFrontendPort) {
		addr = " --address " + srv.FrontendAddress()
	}
	id.print(out)
	fmt.Fprintln(out, "\nNext, in another terminal:")
	fmt.Fprintf(out, "  patchway login --issuer %s              (sign in as alice)\n", id.issuer)
	fmt.Fprintf(out, "  patchway submit examples/ms08-067.hcl%s%s\n", inventory, addr)
	fmt.Fprintf(out, "  patchway status ms08-067 --watch%s\n", addr)
	fmt.Fprintf(out, "  patchway login --issuer %s && patchway approve ms08-067%s   (as bob: alice filed it)\n", id.issuer, addr)
	fmt.Fprintln(out, "\nCtrl-C stops everything; running `patchway dev` again resumes from the state directory.")
}
