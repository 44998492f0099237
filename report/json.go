package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/patchway/patchway/contract"
)

// renderJSON is the whole report, every host included, as indented JSON.
func renderJSON(w io.Writer, rep contract.Report, _ Options) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	return nil
}
