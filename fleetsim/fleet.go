// Package fleetsim simulates Windows hosts that speak WinRM (WS-Management
// over HTTP or HTTPS) on loopback, for Patchway's tests, benchmarks and
// demo. Each host listens on its own port of 127.0.0.1, answers the shell
// protocol any WinRM client uses (Create, Command, Send, Receive, Signal,
// Delete), recognises Patchway's PowerShell scripts by their header
// (hostscript) and answers with the JSON the real scripts print,
// from a model of the host: hotfixes, file versions, staged files that take
// effect at reboot, each pending-reboot flag and the boot time. Faults make
// hosts misbehave the ways real ones do.
//
// It is a test and demo tool, never the thing under test. Time is
// compressed: a reboot takes Options.ShutdownDelay plus RebootDowntime
// (tens of milliseconds by default), not minutes.
package fleetsim

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/patchway/patchway/internal/devcert"
	"github.com/patchway/patchway/rollout"
)

// Options tune a fleet. Zero values take the defaults documented on each
// field.
type Options struct {
	// Seed drives every random choice at run time (flaky drops).
	Seed int64
	// Username and Password are the Basic credentials every host accepts
	// (Password is required; Username defaults to "patchway").
	Username, Password string
	// Plain serves HTTP instead of HTTPS (default HTTPS with a CA the
	// fleet generates).
	Plain bool
	// ShutdownDelay is how long after answering a reboot the host goes
	// down (default 50ms: shutdown /t N, compressed).
	ShutdownDelay time.Duration
	// RebootDowntime is how long a rebooting host refuses connections
	// (default 200ms).
	RebootDowntime time.Duration
	// ReceiveTimeout caps how long a Receive waits for a command before
	// the OperationTimeout fault (default 5s; a client's shorter
	// OperationTimeout wins).
	ReceiveTimeout time.Duration
	// InstallDuration is how long an install runs (default 0).
	InstallDuration time.Duration
	// MaxShellsPerHost is the concurrent shell limit, like Windows'
	// MaxShellsPerUser (default 30, Windows' default).
	MaxShellsPerHost int
	// DownloadConcurrency bounds concurrent package downloads per site, a
	// stand-in for site bandwidth (default 0 = unbounded).
	DownloadConcurrency int
	// Dir is where the fleet writes its CA certificate (default a new
	// temporary directory, removed by Close).
	Dir string
	// Now is the clock (default time.Now); tests may shift it.
	Now func() time.Time
	// Logger receives what goes wrong inside the simulator itself (a
	// panic answering a request, which fails that request or command and
	// nothing else); default slog.Default().
	Logger *slog.Logger
	// Ports are preferred listening ports by host name, typically the
	// previous run's (see PortsFromInventory), so that rollouts resumed
	// after a restart reach the same hosts. A busy or missing port falls
	// back to one the kernel picks.
	Ports map[string]int
}

// Fleet is a running simulated fleet.
type Fleet struct {
	opts    Options
	sc      *Scenario
	catalog map[string]CatalogEntry
	hosts   []*Host
	byName  map[string]*Host
	addrs   map[string]string
	servers []*http.Server
	caPEM   []byte
	caFile  string
	ownDir  bool
	sites   map[string]chan struct{}
	sitesMu sync.Mutex
	wg      sync.WaitGroup
}

// Start starts every host of the scenario on its own loopback port.
func Start(ctx context.Context, sc *Scenario, opts Options) (*Fleet, error) {
	if opts.Password == "" {
		return nil, errors.New("fleetsim: a password is required (set PATCHWAY_FLEET_PASSWORD for patchway fleet)")
	}
	opts.Username = cmp.Or(opts.Username, "patchway")
	opts.ShutdownDelay = cmp.Or(opts.ShutdownDelay, 50*time.Millisecond)
	opts.RebootDowntime = cmp.Or(opts.RebootDowntime, 200*time.Millisecond)
	opts.ReceiveTimeout = cmp.Or(opts.ReceiveTimeout, 5*time.Second)
	opts.MaxShellsPerHost = cmp.Or(opts.MaxShellsPerHost, 30)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	f := &Fleet{opts: opts, sc: sc, catalog: sc.Catalog, byName: map[string]*Host{}, addrs: map[string]string{}, sites: map[string]chan struct{}{}}
	if f.catalog == nil {
		f.catalog = map[string]CatalogEntry{}
	}
	var tlsConfig *tls.Config
	if !opts.Plain {
		cfg, err := f.makeTLS()
		if err != nil {
			return nil, err
		}
		tlsConfig = cfg
	}
	now := opts.Now()
	for i, spec := range sc.Hosts {
		h := f.newHost(spec, now, uint64(i))
		ln, err := listen(opts.Ports[spec.Host.Name])
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleetsim: listen for host %s: %w", spec.Host.Name, err)
		}
		h.srv = &hostServer{host: h, shells: map[string]*shell{}}
		var hostTLS *tls.Config
		if tlsConfig != nil {
			// Each server its own copy: serving TLS adds the HTTP/2
			// protocols to the server's config in place.
			hostTLS = tlsConfig.Clone()
		}
		srv := &http.Server{
			Handler:           h.srv,
			ConnContext:       withConnFate,
			ReadHeaderTimeout: 10 * time.Second,
			TLSConfig:         hostTLS,
			// Handshakes refused by clients that distrust the CA are
			// the clients' business, not log noise.
			ErrorLog: log.New(io.Discard, "", 0),
		}
		srv.SetKeepAlivesEnabled(true)
		f.servers = append(f.servers, srv)
		f.addrs[h.spec.Name] = ln.Addr().String()
		h.lis = &hostListener{fleet: f, name: h.spec.Name, addr: ln.Addr().String(), srv: srv, tls: tlsConfig != nil}
		if h.has(FaultDown) {
			// Down from the start: its address is reserved in the
			// inventory, and nothing listens there.
			_ = ln.Close()
			continue
		}
		h.lis.serve(ln)
	}
	go f.guard("fleet shutdown", func() {
		<-ctx.Done()
		f.Close()
	})()
	return f, nil
}

// guard wraps work fleetsim runs in a goroutine of its own so that a panic
// in it is logged rather than ending the process: patchway dev runs the
// fleet beside the Temporal server and the worker.
func (f *Fleet) guard(what string, fn func()) func() {
	return func() {
		defer func() {
			if p := recover(); p != nil {
				f.logPanic(what, p)
			}
		}()
		fn()
	}
}

// logPanic logs a recovered panic with its stack.
func (f *Fleet) logPanic(what string, p any) {
	f.opts.Logger.Error("fleetsim: recovered from a panic", "in", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
}

// ListenAddresses is where every simulated host listens, written as a
// credential set's addresses binding (PATCHWAY_CRED_<SET>_ADDRESSES): a
// worker that reaches the fleet binds the fleet's set to it and to nothing
// else.
const ListenAddresses = "127.0.0.1/32"

// listen binds a loopback port: the preferred one when it is free, else
// any.
func listen(port int) (net.Listener, error) {
	if port > 0 {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// PortsFromInventory returns the loopback ports of an inventory's hosts by
// name, for Options.Ports.
func PortsFromInventory(inv *rollout.Inventory) map[string]int {
	ports := map[string]int{}
	for _, h := range inv.Hosts {
		host, p, err := net.SplitHostPort(h.Address)
		if err != nil || host != "127.0.0.1" {
			continue
		}
		if n, err := strconv.Atoi(p); err == nil {
			ports[h.Name] = n
		}
	}
	return ports
}

func (f *Fleet) newHost(spec HostSpec, now time.Time, i uint64) *Host {
	h := &Host{
		spec: spec.Host, fleet: f, faults: map[Fault]FaultSpec{},
		rng:      mrand.New(mrand.NewPCG(uint64(f.opts.Seed), i)),
		hotfixes: map[string]time.Time{}, pkgState: map[string]string{},
		files: map[string]string{}, staged: map[string]string{}, previous: map[string]map[string]string{},
		paths: map[string]string{}, installs: map[string]int{}, hidden: map[string]bool{},
		cbs: spec.CBSRebootPending, wu: spec.WURebootRequired, rename: spec.PendingRename,
		bootTime: now.Add(-cmp.Or(spec.BootedAgo, 72*time.Hour)).Truncate(time.Second),
	}
	for _, fs := range spec.Faults {
		switch fs.Kind {
		case FaultInstallFails:
			fs.ExitCode = cmp.Or(fs.ExitCode, exitFatal)
		case FaultFlaky:
			fs.Rate = cmp.Or(fs.Rate, 0.3)
		case FaultSlow:
			fs.Delay = cmp.Or(fs.Delay, 2*time.Second)
		case FaultSlowBoot:
			fs.Delay = cmp.Or(fs.Delay, 3*time.Minute)
		case FaultServicesLate:
			fs.Delay = cmp.Or(fs.Delay, 20*time.Second)
		case FaultDown:
			h.down, h.gone = true, true
		}
		h.faults[fs.Kind] = fs
	}
	os := strings.ToLower(spec.Host.OS)
	// Before any patch, every catalogued file is at a version below what
	// each KB that ships it brings; an installed KB brings its version.
	// KBs may ship the same file: then, as Windows' component store
	// does, the highest version installed is the one in effect. KBs are
	// taken in sorted order (the first spelling of a path is kept), so a
	// scenario always gives the same fleet.
	for _, kb := range sortedKeys(f.catalog) {
		for _, fe := range f.catalog[kb].Files[os] {
			k := strings.ToLower(fe.Path)
			if _, ok := h.paths[k]; !ok {
				h.paths[k] = fe.Path
			}
			old := olderVersion(fe.MinVersion)
			if cur, ok := h.files[k]; !ok || compareVersions(old, cur) < 0 {
				h.files[k] = old
			}
		}
	}
	installed := map[string]time.Time{}
	for _, kb := range spec.Installed {
		installed[strings.ToUpper(kb)] = h.bootTime.Add(-24 * time.Hour)
	}
	for kb, on := range spec.InstalledOn {
		installed[strings.ToUpper(kb)] = on
	}
	for _, kb := range spec.Hidden {
		kb = strings.ToUpper(kb)
		if _, ok := installed[kb]; !ok {
			installed[kb] = h.bootTime.Add(-24 * time.Hour)
		}
		h.hidden[kb] = true
	}
	for _, kb := range sortedKeys(installed) {
		h.hotfixes[kb] = installed[kb]
		h.pkgState[kb] = "Installed"
		if h.hidden[kb] {
			delete(h.pkgState, kb)
		}
		for _, fe := range f.catalog[kb].Files[os] {
			k := strings.ToLower(fe.Path)
			if _, ok := h.paths[k]; !ok {
				h.paths[k] = fe.Path
			}
			if compareVersions(fe.MinVersion, h.files[k]) > 0 {
				h.files[k] = fe.MinVersion
			}
		}
	}
	for _, p := range sortedKeys(spec.Files) {
		h.paths[strings.ToLower(p)] = p
		h.files[strings.ToLower(p)] = spec.Files[p]
	}
	if strings.Contains(spec.Host.Build, ".") {
		// A build with its UBR ("20348.768") says where the host is.
		h.files[osBuildPath] = spec.Host.Build
	}
	f.hosts = append(f.hosts, h)
	f.byName[strings.ToLower(spec.Host.Name)] = h
	return h
}

func (f *Fleet) now() time.Time { return f.opts.Now().UTC() }

func (f *Fleet) scheme() string {
	if f.opts.Plain {
		return "http"
	}
	return "https"
}

// download takes one of the site's download slots for a moment: with
// DownloadConcurrency set, a site serves that many downloads at once.
func (f *Fleet) download(site string) {
	if f.opts.DownloadConcurrency <= 0 {
		return
	}
	f.sitesMu.Lock()
	sem, ok := f.sites[site]
	if !ok {
		sem = make(chan struct{}, f.opts.DownloadConcurrency)
		f.sites[site] = sem
	}
	f.sitesMu.Unlock()
	sem <- struct{}{}
	time.Sleep(10 * time.Millisecond)
	<-sem
}

// Host returns the simulated host of that name, or nil.
func (f *Fleet) Host(name string) *Host { return f.byName[strings.ToLower(name)] }

// Hosts returns every host in scenario order.
func (f *Fleet) Hosts() []*Host { return slices.Clone(f.hosts) }

// CAPEM is the PEM certificate of the CA that signed every host's
// certificate (nil for a Plain fleet).
func (f *Fleet) CAPEM() []byte { return f.caPEM }

// Inventory is the fleet as a Patchway inventory: loopback addresses, the
// scenario's credential-set name, and TLS verified against the fleet's CA.
func (f *Fleet) Inventory() *rollout.Inventory {
	inv := &rollout.Inventory{Sites: slices.Clone(f.sc.Sites)}
	for i := range inv.Sites {
		if inv.Sites[i].DistributionPoint == "" {
			inv.Sites[i].DistributionPoint = `\\dp-` + inv.Sites[i].Name + `\patches`
		}
	}
	cred := cmp.Or(f.sc.Credential, "fleet")
	for _, h := range f.hosts {
		host := h.spec
		host.Address = f.addrs[h.spec.Name]
		host.Credential = cred
		if f.opts.Plain {
			host.TLS = rollout.HostTLS{Transport: "http"}
		} else {
			host.TLS = rollout.HostTLS{Transport: "https", CAFile: f.caFile}
		}
		if host.Owner == "" && host.Purpose == "" {
			host.Owner = "it-" + host.Site + "@corp.example"
		}
		inv.Hosts = append(inv.Hosts, host)
	}
	return inv
}

// WriteInventory writes Inventory as an HCL file `patchway validate`,
// `plan` and `submit --inventory` accept.
func (f *Fleet) WriteInventory(path string) error {
	inv := f.Inventory()
	file := hclwrite.NewEmptyFile()
	body := file.Body()
	body.AppendUnstructuredTokens(hclwrite.TokensForIdentifier("# Written by patchway fleet: simulated hosts on loopback. Do not edit.\n"))
	str := func(b *hclwrite.Body, k, v string) {
		if v != "" {
			b.SetAttributeValue(k, cty.StringVal(v))
		}
	}
	for _, s := range inv.Sites {
		b := body.AppendNewBlock("site", []string{s.Name}).Body()
		str(b, "region", s.Region)
		str(b, "time_zone", s.TimeZone)
		str(b, "distribution_point", s.DistributionPoint)
	}
	for _, h := range inv.Hosts {
		b := body.AppendNewBlock("host", []string{h.Name}).Body()
		str(b, "address", h.Address)
		str(b, "os", h.OS)
		str(b, "build", h.Build)
		str(b, "site", h.Site)
		str(b, "region", h.Region)
		str(b, "tier", string(h.Tier))
		str(b, "role", h.Role)
		str(b, "cluster", h.Cluster)
		str(b, "owner", h.Owner)
		str(b, "purpose", h.Purpose)
		str(b, "credential", h.Credential)
		if len(h.Tags) > 0 {
			var tags []cty.Value
			for _, t := range h.Tags {
				tags = append(tags, cty.StringVal(t))
			}
			b.SetAttributeValue("tags", cty.ListVal(tags))
		}
		t := b.AppendNewBlock("tls", nil).Body()
		str(t, "transport", h.TLS.Transport)
		str(t, "ca_file", h.TLS.CAFile)
	}
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	return nil
}

// Close stops every host.
func (f *Fleet) Close() error {
	for _, h := range f.hosts {
		if h.lis != nil {
			h.lis.close()
		}
	}
	for _, s := range f.servers {
		_ = s.Close()
	}
	f.wg.Wait()
	if f.ownDir && f.caFile != "" {
		_ = os.RemoveAll(filepath.Dir(f.caFile))
		f.ownDir = false
	}
	return nil
}

// makeTLS generates a CA and one server certificate for 127.0.0.1 and
// localhost (all hosts share the loopback address; each has its own port),
// and writes the CA where inventories can name it.
func (f *Fleet) makeTLS() (*tls.Config, error) {
	pair, err := devcert.New("Patchway fleetsim CA", "fleetsim WinRM listener")
	if err != nil {
		return nil, fmt.Errorf("fleetsim: %w", err)
	}
	f.caPEM = pair.CAPEM
	dir := f.opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "patchway-fleet-"); err != nil {
			return nil, fmt.Errorf("fleetsim: %w", err)
		}
		f.ownDir = true
	}
	f.caFile = filepath.Join(dir, "fleet-ca.pem")
	if err := os.WriteFile(f.caFile, f.caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("fleetsim: write CA: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair.Server},
	}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
