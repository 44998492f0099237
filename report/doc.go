// Package report builds a rollout's compliance report and renders it.
//
// Build turns what a rollout knows (inventory, verdicts, exceptions, in
// a contract.ReportInput) into a contract.Report: hosts per state,
// compliance, breakdowns by region, site, tier and role, and the hosts
// nobody answers for. What an exception makes of a host is the exceptions
// policy's decision, asked through ExceptionPolicy, so this package
// imports neither OPA nor Temporal: the worker's BuildReport activity
// (activities.ReportActivities) passes the policies engine, and the CLI
// builds the same provisional report from the rollout's report query.
//
// Render writes a report in one of the formats, one file each: table.go,
// json.go, csv.go, markdown.go and html.go (its page in html.tmpl). The
// payload types stay in contract, which workflows share; percentages are
// computed and rounded by contract.Percent and contract.PercentText, the
// rule the completion notice uses too.
package report
