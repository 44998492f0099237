package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/report"
)

// ReportActivities builds the compliance report at the end of a rollout.
// The report is a function of its input and the policy, so a retried or
// replayed activity gives the same report. Building is report.Build; the
// activity only unpacks, compacts and classifies errors for Temporal.
type ReportActivities struct {
	Policy report.ExceptionPolicy
}

// BuildReport is the BuildReport activity: it unpacks the input, builds
// the report and gzips its host list when large (Report.Compact). A
// corrupt packed input is not retried: it would fail the same way.
func (a ReportActivities) BuildReport(ctx context.Context, in contract.ReportInput) (contract.Report, error) {
	in, err := in.Unpack()
	if err != nil {
		return contract.Report{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("build report of rollout %s: %v", in.Rollout.ID, err), "InvalidInput", err)
	}
	rep, err := report.Build(ctx, a.Policy, in)
	if err != nil {
		return contract.Report{}, fmt.Errorf("build report of rollout %s: %w", in.Rollout.ID, err)
	}
	rep, err = rep.Compact()
	if err != nil {
		return contract.Report{}, fmt.Errorf("build report of rollout %s: %w", in.Rollout.ID, err)
	}
	return rep, nil
}
