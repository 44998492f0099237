package threat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// sniffSize bounds what ReadAdvisory reads ahead to tell the formats
// apart: a JSON document names its kind in its first keys, and a reader
// that had to read further would hold the whole document to decide.
const sniffSize = 64 << 10

// ReadAdvisory reads an advisory in any of the formats the readers take,
// telling them apart by their first bytes: XML is MSRC's CVRF 1.1
// (ReadCVRF), and a JSON object is CSAF 2.0 (ReadCSAF) when its first
// known key is CSAF's ("document") or MSRC's CVRF v3 JSON (ReadCVRFJSON)
// when it is CVRF's ("DocumentTitle", "DocumentTracking", ...). It reads
// ahead at most 64 KiB to decide, and leaves the rest to the reader,
// which streams it.
func ReadAdvisory(r io.Reader, name string, products map[string]string) (Advisory, error) {
	br := bufio.NewReaderSize(r, sniffSize)
	skipBOM(br)
	first, err := firstByte(br)
	if err != nil {
		return Advisory{}, fmt.Errorf("%s: %w", name, err)
	}
	switch first {
	case '<':
		return ReadCVRF(br, name, products)
	case '{':
		prefix, _ := br.Peek(sniffSize)
		kind, err := jsonKind(prefix)
		if err != nil {
			return Advisory{}, fmt.Errorf("%s: %w", name, err)
		}
		if kind == "csaf" {
			return ReadCSAF(br, name, products)
		}
		return ReadCVRFJSON(br, name, products)
	}
	return Advisory{}, fmt.Errorf("%s: %w", name, errNotAnAdvisory)
}

var errNotAnAdvisory = errors.New("neither XML (CVRF) nor JSON (CVRF v3, CSAF 2.0)")

// firstByte is the first byte after white space, left unread.
func firstByte(br *bufio.Reader) (byte, error) {
	for n := 0; n < sniffSize; n++ {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("empty: %w", errNotAnAdvisory)
		}
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, br.UnreadByte()
	}
	return 0, fmt.Errorf("%d KiB of white space: %w", sniffSize>>10, errNotAnAdvisory)
}

// csafKeys are CSAF 2.0's top-level keys.
var csafKeys = []string{"document", "product_tree", "vulnerabilities"}

// jsonKind tells CSAF from CVRF JSON by the first top-level key of either
// in prefix, skipping keys of neither ("$schema").
func jsonKind(prefix []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	if _, err := dec.Token(); err != nil { // the '{' firstByte saw
		return "", err
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", undecided(err, len(prefix))
		}
		key, ok := tok.(string)
		if !ok {
			return "", fmt.Errorf("a JSON object with no key of CSAF 2.0 (%q) or of CVRF (%q, %q, ...): %w", "document", "DocumentTitle", "DocumentTracking", errNotAnAdvisory)
		}
		switch {
		case slices.Contains(csafKeys, key):
			return "csaf", nil
		case slices.Contains(cvrfJSONKeys, key):
			return "cvrf", nil
		}
		if err := skipValue(dec); err != nil {
			return "", undecided(err, len(prefix))
		}
	}
}

// undecided words why the prefix did not tell the format: malformed JSON,
// or no known key in the first 64 KiB.
func undecided(err error, n int) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return errors.New(describeJSONError(err, 0, ""))
	}
	if n >= sniffSize {
		return fmt.Errorf("no top-level key of CSAF 2.0 (%q) or of CVRF (%q, %q, ...) in the first %d KiB: %w", "document", "DocumentTitle", "DocumentTracking", sniffSize>>10, errNotAnAdvisory)
	}
	return errors.New(describeJSONError(io.ErrUnexpectedEOF, int64(n), ""))
}
