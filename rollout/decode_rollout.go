package rollout

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// DefaultMaxParallel is a wave's max_parallel when the file leaves it out.
const DefaultMaxParallel = 10

var (
	kbPattern      = regexp.MustCompile(`^KB[0-9]{6,7}$`)
	cvePattern     = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	sha256Pattern  = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	versionPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+){1,3}$`)
)

// The shapes of the rollout language's blocks, in documentation order.
var (
	rolloutSpec = bodySpec{
		what:   "rollout block",
		attrs:  []string{"filed_by", "inventory"},
		blocks: map[string]int{"patch": 0, "risk": 0, "stage": 1, "wave": 1, "escalation": 0, "channel": 1, "emergency": 0},
	}
	patchSpec = bodySpec{
		what:   "patch block",
		attrs:  []string{"kb", "bulletin", "title", "cves", "severity", "published", "reboot", "supersedes"},
		blocks: map[string]int{"package": 1, "evidence": 0},
	}
	packageSpec  = bodySpec{what: "package block", attrs: []string{"source", "sha256", "type", "installer"}, blocks: map[string]int{"prerequisite": 1}}
	prereqSpec   = bodySpec{what: "prerequisite block", attrs: []string{"source", "sha256", "type", "installer"}}
	evidenceSpec = bodySpec{what: "evidence block", attrs: []string{"hotfix"}, blocks: map[string]int{"file": 0, "build": 0}}
	fileSpec     = bodySpec{what: "file block", attrs: []string{"path", "min_version", "sha256", "os"}}
	buildSpec    = bodySpec{what: "build block", attrs: []string{"min_build", "os"}}
	riskSpec     = bodySpec{what: "risk block", attrs: []string{"exploit_public", "exploited", "worm_in_the_wild", "exposure", "workaround", "scanners", "side_effects"}}
	stageSpec    = bodySpec{what: "stage block", attrs: []string{"hosts", "soak", "approval_group"}}
	waveSpec     = bodySpec{
		what:   "wave block",
		attrs:  []string{"hosts", "after", "max_parallel", "max_failures", "download_concurrency", "approval_group"},
		blocks: map[string]int{"window": 0},
	}
	windowSpec     = bodySpec{what: "window block", attrs: []string{"days", "hours", "time_zone"}}
	escalationSpec = bodySpec{what: "escalation block", attrs: []string{"at", "contacts", "channels"}}
	channelSpec    = bodySpec{what: "channel block", attrs: []string{"type"}}
	emergencySpec  = bodySpec{what: "emergency block", attrs: []string{"reason", "approved_by", "skip_stages"}}
)

// Allowed values of the enumerated attributes.
var (
	rebootValues   = []string{string(RebootRequired), string(RebootMay), string(RebootNever)}
	packageTypes   = []string{"msu", "msi", "cab", "exe"}
	msuInstallers  = []string{"wusa", "dism"}
	exposureValues = []string{"internet", "internal", "isolated"}
	channelTypes   = []string{"webhook", "slack", "email"}
)

// DecodeRollout decodes a rollout file. It returns every problem it finds
// (not only the first), each with its source range, and the rollout as far
// as it could be decoded (nil only when the file does not parse). Checks
// that need the inventory (selectors matching hosts) are made by Load.
func DecodeRollout(filename string, src []byte) (*Rollout, hcl.Diagnostics) {
	r, _, diags := DecodeRolloutRanges(filename, src)
	return r, diags
}

// DecodeRolloutRanges is DecodeRollout that also returns where each part of
// the rollout was written, for checks made later (policies) to point at.
func DecodeRolloutRanges(filename string, src []byte) (*Rollout, *Ranges, hcl.Diagnostics) {
	body, diags := parseFile(filename, src)
	if body == nil || diags.HasErrors() {
		return nil, nil, diags
	}
	d := &decoder{diags: diags, ranges: NewRanges()}
	r := d.rolloutFile(body)
	sortDiagnostics(d.diags)
	return r, d.ranges, d.diags
}

func (d *decoder) rolloutFile(body *hclsyntax.Body) *Rollout {
	_, blocks := d.content(body, bodySpec{what: "rollout file", blocks: map[string]int{"rollout": 1}})
	if len(blocks) == 0 {
		if len(body.Blocks) == 0 {
			d.errorf(body.SrcRange, "Missing rollout block", `A rollout file holds one block: rollout "<id>" { ... }.`)
		}
		return nil
	}
	for _, extra := range blocks[1:] {
		d.errorf(blockHeader(extra), "More than one rollout in a file",
			"This file already holds rollout %q (line %d); file each rollout on its own.", blocks[0].Labels[0], blocks[0].TypeRange.Start.Line)
	}
	return d.rollout(blocks[0])
}

func (d *decoder) rollout(block *hclsyntax.Block) *Rollout {
	r := &Rollout{ID: block.Labels[0]}
	d.ranges.Set("rollout", blockHeader(block))
	if err := checkRolloutID(r.ID); err != nil {
		d.errorf(block.LabelRanges[0], "Invalid rollout id", "%s. Name the rollout after its bulletin or KB, like \"ms08-067\".", capitalize(err.Error()))
	}
	attrs, blocks := d.content(block.Body, rolloutSpec)
	d.recordAttrs("rollout", attrs)
	r.FiledBy, _ = d.str(attrs, "filed_by")
	r.Inventory, _ = d.str(attrs, "inventory")

	single := map[string]*hclsyntax.Block{}
	stageNames := map[string]*hclsyntax.Block{}
	waveNames := map[string]*hclsyntax.Block{}
	channelNames := map[string]*hclsyntax.Block{}
	var waveBlocks []*hclsyntax.Block
	var escalations []*hclsyntax.Block
	for _, b := range blocks {
		switch b.Type {
		case "patch", "risk", "emergency":
			if first, dup := single[b.Type]; dup {
				d.errorf(b.TypeRange, fmt.Sprintf("Duplicate %s block", b.Type),
					"A rollout has one %s block; the first is at line %d.", b.Type, first.TypeRange.Start.Line)
				continue
			}
			single[b.Type] = b
			switch b.Type {
			case "patch":
				r.Patch = d.patch(b)
			case "risk":
				r.Risk = d.risk(b)
			case "emergency":
				r.Emergency = d.emergency(b)
			}
		case "stage":
			name := b.Labels[0]
			if d.duplicateStep(b, stageNames, waveNames) {
				continue
			}
			stageNames[name] = b
			r.Stages = append(r.Stages, d.stage(b))
		case "wave":
			name := b.Labels[0]
			if d.duplicateStep(b, stageNames, waveNames) {
				continue
			}
			waveNames[name] = b
			waveBlocks = append(waveBlocks, b)
			r.Waves = append(r.Waves, d.wave(b))
		case "escalation":
			d.ranges.Set(fmt.Sprintf("escalation[%d]", len(escalations)), b.TypeRange)
			escalations = append(escalations, b)
		case "channel":
			name := b.Labels[0]
			if first, dup := channelNames[name]; dup {
				d.errorf(b.LabelRanges[0], "Duplicate channel name",
					"A channel named %q is already declared at line %d.", name, first.TypeRange.Start.Line)
				continue
			}
			channelNames[name] = b
			r.Channels = append(r.Channels, d.channel(b))
		}
	}
	for i, b := range escalations {
		r.Escalation = append(r.Escalation, d.escalation(b, i, channelNames))
	}
	if _, ok := single["patch"]; !ok {
		d.errorf(blockHeader(block), "Missing patch block", "A rollout needs a patch { ... } block saying what to install and how to verify it.")
	}
	if len(r.Waves) == 0 && len(r.Stages) == 0 {
		d.errorf(blockHeader(block), "No stages or waves", "A rollout needs at least one stage or wave saying which hosts to patch.")
	}
	d.checkAfter(r, waveBlocks, stageNames)
	// Which stages skip_stages may name (a filed stage, or a required one
	// by name or alias) is the plan policy's decision, made
	// by patchway plan and at risk evaluation.
	return r
}

// duplicateStep reports a stage or wave whose name is already taken by a
// stage or wave: names identify steps in approvals and status, so they are
// unique across both.
func (d *decoder) duplicateStep(b *hclsyntax.Block, stages, waves map[string]*hclsyntax.Block) bool {
	name := b.Labels[0]
	first, kind := stages[name], "stage"
	if first == nil {
		first, kind = waves[name], "wave"
	}
	if first == nil {
		return false
	}
	d.errorf(b.LabelRanges[0], fmt.Sprintf("Duplicate %s name", b.Type),
		"A %s named %q is already declared at line %d; stage and wave names must be unique, since approvals and status name them.", kind, name, first.TypeRange.Start.Line)
	return true
}

// elemRange is the range of element i of a list attribute of block, or of
// the attribute as a whole.
func (d *decoder) elemRange(block *hclsyntax.Block, attr string, i int) hcl.Range {
	a, ok := block.Body.Attributes[attr]
	if !ok {
		return blockHeader(block)
	}
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && i < len(tup.Exprs) {
		return tup.Exprs[i].Range()
	}
	return a.Expr.Range()
}

func keys(m map[string]*hclsyntax.Block) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// onlySuggest is didYouMean for messages that already list the values.
func onlySuggest(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	if len(candidates) > 0 {
		return " Known: " + strings.Join(candidates, ", ") + "."
	}
	return ""
}

func (d *decoder) patch(b *hclsyntax.Block) Patch {
	var p Patch
	d.ranges.Set("patch", b.TypeRange)
	attrs, blocks := d.content(b.Body, patchSpec)
	d.recordAttrs("patch", attrs)
	d.required(attrs, b, "patch block", "kb", "severity", "published", "reboot")

	if kb, ok := d.str(attrs, "kb"); ok && kb != "" {
		if !kbPattern.MatchString(kb) {
			d.errorf(attrs["kb"].Expr.Range(), "Invalid KB number", "%q is not a Knowledge Base id; write it like \"KB958644\".", kb)
		}
		p.KB = kb
	}
	p.Bulletin, _ = d.str(attrs, "bulletin")
	p.Title, _ = d.str(attrs, "title")
	p.CVEs = d.strList(attrs, "cves")
	for i, c := range p.CVEs {
		if !cvePattern.MatchString(c) {
			d.errorf(d.elemRange(b, "cves", i), "Invalid CVE id", "%q is not a CVE id; write it like \"CVE-2008-4250\".", c)
		}
	}
	if s, ok := d.str(attrs, "severity"); ok && attrs["severity"] != nil {
		p.Severity = Severity(s)
		if !slices.Contains(Severities, p.Severity) {
			d.errorf(attrs["severity"].Expr.Range(), "Unknown severity",
				"%q is not a severity. Use one of critical, important, moderate, low (Microsoft's ratings; they set the default SLA).%s", s, onlySuggest(s, severityNames()))
		}
	}
	if s, ok := d.str(attrs, "published"); ok && attrs["published"] != nil {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d.errorf(attrs["published"].Expr.Range(), "Invalid time",
				"%q is not an RFC 3339 time; write it like \"2008-10-23T17:00:00Z\" (date, T, time, and Z or an offset).", s)
		}
		p.Published = t
	}
	if s, ok := d.str(attrs, "reboot"); ok && attrs["reboot"] != nil {
		p.Reboot = RebootBehavior(s)
		if !slices.Contains(rebootValues, s) {
			d.errorf(attrs["reboot"].Expr.Range(), "Unknown reboot behaviour",
				"%q is not a reboot behaviour. Use required, may or never, as the bulletin states it.%s", s, onlySuggest(s, rebootValues))
		}
	}
	p.Supersedes = d.strList(attrs, "supersedes")
	for i, kb := range p.Supersedes {
		if !kbPattern.MatchString(kb) {
			d.errorf(d.elemRange(b, "supersedes", i), "Invalid KB number", "%q is not a Knowledge Base id; write it like \"KB921883\".", kb)
		}
	}

	var evidence *hclsyntax.Block
	osSeen := map[string]*hclsyntax.Block{}
	for _, nb := range blocks {
		switch nb.Type {
		case "package":
			os := nb.Labels[0]
			if first, dup := osSeen[os]; dup {
				d.errorf(nb.LabelRanges[0], "Duplicate package", "A package for %q is already declared at line %d.", os, first.TypeRange.Start.Line)
				continue
			}
			osSeen[os] = nb
			p.Packages = append(p.Packages, d.pkg(nb))
		case "evidence":
			if evidence != nil {
				d.errorf(nb.TypeRange, "Duplicate evidence block", "A patch has one evidence block; the first is at line %d.", evidence.TypeRange.Start.Line)
				continue
			}
			evidence = nb
			p.Evidence = d.evidence(nb)
		}
	}
	if len(p.Packages) == 0 {
		d.errorf(blockHeader(b), "No package", `A patch needs at least one package "<os>" { source, sha256, type } block: there is nothing to install.`)
	}
	d.checkEvidenceOS(p, b, evidence, osSeen)
	if len(p.Evidence.Files) == 0 && len(p.Evidence.Builds) == 0 {
		switch p.Reboot {
		case RebootRequired:
			rng := blockHeader(b)
			if evidence != nil {
				rng = evidence.TypeRange
			}
			d.errorf(rng, "Reboot required but no file evidence",
				"The patch needs a reboot to take effect, and only the replaced files' versions prove it did (a hotfix entry appears before the reboot, and stays after a failed one). Add evidence { file { path = \"...\", min_version = \"...\" } }.")
		case RebootMay, RebootNever:
			rng := blockHeader(b)
			if evidence != nil {
				rng = evidence.TypeRange
			}
			d.warnf(rng, "No file evidence",
				"Only the hotfix entry will prove the patch is installed, and a hotfix entry can be present without the new files (the MSBlast failure). Add evidence { file { path, min_version } }.")
		}
	}
	return p
}

// checkEvidenceOS checks file evidence limited to an OS: the OS must have a
// package, and when the patch needs a reboot every package's OS must have
// file evidence of its own or for every OS.
func (d *decoder) checkEvidenceOS(p Patch, patch, evidence *hclsyntax.Block, packages map[string]*hclsyntax.Block) {
	if evidence == nil {
		return
	}
	var files []*hclsyntax.Block
	for _, fb := range evidence.Body.Blocks {
		if fb.Type == "file" {
			files = append(files, fb)
		}
	}
	for i, f := range p.Evidence.Files {
		if f.OS != "" && packages[f.OS] == nil && i < len(files) {
			rng := blockHeader(files[i])
			if a, ok := files[i].Body.Attributes["os"]; ok {
				rng = a.Expr.Range()
			}
			d.errorf(rng, "Evidence for an OS without a package",
				"This file evidence applies to %q, but the patch has no package for that OS.%s", f.OS, didYouMean(f.OS, keys(packages)))
		}
	}
	var builds []*hclsyntax.Block
	for _, bb := range evidence.Body.Blocks {
		if bb.Type == "build" {
			builds = append(builds, bb)
		}
	}
	for i, be := range p.Evidence.Builds {
		if be.OS != "" && packages[be.OS] == nil && i < len(builds) {
			rng := blockHeader(builds[i])
			if a, ok := builds[i].Body.Attributes["os"]; ok {
				rng = a.Expr.Range()
			}
			d.errorf(rng, "Evidence for an OS without a package",
				"This build evidence applies to %q, but the patch has no package for that OS.%s", be.OS, didYouMean(be.OS, keys(packages)))
		}
	}
	if p.Reboot != RebootRequired || len(p.Evidence.Files) == 0 && len(p.Evidence.Builds) == 0 {
		return
	}
	for _, pkg := range p.Packages {
		if len(p.FilesDeclaredFor(pkg.OS)) == 0 && len(p.BuildsDeclaredFor(pkg.OS)) == 0 {
			d.errorf(blockHeader(packages[pkg.OS]), "Reboot required but no file evidence",
				"The patch needs a reboot, but no file or build evidence applies to %q: add a file { os = %q, path = \"...\", min_version = \"...\" } or a build { os = %q, min_build = \"...\" } to the evidence block, or one without os for every OS.", pkg.OS, pkg.OS, pkg.OS)
		}
	}
}

func severityNames() []string {
	out := make([]string, len(Severities))
	for i, s := range Severities {
		out[i] = string(s)
	}
	return out
}

func (d *decoder) pkg(b *hclsyntax.Block) Package {
	key := blockKey("patch", "package", b.Labels[0])
	d.ranges.Set(key, blockHeader(b))
	attrs, blocks := d.content(b.Body, packageSpec)
	d.recordAttrs(key, attrs)
	p := Package{OS: b.Labels[0]}
	p.Source, p.SHA256, p.Type, p.Installer = d.installable(attrs, b, "package block", fmt.Sprintf("The package for %q", p.OS))
	seen := map[string]int{}
	for _, pb := range blocks {
		kb := strings.ToUpper(pb.Labels[0])
		if !kbPattern.MatchString(kb) {
			d.errorf(pb.LabelRanges[0], "Invalid KB number", "%q is not a Knowledge Base id; write it like \"KB5014031\".", pb.Labels[0])
		}
		if line, dup := seen[kb]; dup {
			d.errorf(pb.LabelRanges[0], "Duplicate prerequisite", "%s is already a prerequisite of this package at line %d.", kb, line)
			continue
		}
		seen[kb] = pb.TypeRange.Start.Line
		pkey := fmt.Sprintf("%s.prerequisite[%d]", key, len(p.Prerequisites))
		d.ranges.Set(pkey, blockHeader(pb))
		pa, _ := d.content(pb.Body, prereqSpec)
		d.recordAttrs(pkey, pa)
		pr := Prerequisite{KB: kb}
		pr.Source, pr.SHA256, pr.Type, pr.Installer = d.installable(pa, pb, "prerequisite block", "The prerequisite "+kb)
		p.Prerequisites = append(p.Prerequisites, pr)
	}
	return p
}

// installable reads what installs a package or a prerequisite: source,
// type, installer (msu only) and sha256.
func (d *decoder) installable(attrs map[string]*hclsyntax.Attribute, b *hclsyntax.Block, what, name string) (source, sum, typ, installer string) {
	d.required(attrs, b, what, "source", "type")
	source, _ = d.str(attrs, "source")
	if t, ok := d.str(attrs, "type"); ok && attrs["type"] != nil {
		typ = t
		if !slices.Contains(packageTypes, t) {
			d.errorf(attrs["type"].Expr.Range(), "Unknown package type", "%q is not a package type. Use msu, msi, cab or exe: it picks the installer command.", t)
		}
	}
	if in, ok := d.str(attrs, "installer"); ok && attrs["installer"] != nil {
		installer = in
		switch {
		case typ != "msu":
			d.errorf(attrs["installer"].Expr.Range(), "Installer for a non-msu package", "installer picks how an msu is installed (wusa or dism); a %s package has one installer.", cmp.Or(typ, "typeless"))
		case !slices.Contains(msuInstallers, in):
			d.errorf(attrs["installer"].Expr.Range(), "Unknown installer", "%q is not an msu installer. Use wusa (the default) or dism (DISM /Add-Package, for checkpoint cumulative updates).", in)
		}
	}
	s, ok := d.str(attrs, "sha256")
	switch {
	case !ok:
	case attrs["sha256"] == nil:
		d.errorf(blockHeader(b), "Package without sha256",
			"%s has no sha256. Every package is checked before it is installed, so a tampered or truncated download is refused: add sha256 = \"<64 hex digits>\".", name)
	case !sha256Pattern.MatchString(s):
		d.errorf(attrs["sha256"].Expr.Range(), "Invalid sha256",
			"%q is not a SHA-256 digest: it must be 64 hexadecimal digits (it has %d characters).", s, len(s))
	default:
		sum = strings.ToLower(s)
	}
	return source, sum, typ, installer
}

func (d *decoder) evidence(b *hclsyntax.Block) Evidence {
	d.ranges.Set("patch.evidence", b.TypeRange)
	attrs, blocks := d.content(b.Body, evidenceSpec)
	d.recordAttrs("patch.evidence", attrs)
	var e Evidence
	e.Hotfix, _ = d.str(attrs, "hotfix")
	if e.Hotfix != "" && !kbPattern.MatchString(e.Hotfix) {
		d.errorf(attrs["hotfix"].Expr.Range(), "Invalid KB number", "%q is not a hotfix id as Get-HotFix reports it; write it like \"KB958644\".", e.Hotfix)
	}
	for _, bb := range blocks {
		if bb.Type != "build" {
			continue
		}
		key := fmt.Sprintf("patch.evidence.build[%d]", len(e.Builds))
		d.ranges.Set(key, bb.TypeRange)
		ba, _ := d.content(bb.Body, buildSpec)
		d.recordAttrs(key, ba)
		d.required(ba, bb, "build block", "min_build")
		var be BuildEvidence
		if v, ok := d.str(ba, "min_build"); ok && ba["min_build"] != nil {
			be.MinBuild = v
			if n := strings.Count(v, "."); !versionPattern.MatchString(v) || (n != 1 && n != 3) {
				d.errorf(ba["min_build"].Expr.Range(), "Invalid OS build",
					"%q is not an OS build; write CurrentBuild.UBR as Windows shows it, like \"10.0.20348.707\" (or \"20348.707\").", v)
			}
		}
		be.OS, _ = d.str(ba, "os")
		e.Builds = append(e.Builds, be)
	}
	files := slices.DeleteFunc(slices.Clone(blocks), func(b *hclsyntax.Block) bool { return b.Type != "file" })
	for i, fb := range files {
		key := fmt.Sprintf("patch.evidence.file[%d]", i)
		d.ranges.Set(key, fb.TypeRange)
		fa, _ := d.content(fb.Body, fileSpec)
		d.recordAttrs(key, fa)
		d.required(fa, fb, "file block", "path", "min_version")
		var f FileEvidence
		f.Path, _ = d.str(fa, "path")
		if v, ok := d.str(fa, "min_version"); ok && fa["min_version"] != nil {
			f.MinVersion = v
			if !versionPattern.MatchString(v) {
				d.errorf(fa["min_version"].Expr.Range(), "Invalid file version",
					"%q is not a file version; write it as dotted numbers, major.minor.build.private, like \"5.1.2600.3462\".", v)
			}
		}
		if sum, ok := d.str(fa, "sha256"); ok && sum != "" {
			if !sha256Pattern.MatchString(sum) {
				d.errorf(fa["sha256"].Expr.Range(), "Invalid sha256", "%q is not a SHA-256 digest: it must be 64 hexadecimal digits.", sum)
			}
			f.SHA256 = strings.ToLower(sum)
		}
		f.OS, _ = d.str(fa, "os")
		e.Files = append(e.Files, f)
	}
	return e
}

func (d *decoder) risk(b *hclsyntax.Block) Risk {
	d.ranges.Set("risk", b.TypeRange)
	attrs, _ := d.content(b.Body, riskSpec)
	d.recordAttrs("risk", attrs)
	var r Risk
	r.ExploitPublic = d.boolean(attrs, "exploit_public")
	r.Exploited = d.boolean(attrs, "exploited")
	r.WormInTheWild = d.boolean(attrs, "worm_in_the_wild")
	if s, ok := d.str(attrs, "exposure"); ok && attrs["exposure"] != nil {
		r.Exposure = s
		if !slices.Contains(exposureValues, s) {
			d.errorf(attrs["exposure"].Expr.Range(), "Unknown exposure", "%q is not an exposure. Use internet, internal or isolated.%s", s, onlySuggest(s, exposureValues))
		}
	}
	r.Workaround, _ = d.str(attrs, "workaround")
	r.Scanners = d.strList(attrs, "scanners")
	r.SideEffects = d.strList(attrs, "side_effects")
	return r
}

func (d *decoder) stage(b *hclsyntax.Block) Stage {
	key := blockKey("", "stage", b.Labels[0])
	d.ranges.Set(key, blockHeader(b))
	attrs, _ := d.content(b.Body, stageSpec)
	d.recordAttrs(key, attrs)
	d.required(attrs, b, "stage block", "hosts")
	s := Stage{Name: b.Labels[0]}
	s.Hosts = d.selector(attrs, "hosts")
	s.Soak = d.duration(attrs, "soak")
	s.ApprovalGroup, _ = d.str(attrs, "approval_group")
	return s
}

func (d *decoder) wave(b *hclsyntax.Block) Wave {
	key := blockKey("", "wave", b.Labels[0])
	d.ranges.Set(key, blockHeader(b))
	attrs, blocks := d.content(b.Body, waveSpec)
	d.recordAttrs(key, attrs)
	d.required(attrs, b, "wave block", "hosts")
	w := Wave{Name: b.Labels[0], MaxParallel: DefaultMaxParallel}
	w.Hosts = d.selector(attrs, "hosts")
	w.After = d.strList(attrs, "after")
	if a, ok := attrs["max_parallel"]; ok {
		w.MaxParallel = d.count(attrs, "max_parallel")
		if w.MaxParallel == 0 {
			d.errorf(a.Expr.Range(), "Invalid number", "max_parallel must be at least 1: a wave with no host in flight never finishes.")
		}
	}
	w.MaxFailures = d.threshold(attrs, "max_failures")
	w.DownloadConcurrency = d.count(attrs, "download_concurrency")
	w.ApprovalGroup, _ = d.str(attrs, "approval_group")
	for i, wb := range blocks {
		if i > 0 {
			d.errorf(wb.TypeRange, "Duplicate window block", "A wave has one maintenance window; the first is at line %d.", blocks[0].TypeRange.Start.Line)
			continue
		}
		w.Window = d.window(wb, key+".window")
	}
	return w
}

// selector decodes a selector attribute and reports syntax errors at the
// offending character inside the string.
func (d *decoder) selector(attrs map[string]*hclsyntax.Attribute, name string) string {
	s, ok := d.str(attrs, name)
	if !ok || attrs[name] == nil {
		return s
	}
	if _, err := ParseSelector(s); err != nil {
		d.diags = append(d.diags, selectorDiagnostic(attrs[name].Expr, s, err))
	}
	return s
}

// selectorDiagnostic points a selector syntax error at its character when
// the selector is a plain one-line string literal, else at the string.
func selectorDiagnostic(expr hclsyntax.Expression, s string, err error) *hcl.Diagnostic {
	rng := expr.Range()
	var se *SelectorError
	if t, ok := expr.(*hclsyntax.TemplateExpr); ok && len(t.Parts) == 1 && rng.Start.Line == rng.End.Line &&
		rng.End.Byte-rng.Start.Byte == len(s)+2 && asSelectorError(err, &se) {
		start := rng.Start
		start.Byte += 1 + se.Offset
		start.Column += 1 + len([]rune(s[:se.Offset]))
		end := start
		n := max(se.Length, 1)
		if se.Offset+n > len(s) {
			n = max(len(s)-se.Offset, 0)
		}
		end.Byte += n
		end.Column += len([]rune(s[se.Offset : se.Offset+n]))
		rng = hcl.Range{Filename: rng.Filename, Start: start, End: end}
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid selector",
		Detail:   strings.TrimSuffix(capitalize(err.Error()), ".") + sentenceEnd(err.Error()) + " " + selectorHelp,
		Subject:  &rng,
	}
}

// sentenceEnd is the full stop a message needs, unless it ends a question.
func sentenceEnd(msg string) string {
	if strings.HasSuffix(msg, "?") {
		return ""
	}
	return "."
}

// selectorHelp is the one-line reminder of the selector syntax.
const selectorHelp = `A selector is key:value terms (keys name, region, site, role, tier, tag, os, owner, cluster; * matches any run of characters) joined by and, or, not and parentheses, or all; for example "region:emea and not role:laptop".`

// threshold decodes max_failures: a count (5) or a percentage ("5%").
func (d *decoder) threshold(attrs map[string]*hclsyntax.Attribute, name string) Threshold {
	a, ok := attrs[name]
	if !ok {
		return Threshold{}
	}
	v, ok := d.value(a)
	if !ok {
		return Threshold{}
	}
	switch v.Type() {
	case cty.Number:
		return Threshold{Count: d.count(attrs, name)}
	case cty.String:
		s := strings.TrimSpace(v.AsString())
		if num, isPct := strings.CutSuffix(s, "%"); isPct {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err == nil && f >= 0 && f <= 100 {
				return Threshold{Percent: f}
			}
		}
		d.errorf(a.Expr.Range(), "Invalid failure threshold",
			"%q is not a failure threshold: write a count (max_failures = 5) or a percentage of the wave's hosts between 0%% and 100%% (max_failures = \"5%%\").", s)
	default:
		d.wrongType(a, v, "a count or a percentage", `5 or "5%"`)
	}
	return Threshold{}
}

func (d *decoder) window(b *hclsyntax.Block, key string) *Window {
	d.ranges.Set(key, b.TypeRange)
	attrs, _ := d.content(b.Body, windowSpec)
	d.recordAttrs(key, attrs)
	d.required(attrs, b, "window block", "hours")
	w := &Window{}
	days := d.strList(attrs, "days")
	if attrs["days"] == nil {
		w.Days = allDays()
	}
	seen := map[time.Weekday]bool{}
	for i, s := range days {
		ds, err := parseDays(s)
		if err != nil {
			d.errorf(d.elemRange(b, "days", i), "Invalid day", "%s. Write days as mon, tue, wed, thu, fri, sat, sun (or full names), or a range like \"mon-fri\".", capitalize(err.Error()))
			continue
		}
		for _, day := range ds {
			if !seen[day] {
				seen[day] = true
				w.Days = append(w.Days, day)
			}
		}
	}
	if attrs["days"] != nil && len(days) == 0 {
		d.errorf(attrs["days"].Expr.Range(), "Empty window", "A window with no days never opens; leave days out to mean every day.")
	}
	slices.Sort(w.Days)
	if s, ok := d.str(attrs, "hours"); ok && attrs["hours"] != nil {
		start, end, err := parseHours(s)
		if err != nil {
			d.errorf(attrs["hours"].Expr.Range(), "Invalid window hours", "%s. Write hours as \"HH:MM-HH:MM\" in 24-hour time, like \"22:00-06:00\" (a window may wrap past midnight; \"00:00-24:00\" is all day).", capitalize(err.Error()))
		}
		w.Start, w.End = start, end
	}
	if s, ok := d.str(attrs, "time_zone"); ok && attrs["time_zone"] != nil {
		if err := checkTimeZone(s); err != nil {
			d.errorf(attrs["time_zone"].Expr.Range(), "Unknown time zone", "%s. Use an IANA zone name like \"Europe/Paris\", or leave time_zone out to use each site's own zone.", capitalize(err.Error()))
		}
		w.TimeZone = s
	}
	return w
}

func allDays() []time.Weekday {
	return []time.Weekday{time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday}
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func parseDay(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 {
		return 0, false
	}
	d, ok := dayNames[s[:3]]
	if !ok || !strings.HasPrefix(strings.ToLower(d.String()), s) {
		return 0, false
	}
	return d, true
}

// parseDays reads a day ("sat", "Saturday") or a range of days ("mon-fri",
// "fri-mon" wraps past the weekend).
func parseDays(s string) ([]time.Weekday, error) {
	from, to, isRange := strings.Cut(s, "-")
	a, ok := parseDay(from)
	if !ok {
		return nil, fmt.Errorf("%q is not a day", from)
	}
	if !isRange {
		return []time.Weekday{a}, nil
	}
	b, ok := parseDay(to)
	if !ok {
		return nil, fmt.Errorf("%q is not a day", to)
	}
	var out []time.Weekday
	for d := a; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == b {
			return out, nil
		}
	}
}

// parseHours reads "HH:MM-HH:MM" into minutes after midnight.
func parseHours(s string) (int, int, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a range of hours", s)
	}
	start, err := parseClock(from)
	if err != nil {
		return 0, 0, err
	}
	end, err := parseClock(to)
	if err != nil {
		return 0, 0, err
	}
	if start == 24*60 {
		return 0, 0, fmt.Errorf("a window cannot start at 24:00")
	}
	if start == end {
		return 0, 0, fmt.Errorf("%q opens and closes at the same time", s)
	}
	return start, end, nil
}

func parseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(hh) != 2 || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return h*60 + m, nil
}

// checkTimeZone accepts IANA zone names only; "Local" would make a plan
// depend on the machine that made it.
func checkTimeZone(s string) error {
	if s == "" || s == "Local" {
		return fmt.Errorf("%q is not an IANA time zone", s)
	}
	if _, err := time.LoadLocation(s); err != nil {
		return fmt.Errorf("%q is not an IANA time zone", s)
	}
	return nil
}

func (d *decoder) escalation(b *hclsyntax.Block, i int, channels map[string]*hclsyntax.Block) EscalationStep {
	key := fmt.Sprintf("escalation[%d]", i)
	attrs, _ := d.content(b.Body, escalationSpec)
	d.recordAttrs(key, attrs)
	d.required(attrs, b, "escalation block", "at", "contacts", "channels")
	var e EscalationStep
	if s, ok := d.str(attrs, "at"); ok && attrs["at"] != nil {
		var err error
		e, err = parseEscalationAt(s)
		if err != nil {
			d.errorf(attrs["at"].Expr.Range(), "Invalid escalation point",
				"%s. Write a share of the SLA (\"50%%\", \"75%%\"), \"breach\" for the deadline itself, or a time after it (\"breach+4h\").", capitalize(err.Error()))
		}
	}
	e.Contacts = d.strList(attrs, "contacts")
	if attrs["contacts"] != nil && len(e.Contacts) == 0 {
		d.errorf(attrs["contacts"].Expr.Range(), "No contacts", "An escalation with no contacts tells no one.")
	}
	e.Channels = d.strList(attrs, "channels")
	for j, c := range e.Channels {
		if _, ok := channels[c]; !ok {
			d.errorf(d.elemRange(b, "channels", j), "Unknown channel",
				"The escalation names channel %q, but the rollout declares no channel of that name; declare it with channel %q { type = \"webhook\" }.%s", c, c, didYouMean(c, keys(channels)))
		}
	}
	return e
}

// parseEscalationAt reads "50%", "breach" or "breach+4h".
func parseEscalationAt(s string) (EscalationStep, error) {
	s = strings.TrimSpace(s)
	if num, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || f <= 0 || f > 100 {
			return EscalationStep{}, fmt.Errorf("%q is not a share of the SLA between 0%% and 100%%", s)
		}
		if f == 100 {
			return EscalationStep{Breach: true}, nil
		}
		return EscalationStep{AtPercent: f}, nil
	}
	if s == "breach" {
		return EscalationStep{Breach: true}, nil
	}
	if rest, ok := strings.CutPrefix(s, "breach+"); ok {
		d, err := parseDuration(rest)
		if err != nil || d == 0 {
			return EscalationStep{}, fmt.Errorf("%q: the time after the breach is not a duration", s)
		}
		return EscalationStep{Breach: true, AfterBreach: d}, nil
	}
	return EscalationStep{}, fmt.Errorf("%q is not an escalation point", s)
}

func (d *decoder) channel(b *hclsyntax.Block) Channel {
	key := blockKey("", "channel", b.Labels[0])
	d.ranges.Set(key, blockHeader(b))
	attrs, _ := d.content(b.Body, channelSpec)
	d.recordAttrs(key, attrs)
	d.required(attrs, b, "channel block", "type")
	c := Channel{Name: b.Labels[0]}
	if t, ok := d.str(attrs, "type"); ok && attrs["type"] != nil {
		c.Type = t
		if !slices.Contains(channelTypes, t) {
			d.errorf(attrs["type"].Expr.Range(), "Unknown channel type", "%q is not a channel type. Use webhook, slack or email; the worker resolves its address and keys by the channel's name.%s", t, onlySuggest(t, channelTypes))
		}
	}
	return c
}

func (d *decoder) emergency(b *hclsyntax.Block) *EmergencyRequest {
	d.ranges.Set("emergency", b.TypeRange)
	attrs, _ := d.content(b.Body, emergencySpec)
	d.recordAttrs("emergency", attrs)
	d.required(attrs, b, "emergency block", "reason")
	e := &EmergencyRequest{}
	e.Reason, _ = d.str(attrs, "reason")
	if a, ok := attrs["approved_by"]; ok {
		d.errorf(a.NameRange, "An emergency is approved by an act, not a field",
			"approved_by names a person who never acted: a typed name proves nothing. Remove it; once the rollout is filed it waits "+
				"at its emergency gate, and a member of the emergency group approves it with `patchway approve ROLLOUT emergency` "+
				"(a verified token; never the filer).")
	}
	e.SkipStages = d.strList(attrs, "skip_stages")
	return e
}

// checkAfter reports `after` entries naming unknown waves and cycles among
// waves.
func (d *decoder) checkAfter(r *Rollout, blocks []*hclsyntax.Block, stages map[string]*hclsyntax.Block) {
	index := map[string]int{}
	for i, w := range r.Waves {
		index[w.Name] = i
	}
	names := make([]string, len(r.Waves))
	for i, w := range r.Waves {
		names[i] = w.Name
	}
	valid := make([][]int, len(r.Waves))
	for i, w := range r.Waves {
		for j, a := range w.After {
			k, ok := index[a]
			switch {
			case ok && k == i:
				d.errorf(d.elemRange(blocks[i], "after", j), "Wave after itself", "Wave %q cannot come after itself.", w.Name)
			case ok:
				valid[i] = append(valid[i], k)
			case stages[a] != nil:
				d.errorf(d.elemRange(blocks[i], "after", j), "Unknown wave",
					"%q is a stage, not a wave: every wave already runs after all the stages, so after names waves only.", a)
			default:
				d.errorf(d.elemRange(blocks[i], "after", j), "Unknown wave",
					"Wave %q comes after %q, but the rollout has no wave of that name.%s", w.Name, a, didYouMean(a, names))
			}
		}
	}
	if cycle := findCycle(valid); cycle != nil {
		path := make([]string, 0, len(cycle)+1)
		for _, i := range cycle {
			path = append(path, r.Waves[i].Name)
		}
		path = append(path, r.Waves[cycle[0]].Name)
		first := cycle[0]
		next := cycle[1%len(cycle)]
		j := slices.Index(r.Waves[first].After, r.Waves[next].Name)
		d.errorf(d.elemRange(blocks[first], "after", j), "Waves wait for each other in a cycle",
			"The after lists form a cycle, so none of these waves could ever start: %s.", strings.Join(path, " -> after -> "))
	}
}

// findCycle returns the waves of one cycle in the after graph (edges[i]
// lists the waves i comes after), starting from the earliest wave in file
// order, or nil.
func findCycle(edges [][]int) []int {
	state := make([]int, len(edges)) // 0 unvisited, 1 on stack, 2 done
	var stack []int
	var found []int
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		stack = append(stack, i)
		for _, j := range edges[i] {
			if state[j] == 1 {
				at := slices.Index(stack, j)
				found = slices.Clone(stack[at:])
				return true
			}
			if state[j] == 0 && visit(j) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = 2
		return false
	}
	for i := range edges {
		if state[i] == 0 && visit(i) {
			return found
		}
	}
	return nil
}
