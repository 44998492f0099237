package rollout

import "testing"

func TestDetectKind(t *testing.T) {
	tests := []struct {
		name, path, src string
		want            FileKind
		wantErr         bool
	}{
		{"a rollout", "r.hcl", "rollout \"r1\" {\n}\n", KindRollout, false},
		{"a rollout beside hosts", "r.hcl", "host \"a\" {\n}\nrollout \"r1\" {\n}\n", KindRollout, false},
		{"hosts", "inv.hcl", "host \"a\" {\n}\n", KindInventory, false},
		{"sites", "inv.hcl", "site \"par\" {\n}\n", KindInventory, false},
		{"a CSV file, whatever it holds", "inv.CSV", "name,address\n", KindInventory, false},
		{"a fleet scenario", "fleet.hcl", "fleet \"demo\" {\n}\n", KindUnknown, false},
		{"a draft template", "t.hcl", "stage \"lab\" {\n}\nwave \"all\" {\n}\n", KindTemplate, false},
		{"a file that does not parse", "bad.hcl", "rollout {", KindUnknown, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := DetectKind(tt.path, []byte(tt.src))
			if got != tt.want || diags.HasErrors() != tt.wantErr {
				t.Errorf("DetectKind(%s) = %q, errors %t; want %q, errors %t", tt.path, got, diags.HasErrors(), tt.want, tt.wantErr)
			}
		})
	}
}
