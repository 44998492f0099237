package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/console"
	"github.com/patchway/patchway/policies"
)

// devConsolePort is the console's port under `patchway dev`.
const devConsolePort = 8235

// consoleOptions are the flags of patchway console.
type consoleOptions struct {
	ioStreams
	global   *globalFlags
	conn     clientFlags
	listen   string
	issuer   string
	clientID string
	webUI    string
}

func newConsoleCmd(g *globalFlags) *cobra.Command {
	o := &consoleOptions{global: g}
	cmd := &cobra.Command{
		Use:   "console [--listen 127.0.0.1:8235] [--issuer URL] [--web-ui URL]",
		Short: "Serve the web console on loopback: rollouts, hosts, evidence, decisions, and acting as the signed-in person",
		Long: "Serve Patchway's web console. It reads everything from the rollout workflows (their queries) and\n" +
			"Temporal's visibility and keeps no state of its own; people sign in at the identity provider\n" +
			"(--issuer: authorization code with PKCE, the console registered as the public client --client-id\n" +
			"with a loopback redirect URI), and each action carries a token bound to it that the gates policy\n" +
			"verifies, as the CLI's do. It listens on loopback only: put a reverse proxy with TLS in front to\n" +
			"share it. `patchway dev` starts one.",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&o.listen, "listen", fmt.Sprintf("127.0.0.1:%d", devConsolePort), "loopback address and port to serve on (port 0: any free port)")
	cmd.Flags().StringVar(&o.issuer, "issuer", os.Getenv(envIssuer), "the identity provider people sign in at (env "+envIssuer+"); without it the console is read-only")
	cmd.Flags().StringVar(&o.clientID, "client-id", console.DefaultClientID, "the console's client id at the identity provider")
	cmd.Flags().StringVar(&o.webUI, "web-ui", os.Getenv("TEMPORAL_UI"), "the Temporal Web UI's base URL, for links into a rollout's history (env TEMPORAL_UI)")
	return cmd
}

func (o *consoleOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	return nil
}

// Validate refuses an address off loopback: the console's session
// cookie and its sign-in redirect are plain HTTP.
func (o *consoleOptions) Validate() error {
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: the console serves loopback only (127.0.0.0/8, ::1); put a reverse proxy with TLS in front to share it", o.listen)
	}
	return nil
}

func (o *consoleOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := o.conn.options(cliLogger())
	if err != nil {
		return err
	}
	// Lazy: a server that is down when the console starts is shown as
	// down, and the pages recover when it answers.
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	engine, err := policies.Load(ctx, o.global.policyDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return serveConsole(ctx, ln, console.Options{Client: c, Namespace: opts.Namespace, Address: opts.HostPort,
		WebUI: o.webUI, Issuer: o.issuer, ClientID: o.clientID, Exceptions: engine, Logger: cliLogger()}, o.Out)
}

// serveConsole serves a console on ln until ctx ends, saying where.
func serveConsole(ctx context.Context, ln net.Listener, opts console.Options, out io.Writer) error {
	srv, err := console.New(opts)
	if err != nil {
		_ = ln.Close()
		return err
	}
	fmt.Fprintf(out, "console: http://%s\n", ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
