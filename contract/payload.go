package contract

import (
	"encoding/json"
	"fmt"

	"github.com/patchway/patchway/contract/gzjson"
	"github.com/patchway/patchway/rollout"
)

// InlineLimit is the largest JSON, in bytes, that a report's host list or
// a report input's hosts and verdicts keep in plain form. Above it they
// travel gzipped: the server warns from 512 KB per payload and refuses
// more than 2 MB, and a 10,000-host list is several megabytes of JSON.
// Half the warning level leaves room for the rest of the payload.
const InlineLimit = 256 << 10

// Compact moves the host list into HostsGzip when its JSON is over
// InlineLimit, so the report fits in a workflow result; a small list
// stays plain, readable in the Web UI.
func (r Report) Compact() (Report, error) {
	if len(r.Hosts) == 0 {
		return r, nil
	}
	raw, err := json.Marshal(r.Hosts)
	if err != nil {
		return r, fmt.Errorf("encode host list: %w", err)
	}
	if len(raw) <= InlineLimit {
		return r, nil
	}
	blob, err := gzjson.Marshal(r.Hosts)
	if err != nil {
		return r, fmt.Errorf("compress host list: %w", err)
	}
	r.Hosts, r.HostsGzip = nil, blob
	return r, nil
}

// HostList is every host's line, plain or gzipped.
func (r Report) HostList() ([]HostReport, error) {
	if len(r.HostsGzip) == 0 {
		return r.Hosts, nil
	}
	var hosts []HostReport
	if err := gzjson.Unmarshal(r.HostsGzip, &hosts); err != nil {
		return nil, fmt.Errorf("read host list of report %s: %w", r.RolloutID, err)
	}
	return hosts, nil
}

// Expanded is the report with its host list in Hosts, never gzipped: what
// people and scripts read.
func (r Report) Expanded() (Report, error) {
	hosts, err := r.HostList()
	if err != nil {
		return r, err
	}
	r.Hosts, r.HostsGzip = hosts, nil
	return r, nil
}

// packedReportInput is what ReportInput.Packed holds.
type packedReportInput struct {
	Hosts    []rollout.Host `json:"hosts"`
	Verdicts []HostVerdict  `json:"verdicts"`
}

// Pack gzips the hosts and verdicts into Packed when their JSON is over
// InlineLimit, and returns a small input as is. It is deterministic
// (gzjson), so workflow code may call it.
func (in ReportInput) Pack() (ReportInput, error) {
	if len(in.Packed) > 0 {
		return in, nil
	}
	p := packedReportInput{Hosts: in.Hosts, Verdicts: in.Verdicts}
	raw, err := json.Marshal(p)
	if err != nil {
		return in, fmt.Errorf("encode report input: %w", err)
	}
	if len(raw) <= InlineLimit {
		return in, nil
	}
	blob, err := gzjson.Marshal(p)
	if err != nil {
		return in, fmt.Errorf("pack report input: %w", err)
	}
	in.Hosts, in.Verdicts, in.Packed = nil, nil, blob
	return in, nil
}

// Unpack restores the hosts and verdicts of a packed input; an input that
// is not packed is returned as is.
func (in ReportInput) Unpack() (ReportInput, error) {
	if len(in.Packed) == 0 {
		return in, nil
	}
	var p packedReportInput
	if err := gzjson.Unmarshal(in.Packed, &p); err != nil {
		return in, fmt.Errorf("unpack report input: %w", err)
	}
	in.Hosts, in.Verdicts, in.Packed = p.Hosts, p.Verdicts, nil
	return in, nil
}
