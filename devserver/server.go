// Package devserver runs a Temporal server and its Web UI inside the
// current process, persisted in SQLite (a file under a state directory, or
// memory for tests). It is what `patchway dev` and the end-to-end tests run
// against: no Docker, no downloaded binary, no network beyond loopback.
//
// The set-up follows the Temporal CLI's own dev server (SQLite persistence
// plugin, static single-host membership, the UI server pointed at the
// frontend) and adds what Patchway needs at every start: its namespace with
// a long retention and its custom search attributes, registered even when
// the SQLite file predates them (the server ignores search attributes given
// at namespace creation once the namespace exists).
package devserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver checkDatabase uses
)

// Defaults of Options.
const (
	DefaultNamespace = "default"
	DefaultIP        = "127.0.0.1"
	// DefaultRetention keeps closed rollouts visible for a month; the
	// server's own default (24 h) would drop yesterday's rollout from the UI.
	DefaultRetention = 30 * 24 * time.Hour
	// DatabaseFile is the SQLite file's name inside Options.StateDir.
	DatabaseFile = "temporal.db"
)

const (
	clusterName = "active"
	// loopback is where the internal services (history, matching, worker)
	// always listen, whatever address the frontend binds to.
	loopback = "127.0.0.1"
	// startTimeout bounds every wait of Start (client dial, search
	// attribute registration, UI readiness).
	startTimeout = time.Minute
	// namespaceRefresh is how often the server's services reread namespace
	// metadata (search attribute aliases live there with SQLite).
	namespaceRefresh = 2 * time.Second
)

// SearchAttribute is a custom search attribute to register in the
// namespace.
type SearchAttribute struct {
	Name string
	Type enumspb.IndexedValueType
}

// Options configures Start. The zero value runs an in-memory server on
// loopback with free ports and no custom search attributes.
type Options struct {
	// StateDir holds the SQLite file (DatabaseFile); empty keeps everything
	// in memory, gone when the server stops. The directory is created
	// (0700) when missing.
	StateDir string
	// Namespace is created when missing (DefaultNamespace when empty).
	Namespace string
	// IP is the address the frontend and the UI bind to (DefaultIP).
	IP string
	// FrontendPort and UIPort: 0 picks a free port.
	FrontendPort int
	UIPort       int
	// DisableUI runs the server without the Web UI.
	DisableUI bool
	// SearchAttributes are registered in Namespace at every start; those
	// already registered with the same type are skipped.
	SearchAttributes []SearchAttribute
	// Retention of closed workflows in Namespace (DefaultRetention).
	Retention time.Duration
	// Logger receives the server's warnings and errors (the server is
	// chatty below that); nil discards them.
	Logger *slog.Logger
	// Auth, when set, makes the frontend authenticate every call.
	Auth *Auth
}

// Server is a running embedded Temporal server and Web UI.
type Server struct {
	opts         Options
	frontendAddr string
	uiAddr       string
	server       temporal.Server
	ui           *uiserver.Server
	uiDone       chan struct{}
	logLevel     *slog.LevelVar
}

// Start starts the server, makes sure the namespace exists with the
// retention and the search attributes, starts the UI and waits until both
// answer. The context bounds the start only, not the server's life: call
// Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = withDefaults(opts)
	// frontend, frontend HTTP, UI on IP; history, matching, worker on
	// loopback.
	ports, err := freePorts(opts.IP, opts.IP, opts.IP, loopback, loopback, loopback, loopback)
	if err != nil {
		return nil, err
	}
	frontendPort := opts.FrontendPort
	if frontendPort == 0 {
		frontendPort = ports[0]
	} else if err := checkPortFree(opts.IP, frontendPort); err != nil {
		return nil, fmt.Errorf("frontend port: %w", err)
	}
	uiPort := opts.UIPort
	if uiPort == 0 {
		uiPort = ports[1]
	} else if !opts.DisableUI {
		// The UI server exits the process when it cannot listen, so check
		// first and fail with an error instead.
		if err := checkPortFree(opts.IP, uiPort); err != nil {
			return nil, fmt.Errorf("UI port: %w", err)
		}
	}
	s := &Server{
		opts:         opts,
		frontendAddr: net.JoinHostPort(opts.IP, strconv.Itoa(frontendPort)),
		uiAddr:       "http://" + net.JoinHostPort(opts.IP, strconv.Itoa(uiPort)),
		logLevel:     new(slog.LevelVar),
	}
	s.logLevel.Set(slog.LevelWarn)
	svcPorts := servicePorts{
		frontend: frontendPort, frontendHTTP: ports[2],
		history: ports[3], matching: ports[4], worker: ports[5], internalFrontend: ports[6],
	}

	sqlConf, err := s.prepareDatabase()
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(s.serverOptions(sqlConf, svcPorts)...)
	if err != nil {
		return nil, fmt.Errorf("build temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	s.server = srv

	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := s.ensureNamespace(startCtx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if !opts.DisableUI {
		if err := s.startUI(startCtx, uiPort); err != nil {
			_ = s.Stop()
			return nil, err
		}
	} else {
		s.uiAddr = ""
	}
	return s, nil
}

// FrontendAddress is the host:port SDK clients and workers dial.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// UIAddress is the Web UI's base URL (http://host:port), empty when the UI
// is disabled.
func (s *Server) UIAddress() string { return s.uiAddr }

// Namespace is the namespace the server made sure exists.
func (s *Server) Namespace() string { return s.opts.Namespace }

// DatabasePath is the SQLite file, empty for an in-memory server.
func (s *Server) DatabasePath() string {
	if s.opts.StateDir == "" {
		return ""
	}
	return filepath.Join(s.opts.StateDir, DatabaseFile)
}

// Stop stops the UI and the server. Workers and clients connected to it
// should be stopped first.
func (s *Server) Stop() error {
	s.logLevel.Set(silent)
	if s.ui != nil {
		s.ui.Stop()
		<-s.uiDone
		s.ui = nil
	}
	if s.server == nil {
		return nil
	}
	err := s.server.Stop()
	s.server = nil
	if err != nil {
		return fmt.Errorf("stop temporal server: %w", err)
	}
	return nil
}

func withDefaults(o Options) Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.IP == "" {
		o.IP = DefaultIP
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

type servicePorts struct {
	frontend, frontendHTTP, history, matching, worker, internalFrontend int
}

// prepareDatabase builds the SQLite persistence config, creates the schema
// of a new file and pre-registers the namespace (with the search
// attributes and the retention) so the server starts with it.
func (s *Server) prepareDatabase() (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if s.opts.StateDir == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		// Each in-memory server gets its own database, so several can run
		// in one test process.
		conf.DatabaseName = "patchway-" + strconv.FormatUint(rand.Uint64(), 36)
	} else {
		if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		conf.ConnectAttributes = map[string]string{"mode": "rwc"}
		conf.DatabaseName = filepath.Join(s.opts.StateDir, DatabaseFile)
		if _, err := os.Stat(conf.DatabaseName); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, fmt.Errorf("create SQLite schema in %s: %w", conf.DatabaseName, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("check SQLite file: %w", err)
		} else if err := checkDatabase(conf.DatabaseName); err != nil {
			return nil, err
		}
	}
	attrs := make(map[string]enumspb.IndexedValueType, len(s.opts.SearchAttributes))
	for _, a := range s.opts.SearchAttributes {
		attrs[a.Name] = a.Type
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, s.opts.Namespace, false, attrs)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", s.opts.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(s.opts.Retention)
	// A no-op when the namespace already exists: ensureNamespace then
	// brings its retention and search attributes up to date.
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", s.opts.Namespace, err)
	}
	return conf, nil
}

func (s *Server) serverOptions(sqlConf *config.SQL, p servicePorts) []temporal.ServerOption {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = loopback
	conf.Persistence.DefaultStore = "sqlite-default"
	conf.Persistence.VisibilityStore = "sqlite-default"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             s.frontendAddr,
				HTTPAddress:            net.JoinHostPort(s.opts.IP, strconv.Itoa(p.frontendHTTP)),
				ClusterID:              primitives.NewUUID().String(),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	service := func(ip string, port int) config.Service {
		var c config.Service
		c.RPC.BindOnIP = ip
		c.RPC.GRPCPort = port
		return c
	}
	frontend := service(s.opts.IP, p.frontend)
	frontend.RPC.HTTPPort = p.frontendHTTP
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): frontend,
		string(primitives.HistoryService):  service(loopback, p.history),
		string(primitives.MatchingService): service(loopback, p.matching),
		string(primitives.WorkerService):   service(loopback, p.worker),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = s.frontendAddr

	// The frontend is reached through its bind address; the others only
	// on loopback.
	frontendHost := net.JoinHostPort(loopback, strconv.Itoa(p.frontend))
	if s.opts.IP != "0.0.0.0" && s.opts.IP != "::" {
		frontendHost = s.frontendAddr
	}
	local := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(port)))
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		dynamicconfig.NamespaceCacheRefreshInterval.Key():                namespaceRefresh,
	}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(frontendHost),
		primitives.HistoryService:  local(p.history),
		primitives.MatchingService: local(p.matching),
		primitives.WorkerService:   local(p.worker),
	}
	services := temporal.DefaultServices
	var authOpts []temporal.ServerOption
	if a := s.opts.Auth; a != nil {
		conf.Global.Authorization = a.authorization()
		conf.Global.TLS.Frontend = a.serverTLS()
		conf.Services[internalFrontend] = service(loopback, p.internalFrontend)
		conf.PublicClient.HostPort = ""
		hosts[primitives.InternalFrontendService] = local(p.internalFrontend)
		services = append(append([]string(nil), services...), internalFrontend)
		authOpts = a.serverOptions(s.opts.Logger, s.logLevel)
	}
	return append([]temporal.ServerOption{
		temporal.WithConfig(&conf),
		temporal.ForServices(services),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(serverLogger{log: s.opts.Logger, minLevel: s.logLevel}),
		temporal.WithDynamicConfigClient(dyn),
	}, authOpts...)
}

// ensureNamespace brings an existing namespace up to date: the retention,
// and every search attribute the options name (a SQLite file created by an
// older Patchway lacks the newer ones).
func (s *Server) ensureNamespace(ctx context.Context) error {
	co := client.Options{
		HostPort:  s.frontendAddr,
		Namespace: s.opts.Namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(minLevelHandler{Handler: s.opts.Logger.Handler(), min: s.logLevel})),
	}
	if a := s.opts.Auth; a != nil {
		a.clientOptions(&co)
	}
	c, err := client.DialContext(ctx, co)
	if err != nil {
		return fmt.Errorf("connect to the embedded server: %w", err)
	}
	defer c.Close()
	ch, err := PrepareNamespace(ctx, c, NamespaceSetup{
		Namespace: s.opts.Namespace, Retention: s.opts.Retention, SearchAttributes: s.opts.SearchAttributes, Poll: namespaceRefresh / 4,
	})
	if err != nil {
		return err
	}
	if len(ch.Added) > 0 {
		// The frontend lists them; the history service refreshes its
		// namespace cache on the same period, so wait one more.
		return sleep(ctx, namespaceRefresh)
	}
	return nil
}

func (s *Server) startUI(ctx context.Context, port int) error {
	var mw []uiserveroptions.ServerOption
	if a := s.opts.Auth; a != nil {
		mw = append(mw, uiserveroptions.WithAPIMiddleware(a.uiMiddleware()))
	}
	var uiTLS uiconfig.TLS
	if a := s.opts.Auth; a != nil {
		uiTLS = uiconfig.TLS{CaFile: a.CAFile, EnableHostVerification: true}
	}
	ui := uiserver.NewServer(append(mw, uiserveroptions.WithConfigProvider(&uiconfig.Config{
		TLS:                 uiTLS,
		Host:                s.opts.IP,
		Port:                port,
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ui.Start(); err != nil {
			s.opts.Logger.Error("web UI stopped", "error", err)
		}
	}()
	s.ui, s.uiDone = ui, done
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiAddr+"/", nil)
		if err != nil {
			return fmt.Errorf("probe web UI: %w", err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("web UI exited while starting")
		default:
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			ui.Stop()
			<-done
			s.ui = nil
			return fmt.Errorf("wait for web UI at %s: %w", s.uiAddr, err)
		}
	}
}

// freePorts finds one free TCP port on each of ips, all distinct. They are
// released before return, so another process may take one in between: the
// usual race of dev servers, acceptable on a developer machine or in tests.
func freePorts(ips ...string) ([]int, error) {
	ports := make([]int, 0, len(ips))
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is not free: %w", port, ip, err)
	}
	return l.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkDatabase refuses a state file SQLite cannot use before the server
// opens it: a file that is not a database, or one whose pages fail
// SQLite's integrity check. The server would otherwise start, print ready
// and then fail request after request with "malformed" errors, or stop
// with a message that names no file.
func checkDatabase(path string) error {
	refuse := func(detail string) error {
		return fmt.Errorf("state file %s is not a usable SQLite database (%s); nothing was started. "+
			"Start fresh by moving it aside (mv %s %s.broken), or restore a copy of the state directory "+
			"taken while patchway dev was stopped", path, detail, path, path)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return refuse(err.Error())
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check(5)")
	if err != nil {
		return refuse(err.Error())
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return refuse(err.Error())
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return refuse(err.Error())
	}
	if len(problems) > 0 {
		return refuse("integrity check: " + strings.Join(problems, "; "))
	}
	return nil
}
