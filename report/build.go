package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// NoValue stands for an empty region, site, tier or role in breakdowns, so
// hosts missing from the inventory's dimensions still add up.
const NoValue = "(none)"

// ExceptionPolicy says what an exception makes of a host's state. The
// worker passes its policies engine, which answers from the exceptions
// policy; this package asks through the interface so it needs no OPA.
type ExceptionPolicy interface {
	Exception(ctx context.Context, in contract.ExceptionInput) (contract.ExceptionDecision, error)
}

// Build is the compliance report of an unpacked input (see
// ReportInput.Unpack), with every host in Hosts, sorted by name.
//
// A host's state is its verdict's; only compliant ever counts as
// compliant. What an exception makes of a host at in.GeneratedAt is the
// exceptions policy's decision (the workflow marks an excepted host
// already: the host counts once, and the policy's reason is added only if
// the workflow's is missing). A policy that fails to evaluate fails the
// report, rather than report a state nobody decided. A host without a verdict
// is pending, and a state outside rollout.HostStates is unknown.
//
// CompliancePercent is contract.Percent of compliant over all hosts less
// not_applicable ones: 0, not 100, with no applicable host.
func Build(ctx context.Context, policy ExceptionPolicy, in contract.ReportInput) (contract.Report, error) {
	hosts, err := reportHosts(ctx, policy, in)
	if err != nil {
		return contract.Report{}, err
	}
	totals := map[rollout.HostState]int{}
	for _, st := range rollout.HostStates {
		totals[st] = 0
	}
	for _, h := range hosts {
		totals[h.State]++
	}
	return contract.Report{
		RolloutID:         in.Rollout.ID,
		KB:                in.Rollout.Patch.KB,
		Severity:          string(in.Rollout.Patch.Severity),
		GeneratedAt:       in.GeneratedAt,
		HostCount:         len(hosts),
		OutsideSteps:      in.OutsideSteps,
		CompliancePercent: CompliancePercent(totals, len(hosts)),
		Totals:            totals,
		By:                breakdowns(hosts),
		Unowned:           unowned(hosts),
		Baseline:          in.Baseline,
		Unverified:        in.Unverified,
		Forecast:          in.Forecast,
		Shadow:            in.Shadow,
		Hosts:             hosts,
	}, nil
}

// reportHosts joins inventory, verdicts and exceptions into one line per
// host, sorted by name. Verdicts for hosts the inventory no longer lists
// are kept (with empty dimensions): the evidence is still evidence.
func reportHosts(ctx context.Context, policy ExceptionPolicy, in contract.ReportInput) ([]contract.HostReport, error) {
	verdicts := make(map[string]contract.HostVerdict, len(in.Verdicts))
	for _, v := range in.Verdicts {
		verdicts[v.Host] = v
	}
	exceptions := map[string]contract.HostException{}
	for _, e := range in.Exceptions {
		if prev, ok := exceptions[e.Host]; !ok || e.Expires.After(prev.Expires) {
			exceptions[e.Host] = e
		}
	}
	seen := make(map[string]bool, len(in.Hosts))
	out := make([]contract.HostReport, 0, len(in.Hosts))
	var errs []error
	add := func(hr contract.HostReport) {
		seen[hr.Name] = true
		v, ok := verdicts[hr.Name]
		if ok {
			hr.State, hr.Reasons, hr.Evidence = v.State, slices.Clone(v.Reasons), slices.Clone(v.Proof)
		} else {
			hr.State, hr.Reasons = rollout.StatePending, []string{"no verdict recorded for this host"}
		}
		if !slices.Contains(rollout.HostStates, hr.State) {
			hr.Reasons = append(hr.Reasons, fmt.Sprintf("state %q is not one Patchway knows; reported unknown", hr.State))
			hr.State = rollout.StateUnknown
		}
		if e, ok := exceptions[hr.Name]; ok {
			if err := applyException(ctx, policy, &hr, e, in.GeneratedAt); err != nil {
				errs = append(errs, err)
			}
		}
		out = append(out, hr)
	}
	for _, h := range in.Hosts {
		if seen[h.Name] {
			continue
		}
		add(contract.HostReport{Name: h.Name, Region: h.Region, Site: h.Site, Tier: h.Tier, Role: h.Role, Owner: h.Owner, Purpose: h.Purpose})
	}
	for _, v := range in.Verdicts {
		if !seen[v.Host] {
			add(contract.HostReport{Name: v.Host})
		}
	}
	slices.SortFunc(out, func(a, b contract.HostReport) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

// exceptionPrefix starts the reason the workflow records when it grants
// an exception; the report adds its own only when that one is missing.
const exceptionPrefix = "exception by "

// applyException gives the host the state and reason the exceptions
// policy decides for its exception.
func applyException(ctx context.Context, policy ExceptionPolicy, hr *contract.HostReport, e contract.HostException, now time.Time) error {
	if policy == nil {
		return errors.New("no exceptions policy configured")
	}
	d, err := policy.Exception(ctx, contract.ExceptionInput{
		Exception: contract.Exception{Reason: e.Reason, GrantedBy: e.GrantedBy, Expires: e.Expires}, State: hr.State, Now: now,
	})
	if err != nil {
		return fmt.Errorf("exception of host %s: %w", hr.Name, err)
	}
	duplicate := d.Active && slices.ContainsFunc(hr.Reasons, func(r string) bool { return strings.HasPrefix(r, exceptionPrefix) })
	hr.State = d.State
	if d.Reason != "" && !duplicate && !slices.Contains(hr.Reasons, d.Reason) {
		hr.Reasons = append(hr.Reasons, d.Reason)
	}
	return nil
}

// CompliancePercent is compliant hosts over applicable ones, in percent
// (contract.Percent); 0 when none is applicable.
func CompliancePercent(totals map[rollout.HostState]int, hosts int) float64 {
	return contract.Percent(totals[rollout.StateCompliant], hosts-totals[rollout.StateNotApplicable])
}

// dimensions are the report's breakdowns, in the order the report shows
// them: where a host is, then where it stands on the staged path and what
// it does.
var dimensions = []struct {
	name  string
	value func(contract.HostReport) string
}{
	{"region", func(h contract.HostReport) string { return h.Region }},
	{"site", func(h contract.HostReport) string { return h.Site }},
	{"tier", func(h contract.HostReport) string { return string(h.Tier) }},
	{"role", func(h contract.HostReport) string { return h.Role }},
}

// breakdowns counts hosts per dimension and value, values sorted.
func breakdowns(hosts []contract.HostReport) []contract.Breakdown {
	var out []contract.Breakdown
	for _, d := range dimensions {
		groups := map[string]*contract.Breakdown{}
		for _, h := range hosts {
			v := d.value(h)
			if strings.TrimSpace(v) == "" {
				v = NoValue
			}
			b, ok := groups[v]
			if !ok {
				b = &contract.Breakdown{Dimension: d.name, Value: v, Totals: map[rollout.HostState]int{}}
				groups[v] = b
			}
			b.Hosts++
			b.Totals[h.State]++
		}
		values := make([]string, 0, len(groups))
		for v := range groups {
			values = append(values, v)
		}
		slices.Sort(values)
		for _, v := range values {
			b := groups[v]
			b.CompliancePercent = CompliancePercent(b.Totals, b.Hosts)
			out = append(out, *b)
		}
	}
	return out
}

// unowned lists the hosts nobody answers for, in the order of hosts.
func unowned(hosts []contract.HostReport) []contract.UnownedHost {
	var out []contract.UnownedHost
	for _, h := range hosts {
		var missing []string
		for _, f := range []struct{ field, value string }{{"owner", h.Owner}, {"purpose", h.Purpose}} {
			switch {
			case strings.TrimSpace(f.value) == "":
				missing = append(missing, "no "+f.field)
			case unknownValue(f.value):
				missing = append(missing, fmt.Sprintf("%s %q", f.field, f.value))
			}
		}
		if len(missing) > 0 {
			out = append(out, contract.UnownedHost{Host: h.Name, Reason: strings.Join(missing, ", ")})
		}
	}
	return out
}

// placeholders are what inventories write for an owner or purpose nobody
// knows.
var placeholders = []string{
	"unknown", "n/a", "na", "none", "tbd", "tbc", "todo", "unassigned", "not known",
	"nobody", "null", "nil", "unk", "undefined", "unspecified",
}

// unknownValue tells an inventory's placeholder for "nobody knows" (empty,
// "unknown", "?", "n/a", "TBD", "-"...) from a real owner or purpose: a
// quarter of one company's servers were of unknown purpose, and such
// hosts must be listed, not counted as owned.
func unknownValue(s string) bool {
	t := strings.Trim(strings.ToLower(strings.TrimSpace(s)), "?-_.*/ ")
	return t == "" || slices.Contains(placeholders, t)
}
