// Package history is the record of a run: every probe operation with its
// call and return time and outcome, every service state change, and every
// fault and action. Probes and components only append; checks read only the
// history, so a saved run can be checked again offline (record first, check
// later).
//
// It imports nothing of the project.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Op is one probe operation.
type Op struct {
	Seq    int64     `json:"seq"`
	Probe  string    `json:"probe"`  // probe name, e.g. "sql-query:sqlmi-chennai"
	Kind   string    `json:"kind"`   // hsm-unwrap, sql-query, sql-write, blob-read, blob-write, vm-boot, disk-io
	Target string    `json:"target"` // the workload or region probed
	Region string    `json:"region,omitempty"`
	Path   string    `json:"path,omitempty"` // for HSM probes: how the request travelled, e.g. "pe-hsm-chennai→southindia"
	Call   time.Time `json:"call"`
	Return time.Time `json:"return"`
	OK     bool      `json:"ok"`
	// Code is the error code on failure (KeyDisabled, Forbidden, Unreachable, Inaccessible, ...).
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	// Pool and Partition served an HSM operation; KeyVersion is the version used.
	Pool       string `json:"pool,omitempty"`
	Partition  string `json:"partition,omitempty"`
	KeyVersion string `json:"keyVersion,omitempty"`
	// Write operations: the write's key, so lost writes can be counted.
	WriteID string `json:"writeId,omitempty"`
}

// Latency is Return - Call.
func (o Op) Latency() time.Duration { return o.Return.Sub(o.Call) }

// StateChange is a service changing state (SQL Online → Inaccessible, ...).
type StateChange struct {
	Time     time.Time `json:"time"`
	Resource string    `json:"resource"`
	Kind     string    `json:"kind"` // sqlmi, storage, vm, des, hsm-pool, partition, ...
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason,omitempty"`
}

// Event is a fault injection or revert, or a runbook action.
type Event struct {
	Time   time.Time `json:"time"`
	Name   string    `json:"name"` // the timeline entry's name
	Type   string    `json:"type"` // fault or action type
	Phase  string    `json:"phase"`
	Detail string    `json:"detail,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Event phases.
const (
	PhaseInject = "inject"
	PhaseRevert = "revert"
	PhaseAction = "action"
)

// Lost is an acknowledged write found missing after the run.
type Lost struct {
	Target  string    `json:"target"`
	WriteID string    `json:"writeId"`
	Acked   time.Time `json:"acked"`
}

// History is safe for concurrent appends.
type History struct {
	mu     sync.Mutex
	seq    int64
	ops    []Op
	states []StateChange
	events []Event
	lost   []Lost
}

// New returns an empty history.
func New() *History { return &History{} }

// Add appends an operation and returns its sequence number.
func (h *History) Add(o Op) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	o.Seq = h.seq
	h.ops = append(h.ops, o)
	return o.Seq
}

// State appends a state change.
func (h *History) State(s StateChange) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.states = append(h.states, s)
}

// Event appends a fault or action event.
func (h *History) Event(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

// LostWrite records an acknowledged write that is missing at the end.
func (h *History) LostWrite(l Lost) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lost = append(h.lost, l)
}

// Ops returns the operations ordered by call time, then sequence.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Call.Equal(out[j].Call) {
			return out[i].Call.Before(out[j].Call)
		}
		return out[i].Seq < out[j].Seq
	})
	return out
}

// States returns the state changes in time order.
func (h *History) States() []StateChange {
	h.mu.Lock()
	out := append([]StateChange(nil), h.states...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// Events returns the events in time order.
func (h *History) Events() []Event {
	h.mu.Lock()
	out := append([]Event(nil), h.events...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// LostWrites returns the lost acknowledged writes.
func (h *History) LostWrites() []Lost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Lost(nil), h.lost...)
}

// Len returns the number of operations.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// record is one JSON line of a saved history.
type record struct {
	Op    *Op          `json:"op,omitempty"`
	State *StateChange `json:"state,omitempty"`
	Event *Event       `json:"event,omitempty"`
	Lost  *Lost        `json:"lost,omitempty"`
}

// Save writes the history as JSON lines: events, state changes, lost
// writes, then operations, each in order.
func (h *History) Save(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range h.Events() {
		if err := enc.Encode(record{Event: &e}); err != nil {
			return err
		}
	}
	for _, s := range h.States() {
		if err := enc.Encode(record{State: &s}); err != nil {
			return err
		}
	}
	for _, l := range h.LostWrites() {
		if err := enc.Encode(record{Lost: &l}); err != nil {
			return err
		}
	}
	for _, o := range h.Ops() {
		if err := enc.Encode(record{Op: &o}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Load reads a history written by Save.
func Load(r io.Reader) (*History, error) {
	h := New()
	dec := json.NewDecoder(r)
	for line := 1; ; line++ {
		var rec record
		if err := dec.Decode(&rec); err == io.EOF {
			return h, nil
		} else if err != nil {
			return nil, fmt.Errorf("history record %d: %w", line, err)
		}
		switch {
		case rec.Op != nil:
			h.ops = append(h.ops, *rec.Op)
			if rec.Op.Seq > h.seq {
				h.seq = rec.Op.Seq
			}
		case rec.State != nil:
			h.states = append(h.states, *rec.State)
		case rec.Event != nil:
			h.events = append(h.events, *rec.Event)
		case rec.Lost != nil:
			h.lost = append(h.lost, *rec.Lost)
		default:
			return nil, fmt.Errorf("history record %d: empty", line)
		}
	}
}
