package lab

import (
	"math"
	"time"

	"github.com/hsmlab/hsmlab/topology"
)

// TargetSummary is what the history says about one probed target.
type TargetSummary struct {
	Target string
	Kind   string // the probe kind(s) ("sql-query+sql-write")
	// Availability per phase (before, during, after, all); a phase without
	// operations is absent.
	Availability map[string]float64
	Ops          int
	Failures     int
	Downtime     time.Duration
	RTO          time.Duration // longest outage
	Detect       time.Duration // -1: never failed
	Recovered    bool          // false: failing when the run ended
	Outages      []Outage
	WritesLost   int
	RPO          time.Duration
	Errors       map[string]int
}

// LatencySummary is unwrap latency from one client region in one phase.
type LatencySummary struct {
	Region             string
	Phase              string
	Count              int64
	P50, P95, P99, Max time.Duration
}

// Summary is the run's metrics, computed from the history only.
type Summary struct {
	FaultStart, FaultEnd time.Duration // offsets of the "during" window
	Targets              []TargetSummary
	Latency              []LatencySummary
}

// Summarize computes the run's metrics from its history.
func (r *Run) Summarize() Summary {
	m := r.measure()
	s := Summary{FaultStart: m.faultStart.Sub(m.start), FaultEnd: m.faultEnd.Sub(m.start)}
	for _, t := range m.targets() {
		ts := TargetSummary{Target: t, Availability: map[string]float64{}, Errors: m.errorsByCode(t)}
		kinds := map[string]bool{}
		for _, i := range m.byTarget[t] {
			ts.Ops++
			if !m.ix.OK(i) {
				ts.Failures++
			}
			if k := m.ix.Kind(i); !kinds[k] {
				if ts.Kind != "" {
					ts.Kind += "+"
				}
				ts.Kind += k
				kinds[k] = true
			}
		}
		for _, ph := range append(Phases, PhaseAll) {
			if a := m.availability(t, ph, ""); !math.IsNaN(a) {
				ts.Availability[ph] = a
			}
		}
		ts.Outages = m.outages(t)
		ts.Downtime, ts.RTO, ts.Detect = m.downtime(t), m.rto(t), m.detect(t)
		ts.Recovered = len(ts.Outages) == 0 || ts.Outages[len(ts.Outages)-1].Recovered
		ts.WritesLost, ts.RPO = m.writesLost(t), m.rpo(t)
		s.Targets = append(s.Targets, ts)
		if kinds[topology.ProbeHSMUnwrap] {
			for _, ph := range append(Phases, PhaseAll) {
				h := m.histogram(t, ph, topology.ProbeHSMUnwrap)
				if h.TotalCount() == 0 {
					continue
				}
				us := func(q float64) time.Duration { return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond }
				s.Latency = append(s.Latency, LatencySummary{Region: t, Phase: ph, Count: h.TotalCount(),
					P50: us(50), P95: us(95), P99: us(99), Max: time.Duration(h.Max()) * time.Microsecond})
			}
		}
	}
	return s
}
