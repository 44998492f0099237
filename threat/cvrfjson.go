package threat

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MSRC's CVRF v3 API (api.msrc.microsoft.com/cvrf/v3.0/cvrf/{id} asked
// for application/json) serialises the CVRF 1.1 document with .NET's
// names: a text element becomes {"Value": ...} and an enumerated
// attribute an integer, the enumeration's position. The positions below
// are those MSRC's own MsrcSecurityUpdates PowerShell module filters on
// (Threats Type 0 impact, 1 exploit status, 3 severity; Remediations Type
// 0 workaround, 1 mitigation, 2 vendor fix) and that real documents
// carry (2021-Jan: Type 5 is the support.microsoft.com "Known Issue"
// remediation of the XML); 2, 3 and 4 otherwise follow the order of
// CVRF 1.1's schema. Only "Exploit Status", "Severity" and "Vendor Fix"
// drive a rule; the others are named for messages and completeness.
var (
	cvrfJSONThreatTypes      = []string{"Impact", "Exploit Status", "Target Set", "Severity"}
	cvrfJSONRemediationTypes = []string{"Workaround", "Mitigation", "Vendor Fix", "None Available", "Will Not Fix", "Known Issue"}
)

// cvrfJSONKeys are the top-level keys of MSRC's CVRF JSON, by which
// ReadAdvisory tells it from CSAF.
var cvrfJSONKeys = []string{"DocumentTitle", "DocumentType", "DocumentPublisher", "DocumentTracking", "DocumentNotes", "ProductTree", "Vulnerability"}

type cvrfJSONValue struct {
	Value string `json:"Value"`
}

type cvrfJSONVulnerability struct {
	Title   cvrfJSONValue `json:"Title"`
	CVE     string        `json:"CVE"`
	Threats []struct {
		Type        int           `json:"Type"`
		Description cvrfJSONValue `json:"Description"`
		ProductID   []string      `json:"ProductID"`
	} `json:"Threats"`
	Remediations []struct {
		Type            int           `json:"Type"`
		Description     cvrfJSONValue `json:"Description"`
		Supercedence    string        `json:"Supercedence"`
		ProductID       []string      `json:"ProductID"`
		RestartRequired cvrfJSONValue `json:"RestartRequired"`
		FixedBuild      string        `json:"FixedBuild"`
	} `json:"Remediations"`
	RevisionHistory []struct {
		Date string `json:"Date"`
	} `json:"RevisionHistory"`
}

// cvrfJSONBranch is a ProductTree Branch or one of its Items: a branch has
// Items, a product a ProductID and its name as Value.
type cvrfJSONBranch struct {
	ProductID string           `json:"ProductID"`
	Value     string           `json:"Value"`
	Items     []cvrfJSONBranch `json:"Items"`
}

type cvrfJSONProductTree struct {
	Branch          []cvrfJSONBranch `json:"Branch"`
	FullProductName []cvrfJSONBranch `json:"FullProductName"`
}

// ReadCVRFJSON reads the JSON of MSRC's CVRF v3 API from r (name is its
// file name, for messages) into the same Advisory as ReadCVRF, with the
// same rules. It streams: the Vulnerability array is decoded one element
// at a time. Products are named in the ProductTree, so a document whose
// Vulnerability array comes before its ProductTree is refused rather
// than buffered (MSRC's put the tree first).
func ReadCVRFJSON(r io.Reader, name string, products map[string]string) (Advisory, error) {
	s := newJSONStream(r)
	fail := func(format string, args ...any) (Advisory, error) {
		return Advisory{}, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	if err := s.openObject(); err != nil {
		return fail("not a CVRF JSON document: %s", s.describe(err, ""))
	}
	b := newAdvisoryBuilder(products, "Vendor Fix")
	treeSeen, cvrfSeen := false, false
	err := s.eachKey(func(key string) error {
		switch key {
		case "DocumentTitle":
			cvrfSeen = true
			var t cvrfJSONValue
			if err := s.decode(&t); err != nil {
				return keyError(key, s, err)
			}
			b.adv.Title = strings.TrimSpace(t.Value)
		case "DocumentTracking":
			cvrfSeen = true
			var t struct {
				InitialReleaseDate string `json:"InitialReleaseDate"`
			}
			if err := s.decode(&t); err != nil {
				return keyError(key, s, err)
			}
			if t.InitialReleaseDate != "" {
				if err := b.setReleased(t.InitialReleaseDate); err != nil {
					return fmt.Errorf("DocumentTracking.InitialReleaseDate %w", err)
				}
			}
		case "ProductTree":
			cvrfSeen, treeSeen = true, true
			var t cvrfJSONProductTree
			if err := s.decode(&t); err != nil {
				return keyError(key, s, err)
			}
			collectCVRFJSONProducts(b.productName, t.Branch)
			collectCVRFJSONProducts(b.productName, t.FullProductName)
		case "Vulnerability":
			cvrfSeen = true
			if !treeSeen {
				return errors.New("the Vulnerability array comes before the ProductTree: this reader streams vulnerabilities against the product tree and needs the tree first, as MSRC writes it")
			}
			return s.eachElement(key, func(i int, raw json.RawMessage) error {
				return addCVRFJSONVulnerability(b, i, raw)
			})
		default:
			if err := s.skip(); err != nil {
				return keyError(key, s, err)
			}
		}
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return fail("%s", streamError(s, err))
	}
	if !cvrfSeen {
		return fail("not a CVRF JSON document: no DocumentTracking, ProductTree or Vulnerability")
	}
	adv, err := b.finish()
	if err != nil {
		return fail("%v", err)
	}
	adv.Format = "MSRC CVRF v3 JSON"
	return adv, nil
}

// addCVRFJSONVulnerability decodes the i-th Vulnerability element and
// folds it into b.
func addCVRFJSONVulnerability(b *advisoryBuilder, i int, raw json.RawMessage) error {
	var v cvrfJSONVulnerability
	if err := decodeElement(raw, &v); err != nil {
		return elementError("Vulnerability", i, raw, err)
	}
	if err := b.add(v.cvrf()); err != nil {
		return elementError("Vulnerability", i, raw, err)
	}
	return nil
}

// cvrf translates the JSON into the CVRF 1.1 model the rules read.
func (v cvrfJSONVulnerability) cvrf() cvrfVulnerability {
	out := cvrfVulnerability{Title: v.Title.Value, CVE: v.CVE}
	for _, t := range v.Threats {
		out.Threats = append(out.Threats, cvrfThreat{Type: enumName(cvrfJSONThreatTypes, t.Type), Description: t.Description.Value, ProductIDs: t.ProductID})
	}
	for _, r := range v.Remediations {
		out.Remediations = append(out.Remediations, cvrfRemediation{
			Type: enumName(cvrfJSONRemediationTypes, r.Type), Description: r.Description.Value, Supercedence: r.Supercedence,
			ProductIDs: r.ProductID, RestartRequired: r.RestartRequired.Value, FixedBuild: r.FixedBuild,
		})
	}
	for _, rev := range v.RevisionHistory {
		out.Revisions = append(out.Revisions, rev.Date)
	}
	return out
}

// enumName is the CVRF 1.1 name of an enumeration's position; a position
// the enumeration does not have keeps its number, and no rule matches it.
func enumName(names []string, n int) string {
	if n >= 0 && n < len(names) {
		return names[n]
	}
	return fmt.Sprintf("Type %d", n)
}

// collectCVRFJSONProducts records the products of a ProductTree's
// branches, at any depth.
func collectCVRFJSONProducts(productName map[string]string, items []cvrfJSONBranch) {
	for _, it := range items {
		if it.ProductID != "" {
			productName[it.ProductID] = strings.TrimSpace(it.Value)
		}
		collectCVRFJSONProducts(productName, it.Items)
	}
}

// elementError names an array element, and its CVE when the element has
// one, in front of what went wrong with it.
func elementError(array string, i int, raw json.RawMessage, err error) error {
	var id struct {
		CVE string `json:"cve"` // encoding/json matches "CVE" too
	}
	_ = json.Unmarshal(raw, &id)
	return fmt.Errorf("%s[%d] (%s): %w", array, i, cmp.Or(strings.TrimSpace(id.CVE), "no CVE"), err)
}

// keyError names the top-level key whose value could not be read.
func keyError(key string, s *jsonStream, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && s.lr.N > 0 {
		return errors.New(s.describe(err, key))
	}
	return fmt.Errorf("%s: %s", key, s.describe(err, ""))
}

// streamError words an error from walking the stream: the size limit and
// malformed JSON first, since they explain any error that follows them.
func streamError(s *jsonStream, err error) string {
	if s.lr.N <= 0 {
		return errTooLarge.Error()
	}
	// The top-level object is open while the stream is walked, so its
	// end here is the document's ending too soon.
	var syn *json.SyntaxError
	if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return s.describe(err, "")
	}
	return err.Error()
}
