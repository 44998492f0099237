package policies

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exactQuantile is the sample of rank ceil(q*n) of sorted.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestStatsQuantilesMatchTheSamplesWithinTheBucketResolution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name    string
		samples func() []time.Duration
	}{
		{"uniform 1µs to 10ms", func() []time.Duration {
			var out []time.Duration
			for range 20000 {
				out = append(out, time.Microsecond+time.Duration(rng.Int64N(int64(10*time.Millisecond))))
			}
			return out
		}},
		{"log-normal around 200µs with a long tail", func() []time.Duration {
			var out []time.Duration
			for range 20000 {
				out = append(out, time.Duration(200e3*math.Exp(rng.NormFloat64())))
			}
			return out
		}},
		{"99 fast decisions and one slow one: p99 is fast", func() []time.Duration {
			out := slices.Repeat([]time.Duration{time.Millisecond}, 99)
			return append(out, time.Second)
		}},
		{"98 fast decisions and two slow ones: p99 is slow", func() []time.Duration {
			out := slices.Repeat([]time.Duration{time.Millisecond}, 98)
			return append(out, time.Second, time.Second)
		}},
		{"tiny durations are exact", func() []time.Duration {
			return []time.Duration{3, 5, 7, 9, 11, 13, 15, 17, 19, 21}
		}},
		{"a single decision", func() []time.Duration { return []time.Duration{1234567} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := tt.samples()
			s := NewStats()
			for _, d := range samples {
				s.Record(DecisionCompliance, d)
			}
			got := s.Report().Decisions[DecisionCompliance]
			sorted := slices.Clone(samples)
			slices.Sort(sorted)
			var total time.Duration
			for _, d := range samples {
				total += d
			}
			if got.Count != int64(len(samples)) || got.Total != total || got.Max != sorted[len(sorted)-1] {
				t.Errorf("count %d total %s max %s, want %d %s %s", got.Count, got.Total, got.Max, len(samples), total, sorted[len(sorted)-1])
			}
			for _, c := range []struct {
				q   float64
				got time.Duration
			}{{0.50, got.P50}, {0.99, got.P99}} {
				want := exactQuantile(sorted, c.q)
				// Half a bucket: 1/64 of the value, and exact below 32ns.
				if diff := math.Abs(float64(c.got - want)); diff > float64(want)/64 {
					t.Errorf("p%.0f = %s, want %s within 1/64", c.q*100, c.got, want)
				}
			}
		})
	}
}

func TestStatsBucketsTileTheDurations(t *testing.T) {
	prevEnd := int64(0)
	for i := range numBuckets {
		low, width := bucketBounds(i)
		if low != prevEnd {
			t.Fatalf("bucket %d starts at %d, want %d (gap or overlap)", i, low, prevEnd)
		}
		if bucketOf(low) != i || bucketOf(low+width-1) != i {
			t.Fatalf("bucket %d [%d,%d): bucketOf gives %d and %d", i, low, low+width, bucketOf(low), bucketOf(low+width-1))
		}
		prevEnd = low + width
		if prevEnd < 0 { // the last bucket ends past MaxInt64
			break
		}
	}
	if got := bucketOf(math.MaxInt64); got >= numBuckets {
		t.Errorf("bucketOf(MaxInt64) = %d, out of %d buckets", got, numBuckets)
	}
}

func TestStatsAreSafeForConcurrentDecisionsAndReports(t *testing.T) {
	s := NewStats()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				s.Record(Decisions[g%len(Decisions)], time.Duration(i)*time.Microsecond)
				if i%100 == 0 {
					_ = s.Report()
				}
			}
		}()
	}
	wg.Wait()
	r := s.Report()
	if r.Overall.Count != 8000 {
		t.Errorf("overall count %d, want 8000", r.Overall.Count)
	}
	var sum int64
	for _, d := range r.Decisions {
		sum += d.Count
	}
	if sum != 8000 {
		t.Errorf("per-decision counts sum to %d, want 8000", sum)
	}
	s.Record("no-such-decision", time.Second)
	if s.Report().Overall.Count != 8000 {
		t.Error("an unknown decision name was counted")
	}
}

func TestEngineWithStatsRecordsEachDecisionAndLeavesTheOriginalAlone(t *testing.T) {
	e, err := Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStats()
	counted := e.WithStats(s)
	in := benchComplianceInput()
	for range 3 {
		if _, err := counted.Compliance(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Compliance(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := counted.Eval(context.Background(), DecisionReboot, benchRebootInput()); err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	if got := r.Decisions[DecisionCompliance]; got.Count != 3 || got.P50 <= 0 || got.P99 < got.P50 {
		t.Errorf("compliance %+v, want 3 decisions with p50 > 0 and p99 >= p50", got)
	}
	if got := r.Decisions[DecisionReboot].Count; got != 1 {
		t.Errorf("reboot decisions %d, want 1 (through Eval)", got)
	}
	if counted.Revision() != e.Revision() {
		t.Error("the engine with stats has another revision")
	}
}
