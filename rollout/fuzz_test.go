package rollout

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeRollout feeds arbitrary bytes to the decoders: they must never
// panic, and whatever they decode without errors must plan.
func FuzzDecodeRollout(f *testing.F) {
	for _, pattern := range []string{"../examples/*.hcl", "testdata/*.hcl", "testdata/invalid/*.hcl"} {
		files, _ := filepath.Glob(pattern)
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	// A file nested far past MaxNesting, which overflowed HCL's parser.
	f.Add(deepRollout("[", "]"))
	f.Add(deepRollout(`"${`, `}"`))
	inv, diags := LoadInventory(filepath.Join("testdata", "inventory.hcl"))
	if diags.HasErrors() {
		f.Fatal(diags)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		r, diags := DecodeRollout("fuzz.hcl", src)
		if r != nil && !diags.HasErrors() {
			if cd := CheckRollout(r, inv, nil); !cd.HasErrors() {
				if _, err := BuildPlan(r, inv); err != nil {
					t.Errorf("a rollout without errors does not plan: %v", err)
				}
			}
		}
		_, _ = DecodeInventory("fuzz.hcl", src)
		_, _ = DecodeInventoryCSV("fuzz.csv", src)
	})
}
