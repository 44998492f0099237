package rollout

import "testing"

// TestAttentionOrderRanksEveryState: a state added to HostStates and
// forgotten in AttentionOrder would sort before every other in reports.
func TestAttentionOrderRanksEveryState(t *testing.T) {
	if len(AttentionOrder) != len(HostStates) {
		t.Errorf("AttentionOrder has %d states, HostStates %d", len(AttentionOrder), len(HostStates))
	}
	for _, s := range HostStates {
		if AttentionRank(s) < 0 {
			t.Errorf("state %s has no rank", s)
		}
	}
}
