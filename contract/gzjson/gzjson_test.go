package gzjson

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

type sample struct {
	Name   string         `json:"name"`
	Counts map[string]int `json:"counts"`
}

func TestMarshal(t *testing.T) {
	v := sample{Name: strings.Repeat("WS-EMEA-0001 ", 100), Counts: map[string]int{"z": 1, "a": 2, "m": 3}}
	tests := []struct {
		name  string
		check func(t *testing.T, a, b []byte)
	}{
		{"the same value gives the same bytes (workflow code replays it)", func(t *testing.T, a, b []byte) {
			if !bytes.Equal(a, b) {
				t.Errorf("two encodings differ: %d and %d bytes", len(a), len(b))
			}
		}},
		{"repetitive JSON shrinks", func(t *testing.T, a, _ []byte) {
			if len(a) > 200 {
				t.Errorf("encoded %d bytes, want well under the 1,300 bytes of JSON", len(a))
			}
		}},
		{"what is encoded decodes to the same value", func(t *testing.T, a, _ []byte) {
			var got sample
			if err := Unmarshal(a, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != v.Name || len(got.Counts) != 3 || got.Counts["m"] != 3 {
				t.Errorf("decoded %+v", got)
			}
		}},
	}
	a, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, a, b) })
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	encoded, err := Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	truncated := encoded[:len(encoded)-4] // cut the gzip trailer
	var text bytes.Buffer
	zw := gzip.NewWriter(&text)
	if _, err := zw.Write([]byte("not json")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"bytes that are not gzip", []byte("plain text"), "gunzip"},
		{"a truncated stream", truncated, "gunzip"},
		{"gzip of something that is not JSON", text.Bytes(), "decode JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v sample
			err := Unmarshal(tt.data, &v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Unmarshal error = %v, want one about %q", err, tt.want)
			}
		})
	}
}
