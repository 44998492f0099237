// Package rollout is Patchway's domain: the rollout a security team files
// (patch, risk, stages, waves, escalation), the inventory of hosts it runs
// on, and the vocabulary of host states. It decodes both from HCL (and the
// inventory also from CSV) and reports every problem as hcl.Diagnostics.
//
// The package depends on nothing but the standard library and HCL: no
// Temporal, no OPA, no WinRM. Every type here is plain data that travels as
// JSON in workflow inputs, policy inputs and reports, so it never carries a
// secret: credentials and channel keys are named, and resolved by the worker.
package rollout

import (
	"slices"
	"time"
)

// Severity is the vendor's rating of a vulnerability; it sets the default SLA.
type Severity string

// The severities Microsoft publishes, most urgent first.
const (
	SeverityCritical  Severity = "critical"
	SeverityImportant Severity = "important"
	SeverityModerate  Severity = "moderate"
	SeverityLow       Severity = "low"
)

// Severities lists every valid severity, most urgent first.
var Severities = []Severity{SeverityCritical, SeverityImportant, SeverityModerate, SeverityLow}

// RebootBehavior says whether the patch needs a reboot to take effect.
type RebootBehavior string

// Reboot behaviours as bulletins state them.
const (
	RebootRequired RebootBehavior = "required"
	RebootMay      RebootBehavior = "may"
	RebootNever    RebootBehavior = "never"
)

// Tier places a host on the staged path: lab first, then production-like,
// then production.
type Tier string

// Tiers in the order the staged path reaches them.
const (
	TierLab        Tier = "lab"
	TierProdlike   Tier = "prodlike"
	TierProduction Tier = "production"
)

// HostState is the one vocabulary for a host's patch state, used alike by
// the CLI, JSON, reports and policies (the compliance policy defines each).
type HostState string

// Host states. Only StateCompliant counts as patched, and only on proof.
const (
	StatePending       HostState = "pending"
	StateInProgress    HostState = "in_progress"
	StateCompliant     HostState = "compliant"
	StatePendingReboot HostState = "pending_reboot"
	// StateNotEffective: the hotfix or registry key is present but a patched
	// file is below its expected version: the MSBlast failure mode.
	StateNotEffective  HostState = "not_effective"
	StateFailed        HostState = "failed"
	StateUnreachable   HostState = "unreachable"
	StateNotApplicable HostState = "not_applicable"
	// StateExcepted: an exception with an expiry was granted under policy.
	StateExcepted HostState = "excepted"
	// StateUnknown: the evidence is insufficient; never counted compliant.
	StateUnknown    HostState = "unknown"
	StateRolledBack HostState = "rolled_back"
	// StateIdentityMismatch: the machine that answered is not the host
	// the inventory names (another computer name, machine GUID, OS or
	// certificate); its evidence proves nothing and nothing is installed.
	StateIdentityMismatch HostState = "identity_mismatch"
)

// AttentionOrder ranks every host state by how urgently a person must
// act: first another machine answering for a host (a security finding),
// then the hosts that look patched and are not (the MSBlast trap), then
// failures, missing proof, missing reboots and absent hosts; excepted,
// not_applicable and compliant hosts last. Reports and the Web UI's
// current details list hosts in this order.
var AttentionOrder = []HostState{
	StateIdentityMismatch, StateNotEffective, StateFailed, StateUnknown, StatePendingReboot,
	StateUnreachable, StateRolledBack, StateInProgress, StatePending,
	StateExcepted, StateNotApplicable, StateCompliant,
}

// AttentionRank is s's place in AttentionOrder (-1 for a state Patchway
// does not know).
func AttentionRank(s HostState) int { return slices.Index(AttentionOrder, s) }

// HostStates lists every host state in a stable order (reports use it).
var HostStates = []HostState{
	StatePending, StateInProgress, StateCompliant, StatePendingReboot,
	StateNotEffective, StateFailed, StateUnreachable, StateNotApplicable,
	StateExcepted, StateUnknown, StateRolledBack, StateIdentityMismatch,
}

// Rollout is one filed patch rollout: what to install, why it is urgent,
// and the staged path it must walk.
type Rollout struct {
	ID string `json:"id"`
	// FiledBy is the person who filed the rollout; the gates policy never
	// lets them approve their own gates (four-eyes).
	FiledBy string `json:"filed_by,omitempty"`
	// FiledAt is when the rollout was filed; the SLA counts from the later
	// of Patch.Published and FiledAt. Zero until submitted.
	FiledAt time.Time `json:"filed_at,omitzero"`
	// Inventory is the path of the inventory file the rollout runs on,
	// relative to the rollout file.
	Inventory  string            `json:"inventory,omitempty"`
	Patch      Patch             `json:"patch"`
	Risk       Risk              `json:"risk"`
	Stages     []Stage           `json:"stages"`
	Waves      []Wave            `json:"waves"`
	Escalation []EscalationStep  `json:"escalation,omitempty"`
	Channels   []Channel         `json:"channels,omitempty"`
	Emergency  *EmergencyRequest `json:"emergency,omitempty"`
}

// Patch is the update being rolled out and the evidence that proves it took
// effect on a host.
type Patch struct {
	KB         string         `json:"kb"`
	Bulletin   string         `json:"bulletin,omitempty"`
	Title      string         `json:"title,omitempty"`
	CVEs       []string       `json:"cves,omitempty"`
	Severity   Severity       `json:"severity"`
	Published  time.Time      `json:"published"`
	Reboot     RebootBehavior `json:"reboot"`
	Supersedes []string       `json:"supersedes,omitempty"`
	Packages   []Package      `json:"packages"`
	Evidence   Evidence       `json:"evidence"`
}

// Package is the installer for one OS family.
type Package struct {
	// OS matches a host's OS (for example "windows-server-2008-r2").
	OS string `json:"os"`
	// Source is a path relative to the site's distribution point, or a UNC
	// path or URL.
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
	// Type is msu, msi, cab or exe; it picks the installer command.
	Type string `json:"type"`
	// Installer installs an msu: wusa (the default) or dism.
	Installer string `json:"installer,omitempty"`
	// Prerequisites are installed first, in order: a servicing-stack
	// update a cumulative update needs, or the checkpoint cumulative
	// update a later one builds on.
	Prerequisites []Prerequisite `json:"prerequisites,omitempty"`
}

// Prerequisite is an update installed before a package, as its KB's
// own package.
type Prerequisite struct {
	KB        string `json:"kb"`
	Source    string `json:"source"`
	SHA256    string `json:"sha256"`
	Type      string `json:"type"`
	Installer string `json:"installer,omitempty"`
}

// Evidence is what a host must show before it counts as compliant.
type Evidence struct {
	// Hotfix is the hotfix id Get-HotFix reports (usually the KB).
	Hotfix string         `json:"hotfix,omitempty"`
	Files  []FileEvidence `json:"files,omitempty"`
	// Builds prove a cumulative update by the OS build it brings.
	Builds []BuildEvidence `json:"builds,omitempty"`
}

// BuildEvidence proves a cumulative update by the OS build: the host's
// CurrentBuild.UBR at or above MinBuild ("10.0.20348.707" is KB5013944
// on Windows Server 2022). A host of another CurrentBuild (another
// release of the OS) is not proven by it: each release has its entry.
type BuildEvidence struct {
	// OS limits the evidence to hosts of one OS, as for files.
	OS string `json:"os,omitempty"`
	// MinBuild is major.minor.build.ubr ("10.0.20348.707") or build.ubr.
	MinBuild string `json:"min_build"`
}

// FileEvidence is a file the patch replaces, with the least version that
// proves the new file is in place.
type FileEvidence struct {
	Path string `json:"path"`
	// MinVersion is dotted major.minor.build.private, compared numerically.
	MinVersion string `json:"min_version"`
	// SHA256 optionally pins the exact file.
	SHA256 string `json:"sha256,omitempty"`
	// OS limits this evidence to hosts of one OS (a package's OS), since
	// each OS ships its own file version; empty means every host. Use
	// the applicability policy to decide the evidence that applies to a host.
	OS string `json:"os,omitempty"`
}

// FilesDeclaredFor returns the file evidence entries whose os is exactly
// os or empty: how the rollout file is written, used to check that each
// package has evidence and to build the simulator's catalogue. Which
// evidence applies to a host is the applicability policy's decision
// (OS names without regard to case, globs).
func (p Patch) FilesDeclaredFor(os string) []FileEvidence {
	var out []FileEvidence
	for _, f := range p.Evidence.Files {
		if f.OS == "" || f.OS == os {
			out = append(out, f)
		}
	}
	return out
}

// BuildsDeclaredFor returns the build evidence entries whose os is
// exactly os or empty, as FilesDeclaredFor does for files.
func (p Patch) BuildsDeclaredFor(os string) []BuildEvidence {
	var out []BuildEvidence
	for _, b := range p.Evidence.Builds {
		if b.OS == "" || b.OS == os {
			out = append(out, b)
		}
	}
	return out
}

// Risk holds the facts the security team weighed when it filed.
type Risk struct {
	ExploitPublic bool `json:"exploit_public"`
	// Exploited: attacks in the wild are known (MSRC's "Exploited:Yes").
	Exploited     bool `json:"exploited"`
	WormInTheWild bool `json:"worm_in_the_wild"`
	// Exposure is internet, internal or isolated.
	Exposure    string   `json:"exposure,omitempty"`
	Workaround  string   `json:"workaround,omitempty"`
	Scanners    []string `json:"scanners,omitempty"`
	SideEffects []string `json:"side_effects,omitempty"`
}

// Stage is a pre-production step of the staged path (lab, production-like).
type Stage struct {
	Name string `json:"name"`
	// Hosts is a selector expression (see Selector).
	Hosts         string        `json:"hosts"`
	Soak          time.Duration `json:"soak"`
	ApprovalGroup string        `json:"approval_group,omitempty"`
}

// Wave is a geographic production wave.
type Wave struct {
	Name  string   `json:"name"`
	Hosts string   `json:"hosts"`
	After []string `json:"after,omitempty"`
	// MaxParallel bounds hosts in flight in this wave.
	MaxParallel int       `json:"max_parallel"`
	MaxFailures Threshold `json:"max_failures"`
	// DownloadConcurrency bounds package downloads per site, to spare WAN links.
	DownloadConcurrency int     `json:"download_concurrency,omitempty"`
	Window              *Window `json:"window,omitempty"`
	ApprovalGroup       string  `json:"approval_group,omitempty"`
}

// Threshold is a failure limit as an absolute count or a percentage of the
// wave's hosts; exactly one is set.
type Threshold struct {
	Count   int     `json:"count,omitempty"`
	Percent float64 `json:"percent,omitempty"`
}

// Window is a recurring maintenance window.
type Window struct {
	Days []time.Weekday `json:"days"`
	// Start and End are minutes after local midnight; End < Start wraps past
	// midnight (22:00-06:00).
	Start int `json:"start"`
	End   int `json:"end"`
	// TimeZone is an IANA zone; empty means each host's site zone.
	TimeZone string `json:"time_zone,omitempty"`
}

// EscalationStep says who hears about the rollout at a point of its SLA.
type EscalationStep struct {
	// AtPercent is the share of the SLA elapsed (50, 75, 100); 0 with
	// AfterBreach set means after the breach.
	AtPercent   float64       `json:"at_percent,omitempty"`
	AfterBreach time.Duration `json:"after_breach,omitempty"`
	Breach      bool          `json:"breach,omitempty"`
	Contacts    []string      `json:"contacts"`
	Channels    []string      `json:"channels"`
}

// Channel is a notification channel declared by name; its address and keys
// are resolved by the worker, never written in HCL.
type Channel struct {
	Name string `json:"name"`
	// Type is webhook, slack or email.
	Type string `json:"type"`
}

// EmergencyRequest asks to skip required stages (break-glass). A filed
// rollout with one waits at its emergency gate until a verified member
// of the emergency group (the gates policy's approve_emergency) approves
// it; only then does the plan policy skip the stages.
type EmergencyRequest struct {
	Reason     string   `json:"reason"`
	SkipStages []string `json:"skip_stages,omitempty"`
}

// Inventory is the set of hosts and sites a rollout may touch.
type Inventory struct {
	Hosts []Host `json:"hosts"`
	Sites []Site `json:"sites,omitempty"`
}

// Host is one Windows machine and the facts about it that matter to a
// rollout: where it is, what it does, who owns it and how to reach it.
type Host struct {
	Name string `json:"name"`
	// Address is host:port of its WinRM listener.
	Address string `json:"address"`
	OS      string `json:"os"`
	Build   string `json:"build,omitempty"`
	Site    string `json:"site"`
	Region  string `json:"region"`
	Tier    Tier   `json:"tier"`
	// Role is domain_controller, mail, sql, file, web, workstation, laptop...
	Role    string `json:"role"`
	Cluster string `json:"cluster,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	// Credential names a credential set the worker resolves; never a secret.
	Credential string `json:"credential"`
	// ComputerName is the host's Windows computer name where the
	// inventory names it otherwise (an asset tag); default: the first
	// DNS label of Name. The identity policy checks the scan against it.
	ComputerName string `json:"computer_name,omitempty"`
	// MachineGUID pins the host's HKLM\SOFTWARE\Microsoft\Cryptography
	// MachineGuid: a scan reporting another is identity_mismatch.
	MachineGUID string   `json:"machine_guid,omitempty"`
	TLS         HostTLS  `json:"tls"`
	Tags        []string `json:"tags,omitempty"`
}

// HostTLS says how to reach a host's WinRM listener. The zero value is the
// safe default: HTTPS with certificate verification against the system pool.
type HostTLS struct {
	// Transport is https (default) or http; http is allowed only where the
	// policy allows it for the host's tier.
	Transport string `json:"transport,omitempty"`
	// Insecure skips certificate verification; policy-gated like http.
	Insecure bool `json:"insecure,omitempty"`
	// CAFile is a PEM bundle that verifies the listener's certificate.
	CAFile     string `json:"ca_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	// CertSHA256 pins the listener's certificate (SHA-256 of its DER, hex):
	// a listener presenting another is refused before any credential is
	// sent, and the host is identity_mismatch.
	CertSHA256 string `json:"cert_sha256,omitempty"`
	// Auth is basic (default) or ntlm.
	Auth string `json:"auth,omitempty"`
}

// Site is a physical location with its own time zone and distribution point.
type Site struct {
	Name     string `json:"name"`
	Region   string `json:"region"`
	TimeZone string `json:"time_zone"`
	// DistributionPoint is where hosts of the site download packages from.
	DistributionPoint string `json:"distribution_point,omitempty"`
}
