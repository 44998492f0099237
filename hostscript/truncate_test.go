package hostscript

import "testing"

func TestTruncateCutsAtACharacter(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"Get-HotFix failed", 10, "Get-HotFix..."},
		// "é" is two bytes: a cut inside it keeps the whole character out.
		{"Accès refusé", 4, "Acc..."},
		{"Accès refusé", 5, "Accè..."},
		{"anything", 0, "..."},
	} {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
