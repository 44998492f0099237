package threat

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Placeholder starts every value a drafted rollout leaves to a person
// (a package's sha256 and source); validate refuses it at its position
// until it is filled. It must match rollout.Placeholder.
const Placeholder = "FILL IN: "

// DefaultProducts maps MSRC's product names to the inventory's OS names
// for the releases the examples use; --product adds to it.
var DefaultProducts = map[string]string{
	"Windows Server 2022":                                          "windows-server-2022",
	"Windows Server 2022 (Server Core installation)":               "windows-server-2022",
	"Windows Server 2022, 23H2 Edition (Server Core installation)": "windows-server-2022-23h2",
	"Windows Server 2019":                                          "windows-server-2019",
	"Windows Server 2019 (Server Core installation)":               "windows-server-2019",
	"Windows Server 2016":                                          "windows-server-2016",
	"Windows Server 2016 (Server Core installation)":               "windows-server-2016",
	"Windows Server 2025":                                          "windows-server-2025",
	"Windows Server 2025 (Server Core installation)":               "windows-server-2025",
	"Windows Server 2012 R2":                                       "windows-server-2012-r2",
	"Windows Server 2012 R2 (Server Core installation)":            "windows-server-2012-r2",
	// Internet Explorer's updates install on the OS it ships with.
	"Internet Explorer 11 on Windows Server 2012 R2": "windows-server-2012-r2",
}

// DraftOptions are what a drafted rollout takes from the team rather than
// from the advisory.
type DraftOptions struct {
	// Source names the advisory, for the file's header comment.
	Source    string
	FiledBy   string
	Inventory string
	// Template is an HCL body of stage, wave, escalation and channel
	// blocks the team keeps; TemplateName names it in diagnostics.
	Template     []byte
	TemplateName string
}

// Draft writes the rollout HCL for one fix: the patch and risk blocks
// from the advisory, the staged path from the template, and placeholders
// for what only a person can fill.
func Draft(adv Advisory, f Fix, o DraftOptions) ([]byte, error) {
	tmpl, diags := hclwrite.ParseConfig(o.Template, o.TemplateName, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("template %s: %s", o.TemplateName, diags.Error())
	}
	if _, d := hclsyntax.ParseConfig(o.Template, o.TemplateName, hcl.InitialPos); d.HasErrors() {
		return nil, fmt.Errorf("template %s: %s", o.TemplateName, d.Error())
	}
	for _, b := range tmpl.Body().Blocks() {
		switch b.Type() {
		case "stage", "wave", "escalation", "channel", "emergency":
		default:
			return nil, fmt.Errorf("template %s: a %q block is not the team's to keep: the template holds stage, wave, escalation and channel blocks, and the advisory gives the patch and risk", o.TemplateName, b.Type())
		}
	}
	file := hclwrite.NewEmptyFile()
	root := file.Body()
	root.AppendUnstructuredTokens(comment(fmt.Sprintf("Drafted by patchway draft from %s: %s for %s.", o.Source, f.KB, strings.Join(f.Products, ", "))))
	root.AppendUnstructuredTokens(comment(`Fill in every "FILL IN:" value (patchway validate points at each), then file it.`))
	for _, u := range adv.Unfixed {
		root.AppendUnstructuredTokens(comment(fmt.Sprintf("%s (%s) is exploited and has no vendor fix in the advisory: see its mitigations.", u.CVE, u.Title)))
	}
	ro := root.AppendNewBlock("rollout", []string{strings.ToLower(f.KB)}).Body()
	ro.SetAttributeValue("filed_by", cty.StringVal(o.FiledBy))
	ro.SetAttributeValue("inventory", cty.StringVal(o.Inventory))
	ro.AppendNewline()
	p := ro.AppendNewBlock("patch", nil).Body()
	p.SetAttributeValue("kb", cty.StringVal(f.KB))
	p.SetAttributeValue("title", cty.StringVal(draftTitle(adv, f)))
	p.SetAttributeValue("cves", strings2cty(f.CVEs))
	p.SetAttributeValue("severity", cty.StringVal(f.Severity))
	p.SetAttributeValue("published", cty.StringVal(f.Published.UTC().Format(time.RFC3339)))
	p.SetAttributeValue("reboot", cty.StringVal(f.Reboot))
	if len(f.Supersedes) > 0 {
		p.SetAttributeValue("supersedes", strings2cty(f.Supersedes))
	}
	for _, osName := range f.OS {
		p.AppendNewline()
		pkg := p.AppendNewBlock("package", []string{osName}).Body()
		pkg.SetAttributeValue("source", cty.StringVal(Placeholder+"the package's path on the distribution point ("+f.KB+" for "+osName+")"))
		pkg.SetAttributeValue("sha256", cty.StringVal(Placeholder+"the package's SHA-256, from the Microsoft Update Catalog"))
		pkg.SetAttributeValue("type", cty.StringVal("msu"))
	}
	p.AppendNewline()
	ev := p.AppendNewBlock("evidence", nil).Body()
	ev.SetAttributeValue("hotfix", cty.StringVal(f.KB))
	for _, osName := range f.OS {
		if b, ok := f.FixedBuild[osName]; ok {
			bb := ev.AppendNewBlock("build", nil).Body()
			bb.SetAttributeValue("os", cty.StringVal(osName))
			bb.SetAttributeValue("min_build", cty.StringVal(b))
			continue
		}
		fb := ev.AppendNewBlock("file", nil).Body()
		fb.SetAttributeValue("os", cty.StringVal(osName))
		fb.SetAttributeValue("path", cty.StringVal(Placeholder+"a file the update replaces (the advisory gives no fixed build for "+osName+")"))
		fb.SetAttributeValue("min_version", cty.StringVal(Placeholder+"its version after the update"))
	}
	ro.AppendNewline()
	risk := ro.AppendNewBlock("risk", nil).Body()
	risk.AppendUnstructuredTokens(comment(`From the advisory's "Exploit Status": Publicly Disclosed and Exploited.`))
	risk.SetAttributeValue("exploit_public", cty.BoolVal(f.ExploitPublic))
	risk.SetAttributeValue("exploited", cty.BoolVal(f.Exploited))
	ro.AppendNewline()
	ro.AppendUnstructuredTokens(tmpl.Body().BuildTokens(nil))
	return hclwrite.Format(file.Bytes()), nil
}

func draftTitle(adv Advisory, f Fix) string {
	title := f.KB + " for " + strings.Join(f.Products, ", ")
	if adv.Title != "" {
		title = adv.Title + ": " + title
	}
	if len(f.Titles) > 0 && !(len(f.Titles) == 1 && f.Titles[0] == adv.Title) {
		title += " (" + f.Titles[0]
		if n := len(f.Titles) - 1; n > 0 {
			title += fmt.Sprintf(" and %d more", n)
		}
		title += ")"
	}
	return title
}

func comment(text string) hclwrite.Tokens {
	return hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# " + text + "\n")}}
}

func strings2cty(ss []string) cty.Value {
	vals := make([]cty.Value, 0, len(ss))
	for _, s := range slices.Clone(ss) {
		vals = append(vals, cty.StringVal(s))
	}
	if len(vals) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	return cty.ListVal(vals)
}
