package rollout

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden plan files under testdata/golden")

// TestPlanJSONMatchesGolden checks the plan of each example (as `patchway
// plan --json` prints it) against testdata/golden; run with -update after
// an intended change and review the diff.
func TestPlanJSONMatchesGolden(t *testing.T) {
	cases := map[string]string{
		"ms08-067":       filepath.Join("..", "examples", "ms08-067.hcl"),
		"ms03-026":       filepath.Join("..", "examples", "ms03-026.hcl"),
		"moderate-ipsec": filepath.Join("..", "examples", "moderate-ipsec.hcl"),
		"valid":          filepath.Join("testdata", "valid.hcl"),
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			r, inv, diags := Load(path, LoadOptions{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			plan, err := BuildPlan(r, inv)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			enc := json.NewEncoder(&got)
			enc.SetIndent("", "  ")
			if err := enc.Encode(plan); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".plan.json")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./rollout -run TestPlanJSONMatchesGolden -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("plan of %s differs from %s:\n%s", path, golden, firstDiff(string(want), got.String()))
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return "line " + itoa(i+1) + ":\n- " + w[i] + "\n+ " + g[i]
		}
	}
	return "lengths differ"
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPlanOrdersWavesByAfterThenFileOrder(t *testing.T) {
	waves := []Wave{{Name: "a", After: []string{"c"}}, {Name: "b"}, {Name: "c"}, {Name: "d", After: []string{"b", "a"}}}
	order, err := WaveOrder(waves)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range order {
		names = append(names, waves[i].Name)
	}
	if got := strings.Join(names, ","); got != "c,a,b,d" {
		t.Errorf("order %s, want c,a,b,d", got)
	}
	if _, err := WaveOrder([]Wave{{Name: "a", After: []string{"b"}}, {Name: "b", After: []string{"a"}}}); err == nil {
		t.Error("a cycle must fail")
	}
}

func TestPlanAssignsEachHostToItsFirstStepAndRendersLocalWindows(t *testing.T) {
	r, inv, diags := Load(filepath.Join("testdata", "valid.hcl"), LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// A wave that also matches the lab host: the lab stage keeps it.
	r.Waves[0].Hosts = "region:emea"
	plan, err := BuildPlan(r, inv)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Steps[1].Hosts; strings.Join(got, ",") != "par-dc01,par-ws01" {
		t.Errorf("emea wave hosts %v; the lab host belongs to the lab stage", got)
	}
	// emea's window is written in Paris time; Tokyo is not in it, Paris is.
	win := plan.Steps[1].Windows
	if len(win) != 1 || win[0].Site != "paris" || win[0].Hours != "22:00-06:00" || strings.Join(win[0].Days, ",") != "sat,sun" {
		t.Errorf("emea windows %+v", win)
	}
	// A window in Paris time seen from Tokyo, in a week with no daylight
	// saving change (July 2008: UTC+2 vs UTC+9).
	r.Waves[1].Window.TimeZone = "Europe/Paris"
	r.Patch.Published = r.Patch.Published.AddDate(0, -3, -22)
	plan, err = BuildPlan(r, inv)
	if err != nil {
		t.Fatal(err)
	}
	win = plan.Steps[2].Windows
	if len(win) != 1 || win[0].Site != "tokyo" || win[0].Hours != "03:00-06:00" || strings.Join(win[0].Days, ",") != "tue,wed,thu,fri,sat" {
		t.Errorf("apac windows in Tokyo time %+v; want tue-sat 03:00-06:00", win)
	}
}
