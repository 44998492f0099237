package fleetsim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/patchway/patchway/rollout"
)

// Scenario is a simulated fleet: its hosts (with state and faults), sites
// and the patch catalogue that says what each KB installs.
type Scenario struct {
	Name  string
	Sites []rollout.Site
	Hosts []HostSpec
	// Catalog maps an upper-case KB to what installing it does.
	Catalog map[string]CatalogEntry
	// Credential is the credential-set name the inventory gives hosts.
	Credential string
}

// HostSpec is one simulated host before it starts.
type HostSpec struct {
	Host rollout.Host
	// Installed KBs are present at start, with their files in effect.
	Installed []string
	// Files are extra file versions in effect at start (path -> version).
	Files  map[string]string
	Faults []FaultSpec
	// BootedAgo is how long ago the host last booted (default 3 days).
	BootedAgo time.Duration
	// InstalledOn are KBs present at start with their install date.
	InstalledOn map[string]time.Time
	// Hidden are installed KBs Get-HotFix does not list (a non-CBS
	// installer put them there): their files are in effect, no hotfix
	// entry or servicing package shows.
	Hidden []string
	// Reboot flags set before the run (an earlier update's), each on its
	// own; a boot clears them.
	CBSRebootPending, WURebootRequired, PendingRename bool
}

// CatalogEntry is what one KB installs, per OS (lower-case OS name).
type CatalogEntry struct {
	KB       string
	Reboot   bool
	Packages map[string]CatalogPackage
	Files    map[string][]rollout.FileEvidence
	// Requires are the KBs that must be installed first, per OS (a
	// servicing-stack update): without them the installer refuses with
	// 0x800F0823, as Windows does.
	Requires map[string][]string
}

// CatalogPackage is the package a distribution point serves for one OS.
type CatalogPackage struct {
	SHA256 string
	Size   int64
}

// CatalogFromPatch builds a catalogue entry from a rollout's patch: the
// packages it names (with their sha256) and, per OS, the evidence files at
// exactly their minimum versions. The simulator and the rollout then
// agree by construction; faults are what make them disagree.
func CatalogFromPatch(p rollout.Patch) CatalogEntry {
	e := CatalogEntry{KB: strings.ToUpper(p.KB), Reboot: p.Reboot != rollout.RebootNever, Packages: map[string]CatalogPackage{},
		Files: map[string][]rollout.FileEvidence{}, Requires: map[string][]string{}}
	for _, pk := range p.Packages {
		os := strings.ToLower(pk.OS)
		for _, pr := range pk.Prerequisites {
			e.Requires[os] = append(e.Requires[os], strings.ToUpper(pr.KB))
		}
		e.Packages[os] = CatalogPackage{SHA256: strings.ToLower(pk.SHA256), Size: 1 << 20}
		e.Files[os] = p.FilesDeclaredFor(pk.OS)
		// The OS build a cumulative update brings moves like a file:
		// staged at install, in effect at the next boot.
		if b := p.BuildsDeclaredFor(pk.OS); len(b) > 0 {
			e.Files[os] = append(e.Files[os], rollout.FileEvidence{Path: osBuildPath, MinVersion: shortBuild(b[0].MinBuild)})
		}
	}
	return e
}

// CatalogOfPatch is the catalogue entries of a rollout's patch: its KB,
// and each prerequisite as an update of its own (no reboot, no files).
func CatalogOfPatch(p rollout.Patch) map[string]CatalogEntry {
	out := map[string]CatalogEntry{}
	e := CatalogFromPatch(p)
	out[e.KB] = e
	for _, pk := range p.Packages {
		os := strings.ToLower(pk.OS)
		for _, pr := range pk.Prerequisites {
			kb := strings.ToUpper(pr.KB)
			pe, ok := out[kb]
			if !ok {
				pe = CatalogEntry{KB: kb, Packages: map[string]CatalogPackage{}, Files: map[string][]rollout.FileEvidence{}}
			}
			pe.Packages[os] = CatalogPackage{SHA256: strings.ToLower(pr.SHA256), Size: 1 << 20}
			out[kb] = pe
		}
	}
	return out
}

// osBuildPath is where a host keeps its OS build (CurrentBuild.UBR) among
// its file versions, so that installs, reboots, reverts and uninstalls
// move it as they move files.
const osBuildPath = "(os build)"

// shortBuild is build.ubr of "10.0.20348.707" or "20348.707".
func shortBuild(b string) string {
	parts := strings.Split(b, ".")
	return strings.Join(parts[max(0, len(parts)-2):], ".")
}

// scenarioFile is the HCL shape of a scenario:
//
//	fleet "demo" {
//	  inventory    = "inventory.hcl"          # clone these hosts (optional)
//	  patches_from = ["ms08-067.hcl"]         # catalogue from rollouts
//	  credential   = "fleet"
//	  site "paris" { region = "emea" time_zone = "Europe/Paris" }
//	  population "ws-paris" {
//	    site = "paris"  tier = "production"  role = "workstation"  count = 40
//	    os = ["windows-xp-sp3", "windows-vista-sp1"]   # mixed round-robin
//	    installed = ["KB823980"]
//	  }
//	  fault "registry_only" { count = 2 }        # or share = 0.02
//	  fault "install_fails" { count = 1  exit_code = 1603  selector = "tier:production" }
//	}
type scenarioFile struct {
	Fleet fleetBlock `hcl:"fleet,block"`
}

type fleetBlock struct {
	Name        string            `hcl:"name,label"`
	Inventory   string            `hcl:"inventory,optional"`
	PatchesFrom []string          `hcl:"patches_from,optional"`
	Credential  string            `hcl:"credential,optional"`
	Sites       []siteBlock       `hcl:"site,block"`
	Populations []populationBlock `hcl:"population,block"`
	Faults      []faultBlock      `hcl:"fault,block"`
}

type siteBlock struct {
	Name              string `hcl:"name,label"`
	Region            string `hcl:"region"`
	TimeZone          string `hcl:"time_zone"`
	DistributionPoint string `hcl:"distribution_point,optional"`
}

type populationBlock struct {
	Name      string   `hcl:"name,label"`
	Site      string   `hcl:"site"`
	Tier      string   `hcl:"tier"`
	Role      string   `hcl:"role"`
	Count     int      `hcl:"count"`
	OS        []string `hcl:"os"`
	Installed []string `hcl:"installed,optional"`
	// InstalledOn installs KBs with their install date (YYYY-MM-DD).
	InstalledOn map[string]string `hcl:"installed_on,optional"`
	// HiddenFromGetHotfix: installed KBs Get-HotFix does not list (a
	// non-CBS installer); their files are in effect.
	HiddenFromGetHotfix []string          `hcl:"hidden_from_get_hotfix,optional"`
	Files               map[string]string `hcl:"files,optional"`
	Build               string            `hcl:"build,optional"`
	BootedAgo           string            `hcl:"booted_ago,optional"`
	CBSRebootPending    bool              `hcl:"cbs_reboot_pending,optional"`
	WURebootRequired    bool              `hcl:"wu_reboot_required,optional"`
	PendingRename       bool              `hcl:"pending_rename,optional"`
	Tags                []string          `hcl:"tags,optional"`
	Cluster             string            `hcl:"cluster,optional"`
	Owner               string            `hcl:"owner,optional"`
	Purpose             string            `hcl:"purpose,optional"`
}

type faultBlock struct {
	Kind     string   `hcl:"kind,label"`
	Count    int      `hcl:"count,optional"`
	Share    float64  `hcl:"share,optional"`
	Selector string   `hcl:"selector,optional"`
	ExitCode int64    `hcl:"exit_code,optional"`
	Rate     float64  `hcl:"rate,optional"`
	Delay    string   `hcl:"delay,optional"`
	Hosts    []string `hcl:"hosts,optional"`
	// AnswersAs: the computer name impostor and replaced_on_boot answer as.
	AnswersAs string `hcl:"answers_as,optional"`
	DefRange  hcl.Range
}

// LoadScenario reads a scenario file; fault placement is decided at Start
// from the seed, so one file gives the same fleet for the same seed.
func LoadScenario(path string) (*Scenario, hcl.Diagnostics) {
	src, diags := rollout.ReadInput(path, "scenario")
	if diags.HasErrors() {
		return nil, diags
	}
	if diags := rollout.CheckNesting(path, src); diags.HasErrors() {
		return nil, diags
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var sf scenarioFile
	if d := gohcl.DecodeBody(f.Body, nil, &sf); d.HasErrors() {
		return nil, append(diags, d...)
	}
	// Keep each fault block's range for messages.
	if body, ok := f.Body.(*hclsyntax.Body); ok {
		for _, b := range body.Blocks {
			i := 0
			for _, fb := range b.Body.Blocks {
				if fb.Type == "fault" && i < len(sf.Fleet.Faults) {
					sf.Fleet.Faults[i].DefRange = fb.DefRange()
					i++
				}
			}
		}
	}
	fb := sf.Fleet
	sc := &Scenario{Name: fb.Name, Credential: fb.Credential, Catalog: map[string]CatalogEntry{}}
	if sc.Credential == "" {
		sc.Credential = "fleet"
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, p := range fb.PatchesFrom {
		r, d := rollout.DecodeRollout(rel(p), mustRead(rel(p), &diags))
		if r == nil || d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		for kb, e := range CatalogOfPatch(r.Patch) {
			if _, ok := sc.Catalog[kb]; !ok || kb == strings.ToUpper(r.Patch.KB) {
				sc.Catalog[kb] = e
			}
		}
	}
	for _, s := range fb.Sites {
		sc.Sites = append(sc.Sites, rollout.Site{Name: s.Name, Region: s.Region, TimeZone: s.TimeZone, DistributionPoint: s.DistributionPoint})
	}
	if fb.Inventory != "" {
		inv, d := rollout.LoadInventory(rel(fb.Inventory))
		if d.HasErrors() {
			return nil, append(diags, d...)
		}
		sc.Sites = append(sc.Sites, inv.Sites...)
		for _, h := range inv.Hosts {
			sc.Hosts = append(sc.Hosts, HostSpec{Host: h})
		}
	}
	regions := map[string]string{}
	for _, s := range sc.Sites {
		regions[s.Name] = s.Region
	}
	for _, p := range fb.Populations {
		if len(p.OS) == 0 || p.Count < 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid population", Detail: fmt.Sprintf("population %q needs os = [...] and a count >= 0", p.Name)})
			continue
		}
		if _, ok := regions[p.Site]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown site", Detail: fmt.Sprintf("population %q is at site %q, which no site block (or the inventory) declares", p.Name, p.Site)})
			continue
		}
		if !slices.Contains([]rollout.Tier{rollout.TierLab, rollout.TierProdlike, rollout.TierProduction}, rollout.Tier(p.Tier)) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid tier", Detail: fmt.Sprintf("population %q has tier %q; use lab, prodlike or production", p.Name, p.Tier)})
			continue
		}
		facts, d := p.facts()
		if d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		for i := range p.Count {
			os := p.OS[i%len(p.OS)]
			sc.Hosts = append(sc.Hosts, HostSpec{
				Host: rollout.Host{
					Name: fmt.Sprintf("%s-%04d", strings.ToUpper(p.Name), i+1), OS: os, Build: buildOf(os),
					Site: p.Site, Region: regions[p.Site], Tier: rollout.Tier(p.Tier), Role: p.Role,
					Cluster: p.Cluster, Owner: p.Owner, Purpose: p.Purpose, Tags: p.Tags,
				},
				Installed: p.Installed, InstalledOn: facts.InstalledOn, Hidden: p.HiddenFromGetHotfix, Files: p.Files,
				BootedAgo: facts.BootedAgo, CBSRebootPending: p.CBSRebootPending, WURebootRequired: p.WURebootRequired,
				PendingRename: p.PendingRename,
			})
			if p.Build != "" {
				sc.Hosts[len(sc.Hosts)-1].Host.Build = p.Build
			}
		}
	}
	seen := map[string]bool{}
	for _, h := range sc.Hosts {
		key := strings.ToLower(h.Host.Name)
		if seen[key] {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate host", Detail: fmt.Sprintf("host %q appears twice (inventory and a population, or two populations of the same name)", h.Host.Name)})
		}
		seen[key] = true
	}
	for _, f := range fb.Faults {
		diags = append(diags, placeFault(sc, f)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return sc, diags
}

// facts parses a population's dates and durations.
func (p populationBlock) facts() (HostSpec, hcl.Diagnostics) {
	var spec HostSpec
	var diags hcl.Diagnostics
	if p.BootedAgo != "" {
		d, err := time.ParseDuration(p.BootedAgo)
		if err != nil || d < 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid booted_ago",
				Detail: fmt.Sprintf("population %q: booted_ago = %q is not a duration like \"72h\" or \"40m\"", p.Name, p.BootedAgo)})
		}
		spec.BootedAgo = d
	}
	for _, kb := range sortedKeys(p.InstalledOn) {
		t, err := time.Parse(time.DateOnly, p.InstalledOn[kb])
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid install date",
				Detail: fmt.Sprintf("population %q: installed_on %s = %q is not a date like \"2026-11-10\"", p.Name, kb, p.InstalledOn[kb])})
			continue
		}
		if spec.InstalledOn == nil {
			spec.InstalledOn = map[string]time.Time{}
		}
		spec.InstalledOn[strings.ToUpper(kb)] = t
	}
	return spec, diags
}

func mustRead(path string, diags *hcl.Diagnostics) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read rollout for the catalogue", Detail: err.Error() + "."})
	}
	return b
}

// placeFault puts a fault on the named hosts, or on Count hosts (or a
// Share of them) chosen among those the selector matches. The choice is
// made with a generator seeded by the fault kind, so it is stable across
// runs; Start's seed then drives flaky connection drops.
func placeFault(sc *Scenario, f faultBlock) hcl.Diagnostics {
	kind := Fault(f.Kind)
	rng := f.DefRange
	if !slices.Contains(Faults, kind) {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown fault", Detail: fmt.Sprintf("fault %q is not one of %v", f.Kind, Faults), Subject: &rng}}
	}
	spec := FaultSpec{Kind: kind, ExitCode: f.ExitCode, Rate: f.Rate, AnswersAs: f.AnswersAs}
	if f.Delay != "" {
		d, err := time.ParseDuration(f.Delay)
		if err != nil {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid delay", Detail: err.Error(), Subject: &rng}}
		}
		spec.Delay = d
	}
	var candidates []int
	if len(f.Hosts) > 0 {
		for _, name := range f.Hosts {
			i := slices.IndexFunc(sc.Hosts, func(h HostSpec) bool { return strings.EqualFold(h.Host.Name, name) })
			if i < 0 {
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown host", Detail: fmt.Sprintf("fault %q names host %q, which is not in the fleet", f.Kind, name), Subject: &rng}}
			}
			sc.Hosts[i].Faults = append(sc.Hosts[i].Faults, spec)
		}
		return nil
	}
	sel := "all"
	if f.Selector != "" {
		sel = f.Selector
	}
	s, err := rollout.ParseSelector(sel)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid selector", Detail: err.Error(), Subject: &rng}}
	}
	for i, h := range sc.Hosts {
		if s.Match(h.Host) && len(h.Faults) == 0 {
			candidates = append(candidates, i)
		}
	}
	if f.Count == 0 && f.Share == 0 {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Fault on no host", Detail: fmt.Sprintf("fault %q needs hosts = [...], count or share", f.Kind), Subject: &rng}}
	}
	if f.Share < 0 || f.Share > 1 || f.Count < 0 || (f.Share > 0 && f.Count > 0) {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid fault share", Detail: fmt.Sprintf("fault %q takes either count (a number of hosts) or share (0 to 1), not %d and %g", f.Kind, f.Count, f.Share), Subject: &rng}}
	}
	n := f.Count
	if f.Share > 0 {
		n = int(f.Share*float64(len(candidates)) + 0.5)
	}
	if n > len(candidates) {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Not enough hosts for the fault", Detail: fmt.Sprintf("fault %q asks for %d hosts but only %d hosts without another fault match %q", f.Kind, n, len(candidates), sel), Subject: &rng}}
	}
	seed := uint64(0)
	for _, c := range f.Kind + sel {
		seed = seed*31 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	r.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	for _, i := range candidates[:min(n, len(candidates))] {
		sc.Hosts[i].Faults = append(sc.Hosts[i].Faults, spec)
	}
	return nil
}

func buildOf(os string) string {
	switch {
	case strings.HasPrefix(os, "windows-xp"):
		return "2600"
	case strings.HasPrefix(os, "windows-server-2003"):
		return "3790"
	case strings.HasPrefix(os, "windows-vista"), strings.HasPrefix(os, "windows-server-2008"):
		return "6001"
	case strings.HasPrefix(os, "windows-2000"):
		return "2195"
	case strings.HasPrefix(os, "windows-server-2019"):
		return "17763"
	case strings.HasPrefix(os, "windows-server-2022"):
		return "20348"
	case strings.HasPrefix(os, "windows-server-2025"), strings.HasPrefix(os, "windows-11-24h2"):
		return "26100"
	case strings.HasPrefix(os, "windows-11-23h2"):
		return "22631"
	case strings.HasPrefix(os, "windows-11-22h2"):
		return "22621"
	case strings.HasPrefix(os, "windows-10-22h2"):
		return "19045"
	}
	return ""
}

// olderVersion is a version just below v: the file a host has before the
// patch ("5.1.2600.5694" -> "5.1.2600.5512").
func olderVersion(v string) string {
	parts := strings.Split(v, ".")
	last, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return v
	}
	parts[len(parts)-1] = strconv.Itoa(max(0, last-182))
	return strings.Join(parts, ".")
}

// compareVersions orders dotted file versions numerically, part by part
// ("5.1.2600.10000" is above "5.1.2600.5694"); a missing part counts as
// 0, and parts that are not numbers compare as text.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		x, y := "0", "0"
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		nx, errX := strconv.ParseUint(x, 10, 64)
		ny, errY := strconv.ParseUint(y, 10, 64)
		if errX != nil || errY != nil {
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(nx, ny); c != 0 {
			return c
		}
	}
	return 0
}
