package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/fleetsim"
)

// Environment of `patchway fleet`: the credentials every simulated host
// accepts. The password never comes from a file in the repository.
const (
	envFleetUser     = "PATCHWAY_FLEET_USER"
	envFleetPassword = "PATCHWAY_FLEET_PASSWORD"
)

// fleetConfig is what a simulated fleet is started from, in `patchway
// fleet` and in `patchway dev` alike.
type fleetConfig struct {
	scenario string
	// dir receives the inventory and the fleet's CA certificate; the
	// ports of an inventory already there are reused, so rollouts resumed
	// after a restart reach the same hosts.
	dir                string
	seed               int64
	username, password string
	rebootDowntime     time.Duration
	installDuration    time.Duration
}

// runningFleet is a started fleet and the inventory that reaches it.
type runningFleet struct {
	*fleetsim.Fleet
	inventoryPath string
	credential    string
}

// startFleet starts the scenario's hosts on loopback and writes their
// inventory to cfg.dir (fleetsim.StartInDir).
func startFleet(ctx context.Context, cfg fleetConfig) (*runningFleet, error) {
	f, sc, invPath, err := fleetsim.StartInDir(ctx, cfg.scenario, cfg.dir, fleetsim.Options{
		Seed:            cfg.seed,
		Username:        cfg.username,
		Password:        cfg.password,
		RebootDowntime:  cfg.rebootDowntime,
		InstallDuration: cfg.installDuration,
	})
	if err != nil {
		return nil, err
	}
	return &runningFleet{Fleet: f, inventoryPath: invPath, credential: sc.Credential}, nil
}

// credentials resolves the fleet's credential set for an in-process
// worker.
func (f *runningFleet) credentials(username, password string) activities.CredentialResolver {
	return activities.StaticCredentials{f.credential: {Username: username, Password: password,
		Binding: activities.CredentialBinding{Addresses: []string{fleetsim.ListenAddresses}}}}
}

// randomPassword makes a throwaway password for an in-process fleet and
// worker pair; it is never printed.
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate fleet password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// fleetOptions are the flags of patchway fleet and the credentials its
// hosts accept, from the environment.
type fleetOptions struct {
	ioStreams
	cfg fleetConfig
}

func newFleetCmd(_ *globalFlags) *cobra.Command {
	o := &fleetOptions{}
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Run a simulated Windows fleet that speaks WinRM on loopback",
		Long: "Start the simulated hosts of a fleet scenario (see examples/fleet-demo.hcl), each with its own\n" +
			"WinRM (WS-Management over HTTPS) listener on 127.0.0.1, write the matching inventory and the\n" +
			"fleet's CA certificate to --dir, and run until interrupted. Every host accepts the user\n" +
			envFleetUser + " (default patchway) with the password " + envFleetPassword + "; a worker\n" +
			"reaches them with the same pair as credential set \"fleet\" (PATCHWAY_CRED_FLEET_USER and\n" +
			"PATCHWAY_CRED_FLEET_PASSWORD, bound with PATCHWAY_CRED_FLEET_ADDRESSES=" + fleetsim.ListenAddresses + "). Running it again on the same --dir reuses the hosts' ports.",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.scenario, "scenario", "examples/fleet-demo.hcl", "fleet scenario file")
	f.StringVar(&o.cfg.dir, "dir", filepath.Join(defaultStateDir(), "fleet"), "directory for the inventory and the CA certificate")
	f.Int64Var(&o.cfg.seed, "seed", 1, "seed of every random choice (flaky connection drops)")
	f.DurationVar(&o.cfg.rebootDowntime, "reboot-downtime", 2*time.Second, "how long a rebooting host refuses connections")
	f.DurationVar(&o.cfg.installDuration, "install-duration", 0, "how long each install runs")
	return cmd
}

// Complete takes the hosts' credentials from the environment.
func (o *fleetOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	o.cfg.password = os.Getenv(envFleetPassword)
	o.cfg.username = os.Getenv(envFleetUser)
	return nil
}

// Validate refuses to start hosts without a password.
func (o *fleetOptions) Validate() error {
	if o.cfg.password == "" {
		return errors.New("set " + envFleetPassword + " to the password the simulated hosts accept (it is never read from a file)")
	}
	return nil
}

// Run runs the fleet until SIGINT or SIGTERM.
func (o *fleetOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runFleet(ctx, o.Out, o.cfg)
}

func runFleet(ctx context.Context, out io.Writer, cfg fleetConfig) error {
	started := time.Now()
	f, err := startFleet(ctx, cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(out, "Simulated fleet ready: %d hosts in %s\n", len(f.Hosts()), time.Since(started).Round(time.Millisecond))
	fmt.Fprintf(out, "  inventory  %s\n", f.inventoryPath)
	fmt.Fprintf(out, "  CA         %s\n", filepath.Join(cfg.dir, "fleet-ca.pem"))
	fmt.Fprintf(out, "  credential set %q: give the worker %s_USER / _PASSWORD and %s_ADDRESSES=%s\n",
		f.credential, activities.CredentialEnvName(f.credential), activities.CredentialEnvName(f.credential), fleetsim.ListenAddresses)
	fmt.Fprintln(out, "Ctrl-C stops it.")
	<-ctx.Done()
	return nil
}
