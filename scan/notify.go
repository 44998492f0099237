package scan

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/workflows"
)

// notifyRegressions tells the scan's channels which hosts regressed. The
// idempotency key is the scan's workflow id, its first run id and a
// sequence, so retries and replays never notify twice; a notification
// that cannot be delivered is recorded in the result, never fatal.
func (s *scan) notifyRegressions(ctx workflow.Context, res *Result) {
	info := workflow.GetInfo(ctx)
	kind := contract.EventScanDrift
	title := fmt.Sprintf("Scan %s: %d host(s) no longer compliant (%s)", s.in.ScanID, res.Regressions, strings.Join(res.KBs, ", "))
	ev := contract.Event{
		Key:       fmt.Sprintf("%s/%s/%s/1", info.WorkflowExecution.ID, info.FirstRunID, kind),
		Kind:      kind,
		RolloutID: WorkflowID(s.in.ScanID),
		At:        res.FinishedAt,
		Title:     title,
		Markdown:  regressionMarkdown(*res),
		Text:      regressionText(*res),
		Fields: []contract.Field{
			{Name: "scan_id", Value: s.in.ScanID},
			{Name: "kbs", Value: strings.Join(res.KBs, ",")},
			{Name: "regressions", Value: fmt.Sprint(res.Regressions)},
			{Name: "drift", Value: fmt.Sprint(res.DriftCount)},
			{Name: "previous_scan_at", Value: res.PreviousAt.UTC().Format(time.RFC3339)},
		},
	}
	for _, c := range s.in.Channels {
		ev.Channels = append(ev.Channels, c.Name)
	}
	var out contract.NotifyResult
	err := workflow.ExecuteActivity(workflows.WithNotifyOptions(ctx, string(kind)+": "+title), contract.NotifyName,
		contract.NotifyInput{Event: ev, Channels: s.in.Channels}).Get(ctx, &out)
	res.Notified = out.Delivered
	res.NotifyErrors = out.Errors
	if err != nil {
		res.NotifyErrors = append(res.NotifyErrors, "undelivered: "+err.Error())
	}
}

// regressionRows bounds the hosts listed in a message or in the Web UI;
// the result has them all.
const regressionRows = 50

func regressionMarkdown(res Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan **%s** found %d host(s) compliant at the previous scan (%s) and no longer compliant:\n\n",
		res.ScanID, res.Regressions, res.PreviousAt.UTC().Format(time.RFC3339))
	b.WriteString(driftTable(res.Drift[:min(res.Regressions, regressionRows)]))
	if res.Regressions > regressionRows {
		fmt.Fprintf(&b, "\n... and %d more: `patchway scan --id %s --last`\n", res.Regressions-regressionRows, res.ScanID)
	}
	return b.String()
}

func regressionText(res Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan %s found %d host(s) compliant at the previous scan (%s) and no longer compliant:\n",
		res.ScanID, res.Regressions, res.PreviousAt.UTC().Format(time.RFC3339))
	for _, d := range res.Drift[:min(res.Regressions, regressionRows)] {
		fmt.Fprintf(&b, "- %s %s: %s -> %s: %s\n", d.Host, d.KB, d.Previous, d.Current, d.Reason)
	}
	if res.Regressions > regressionRows {
		fmt.Fprintf(&b, "... and %d more\n", res.Regressions-regressionRows)
	}
	return b.String()
}

func driftTable(ds []Drift) string {
	var b strings.Builder
	b.WriteString("| host | KB | drift | was | now | why |\n|---|---|---|---|---|---|\n")
	for _, d := range ds {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", d.Host, d.KB, d.Kind, d.Previous, d.Current,
			strings.ReplaceAll(d.Reason, "|", "\\|"))
	}
	return b.String()
}
