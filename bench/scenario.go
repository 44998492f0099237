package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// benchSite is one site of the generated fleet; two per region, so each
// regional wave spans two sites. Hosts are named after the site's short
// code (PAR-WS-0001): a batch child's PatchwayHosts search attribute
// holds its 100 host names, and the server refuses a value over 2,048
// bytes, which names like SAOPAULO-SRV-0467 exceed (see README.md).
type benchSite struct{ name, code, region, zone string }

var benchSites = []benchSite{
	{"paris", "par", "emea", "Europe/Paris"}, {"london", "lon", "emea", "Europe/London"},
	{"newyork", "nyc", "na", "America/New_York"}, {"chicago", "chi", "na", "America/Chicago"},
	{"saopaulo", "sao", "latam", "America/Sao_Paulo"}, {"mexico", "mex", "latam", "America/Mexico_City"},
	{"tokyo", "tyo", "apac", "Asia/Tokyo"}, {"singapore", "sin", "apac", "Asia/Singapore"},
	{"sydney", "syd", "oceania", "Australia/Sydney"}, {"auckland", "akl", "oceania", "Pacific/Auckland"},
}

// benchRegions are the five regional waves, in rollout order.
var benchRegions = []string{"emea", "na", "latam", "apac", "oceania"}

// benchFiler files the rollout; benchApprover approves its gates. The
// default gates policy has both in security-team and forbids the filer
// approving her own rollout (four-eyes).
const (
	benchFiler    = "alice"
	benchApprover = "bob"
)

// benchGates are the gates the generated rollout waits at: the two
// pre-production stages (the waves have no approval group).
var benchGates = []string{"lab", "prodlike"}

// split is how many hosts of each tier a fleet of n has: a small lab and
// production-like platform (as in examples/fleet-10k.hcl: 20 and 40 at
// 10,000) and the rest in production.
func split(n int) (lab, prodlike, production int) {
	lab = min(max(n/500, 1), 20)
	prodlike = min(max(n/250, 1), 40)
	return lab, prodlike, n - lab - prodlike
}

// writeScenario writes, into dir, the rollout (rollout.hcl: the
// MS08-067 patch of examples/ms08-067.hcl with zero soaks, a lab and a
// production-like stage and five regional waves of max parallel p, no
// windows, no channels), the fleet scenario (fleet.hcl: n clean hosts, no
// faults) and the policy overrides (policy/bench.json: no minimum soak,
// and per-site reboot and download limits of p so that the waves run at
// max parallel p, as the baseline does).
func writeScenario(dir, examples string, n, p int) (rolloutPath, scenarioPath, policyDir string, err error) {
	if n < 7 {
		return "", "", "", fmt.Errorf("a fleet needs at least 7 hosts (lab, production-like, five regions), not %d", n)
	}
	rolloutPath = filepath.Join(dir, "rollout.hcl")
	src, err := rolloutHCL(filepath.Join(examples, "ms08-067.hcl"), fmt.Sprintf("bench-%d", n), p)
	if err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(rolloutPath, src, 0o644); err != nil {
		return "", "", "", err
	}
	scenarioPath = filepath.Join(dir, "fleet.hcl")
	if err := os.WriteFile(scenarioPath, fleetHCL(n), 0o644); err != nil {
		return "", "", "", err
	}
	policyDir = filepath.Join(dir, "policy")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		return "", "", "", err
	}
	overrides, _ := json.MarshalIndent(map[string]any{
		"plan":   map[string]any{"min_soak_hours": map[string]any{"critical": map[string]any{"lab": 0, "prodlike": 0}}},
		"reboot": map[string]any{"max_concurrent_per_site": p},
		// The benchmark measures orchestration, not sign-in: its filer and
		// approver are typed names, recorded unverified.
		"oidc": map[string]any{"insecure_dev_identity": true},
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(policyDir, "bench.json"), overrides, 0o644); err != nil {
		return "", "", "", err
	}
	return rolloutPath, scenarioPath, policyDir, nil
}

// rolloutHCL keeps the patch and risk blocks of the example rollout and
// replaces its path with the benchmark's.
func rolloutHCL(example, id string, p int) ([]byte, error) {
	src, err := os.ReadFile(example)
	if err != nil {
		return nil, fmt.Errorf("read the example rollout: %w", err)
	}
	f, diags := hclwrite.ParseConfig(src, example, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %w", example, diags)
	}
	var patch, risk *hclwrite.Block
	for _, b := range f.Body().Blocks() {
		if b.Type() != "rollout" {
			continue
		}
		for _, inner := range b.Body().Blocks() {
			switch inner.Type() {
			case "patch":
				patch = inner
			case "risk":
				risk = inner
			}
		}
	}
	if patch == nil || risk == nil {
		return nil, fmt.Errorf("%s: no rollout with a patch and a risk block", example)
	}
	out := hclwrite.NewEmptyFile()
	ro := out.Body().AppendNewBlock("rollout", []string{id}).Body()
	ro.SetAttributeValue("filed_by", cty.StringVal(benchFiler))
	ro.AppendBlock(patch)
	ro.AppendBlock(risk)
	for _, st := range []struct{ name, hosts string }{{"lab", "tier:lab"}, {"prodlike", "tier:prodlike"}} {
		b := ro.AppendNewBlock("stage", []string{st.name}).Body()
		b.SetAttributeValue("hosts", cty.StringVal(st.hosts))
		b.SetAttributeValue("soak", cty.StringVal("0s"))
		b.SetAttributeValue("approval_group", cty.StringVal("security-team"))
	}
	for _, region := range benchRegions {
		b := ro.AppendNewBlock("wave", []string{region}).Body()
		b.SetAttributeValue("hosts", cty.StringVal("tier:production and region:"+region))
		b.SetAttributeValue("max_parallel", cty.NumberIntVal(int64(p)))
		b.SetAttributeValue("max_failures", cty.StringVal("5%"))
		b.SetAttributeValue("download_concurrency", cty.NumberIntVal(int64(p)))
	}
	header := "# Generated by the benchmark (bench/): the MS08-067 patch with zero soaks,\n" +
		"# two gated stages and five regional waves, no window, no channel.\n"
	return append([]byte(header), out.Bytes()...), nil
}

// fleetHCL is a scenario of n clean hosts (no fault) over the ten sites:
// the lab in paris, the production-like platform in newyork, production
// spread evenly, half workstations and half file servers.
func fleetHCL(n int) []byte {
	lab, prodlike, production := split(n)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by the benchmark (bench/): %d hosts, no faults.\n", n)
	fmt.Fprintf(&b, "fleet \"bench-%d\" {\n  patches_from = [\"rollout.hcl\"]\n  credential   = \"fleet\"\n", n)
	for _, s := range benchSites {
		fmt.Fprintf(&b, "  site %q {\n    region             = %q\n    time_zone          = %q\n    distribution_point = %q\n  }\n",
			s.name, s.region, s.zone, `\\dp-`+s.name+`\patches`)
	}
	pop := func(name, site, tier, role string, count int, oses string) {
		if count <= 0 {
			return
		}
		fmt.Fprintf(&b, "  population %q {\n    site  = %q\n    tier  = %q\n    role  = %q\n    count = %d\n    os    = [%s]\n    owner = \"it-%s@corp.example\"\n  }\n",
			name, site, tier, role, count, oses, site)
	}
	const ws = `"windows-xp-sp3", "windows-vista-sp1"`
	const srv = `"windows-server-2003-sp2", "windows-server-2008"`
	pop("lab", "paris", "lab", "workstation", lab, ws+", "+srv)
	pop("prodlike", "newyork", "prodlike", "file", prodlike, srv)
	// Production hosts spread evenly over the regions (each wave gets its
	// share, whatever n), then over each region's two sites.
	for r, region := range benchRegions {
		inRegion := production / len(benchRegions)
		if r < production%len(benchRegions) {
			inRegion++
		}
		sites := benchSites[2*r : 2*r+2]
		for i, s := range sites {
			if s.region != region {
				panic("benchSites must list two sites per region, in benchRegions order")
			}
			count := inRegion / 2
			if i < inRegion%2 {
				count++
			}
			pop(s.code+"-ws", s.name, "production", "workstation", count-count/2, ws)
			pop(s.code+"-srv", s.name, "production", "file", count/2, srv)
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}
