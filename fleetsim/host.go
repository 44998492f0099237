package fleetsim

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// Fault names a way a simulated host misbehaves, each one a way real
// Windows hosts have been reported patched when they were not.
type Fault string

// The fault profiles.
const (
	// FaultRegistryOnly: the install records the hotfix but never stages
	// the new files (a host that crashed mid-install: MSBlast's lesson).
	FaultRegistryOnly Fault = "registry_only"
	// FaultNoReboot: the reboot command answers success but the host never
	// restarts; the boot time and pending flags stay.
	FaultNoReboot Fault = "no_reboot"
	// FaultNeverReturns: after a reboot the host never answers again.
	FaultNeverReturns Fault = "never_returns"
	// FaultInstallFails: the installer exits with FaultSpec.ExitCode
	// and changes nothing; the code is read as install.ps1 reads it.
	FaultInstallFails Fault = "install_fails"
	// FaultFlaky: a share (FaultSpec.Rate) of connections are dropped.
	FaultFlaky Fault = "flaky"
	// FaultSlow: every request waits FaultSpec.Delay first.
	FaultSlow Fault = "slow"
	// FaultAuthFails: every request gets 401.
	FaultAuthFails Fault = "auth_fails"
	// FaultRevertsOnBoot: staged files are discarded at boot; the hotfix
	// entry stays (a later image or GPO restores the old file).
	FaultRevertsOnBoot Fault = "reverts_on_boot"
	// FaultPendingRenameNoise: PendingFileRenameOperations is always set
	// by other software (a known false positive).
	FaultPendingRenameNoise Fault = "pending_rename_noise"
	// FaultImpostor: another machine answers at the host's address (a
	// stale DNS record, a reused IP): its scans report another computer
	// name and machine GUID (FaultSpec.AnswersAs, default "IMPOSTOR").
	FaultImpostor Fault = "impostor"
	// FaultReplacedOnBoot: after its first reboot another machine answers
	// at the host's address (DHCP gave it away while the host was down).
	FaultReplacedOnBoot Fault = "replaced_on_boot"
	// FaultDown: the host is down for the whole run; its port refuses
	// connections.
	FaultDown Fault = "down"
	// FaultSlowBoot: a reboot keeps the host down for FaultSpec.Delay
	// (default 3m) instead of the fleet's reboot downtime.
	FaultSlowBoot Fault = "slow_boot"
	// FaultServicesLate: after each boot WinRM answers before the
	// host's services are ready: for FaultSpec.Delay (default 20s)
	// Patchway's scripts fail as Get-HotFix and WMI do then ("The RPC
	// server is unavailable").
	FaultServicesLate Fault = "services_late"
	// FaultCBSRevert: at boot, servicing fails to commit a pending
	// install and reverts it (CBS "Reverting changes"): the hotfix and
	// its package are gone, the staged files never take effect.
	FaultCBSRevert Fault = "cbs_revert"
)

// Faults lists every fault profile.
var Faults = []Fault{FaultRegistryOnly, FaultNoReboot, FaultNeverReturns, FaultInstallFails, FaultFlaky, FaultSlow, FaultAuthFails, FaultRevertsOnBoot, FaultPendingRenameNoise, FaultImpostor, FaultReplacedOnBoot,
	FaultDown, FaultSlowBoot, FaultServicesLate, FaultCBSRevert}

// FaultSpec is one fault on one host, with its parameters.
type FaultSpec struct {
	Kind Fault
	// ExitCode for install_fails (default 0x80070643, "fatal error during
	// installation").
	ExitCode int64
	// Rate is the share of connections flaky drops (default 0.3).
	Rate float64
	// Delay is the latency slow adds (default 2s), the downtime of a
	// slow_boot reboot (3m), how long services_late services take (20s).
	Delay time.Duration
	// AnswersAs is the computer name of the machine that answers for an
	// impostor or replaced_on_boot host (default "IMPOSTOR").
	AnswersAs string
}

// Windows installer exit codes (wusa.exe and Windows Installer).
const (
	exitOK              = 0
	exitRebootRequired  = 3010
	exitAlreadyInstalld = 2359302    // 0x00240006
	exitNotApplicable   = 2149842967 // 0x80240017
	exitFatal           = 2147944003 // 0x80070643
	exitShutdownPending = 1190
	// exitNewServicingStack is CBS_E_NEW_SERVICING_STACK_REQUIRED
	// (0x800F0823): a prerequisite servicing-stack update is missing.
	exitNewServicingStack = 2148468771
)

// Host is one simulated Windows machine. Its methods are safe for
// concurrent use; tests inspect it through InstallCount, BootTime and
// Snapshot.
type Host struct {
	spec   rollout.Host
	faults map[Fault]FaultSpec
	fleet  *Fleet
	srv    *hostServer
	lis    *hostListener

	mu       sync.Mutex
	rng      *rand.Rand
	hotfixes map[string]time.Time // KB -> installed on
	hidden   map[string]bool      // KBs Get-HotFix does not list
	pkgState map[string]string    // KB -> Installed | InstallPending | UninstallPending
	files    map[string]string    // lower(path) -> version in effect
	staged   map[string]string    // lower(path) -> version applied at next boot
	previous map[string]map[string]string
	paths    map[string]string // lower(path) -> path as first written
	cbs, wu  bool
	bootTime time.Time
	down     bool
	gone     bool
	shutdown bool // a shutdown is scheduled
	replaced bool // another machine answers at the address
	// rename: a PendingFileRenameOperations entry from before the run,
	// cleared at boot; readyAt: services answer from then on.
	rename   bool
	readyAt  time.Time
	installs map[string]int
	shells   int
}

// Snapshot is a copy of a host's state for tests and the CLI.
type Snapshot struct {
	Name           string
	Hotfixes       []string
	Files          map[string]string
	Staged         map[string]string
	CBSPending     bool
	WUPending      bool
	BootTime       time.Time
	Down           bool
	InstallsByKB   map[string]int
	Faults         []Fault
	ShellsInFlight int
}

// Name is the host's name.
func (h *Host) Name() string { return h.spec.Name }

// InstallCount is how many times an install of kb actually ran (not
// counting answers of "already installed").
func (h *Host) InstallCount(kb string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.installs[strings.ToUpper(kb)]
}

// BootTime is the host's current LastBootUpTime.
func (h *Host) BootTime() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bootTime
}

// Snapshot copies the host's state.
func (h *Host) Snapshot() Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Snapshot{Name: h.spec.Name, Files: map[string]string{}, Staged: map[string]string{}, CBSPending: h.cbs, WUPending: h.wu,
		BootTime: h.bootTime, Down: h.down || h.gone, InstallsByKB: map[string]int{}, ShellsInFlight: h.shells}
	for kb := range h.hotfixes {
		s.Hotfixes = append(s.Hotfixes, kb)
	}
	for k, v := range h.files {
		s.Files[h.paths[k]] = v
	}
	for k, v := range h.staged {
		s.Staged[h.paths[k]] = v
	}
	for k, v := range h.installs {
		s.InstallsByKB[k] = v
	}
	for f := range h.faults {
		s.Faults = append(s.Faults, f)
	}
	return s
}

func (h *Host) has(f Fault) bool { _, ok := h.faults[f]; return ok }

// reachable reports whether the host answers now (not down for a reboot,
// not gone).
func (h *Host) reachable() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down && !h.gone
}

// dropsConnection decides, once per TCP connection, whether a flaky host
// drops it: a share (FaultSpec.Rate) of connections are closed at their
// first request, as a lossy WAN link resets them. Requests on a
// connection that survived are answered, as on a real network.
func (h *Host) dropsConnection() bool {
	f, ok := h.faults[FaultFlaky]
	if !ok {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rng.Float64() < f.Rate
}

// fileSHA is the stable fake SHA-256 of a file version.
func fileSHA(path, version string) string {
	s := sha256.Sum256([]byte(strings.ToLower(path) + "\x00" + version))
	return hex.EncodeToString(s[:])
}

// machineGUID is a stable MachineGuid for a computer name.
func machineGUID(name string) string {
	s := sha256.Sum256([]byte("machine-guid:" + strings.ToLower(name)))
	h := hex.EncodeToString(s[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// answeringNameLocked is the name of the machine that answers at the
// host's address: the host's own (its first DNS label, upper case), or
// another machine's when an impostor answers. h.mu is held.
func (h *Host) answeringNameLocked() string {
	if h.has(FaultImpostor) || h.replaced {
		f := h.faults[FaultImpostor]
		if h.replaced {
			f = h.faults[FaultReplacedOnBoot]
		}
		return strings.ToUpper(cmp.Or(f.AnswersAs, "IMPOSTOR"))
	}
	return strings.ToUpper(strings.Split(h.spec.Name, ".")[0])
}

// netBIOSName is Win32_OperatingSystem.CSName for a computer name: upper
// case, at most 15 characters.
func netBIOSName(name string) string { return name[:min(len(name), 15)] }

// computerName is the computer name the answering machine reports, the
// same in scans (hostname), hostname.exe and whoami.
func (h *Host) computerName() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return netBIOSName(h.answeringNameLocked())
}

// scan answers the scan script from the host's state.
func (h *Host) scan(p hostscript.ScanParams) hostscript.ScanResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.fleet.now()
	name := h.answeringNameLocked()
	res := hostscript.ScanResult{
		Hostname:       netBIOSName(name),
		DNSHostName:    strings.ToLower(name),
		Domain:         "WORKGROUP",
		MachineGUID:    machineGUID(name),
		OSCaption:      osCaption(h.spec.OS),
		OSBuild:        cmp.Or(h.files[osBuildPath], h.spec.Build),
		Hotfixes:       []hostscript.Hotfix{},
		Packages:       []hostscript.Package{},
		Files:          []hostscript.File{},
		LastBootUpTime: h.bootTime,
		FreeDiskBytes:  40 << 30,
		ScannedAt:      now,
		Reboot: hostscript.Reboot{
			CBSRebootPending:  h.cbs,
			WURebootRequired:  h.wu,
			PendingFileRename: len(h.staged) > 0 || h.rename || h.has(FaultPendingRenameNoise),
		},
	}
	for _, kb := range sortedKeys(h.hotfixes) {
		if !h.hidden[kb] {
			res.Hotfixes = append(res.Hotfixes, hostscript.Hotfix{ID: kb, InstalledOn: h.hotfixes[kb]})
		}
	}
	for _, kb := range sortedKeys(h.pkgState) {
		res.Packages = append(res.Packages, hostscript.Package{Name: "Package_for_" + kb + "~31bf3856ad364e35~x86~~6.0.1.0", State: h.pkgState[kb]})
	}
	for _, f := range p.Files {
		v, ok := h.files[strings.ToLower(f.Path)]
		file := hostscript.File{Path: f.Path, Exists: ok}
		if ok {
			file.Version, file.SHA256 = v, fileSHA(f.Path, v)
		}
		res.Files = append(res.Files, file)
	}
	return res
}

// install answers the install script: the catalogue says what the KB
// installs on this OS; the host's faults say what goes wrong.
func (h *Host) install(p hostscript.InstallParams) hostscript.InstallResult {
	kb := strings.ToUpper(p.KB)
	res := hostscript.InstallResult{KB: p.KB}
	entry, ok := h.fleet.catalog[kb]
	if !ok {
		res.Outcome, res.ExitCode, res.Message = hostscript.InstallDownloadFailed, 2, "package "+p.Source+" not found at the distribution point"
		return res
	}
	pkg, ok := entry.Packages[strings.ToLower(h.spec.OS)]
	if !ok {
		res.Outcome, res.ExitCode, res.Message = hostscript.InstallNotApplicable, exitNotApplicable, "the update is not applicable to this computer"
		return res
	}
	if !strings.EqualFold(pkg.SHA256, p.SHA256) {
		res.Outcome, res.ExitCode, res.Message = hostscript.InstallChecksumMismatch, 1, "downloaded package SHA-256 "+pkg.SHA256+" differs from the expected "+strings.ToLower(p.SHA256)
		return res
	}
	h.fleet.download(h.spec.Site)
	h.mu.Lock()
	defer h.mu.Unlock()
	res.DownloadedBytes = pkg.Size
	if _, present := h.hotfixes[kb]; present {
		res.Outcome, res.ExitCode = hostscript.InstallAlreadyInstalled, exitAlreadyInstalld
		return res
	}
	for _, need := range entry.Requires[strings.ToLower(h.spec.OS)] {
		if _, ok := h.hotfixes[need]; !ok {
			res.ExitCode = exitNewServicingStack
			res.Outcome, res.RebootRequired, res.Message = hostscript.InstallExitOutcome(res.ExitCode)
			return res
		}
	}
	if f, bad := h.faults[FaultInstallFails]; bad {
		// The installer exits with the code and changes nothing; the
		// code is read as install.ps1 reads it (already installed, not
		// applicable, a failure with its code).
		h.installs[kb]++
		res.ExitCode = f.ExitCode
		res.Outcome, res.RebootRequired, res.Message = hostscript.InstallExitOutcome(f.ExitCode)
		return res
	}
	h.installs[kb]++
	now := h.fleet.now()
	h.hotfixes[kb] = now
	res.InstalledAt = now
	prev := map[string]string{}
	for _, f := range entry.Files[strings.ToLower(h.spec.OS)] {
		k := strings.ToLower(f.Path)
		prev[k] = h.files[k]
		h.paths[k] = f.Path
		if h.has(FaultRegistryOnly) {
			continue // crashed before the files were written
		}
		if entry.Reboot {
			h.staged[k] = f.MinVersion
		} else {
			h.files[k] = f.MinVersion
		}
	}
	h.previous[kb] = prev
	if entry.Reboot {
		h.cbs = true
		h.pkgState[kb] = "InstallPending"
		res.Outcome, res.ExitCode, res.RebootRequired = hostscript.InstallOKRebootRequired, exitRebootRequired, true
		return res
	}
	h.pkgState[kb] = "Installed"
	res.Outcome, res.ExitCode = hostscript.InstallOK, exitOK
	return res
}

// uninstall removes a KB: the previous file versions are staged for the
// next boot.
func (h *Host) uninstall(p hostscript.UninstallParams) hostscript.UninstallResult {
	kb := strings.ToUpper(p.KB)
	h.mu.Lock()
	defer h.mu.Unlock()
	res := hostscript.UninstallResult{KB: p.KB}
	if _, ok := h.hotfixes[kb]; !ok {
		res.Outcome, res.ExitCode = hostscript.UninstallNotInstalled, 2359303 // 0x00240007
		return res
	}
	delete(h.hotfixes, kb)
	h.pkgState[kb] = "UninstallPending"
	for k, v := range h.previous[kb] {
		delete(h.staged, k)
		if v == "" {
			continue
		}
		h.staged[k] = v
	}
	h.cbs = true
	res.Outcome, res.ExitCode, res.RebootRequired = hostscript.UninstallOKRebootRequired, exitRebootRequired, true
	return res
}

// reboot schedules a restart like shutdown /r /t N: the host answers
// first, goes down after the fleet's shutdown delay, stays unreachable for
// its reboot downtime, then boots with the staged files in effect.
func (h *Host) reboot(p hostscript.RebootParams) hostscript.RebootResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := hostscript.RebootResult{PreviousBootTime: h.bootTime}
	if h.shutdown {
		res.Outcome, res.ExitCode, res.Message = hostscript.RebootAlreadyScheduled, exitShutdownPending, "A system shutdown has already been scheduled. (1190)"
		return res
	}
	res.Outcome, res.ExitCode = hostscript.RebootScheduled, 0
	if h.has(FaultNoReboot) {
		return res
	}
	h.shutdown = true
	f := h.fleet
	downtime := f.opts.RebootDowntime
	if slow, ok := h.faults[FaultSlowBoot]; ok {
		downtime = slow.Delay
	}
	time.AfterFunc(f.opts.ShutdownDelay, f.guard("shutdown of host "+h.spec.Name, func() {
		h.mu.Lock()
		h.down = true
		gone := h.has(FaultNeverReturns)
		h.gone = gone
		h.mu.Unlock()
		h.lis.shut()
		if gone {
			return
		}
		time.AfterFunc(downtime, f.guard("boot of host "+h.spec.Name, h.boot))
	}))
	return res
}

// boot brings the host back: staged files take effect (unless the host
// reverts them), pending flags clear, the boot time moves.
func (h *Host) boot() {
	// Shells do not survive a reboot.
	h.srv.mu.Lock()
	clear(h.srv.shells)
	h.srv.mu.Unlock()
	h.mu.Lock()
	h.shells = 0
	defer h.mu.Unlock()
	reverted := h.has(FaultCBSRevert) && slices.Contains(slices.Collect(maps.Values(h.pkgState)), "InstallPending")
	if !h.has(FaultRevertsOnBoot) && !reverted {
		for k, v := range h.staged {
			h.files[k] = v
		}
	}
	clear(h.staged)
	if reverted {
		// Servicing could not commit the pending installs: it reverts
		// them, and the hotfix entries go with them.
		for _, kb := range sortedKeys(h.pkgState) {
			if h.pkgState[kb] == "InstallPending" {
				delete(h.pkgState, kb)
				delete(h.hotfixes, kb)
			}
		}
	}
	if h.has(FaultReplacedOnBoot) {
		h.replaced = true
	}
	for kb, st := range h.pkgState {
		switch st {
		case "InstallPending":
			h.pkgState[kb] = "Installed"
		case "UninstallPending":
			delete(h.pkgState, kb)
		}
	}
	h.cbs, h.wu, h.shutdown, h.down = false, false, false, false
	boot := h.fleet.now()
	if !boot.After(h.bootTime) {
		boot = h.bootTime.Add(time.Second)
	}
	h.bootTime = boot
	h.rename = false
	if late, ok := h.faults[FaultServicesLate]; ok {
		h.readyAt = boot.Add(late.Delay)
	}
	h.lis.reopen(func(err error) {
		h.fleet.opts.Logger.Warn("fleetsim: host cannot listen again after its reboot; it stays unreachable", "host", h.spec.Name, "error", err)
	})
}

// servicesReady reports whether the host's services answer (false for a
// while after a boot of a services_late host).
func (h *Host) servicesReady() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.readyAt.IsZero() || !h.fleet.now().Before(h.readyAt)
}

func osCaption(os string) string {
	switch {
	case strings.HasPrefix(os, "windows-xp"):
		return "Microsoft Windows XP Professional"
	case strings.HasPrefix(os, "windows-server-2003"):
		return "Microsoft(R) Windows(R) Server 2003, Standard Edition"
	case strings.HasPrefix(os, "windows-server-2008"):
		return "Microsoft Windows Server 2008 Standard"
	case strings.HasPrefix(os, "windows-vista"):
		return "Microsoft Windows Vista Business"
	case strings.HasPrefix(os, "windows-2000"):
		return "Microsoft Windows 2000 Server"
	}
	// "windows-server-2019" -> "Microsoft windows server 2019": the words
	// the identity policy's OS families look for.
	return "Microsoft " + strings.ReplaceAll(os, "-", " ")
}
