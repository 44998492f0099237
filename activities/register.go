package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/hostscript"
)

// Registry is what a worker and Temporal's test environments offer to
// register activities with.
type Registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// HostOperations are the host activities; *HostActivities implements them
// over WinRM.
type HostOperations interface {
	ScanHost(context.Context, contract.ScanHostInput) (hostscript.ScanResult, error)
	InstallPatch(context.Context, contract.InstallPatchInput) (contract.InstallPatchResult, error)
	RebootHost(context.Context, contract.RebootHostInput) (hostscript.RebootResult, error)
	WaitForBoot(context.Context, contract.WaitForBootInput) (contract.WaitForBootResult, error)
	VerifyPatch(context.Context, contract.VerifyPatchInput) (contract.HostVerdict, error)
	UninstallPatch(context.Context, contract.UninstallPatchInput) (contract.UninstallPatchResult, error)
	PatchHost(context.Context, contract.PatchHostInput) (contract.PatchHostResult, error)
	PreflightCredentials(context.Context, contract.PreflightCredentialsInput) (contract.PreflightCredentialsResult, error)
}

// PolicyDecisions are the policy activities the workflows run as local
// activities; *PolicyActivities implements them.
type PolicyDecisions interface {
	EvaluateRisk(context.Context, contract.EvaluateRiskInput) (contract.RiskDecision, error)
	AuthorizeGate(context.Context, contract.AuthorizeGateInput) (contract.GateDecision, error)
	DecideReboot(context.Context, contract.DecideRebootInput) (contract.RebootDecision, error)
	DecideWave(context.Context, contract.DecideWaveInput) (contract.WaveDecision, error)
	DecideEscalation(context.Context, contract.DecideEscalationInput) (contract.EscalationDecision, error)
	ForecastSLA(context.Context, contract.ForecastInput) (contract.Forecast, error)
	ShadowDecide(context.Context, contract.ShadowInput) (contract.ShadowResult, error)
}

// Deps are the implementations Register serves. A nil one is not
// registered, so a test registers only what it plays.
type Deps struct {
	Hosts  HostOperations
	Policy PolicyDecisions
	// Notifier is *Notifier in a worker.
	Notifier interface {
		Notify(context.Context, contract.NotifyInput) (contract.NotifyResult, error)
	}
	// Reports is ReportActivities in a worker.
	Reports interface {
		BuildReport(context.Context, contract.ReportInput) (contract.Report, error)
	}
}

// Register registers every activity of d under its contract name, so a
// renamed Go method cannot silently change what workflows call, and a
// test's fake with the wrong signature does not compile. The worker, the
// history recorder and the tests all register through it; with
// workflows.Register (the workflows) it is everything a worker serves.
func Register(r Registry, d Deps) {
	reg := func(name string, fn any) {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	if h := d.Hosts; h != nil {
		reg(contract.ScanHostName, h.ScanHost)
		reg(contract.InstallPatchName, h.InstallPatch)
		reg(contract.RebootHostName, h.RebootHost)
		reg(contract.WaitForBootName, h.WaitForBoot)
		reg(contract.VerifyPatchName, h.VerifyPatch)
		reg(contract.UninstallPatchName, h.UninstallPatch)
		reg(contract.PatchHostName, h.PatchHost)
		reg(contract.PreflightCredentialsName, h.PreflightCredentials)
	}
	if p := d.Policy; p != nil {
		reg(contract.EvaluateRiskName, p.EvaluateRisk)
		reg(contract.AuthorizeGateName, p.AuthorizeGate)
		reg(contract.ShadowDecideName, p.ShadowDecide)
		reg(contract.DecideRebootName, p.DecideReboot)
		reg(contract.DecideWaveName, p.DecideWave)
		reg(contract.DecideEscalationName, p.DecideEscalation)
		reg(contract.ForecastSLAName, p.ForecastSLA)
	}
	if d.Notifier != nil {
		reg(contract.NotifyName, d.Notifier.Notify)
	}
	if d.Reports != nil {
		reg(contract.BuildReportName, d.Reports.BuildReport)
	}
}
