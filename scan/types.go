package scan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/contract/gzjson"
	"github.com/patchway/patchway/rollout"
)

// Workflow type names as registered with the worker. They are the
// functions' names, as before the scan had its own package: a scan
// already scheduled or running keeps finding its workflow.
const (
	// WorkflowName re-verifies an inventory against patches, apart from
	// any rollout, and reports drift since its previous scan.
	WorkflowName = "ScanWorkflow"
	// BatchWorkflowName verifies one batch of a scan's hosts.
	BatchWorkflowName = "ScanBatchWorkflow"
)

// WorkflowID is the workflow id of a one-off scan and the id of a
// scan's schedule (whose runs get a timestamp appended by the server), so
// `patchway scan --id X` always finds its own scans.
func WorkflowID(scanID string) string { return "scan/" + scanID }

// Input starts a compliance scan: the hosts (and sites) of an
// inventory and the patches to check on each of them, with their evidence.
// Channels are the channels (by name and type, never an address or key)
// that hear about regressions; none means no notification. Nothing here is
// secret.
type Input struct {
	ScanID   string            `json:"scan_id"`
	Hosts    []rollout.Host    `json:"hosts,omitempty"`
	Sites    []rollout.Site    `json:"sites,omitempty"`
	Patches  []rollout.Patch   `json:"patches,omitempty"`
	Channels []rollout.Channel `json:"channels,omitempty"`
	// RequestedBy is who created the scan or its schedule: the name the
	// gates policy proved (a typed name only on a dev server started
	// with --insecure-dev-identity).
	RequestedBy string `json:"requested_by,omitempty"`
	// Token is the requester's action token (a one-off scan): the scan
	// proves it before any host and drops it. A schedule's runs carry
	// Grant instead, the proof made when the schedule was created.
	Token string `json:"token,omitempty"`
	Grant *Grant `json:"grant,omitempty"`

	// Tuning overrides the scale knobs; zero fields take the defaults.
	Tuning Tuning `json:"tuning,omitzero"`

	// Packed is Hosts, Sites and Patches gzipped (then those are nil), and
	// on continue-as-new the scan's own state too. A schedule stores its
	// action's input and hands it to every run, so clients pack (Pack):
	// a host list compresses about tenfold.
	Packed []byte `json:"packed,omitempty"`
}

// Tuning holds the scale knobs of a scan. The defaults keep the Temporal
// work per host small: one VerifyPatch activity per host and patch, run by
// batch children, never a child per host.
type Tuning struct {
	// BatchSize is the number of hosts per ScanBatchWorkflow child (100),
	// fewer when there are many patches, so that one child runs at most
	// maxChecksPerBatch verifications and its history stays small.
	BatchSize int `json:"batch_size,omitempty"`
	// MaxPendingBatches bounds the sliding window of running children (4).
	MaxPendingBatches int `json:"max_pending_batches,omitempty"`
	// Parallel bounds the VerifyPatch activities in flight per child (16).
	Parallel int `json:"parallel,omitempty"`
	// MaxBatchesPerRun makes the scan continue as new after this many
	// children even if the server has not suggested it (300).
	MaxBatchesPerRun int `json:"max_batches_per_run,omitempty"`
}

// maxChecksPerBatch bounds the verifications of one batch child: about six
// history events each at worst (activity scheduled, started, completed and
// a workflow task), so a child stays near 3,000 events.
const maxChecksPerBatch = 500

// withDefaults gives every knob that is zero or negative its default: a
// negative MaxPendingBatches or MaxBatchesPerRun would make the scan
// continue as new forever.
func (t Tuning) withDefaults(patches int) Tuning {
	t.BatchSize = max(1, min(cmp.Or(max(t.BatchSize, 0), 100), maxChecksPerBatch/max(1, patches)))
	t.MaxPendingBatches = cmp.Or(max(t.MaxPendingBatches, 0), 4)
	t.Parallel = cmp.Or(max(t.Parallel, 0), 16)
	t.MaxBatchesPerRun = cmp.Or(max(t.MaxBatchesPerRun, 0), 300)
	return t
}

// HostCheck is one host's compliance with one patch, as the compliance
// policy judged it at this scan.
type HostCheck struct {
	Host    string            `json:"host"`
	KB      string            `json:"kb"`
	State   rollout.HostState `json:"state"`
	Reasons []string          `json:"reasons,omitempty"`
	// BootTime is the host's LastBootUpTime at the scan (zero when it did
	// not answer): unchanged between two scans, a pending reboot never
	// happened.
	BootTime time.Time `json:"boot_time,omitzero"`
	// Identity is who answered (name, machine GUID, certificate): what an
	// inventory pins with machine_guid and tls.cert_sha256.
	Identity *contract.HostIdentity `json:"identity,omitempty"`
	// Since is when consecutive scans of this scan id first saw the host
	// in State.
	Since time.Time `json:"since,omitzero"`
}

// PatchTotals is compliance with one patch over the scanned hosts.
type PatchTotals struct {
	KB     string                    `json:"kb"`
	Hosts  int                       `json:"hosts"`
	Totals map[rollout.HostState]int `json:"totals"`
	// CompliancePercent is contract.Percent of compliant over hosts less
	// not_applicable ones; 0 when no host is applicable.
	CompliancePercent float64 `json:"compliance_percent"`
}

// Result is a scan's outcome, stored as the workflow result; a
// schedule hands it to its next run as the baseline for drift. The
// summary is plain JSON, readable in the Web UI; the per-host checks and
// the drift are plain when small and gzipped when their JSON is over
// contract.InlineLimit, so the result stays far below the payload limit.
// Read them with Expanded.
type Result struct {
	ScanID     string    `json:"scan_id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	KBs        []string  `json:"kbs"`
	Hosts      int       `json:"hosts"`
	// Totals counts host x patch checks per state, every state of
	// rollout.HostStates present.
	Totals map[rollout.HostState]int `json:"totals"`
	ByKB   []PatchTotals             `json:"by_kb"`
	// HostsCompliant counts hosts compliant with every patch that applies
	// to them (at least one).
	HostsCompliant int `json:"hosts_compliant"`
	// HostsUnreachable counts hosts that did not answer.
	HostsUnreachable int `json:"hosts_unreachable"`

	// PreviousAt is when the scan compared against started; zero for the
	// first scan of a scan id (and every one-off scan): no drift then.
	PreviousAt  time.Time `json:"previous_at,omitzero"`
	Regressions int       `json:"regressions"`
	DriftCount  int       `json:"drift_count"`
	// Drift lists regressions first, then the other drift, each in
	// inventory order.
	Drift     []Drift     `json:"drift,omitempty"`
	Checks    []HostCheck `json:"checks,omitempty"`
	DriftGzip []byte      `json:"drift_gzip,omitempty"`
	// ChecksGzip holds Checks gzipped when their JSON is over the limit.
	ChecksGzip []byte `json:"checks_gzip,omitempty"`

	// Notified lists the channels the regressions reached; NotifyErrors
	// says why a channel did not (never fatal to the scan).
	Notified     []string `json:"notified,omitempty"`
	NotifyErrors []string `json:"notify_errors,omitempty"`

	// Requester is who requested the scan, as the gates policy proved
	// it (nil for a scan started before scans proved their requester).
	Requester *Grant `json:"requester,omitempty"`
}

// Compact gzips the checks and the drift that are over
// contract.InlineLimit. It is deterministic (gzjson), so workflow code
// calls it.
func (r Result) Compact() (Result, error) {
	var err error
	if r.Checks, r.ChecksGzip, err = compactList(r.Checks, r.ChecksGzip); err != nil {
		return r, fmt.Errorf("compact checks of scan %s: %w", r.ScanID, err)
	}
	if r.Drift, r.DriftGzip, err = compactList(r.Drift, r.DriftGzip); err != nil {
		return r, fmt.Errorf("compact drift of scan %s: %w", r.ScanID, err)
	}
	return r, nil
}

func compactList[T any](plain []T, blob []byte) ([]T, []byte, error) {
	if len(plain) == 0 || len(blob) > 0 {
		return plain, blob, nil
	}
	raw, err := json.Marshal(plain)
	if err != nil {
		return plain, nil, err
	}
	if len(raw) <= contract.InlineLimit {
		return plain, nil, nil
	}
	blob, err = gzjson.Marshal(plain)
	if err != nil {
		return plain, nil, err
	}
	return nil, blob, nil
}

// Expanded is the result with its checks and drift plain, never gzipped:
// what people, scripts and the next scan read.
func (r Result) Expanded() (Result, error) {
	if len(r.ChecksGzip) > 0 {
		if err := gzjson.Unmarshal(r.ChecksGzip, &r.Checks); err != nil {
			return r, fmt.Errorf("read checks of scan %s: %w", r.ScanID, err)
		}
		r.ChecksGzip = nil
	}
	if len(r.DriftGzip) > 0 {
		if err := gzjson.Unmarshal(r.DriftGzip, &r.Drift); err != nil {
			return r, fmt.Errorf("read drift of scan %s: %w", r.ScanID, err)
		}
		r.DriftGzip = nil
	}
	return r, nil
}

// Progress answers the progress query of a running scan.
type Progress struct {
	ScanID     string                    `json:"scan_id"`
	Done       bool                      `json:"done"`
	HostsTotal int                       `json:"hosts_total"`
	HostsDone  int                       `json:"hosts_done"`
	Batches    int                       `json:"batches"`
	Totals     map[rollout.HostState]int `json:"totals"`
}

// scanCarry is the scan's state across continue-as-new, inside Packed.
type scanCarry struct {
	StartedAt time.Time `json:"started_at"`
	// Checks holds every host x patch check, in host-major order; the
	// first Next hosts' are filled.
	Checks  []HostCheck `json:"checks"`
	Next    int         `json:"next"`
	Batches int         `json:"batches"`
	// Previous is the last completed scan of this scan id (nil: none).
	Previous *Result `json:"previous,omitempty"`
}

// scanPacked is what Input.Packed holds.
type scanPacked struct {
	Hosts   []rollout.Host  `json:"hosts"`
	Sites   []rollout.Site  `json:"sites,omitempty"`
	Patches []rollout.Patch `json:"patches"`
	Carry   *scanCarry      `json:"carry,omitempty"`
}

// Pack gzips the hosts, sites and patches into Packed, as a schedule's
// stored input should be; it is idempotent.
func (in Input) Pack() (Input, error) { return packScan(in, nil) }

func packScan(in Input, c *scanCarry) (Input, error) {
	if len(in.Packed) > 0 && c == nil {
		return in, nil
	}
	blob, err := gzjson.Marshal(scanPacked{Hosts: in.Hosts, Sites: in.Sites, Patches: in.Patches, Carry: c})
	if err != nil {
		return in, fmt.Errorf("pack scan %s: %w", in.ScanID, err)
	}
	in.Hosts, in.Sites, in.Patches, in.Packed = nil, nil, nil, blob
	return in, nil
}

// Unpack restores a packed input (an input without Packed is returned as
// is); clients use it to read a schedule's stored input.
func (in Input) Unpack() (Input, error) {
	in, _, err := unpackScan(in)
	return in, err
}

func unpackScan(in Input) (Input, *scanCarry, error) {
	if len(in.Packed) == 0 {
		return in, nil, nil
	}
	var p scanPacked
	if err := gzjson.Unmarshal(in.Packed, &p); err != nil {
		return in, nil, fmt.Errorf("unpack scan %s: %w", in.ScanID, err)
	}
	in.Hosts, in.Sites, in.Patches, in.Packed = p.Hosts, p.Sites, p.Patches, nil
	return in, p.Carry, nil
}

// Validate says what is missing from a scan input before it is started.
func (in Input) Validate() error {
	var problems []string
	if in.ScanID == "" {
		problems = append(problems, "no scan id")
	}
	if len(in.Hosts) == 0 {
		problems = append(problems, "no hosts")
	}
	if len(in.Patches) == 0 {
		problems = append(problems, "no patches")
	}
	seen := map[string]bool{}
	for _, p := range in.Patches {
		kb := strings.ToUpper(p.KB)
		if seen[kb] {
			problems = append(problems, "patch "+kb+" twice")
		}
		seen[kb] = true
	}
	if len(problems) > 0 {
		return fmt.Errorf("scan %q: %s", in.ScanID, strings.Join(problems, ", "))
	}
	return nil
}

// Summary is the one-line static summary of a scan for the Web UI.
func Summary(in Input) string {
	s := fmt.Sprintf("compliance scan %s: %s on %d hosts", in.ScanID, strings.Join(in.KBs(), ", "), len(in.Hosts))
	if in.RequestedBy != "" {
		s += ", by " + in.RequestedBy
	}
	return s
}

// KBs are the KBs of the scan's patches, upper case, in order.
func (in Input) KBs() []string {
	kbs := make([]string, len(in.Patches))
	for i, p := range in.Patches {
		kbs[i] = strings.ToUpper(p.KB)
	}
	return kbs
}
