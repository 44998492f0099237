package policies

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
		ok   bool
	}{
		{"later private part is greater", "6.1.7601.24000", "6.1.7601.9999", 1, true},
		{"earlier build is smaller", "5.2.3790.3229", "5.2.3790.4392", -1, true},
		{"equal versions", "10.0.17763.2114", "10.0.17763.2114", 0, true},
		{"missing parts count as zero", "6.1", "6.1.0.0", 0, true},
		{"extra non-zero part is greater", "6.1.0.1", "6.1", 1, true},
		{"numeric not lexical", "5.10", "5.9", 1, true},
		{"non-numeric part is invalid", "6.1.beta", "6.1", 0, false},
		{"empty is invalid", "", "6.1", 0, false},
		{"empty part is invalid", "6..1", "6.1", 0, false},
		{"signed part is invalid", "+6.1", "6.1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := compareVersions(tt.a, tt.b)
			if got != tt.want || ok != tt.ok {
				t.Errorf("compareVersions(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
			}
		})
	}
}
