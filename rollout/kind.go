package rollout

import (
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// FileKind is what a file holds, as told by its top-level blocks.
type FileKind string

// The kinds of file DetectKind tells apart.
const (
	KindRollout   FileKind = "rollout"
	KindInventory FileKind = "inventory"
	// KindTemplate is a draft template: stage and wave blocks (and the
	// escalation and channels) with no rollout around them, for
	// patchway draft --template.
	KindTemplate FileKind = "template"
	// KindUnknown is a file with no rollout, site or host block at its
	// top level (a fleet scenario, say).
	KindUnknown FileKind = ""
)

// DetectKind tells a rollout file from an inventory file by its top-level
// blocks: a rollout block makes a rollout, else a site or host block an
// inventory. A .csv file is always an inventory. The diagnostics are
// those of a file that does not parse as HCL.
func DetectKind(path string, src []byte) (FileKind, hcl.Diagnostics) {
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return KindInventory, nil
	}
	if diags := CheckInput(path, src); diags.HasErrors() {
		return KindUnknown, diags
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return KindUnknown, diags
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return KindUnknown, nil
	}
	for _, b := range body.Blocks {
		if b.Type == "rollout" {
			return KindRollout, nil
		}
	}
	for _, b := range body.Blocks {
		if b.Type == "host" || b.Type == "site" {
			return KindInventory, nil
		}
	}
	for _, b := range body.Blocks {
		if b.Type == "stage" || b.Type == "wave" {
			return KindTemplate, nil
		}
	}
	return KindUnknown, nil
}
