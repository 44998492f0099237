// Package scan is Patchway's compliance scan: every host of an inventory
// re-verified against patches apart from any rollout, once or on a
// Temporal Schedule, with the drift since the previous scan of the same
// scan id and the regressions notified.
//
// It holds the scan's workflows (ScanWorkflow and its ScanBatchWorkflow
// children), their input and result, the pure drift logic (drift.go), the
// client side that starts, schedules and reads scans, and the lookup of
// patches and channels in rollout definition files.
//
// Its place: above contract, rollout and workflows (whose task queue,
// search attributes and shared activity options it uses), below
// cmd/patchway. workflows never imports scan, and scan imports no OPA and
// no WinRM code: the compliance policy and the hosts are reached through
// the VerifyPatch activity only.
package scan
