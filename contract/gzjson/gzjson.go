// Package gzjson stores large values as gzipped JSON inside Temporal
// payloads: a host list compresses about tenfold, which keeps a 10,000-host
// rollout's continue-as-new input, report input and report far below the
// server's 2 MB payload limit.
//
// Encoding is deterministic: JSON of structs and sorted maps, and gzip
// without a file name or timestamp in its header, so the same value gives
// the same bytes in workflow code on every replay.
package gzjson

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
)

// MaxDecoded bounds what Unmarshal inflates, so a corrupt or hostile blob
// cannot take all the memory of the worker or the CLI.
const MaxDecoded = 1 << 30

// Marshal encodes v as JSON and gzips it at the best compression: the
// blobs travel in history, where bytes cost more than CPU.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("start gzip: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// Unmarshal inflates data (at most MaxDecoded bytes) and decodes its JSON
// into v.
func Unmarshal(data []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxDecoded))
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode JSON: %w", err)
	}
	return nil
}
