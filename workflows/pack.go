package workflows

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"

	"github.com/patchway/patchway/rollout"
)

// packed is what RolloutInput.Packed holds.
type packed struct {
	Hosts []rollout.Host `json:"hosts"`
	Sites []rollout.Site `json:"sites,omitempty"`
	Carry *RolloutCarry  `json:"carry"`
}

// pack builds the next run's input: the rollout and tuning as they are,
// the hosts, sites and state gzipped. Encoding is deterministic (JSON of
// structs and sorted maps, gzip without a timestamp).
func pack(in RolloutInput, st *RolloutCarry) (RolloutInput, error) {
	raw, err := json.Marshal(packed{Hosts: in.Hosts, Sites: in.Sites, Carry: st})
	if err != nil {
		return RolloutInput{}, fmt.Errorf("encode state: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return RolloutInput{}, fmt.Errorf("compress state: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return RolloutInput{}, fmt.Errorf("compress state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return RolloutInput{}, fmt.Errorf("compress state: %w", err)
	}
	return RolloutInput{Rollout: in.Rollout, Tuning: in.Tuning, Packed: buf.Bytes()}, nil
}

// unpack restores a packed input; an input without Packed is returned as
// is.
func unpack(in RolloutInput) (RolloutInput, error) {
	if len(in.Packed) == 0 {
		return in, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(in.Packed))
	if err != nil {
		return in, fmt.Errorf("decompress state: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 1<<30))
	if err != nil {
		return in, fmt.Errorf("decompress state: %w", err)
	}
	var p packed
	if err := json.Unmarshal(raw, &p); err != nil {
		return in, fmt.Errorf("decode state: %w", err)
	}
	in.Hosts, in.Sites, in.Carry, in.Packed = p.Hosts, p.Sites, p.Carry, nil
	return in, nil
}
