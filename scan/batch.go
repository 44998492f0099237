package scan

import (
	"cmp"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/contract/gzjson"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// BatchInput is one batch of hosts a ScanBatchWorkflow verifies against
// every patch: one VerifyPatch activity per host and patch, at most
// Parallel at a time. Hosts (workflows.BatchHost) and patches travel
// gzipped in Packed.
type BatchInput struct {
	ScanID   string `json:"scan_id"`
	Batch    int    `json:"batch"`
	Parallel int    `json:"parallel"`
	Packed   []byte `json:"packed"`
}

type scanBatchPacked struct {
	Hosts   []workflows.BatchHost `json:"hosts"`
	Patches []rollout.Patch       `json:"patches"`
}

// BatchResult holds the batch's checks, host-major, gzipped.
type BatchResult struct {
	Packed []byte `json:"packed"`
}

func (r BatchResult) checks() ([]HostCheck, error) {
	var checks []HostCheck
	if err := gzjson.Unmarshal(r.Packed, &checks); err != nil {
		return nil, fmt.Errorf("read batch checks: %w", err)
	}
	return checks, nil
}

// ScanBatchWorkflow verifies one batch of hosts against the scan's patches
// through VerifyPatch (scan, then the compliance policy). A host that does
// not answer is unreachable; one whose verification fails otherwise is
// unknown: never compliant without proof.
func ScanBatchWorkflow(ctx workflow.Context, in BatchInput) (BatchResult, error) {
	var p scanBatchPacked
	if err := gzjson.Unmarshal(in.Packed, &p); err != nil {
		return BatchResult{}, temporal.NewNonRetryableApplicationError("unpack scan batch", contract.InvalidInput, err)
	}
	np := len(p.Patches)
	checks := make([]HostCheck, len(p.Hosts)*np)
	sel := workflow.NewSelector(ctx)
	next, pending := 0, 0
	for next < len(checks) || pending > 0 {
		for pending < max(1, in.Parallel) && next < len(checks) {
			i := next
			h, patch := p.Hosts[i/np], p.Patches[i%np]
			target := contract.HostTarget{RolloutID: WorkflowID(in.ScanID), Host: h.Host, DistributionPoint: h.DistributionPoint, Patch: patch}
			actx := workflows.WithScanOptions(ctx, fmt.Sprintf("verify %s on %s", strings.ToUpper(patch.KB), h.Host.Name))
			sel.AddFuture(workflow.ExecuteActivity(actx, contract.VerifyPatchName, contract.VerifyPatchInput{Target: target}), func(f workflow.Future) {
				var v contract.HostVerdict
				checks[i] = checkOf(h.Host, patch, v, f.Get(ctx, &v))
			})
			next++
			pending++
		}
		sel.Select(ctx)
		pending--
	}
	blob, err := gzjson.Marshal(checks)
	if err != nil {
		return BatchResult{}, fmt.Errorf("pack batch %d checks: %w", in.Batch, err)
	}
	return BatchResult{Packed: blob}, nil
}

// checkOf turns a verdict, or the error that stood in its way, into a
// check.
func checkOf(h rollout.Host, p rollout.Patch, v contract.HostVerdict, err error) HostCheck {
	c := HostCheck{Host: h.Name, KB: strings.ToUpper(p.KB)}
	if err != nil {
		c.State, c.Reasons = workflows.VerifyFailure(err)
		return c
	}
	c.State, c.Reasons, c.BootTime = v.State, v.Reasons, v.Evidence.LastBootUpTime
	if e := v.Evidence; e.Hostname != "" || e.DNSHostName != "" {
		c.Identity = &contract.HostIdentity{Hostname: cmp.Or(e.DNSHostName, e.Hostname), MachineGUID: e.MachineGUID, TLSCertSHA256: e.TLSCertSHA256}
	}
	if c.State == "" {
		c.State, c.Reasons = rollout.StateUnknown, append(c.Reasons, "the compliance policy gave no state")
	}
	return c
}
