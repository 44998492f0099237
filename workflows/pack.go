package workflows

import (
	"encoding/json"
	"fmt"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/contract/gzjson"
	"github.com/patchway/patchway/rollout"
)

// packed is what RolloutInput.Packed holds.
type packed struct {
	Hosts []rollout.Host `json:"hosts"`
	Sites []rollout.Site `json:"sites,omitempty"`
	Carry *RolloutCarry  `json:"carry"`
}

// pack builds the next run's input: the rollout and tuning as they are,
// the hosts, sites and state gzipped. Encoding is deterministic (gzjson).
func pack(in RolloutInput, st *RolloutCarry) (RolloutInput, error) {
	blob, err := gzjson.Marshal(packed{Hosts: in.Hosts, Sites: in.Sites, Carry: st})
	if err != nil {
		return RolloutInput{}, fmt.Errorf("pack state: %w", err)
	}
	return RolloutInput{Rollout: in.Rollout, Tuning: in.Tuning, Packed: blob}, nil
}

// unpack restores a packed input; an input without Packed is returned as
// is.
func unpack(in RolloutInput) (RolloutInput, error) {
	if len(in.Packed) == 0 {
		return in, nil
	}
	var p packed
	if err := gzjson.Unmarshal(in.Packed, &p); err != nil {
		return in, fmt.Errorf("unpack state: %w", err)
	}
	in.Hosts, in.Sites, in.Carry, in.Packed = p.Hosts, p.Sites, p.Carry, nil
	return in, nil
}

// PackStart returns the input a client starts a rollout with: in itself,
// or, when its hosts and sites are over contract.InlineLimit as JSON,
// with them gzipped into Packed. The server refuses a payload over 2 MB,
// and 10,000 hosts are about 3 MB of JSON (some 200 KB gzipped). Compute
// StartOptions from in, not from the result: they count its hosts.
func PackStart(in RolloutInput) (RolloutInput, error) {
	if len(in.Packed) > 0 {
		return in, nil
	}
	raw, err := json.Marshal(packed{Hosts: in.Hosts, Sites: in.Sites})
	if err != nil {
		return RolloutInput{}, fmt.Errorf("encode hosts: %w", err)
	}
	if len(raw) <= contract.InlineLimit {
		return in, nil
	}
	return pack(in, nil)
}
