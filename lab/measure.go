package lab

import (
	"math"
	"sort"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/hsmlab/hsmlab/lab/history"
	"github.com/hsmlab/hsmlab/topology"
)

// Phases of a run, split by the fault timeline: before the first fault is
// injected, while faults are active (first inject to last revert), and after.
const (
	PhaseBefore = "before"
	PhaseDuring = "during"
	PhaseAfter  = "after"
	PhaseAll    = "all"
)

// Phases lists the phases in order.
var Phases = []string{PhaseBefore, PhaseDuring, PhaseAfter}

// Outage is an interval in which a target's probes failed.
type Outage struct {
	Start, End time.Time
	Recovered  bool // false: still failing when the run ended
}

// Duration of the outage.
func (o Outage) Duration() time.Duration { return o.End.Sub(o.Start) }

// measure answers metric questions from a history only. It reads the
// history's operations in place (a day of probes is about a million of
// them).
type measure struct {
	start, end           time.Time
	faultStart, faultEnd time.Time
	ix                   *history.Index
	byTarget             map[string][]int32
	states               []history.StateChange
	events               []history.Event
	lost                 []history.Lost
	// noData collects what an expectation asked for that the history did
	// not have (the verdict is then inconclusive).
	noData []string
}

func newMeasure(h *history.History, start, end time.Time) *measure {
	ix := h.Index()
	m := &measure{start: start, end: end, faultStart: end, faultEnd: end, ix: ix, byTarget: ix.ByTarget}
	m.states = h.States()
	m.events = h.Events()
	m.lost = h.LostWrites()
	first := true
	for _, e := range h.Events() {
		if e.Phase != history.PhaseInject && e.Phase != history.PhaseRevert && e.Phase != history.PhaseAction {
			continue
		}
		if first {
			m.faultStart, m.faultEnd, first = e.Time, e.Time, false
		}
		if e.Time.Before(m.faultStart) {
			m.faultStart = e.Time
		}
		if e.Time.After(m.faultEnd) {
			m.faultEnd = e.Time
		}
	}
	if m.faultEnd.Equal(m.faultStart) && !first {
		// A single instantaneous event (an irreversible fault, an action):
		// "during" runs from it to the end of the run.
		m.faultEnd = end
	}
	return m
}

// window returns the time range of a phase.
func (m *measure) window(phase string) (time.Time, time.Time) {
	switch phase {
	case PhaseBefore:
		return m.start, m.faultStart
	case PhaseDuring:
		return m.faultStart, m.faultEnd
	case PhaseAfter:
		return m.faultEnd, m.end
	}
	return m.start, m.end
}

// each calls f with the index of every operation of the target, of a kind
// ("" for all), whose call time falls in the phase.
func (m *measure) each(target, phase, kind string, f func(int32)) {
	fromT, toT := m.window(phase)
	from, to := fromT.UnixNano(), toT.UnixNano()
	ops := m.byTarget[target]
	i := sort.Search(len(ops), func(i int) bool { return m.ix.CallNs(ops[i]) >= from })
	for ; i < len(ops) && m.ix.CallNs(ops[i]) < to; i++ {
		if kind == "" || m.ix.Kind(ops[i]) == kind {
			f(ops[i])
		}
	}
}

// count returns how many of the target's operations fall in the phase.
func (m *measure) count(target, phase, kind string) int {
	n := 0
	m.each(target, phase, kind, func(int32) { n++ })
	return n
}

func (m *measure) callTime(i int32) time.Time { return time.Unix(0, m.ix.CallNs(i)).UTC() }

// availability is the fraction of successful operations; NaN without data.
func (m *measure) availability(target, phase, kind string) float64 {
	n, ok := 0, 0
	m.each(target, phase, kind, func(i int32) {
		n++
		if m.ix.OK(i) {
			ok++
		}
	})
	if n == 0 {
		return math.NaN()
	}
	return float64(ok) / float64(n)
}

// outages returns the intervals in which the target's operations failed:
// from the first failed operation to the next successful one.
func (m *measure) outages(target string) []Outage {
	var out []Outage
	var cur *Outage
	for _, i := range m.byTarget[target] {
		switch ok := m.ix.OK(i); {
		case !ok && cur == nil:
			cur = &Outage{Start: m.callTime(i)}
		case ok && cur != nil:
			cur.End, cur.Recovered = m.callTime(i), true
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.End = m.end
		out = append(out, *cur)
	}
	return out
}

func (m *measure) downtime(target string) time.Duration {
	var d time.Duration
	for _, o := range m.outages(target) {
		d += o.Duration()
	}
	return d
}

// rto is the longest outage: the time to recover from the worst interruption.
func (m *measure) rto(target string) time.Duration {
	var d time.Duration
	for _, o := range m.outages(target) {
		d = max(d, o.Duration())
	}
	return d
}

// detect is the time from the first fault to the target's first failure
// after it; -1 when the target never failed.
func (m *measure) detect(target string) time.Duration {
	for _, i := range m.byTarget[target] {
		if !m.ix.OK(i) && m.ix.CallNs(i) >= m.faultStart.UnixNano() {
			return m.callTime(i).Sub(m.faultStart)
		}
	}
	return -1
}

func (m *measure) writesLost(target string) int {
	n := 0
	for _, l := range m.lost {
		if l.Target == target {
			n++
		}
	}
	return n
}

// rpo is the span of acknowledged writes that were lost: from the earliest
// lost write to the latest (zero when none or one was lost).
func (m *measure) rpo(target string) time.Duration {
	var first, last time.Time
	for _, l := range m.lost {
		if l.Target != target {
			continue
		}
		if first.IsZero() || l.Acked.Before(first) {
			first = l.Acked
		}
		if l.Acked.After(last) {
			last = l.Acked
		}
	}
	return last.Sub(first)
}

// latency returns the percentile of successful operations' latencies.
func (m *measure) latency(target, phase, kind string, q float64) (time.Duration, bool) {
	h := m.histogram(target, phase, kind)
	if h.TotalCount() == 0 {
		return 0, false
	}
	return time.Duration(h.ValueAtQuantile(q*100)) * time.Microsecond, true
}

func (m *measure) histogram(target, phase, kind string) *hdr.Histogram {
	h := hdr.New(1, int64(time.Hour/time.Microsecond), 3)
	m.each(target, phase, kind, func(i int32) {
		if m.ix.OK(i) {
			_ = h.RecordValue(max(1, m.ix.Latency(i).Microseconds()))
		}
	})
	return h
}

func (m *measure) errorsByCode(target string) map[string]int {
	out := map[string]int{}
	for _, i := range m.byTarget[target] {
		if !m.ix.OK(i) {
			out[m.ix.Code(i)]++
		}
	}
	return out
}

// timeline returns the state intervals of a resource.
func (m *measure) stateTime(resource, state string) (time.Duration, bool) {
	var d time.Duration
	seen := false
	cur, since := "", m.start
	for _, s := range m.states {
		if s.Resource != resource {
			continue
		}
		seen = true
		if cur == "" {
			cur = s.From
		}
		if cur == state {
			d += s.Time.Sub(since)
		}
		cur, since = s.To, s.Time
	}
	if cur == state {
		d += m.end.Sub(since)
	}
	return d, seen
}

func (m *measure) finalState(resource string) string {
	final := ""
	for _, s := range m.states {
		if s.Resource == resource {
			final = s.To
		}
	}
	return final
}

func (m *measure) everIn(resource, state string) bool {
	for _, s := range m.states {
		if s.Resource == resource && (s.To == state || s.From == state) {
			return true
		}
	}
	return false
}

// targets returns every probed target, sorted.
func (m *measure) targets() []string {
	out := make([]string, 0, len(m.byTarget))
	for t := range m.byTarget {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// isHSMTarget reports whether the target's ops are HSM probes.
func (m *measure) kindOf(target string) string {
	for _, i := range m.byTarget[target] {
		return m.ix.Kind(i)
	}
	return ""
}

var _ = topology.ProbeHSMUnwrap

// stepOutcome reports whether a timeline entry ran and whether every one of
// its injects, reverts or actions succeeded.
func (m *measure) stepOutcome(name string) (ran, ok bool) {
	ok = true
	for _, e := range m.events {
		if e.Name != name {
			continue
		}
		ran = true
		if e.Error != "" {
			ok = false
		}
	}
	return ran, ok
}

// stepResult returns the outcome recorded by a timeline entry's last inject
// or action (see Outcomer) and whether the entry ran.
func (m *measure) stepResult(name string) (outcome string, ran bool) {
	for _, e := range m.events {
		if e.Name != name || e.Phase == history.PhaseRevert {
			continue
		}
		ran = true
		outcome = e.Outcome
	}
	return outcome, ran
}
