package contract

import "testing"

func TestPercentTextNeverRoundsUp(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{"94.96 shows 94.9, not 95.0", 94.96, "94.9%"},
		{"a whole number computed in floating point stays whole", 100 * 29.0 / 100, "29.0%"},
		{"two thirds", 200.0 / 3, "66.6%"},
		{"all compliant", 100, "100.0%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PercentText(tt.in); got != tt.want {
				t.Errorf("PercentText(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		name        string
		part, whole int
		want        float64
		text        string
	}{
		{"32 of 45 is 71.1", 32, 45, 3200.0 / 45, "71.1%"},
		{"27 of 38 rounds down to 71.0, not up to 71.1", 27, 38, 2700.0 / 38, "71.0%"},
		{"1999 of 2000 is not 100.0", 1999, 2000, 99.95, "99.9%"},
		{"two of three", 2, 3, 200.0 / 3, "66.6%"},
		{"all", 45, 45, 100, "100.0%"},
		{"nothing applicable is 0, not 100", 0, 0, 0, "0.0%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Percent(tt.part, tt.whole)
			if got != tt.want || PercentText(got) != tt.text {
				t.Errorf("Percent(%d, %d) = %v (%s), want %v (%s)", tt.part, tt.whole, got, PercentText(got), tt.want, tt.text)
			}
		})
	}
}
