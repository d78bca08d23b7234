// Package results is the result schema of a run and its renderers: a
// terminal summary (tablewriter), result.json, JUnit XML, and the comparison
// of two results. A result is built from a lab.Run and holds everything
// needed to re-check it offline; the same seed and sim run give a
// byte-identical result.json (no wall-clock time is recorded in it).
//
// results imports lab and topology; lab never imports results.
package results

import (
	"encoding/json"
	"io"
	"math"
	"sort"
	"time"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/history"
	"github.com/hsmlab/hsmlab/topology"
)

// SchemaVersion names the result format.
const SchemaVersion = "hsmlab.result/v1"

// Result is the record of one run.
type Result struct {
	Schema   string                `json:"schema"`
	Scenario ScenarioInfo          `json:"scenario"`
	Provider string                `json:"provider"`
	Seed     uint64                `json:"seed"`
	Topology TopologyInfo          `json:"topology"`
	Start    time.Time             `json:"start"`
	Duration Dur                   `json:"duration"`
	Window   Window                `json:"faultWindow"`
	Timeline []history.Event       `json:"timeline"`
	States   []history.StateChange `json:"stateChanges"`
	Targets  []Target              `json:"targets"`
	Latency  []Latency             `json:"unwrapLatency"`
	Checks   []lab.Check           `json:"checks"`
	Verdict  lab.Verdict           `json:"verdict"`
	Notes    []string              `json:"notes,omitempty"`
	Lost     []history.Lost        `json:"lostWrites,omitempty"`

	// TimeScale is the wall clock's compression of modelled time (modelled
	// seconds per wall second) for providers on a scaled wall clock; absent
	// for the sim's virtual clock.
	TimeScale float64 `json:"timeScale,omitempty"`
}

// ScenarioInfo identifies the scenario.
type ScenarioInfo struct {
	Name     string   `json:"name"`
	File     string   `json:"file"`
	Question string   `json:"question"`
	Expected string   `json:"expected"`
	Facts    []string `json:"facts,omitempty"`
	Expect   []string `json:"expect"`
}

// TopologyInfo identifies the topology.
type TopologyInfo struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Window is the "during" phase as offsets from the start.
type Window struct {
	From Dur `json:"from"`
	To   Dur `json:"to"`
}

// Target is one probed workload or HSM client region.
type Target struct {
	Target       string             `json:"target"`
	Kind         string             `json:"kind"`
	Availability map[string]float64 `json:"availability"`
	Ops          int                `json:"ops"`
	Failures     int                `json:"failures"`
	Downtime     Dur                `json:"downtime"`
	RTO          Dur                `json:"rto"`
	Detect       *Dur               `json:"timeToDetect,omitempty"`
	Recovered    bool               `json:"recovered"`
	Outages      []Outage           `json:"outages,omitempty"`
	WritesLost   int                `json:"writesLost"`
	RPO          Dur                `json:"rpo"`
	Errors       map[string]int     `json:"errors,omitempty"`
}

// Outage is an interval of failures, as offsets from the start.
type Outage struct {
	From      Dur  `json:"from"`
	To        Dur  `json:"to"`
	Recovered bool `json:"recovered"`
}

// Latency is unwrap latency from one region in one phase.
type Latency struct {
	Region string `json:"region"`
	Phase  string `json:"phase"`
	Count  int64  `json:"count"`
	P50    Dur    `json:"p50"`
	P95    Dur    `json:"p95"`
	P99    Dur    `json:"p99"`
	Max    Dur    `json:"max"`
}

// Dur is a duration written as Go's duration string ("1m30s").
type Dur time.Duration

// MarshalText writes the duration string.
func (d Dur) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration string.
func (d *Dur) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Dur(v)
	return err
}

// D returns d as a time.Duration.
func (d Dur) D() time.Duration { return time.Duration(d) }

// FromRun builds the result of a run.
func FromRun(r *lab.Run) *Result {
	s := r.Summarize()
	res := &Result{
		Schema: SchemaVersion,
		Scenario: ScenarioInfo{Name: r.Scenario.Name, File: r.Scenario.File, Question: r.Scenario.Question,
			Expected: r.Scenario.Expected, Facts: r.Scenario.Facts, Expect: r.Scenario.Expect},
		Provider: r.Provider,
		Seed:     r.Seed,
		Topology: TopologyInfo{Name: r.Topology.Name, Digest: r.Topology.Digest()},
		Start:    r.Start,
		Duration: Dur(r.Scenario.Duration.D()),
		Window:   Window{From: Dur(s.FaultStart), To: Dur(s.FaultEnd)},
		Timeline: nonNil(r.History.Events()),
		States:   nonNil(r.History.States()),
		Checks:   r.Checks,
		Verdict:  r.Verdict,
		Notes:    r.Notes,
		Lost:     r.History.LostWrites(),
		// TimeScale is 0 (omitted) for the sim: its result stays byte-identical.
		TimeScale: r.TimeScale,
	}
	for _, t := range s.Targets {
		out := Target{Target: t.Target, Kind: t.Kind, Availability: roundAll(t.Availability), Ops: t.Ops, Failures: t.Failures,
			Downtime: Dur(t.Downtime), RTO: Dur(t.RTO), Recovered: t.Recovered, WritesLost: t.WritesLost, RPO: Dur(t.RPO), Errors: t.Errors}
		if t.Detect >= 0 {
			d := Dur(t.Detect)
			out.Detect = &d
		}
		for _, o := range t.Outages {
			out.Outages = append(out.Outages, Outage{From: Dur(o.Start.Sub(r.Start)), To: Dur(o.End.Sub(r.Start)), Recovered: o.Recovered})
		}
		res.Targets = append(res.Targets, out)
	}
	for _, l := range s.Latency {
		res.Latency = append(res.Latency, Latency{Region: l.Region, Phase: l.Phase, Count: l.Count, P50: Dur(l.P50), P95: Dur(l.P95), P99: Dur(l.P99), Max: Dur(l.Max)})
	}
	sort.SliceStable(res.Latency, func(i, j int) bool { return res.Latency[i].Region < res.Latency[j].Region })
	return res
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// roundAll rounds availabilities to 6 decimals so JSON is stable and readable.
func roundAll(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = math.Round(v*1e6) / 1e6
	}
	return out
}

// WriteJSON writes the result as indented JSON (map keys sorted, so the
// output is byte-identical for identical results).
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a result written by WriteJSON.
func ReadJSON(rd io.Reader) (*Result, error) {
	var r Result
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

var _ = topology.ProbeHSMUnwrap
