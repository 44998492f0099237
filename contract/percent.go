package contract

import (
	"fmt"
	"math"
)

// Percent is part of whole in percent, unrounded: the one compliance
// formula of Patchway. It is 0 when whole is not positive, not 100:
// nothing was proven patched. Callers pass the compliant hosts and the
// applicable ones (all hosts less not_applicable).
//
// The value stays exact, so a report's compliance_percent and
// --fail-under compare the true share; it is rounded only when shown,
// by RoundPercent.
func Percent(part, whole int) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// RoundPercent is p rounded down to one decimal, the one rounding rule
// for every percent Patchway shows (report, completion notice, record,
// scan): 71.05 shows 71.0 and 94.96 shows 94.9, never 95.0, so a rollout
// with one unpatched host in 2,000 never reads 100.0 %. The 1e-9 keeps a
// share that is a whole number of tenths, computed in floating point
// (100*29.0/100), from dropping a tenth. Percents are never negative, so
// down is also toward zero.
func RoundPercent(p float64) float64 {
	return math.Floor(p*10+1e-9) / 10
}

// PercentText is p as shown, rounded by RoundPercent: "71.0%".
func PercentText(p float64) string {
	return fmt.Sprintf("%.1f%%", RoundPercent(p))
}
