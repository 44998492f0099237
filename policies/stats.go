package policies

import (
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// Stats counts policy decisions and their latency, per decision name, for
// the benchmark (`patchway worker --policy-stats`). An engine records into
// it once WithStats hands it one; an engine without Stats pays a nil check
// per decision and nothing else.
//
// Latencies go into a fixed-bucket, log-linear histogram (HDR-like: 32
// linear sub-buckets per power of two of nanoseconds), so memory is fixed
// whatever the number of decisions, recording is a few atomic adds, and a
// quantile is within 1/64 (about 1.6 %) of the true sample value. Stats is
// safe for concurrent use.
type Stats struct {
	started time.Time
	// hists is fixed at NewStats (one per decision name), so it is read
	// without a lock.
	hists map[string]*histogram
}

// NewStats returns empty statistics for every decision the engine
// prepares; the clock for the decision rate starts now.
func NewStats() *Stats {
	s := &Stats{started: time.Now(), hists: make(map[string]*histogram, len(Decisions))}
	for _, d := range Decisions {
		s.hists[d] = &histogram{}
	}
	return s
}

// WithStats returns an engine that shares e's compiled policies and
// prepared queries and records every decision's latency in s (nil: none).
// e itself is unchanged.
func (e *Engine) WithStats(s *Stats) *Engine {
	c := *e
	c.stats = s
	return &c
}

// Record adds one decision of the named kind that took d. Names the
// engine does not prepare are ignored.
func (s *Stats) Record(decision string, d time.Duration) {
	if h, ok := s.hists[decision]; ok {
		h.record(d)
	}
}

// observe records a decision that started at start; the engine defers it.
func (s *Stats) observe(decision string, start time.Time) { s.Record(decision, time.Since(start)) }

// StatsReport is a snapshot of Stats, as the worker writes it to its
// --policy-stats file.
type StatsReport struct {
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Decisions are the per-decision figures of every decision taken at
	// least once, by name.
	Decisions map[string]LatencySummary `json:"decisions"`
	// Overall merges every decision.
	Overall LatencySummary `json:"overall"`
}

// LatencySummary describes the latencies of a set of decisions.
type LatencySummary struct {
	Count int64         `json:"count"`
	Total time.Duration `json:"total_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Report snapshots the statistics. Decisions recorded while it runs may
// or may not be included.
func (s *Stats) Report() StatsReport {
	r := StatsReport{Started: s.started, Ended: time.Now(), Decisions: map[string]LatencySummary{}}
	all := &histogram{}
	names := make([]string, 0, len(s.hists))
	for name := range s.hists {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := s.hists[name].snapshot()
		if h.count.Load() == 0 {
			continue
		}
		r.Decisions[name] = h.summary()
		all.merge(h)
	}
	r.Overall = all.summary()
	return r
}

// subBits sets the histogram's resolution: 2^subBits linear sub-buckets
// per power of two.
const subBits = 5

const (
	subCount = 1 << subBits
	// numBuckets covers every non-negative int64 nanosecond count.
	numBuckets = (64 - subBits + 1) * subCount
)

// histogram is a log-linear latency histogram with atomic counters.
type histogram struct {
	count   atomic.Int64
	total   atomic.Int64
	max     atomic.Int64
	buckets [numBuckets]atomic.Int64
}

// bucketOf maps a duration in nanoseconds to its bucket: values below
// subCount have a bucket each; above, each power of two [2^k, 2^(k+1)) is
// cut into subCount equal buckets.
func bucketOf(ns int64) int {
	if ns < subCount {
		return int(max(ns, 0))
	}
	shift := bits.Len64(uint64(ns)) - 1 - subBits
	return (shift+1)<<subBits + int(ns>>shift) - subCount
}

// bucketBounds is the range [low, low+width) of nanoseconds bucket i holds.
func bucketBounds(i int) (low, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	shift := i>>subBits - 1
	return int64(i&(subCount-1)+subCount) << shift, int64(1) << shift
}

func (h *histogram) record(d time.Duration) {
	ns := max(int64(d), 0)
	h.count.Add(1)
	h.total.Add(ns)
	h.buckets[bucketOf(ns)].Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// snapshot copies the histogram, with count recomputed from the buckets
// so that a quantile never looks past the last counted sample.
func (h *histogram) snapshot() *histogram {
	c := &histogram{}
	var n int64
	for i := range h.buckets {
		v := h.buckets[i].Load()
		c.buckets[i].Store(v)
		n += v
	}
	c.count.Store(n)
	c.total.Store(h.total.Load())
	c.max.Store(h.max.Load())
	return c
}

func (h *histogram) merge(o *histogram) {
	for i := range o.buckets {
		if v := o.buckets[i].Load(); v != 0 {
			h.buckets[i].Add(v)
		}
	}
	h.count.Add(o.count.Load())
	h.total.Add(o.total.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// quantile is the q-quantile (0 < q <= 1) of the recorded durations: the
// middle of the bucket holding the sample of rank ceil(q*count), never
// above the largest sample.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			low, width := bucketBounds(i)
			return time.Duration(min(low+(width-1)/2, h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

func (h *histogram) summary() LatencySummary {
	s := LatencySummary{Count: h.count.Load(), Total: time.Duration(h.total.Load()), Max: time.Duration(h.max.Load())}
	if s.Count > 0 {
		s.Mean = s.Total / time.Duration(s.Count)
		s.P50 = h.quantile(0.50)
		s.P99 = h.quantile(0.99)
	}
	return s
}
