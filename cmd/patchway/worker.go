package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/patchway/patchway/activities"
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

func newWorkerCmd(g *globalFlags) *cobra.Command {
	var (
		conn        clientFlags
		maxActs     int
		stopTimeout time.Duration
		logLevel    string
		cpuProfile  string
		statsPath   string
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Patchway worker against a Temporal cluster (workflows and every activity)",
		Long: "Run a Patchway worker: it polls the \"" + workflows.TaskQueue + "\" task queue and runs the rollout\n" +
			"workflows and every activity (host operations over WinRM, policy decisions, notifications,\n" +
			"the report). Host credential sets come from PATCHWAY_CRED_<NAME>_USER/_PASSWORD or the 0600\n" +
			"file named by PATCHWAY_CREDENTIALS_FILE. SIGINT or SIGTERM stops it gracefully: no new tasks,\n" +
			"in-flight activities get --stop-timeout to finish, and any other worker resumes the rest.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCPUProfile(cpuProfile, func() error {
				return runWorker(cmd.Context(), g, conn, workerRun{maxActs: maxActs, stopTimeout: stopTimeout,
					logLevel: logLevel, statsPath: statsPath})
			})
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().IntVar(&maxActs, "max-concurrent-activities", 0, "activities in flight at most (0: the SDK default)")
	cmd.Flags().DurationVar(&stopTimeout, "stop-timeout", defaultStopTimeout, "how long in-flight activities get to finish on SIGINT/SIGTERM")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", cpuProfileUsage)
	cmd.Flags().StringVar(&statsPath, "policy-stats", "", "record every policy decision's latency and write counts and p50/p99 as JSON to this file on a graceful stop")
	return cmd
}

// workerRun is what `patchway worker` runs with, besides the connection.
type workerRun struct {
	maxActs     int
	stopTimeout time.Duration
	logLevel    string
	statsPath   string
}

// runWorker runs a worker until SIGINT or SIGTERM, then stops it
// gracefully and writes the policy statistics if asked.
func runWorker(ctx context.Context, g *globalFlags, conn clientFlags, o workerRun) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := newLogger(os.Stderr, level)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := conn.dial(ctx, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	var stats *policies.Stats
	if o.statsPath != "" {
		stats = policies.NewStats()
	}
	w, engine, err := newWorker(ctx, c, workerConfig{
		PolicyDir:               g.policyDir,
		Credentials:             &activities.EnvCredentials{},
		MaxConcurrentActivities: o.maxActs,
		StopTimeout:             o.stopTimeout,
		Logger:                  logger,
		PolicyStats:             stats,
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker started", "address", conn.address, "namespace", conn.namespace,
		"task_queue", workflows.TaskQueue, "policy_revision", engine.Revision())
	<-ctx.Done()
	logger.Info("stopping worker: in-flight activities get the stop timeout to finish", "stop_timeout", o.stopTimeout)
	w.Stop()
	logger.Info("worker stopped")
	if stats != nil {
		return writePolicyStats(o.statsPath, stats)
	}
	return nil
}
