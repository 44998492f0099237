package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/patchway/patchway/contract"
)

// csvHeader is the CSV format's header; one host per row follows.
var csvHeader = []string{"name", "region", "site", "tier", "role", "owner", "purpose", "state", "reasons", "evidence"}

// renderCSV is one row per host, every host, for a spreadsheet.
func renderCSV(w io.Writer, rep contract.Report, _ Options) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	for _, h := range rep.Hosts {
		row := []string{h.Name, h.Region, h.Site, string(h.Tier), h.Role, h.Owner, h.Purpose, string(h.State),
			strings.Join(h.Reasons, "; "), strings.Join(h.Evidence, "; ")}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// csvCell keeps a cell from an inventory from running as a formula when
// the file is opened in a spreadsheet (CSV injection): a leading =, +, -,
// @, tab or carriage return gets a quote in front.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
