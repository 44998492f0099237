package threat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// jsonStream walks a JSON advisory token by token, so that a reader
// decodes one vulnerability at a time instead of the whole document: a
// month of MSRC's CVRF is megabytes, and memory should follow the fixes
// kept, not the file.
type jsonStream struct {
	dec *json.Decoder
	lr  *io.LimitedReader
}

// newJSONStream reads r up to MaxAdvisorySize, past a UTF-8 byte order
// mark if there is one (encoding/json refuses it, some exporters write it).
func newJSONStream(r io.Reader) *jsonStream {
	lr := &io.LimitedReader{R: r, N: MaxAdvisorySize + 1}
	br := bufio.NewReader(lr)
	skipBOM(br)
	dec := json.NewDecoder(br)
	return &jsonStream{dec: dec, lr: lr}
}

var utf8BOM = []byte("\xef\xbb\xbf")

// skipBOM discards a UTF-8 byte order mark at the start of br.
func skipBOM(br *bufio.Reader) {
	if p, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(p, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
}

// openObject reads the '{' that starts the document.
func (s *jsonStream) openObject() error {
	tok, err := s.dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("the document is %s, not a JSON object", tokenKind(tok))
	}
	return nil
}

// eachKey calls fn for every key of the object just opened, up to its
// '}'; fn consumes the key's value (decode, eachElement or skip).
func (s *jsonStream) eachKey(fn func(key string) error) error {
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s where an object key is expected", tokenKind(tok))
		}
		if err := fn(key); err != nil {
			return err
		}
	}
}

// eachElement calls fn with every element of the array that is the next
// value (the document's key array), one at a time, each as its own
// bytes: a malformed element is reported with its index and byte offset.
func (s *jsonStream) eachElement(array string, fn func(i int, raw json.RawMessage) error) error {
	tok, err := s.dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %s", array, s.describe(err, ""))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%s is %s, not an array", array, tokenKind(tok))
	}
	for i := 0; s.dec.More(); i++ {
		var raw json.RawMessage
		if err := s.dec.Decode(&raw); err != nil {
			return fmt.Errorf("%s[%d]: %s", array, i, s.describe(err, ""))
		}
		if err := fn(i, raw); err != nil {
			return err
		}
	}
	_, err = s.dec.Token() // the closing ']'
	return err
}

// decode reads the next value into v.
func (s *jsonStream) decode(v any) error { return s.dec.Decode(v) }

// skip reads past the next value without keeping it, so that a document
// key the reader has no use for (MSRC's DocumentNotes, a CSAF
// document's notes) costs no memory.
func (s *jsonStream) skip() error { return skipValue(s.dec) }

// end checks that nothing but white space follows the document.
func (s *jsonStream) end() error {
	if _, err := s.dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return fmt.Errorf("data after the end of the document, at byte %d", s.dec.InputOffset())
	}
	return nil
}

// describe says what went wrong reading the stream in a sentence for the
// file's reader: over the size limit, where the JSON is malformed, or
// which field has the wrong JSON type.
func (s *jsonStream) describe(err error, path string) string {
	if s.lr.N <= 0 {
		return errTooLarge.Error()
	}
	return describeJSONError(err, s.dec.InputOffset(), path)
}

// describeJSONError words encoding/json's errors; offset is where the
// stream stood, for a document that ends too soon, and path names the
// value decoded, in front of the field a type error names.
func describeJSONError(err error, offset int64, path string) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not well-formed JSON at byte %d: %v", syn.Offset, syn)
	case (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && offset == 0:
		return "the document is empty"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Sprintf("not well-formed JSON: the document ends at byte %d before it is complete", offset)
	case errors.As(err, &typ):
		field := strings.Trim(path+"."+typ.Field, ".")
		if field == "" {
			field = "the value"
		}
		return fmt.Sprintf("%s is a JSON %s where %s is expected", field, typ.Value, goKind(typ.Type))
	}
	return err.Error()
}

// decodeElement decodes one array element into v, wording a type error.
func decodeElement(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New(describeJSONError(err, int64(len(raw)), ""))
	}
	return nil
}

// skipValue reads past one JSON value token by token, holding no more
// than the token at hand.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// tokenKind names a JSON token for messages.
func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", rune(t))
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// goKind names the JSON a Go type decodes from, for messages.
func goKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return goKind(t.Elem())
	}
	return t.String()
}
