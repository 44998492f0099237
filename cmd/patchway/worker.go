package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/oidc"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/scan"
	"github.com/patchway/patchway/workflows"
)

// workerConfig is what a Patchway worker is built from, in `patchway
// worker` and in `patchway dev` alike.
type workerConfig struct {
	// PolicyDir replaces or extends the embedded policies ("" = defaults).
	PolicyDir string
	// Credentials resolves the hosts' credential sets (environment or a
	// 0600 file in production; the simulated fleet's in `patchway dev`).
	Credentials activities.CredentialResolver
	// Channels resolves the rollouts' notification channels (nil: the
	// PATCHWAY_CHANNEL_<NAME>_* environment variables).
	Channels activities.ChannelResolver
	// MaxConcurrentActivities bounds activities in flight (0 = SDK default).
	MaxConcurrentActivities int
	// StopTimeout is how long in-flight activities get to finish on stop.
	StopTimeout time.Duration
	Logger      *slog.Logger
	// Identity names this worker in the Web UI (default: the SDK's).
	Identity string
	// PolicyStats, when set, records every policy decision's latency.
	PolicyStats *policies.Stats
	// PolicyData is run-time data put over the bundle's (policies'
	// SetData): what `patchway dev` says of its own identity provider.
	PolicyData map[string]any
	// KeyRefresh is how often the identity provider's keys are fetched
	// again (0: every 5 minutes).
	KeyRefresh time.Duration
}

// defaultStopTimeout lets a host's install finish on a graceful stop; a
// longer one (a reboot wait) is resumed from its heartbeat by the next
// worker.
const defaultStopTimeout = 30 * time.Second

// newWorker builds a worker on Patchway's task queue with the workflows
// and every activity registered: host operations over WinRM, the policy
// decisions (local activities), notification and the report.
func newWorker(ctx context.Context, c client.Client, cfg workerConfig) (worker.Worker, *policies.Engine, error) {
	engine, err := policies.Load(ctx, cfg.PolicyDir)
	if err != nil {
		return nil, nil, fmt.Errorf("load policies: %w", err)
	}
	if cfg.PolicyStats != nil {
		engine = engine.WithStats(cfg.PolicyStats)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.PolicyData)) {
		if err := engine.SetData(ctx, k, cfg.PolicyData[k]); err != nil {
			return nil, nil, err
		}
	}
	startKeyRefresh(ctx, engine, cfg.KeyRefresh, cfg.Logger)
	stop := cfg.StopTimeout
	if stop <= 0 {
		stop = defaultStopTimeout
	}
	w := worker.New(c, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		WorkerStopTimeout:                  stop,
		Identity:                           cfg.Identity,
	})
	workflows.Register(w)
	scan.Register(w)

	channels := cfg.Channels
	if channels == nil {
		channels = activities.EnvChannels{}
	}
	activities.Register(w, activities.Deps{
		Hosts: &activities.HostActivities{
			Runner: &activities.WinRMRunner{Credentials: cfg.Credentials, Transport: engine},
			Policy: engine,
		},
		Policy:   activities.NewPolicyActivities(engine),
		Notifier: &activities.Notifier{Channels: channels},
		Reports:  activities.ReportActivities{Policy: engine},
	})
	return w, engine, nil
}

// startKeyRefresh keeps the keys of the identity provider the policy
// data trusts (data.oidc.issuer) in data.oidc_keys: fetched once now, so
// the first action finds them, then every `every` in the background
// until ctx ends. The oidc policy judges how old they may be.
func startKeyRefresh(ctx context.Context, engine *policies.Engine, every time.Duration, logger *slog.Logger) {
	r := &oidc.KeyRefresher{
		Issuer: func() string { return engine.DataString(ctx, "oidc/issuer") },
		Every:  every,
		Logger: logger,
		Set: func(ctx context.Context, k oidc.Keys) error {
			return engine.SetData(ctx, "oidc_keys", k)
		},
	}
	r.RefreshLogged(ctx)
	go r.Run(ctx)
}

// defaultPolicyReload is how often a worker reads its policy directory
// again: a KEV import or a policy change reaches running rollouts within
// it (a risk decision that names a newer revision reloads at once).
const defaultPolicyReload = 30 * time.Second

// watchPolicies reads the policy directory again every interval (never
// when 0) and on each signal from hup, until ctx ends, and logs each
// change of revision. A bundle that does not load is logged as an error;
// the one in force keeps deciding.
func watchPolicies(ctx context.Context, e *policies.Engine, every time.Duration, hup <-chan os.Signal, logger *slog.Logger) {
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-hup:
		}
		from, to, err := e.Reload(ctx)
		switch {
		case err != nil:
			logger.Error("policy directory not applied: the bundle in force keeps deciding", "policy_revision", from, "error", err)
		case from != to:
			logger.Info("policy bundle reloaded", "from", from, "to", to)
		}
	}
}

// workerOptions are the flags of patchway worker.
type workerOptions struct {
	ioStreams
	global      *globalFlags
	conn        clientFlags
	maxActs     int
	stopTimeout time.Duration
	logLevel    string
	cpuProfile  string
	statsPath   string
	reload      time.Duration
	keyRefresh  time.Duration
	// level is logLevel parsed by Complete.
	level slog.Level
}

func newWorkerCmd(g *globalFlags) *cobra.Command {
	o := &workerOptions{global: g}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Patchway worker against a Temporal cluster (workflows and every activity)",
		Long: "Run a Patchway worker: it polls the \"" + workflows.TaskQueue + "\" task queue and runs the rollout\n" +
			"workflows and every activity (host operations over WinRM, policy decisions, notifications,\n" +
			"the report). Host credential sets come from PATCHWAY_CRED_<NAME>_USER/_PASSWORD or the 0600\n" +
			"file named by PATCHWAY_CREDENTIALS_FILE, each bound on this worker to the addresses it may be\n" +
			"sent to (_ADDRESSES: CIDRs, IPs, host globs; required), its tiers (_TIERS) and transports\n" +
			"(_TRANSPORTS: https, https_insecure, http; default https); the transport policy refuses a host\n" +
			"outside its set's binding before anything is sent. SIGINT or SIGTERM stops it gracefully: no new tasks,\n" +
			"in-flight activities get --stop-timeout to finish, and any other worker resumes the rest.",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().IntVar(&o.maxActs, "max-concurrent-activities", 0, "activities in flight at most (0: the SDK default)")
	cmd.Flags().DurationVar(&o.stopTimeout, "stop-timeout", defaultStopTimeout, "how long in-flight activities get to finish on SIGINT/SIGTERM")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", cpuProfileUsage)
	cmd.Flags().DurationVar(&o.reload, "policy-reload", defaultPolicyReload, "how often to read --policy-dir again and apply a changed bundle (0: only on SIGHUP); a bundle that does not load is logged and the one in force keeps deciding")
	cmd.Flags().DurationVar(&o.keyRefresh, "oidc-refresh", 5*time.Minute, "how often to fetch the identity provider's keys again (0: 5m) (the provider data.oidc.issuer names); the oidc policy refuses tokens once the keys are older than data.oidc.max_key_age_seconds")
	cmd.Flags().StringVar(&o.statsPath, "policy-stats", "", "record every policy decision's latency and write counts and p50/p99 as JSON to this file on a graceful stop")
	return cmd
}

// Complete takes the streams and parses the log level.
func (o *workerOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	if err := o.level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	return nil
}

// Validate refuses limits that cannot mean anything.
func (o *workerOptions) Validate() error {
	if o.maxActs < 0 {
		return fmt.Errorf("--max-concurrent-activities %d: want 0 (the SDK default) or more", o.maxActs)
	}
	if o.stopTimeout < 0 {
		return fmt.Errorf("--stop-timeout %s: must not be negative", o.stopTimeout)
	}
	if o.keyRefresh < 0 {
		return fmt.Errorf("--oidc-refresh %s: must not be negative (0: every 5 minutes)", o.keyRefresh)
	}
	if o.reload < 0 {
		return fmt.Errorf("--policy-reload %s: must not be negative (0 reloads only on SIGHUP)", o.reload)
	}
	return nil
}

// Run runs a worker until SIGINT or SIGTERM, then stops it gracefully and
// writes the policy statistics if asked.
func (o *workerOptions) Run(ctx context.Context) error {
	return withCPUProfile(o.cpuProfile, func() error { return o.serve(ctx) })
}

func (o *workerOptions) serve(ctx context.Context) error {
	logger := newLogger(o.ErrOut, o.level)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := o.conn.dial(ctx, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	var stats *policies.Stats
	if o.statsPath != "" {
		stats = policies.NewStats()
	}
	w, engine, err := newWorker(ctx, c, workerConfig{
		PolicyDir:               o.global.policyDir,
		Credentials:             &activities.EnvCredentials{},
		MaxConcurrentActivities: o.maxActs,
		StopTimeout:             o.stopTimeout,
		Logger:                  logger,
		PolicyStats:             stats,
		KeyRefresh:              o.keyRefresh,
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker started", "address", o.conn.address, "namespace", o.conn.namespace,
		"task_queue", workflows.TaskQueue, "policy_revision", engine.Revision())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go watchPolicies(ctx, engine, o.reload, hup, logger)
	<-ctx.Done()
	logger.Info("stopping worker: in-flight activities get the stop timeout to finish", "stop_timeout", o.stopTimeout)
	w.Stop()
	logger.Info("worker stopped")
	if stats != nil {
		return writePolicyStats(o.statsPath, stats)
	}
	return nil
}
