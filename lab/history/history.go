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
	// Outcome is what an inject or action achieved when it can end in more
	// than one expected way ("refused", "purged"); see lab.Outcomer.
	Outcome string `json:"outcome,omitempty"`
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

// History is safe for concurrent use. Operations are stored compactly
// (strings interned, times as integers): a day of modelled time at ten probes
// a second is close to a million operations.
type History struct {
	mu     sync.Mutex
	ops    []rec
	sorted bool // ops are in call-time order
	strs   []string
	idx    map[string]uint32
	writes []string // write IDs: unique, so not interned (rec.write indexes this, 0 = none)
	states []StateChange
	events []Event
	lost   []Lost
}

// rec is one stored operation (64 bytes); string fields index History.strs.
type rec struct {
	call, ret                               int64
	probe, kind, target, region, path, code uint32
	err, pool, part, kv, write              uint32
	ok                                      bool
}

// New returns an empty history.
func New() *History { return NewSized(0) }

// NewSized returns an empty history with room for about n operations, so a
// long run does not grow (and copy) its storage repeatedly.
func NewSized(n int) *History {
	return &History{sorted: true, ops: make([]rec, 0, n), strs: []string{""}, idx: map[string]uint32{"": 0}, writes: []string{""}}
}

func (h *History) intern(s string) uint32 {
	if i, ok := h.idx[s]; ok {
		return i
	}
	i := uint32(len(h.strs))
	h.strs = append(h.strs, s)
	h.idx[s] = i
	return i
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Add appends an operation and returns its sequence number: operations are
// numbered in the order they are added, from 1.
func (h *History) Add(o Op) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := rec{call: nanos(o.Call), ret: nanos(o.Return), ok: o.OK,
		probe: h.intern(o.Probe), kind: h.intern(o.Kind), target: h.intern(o.Target), region: h.intern(o.Region),
		path: h.intern(o.Path), code: h.intern(o.Code), err: h.intern(o.Error), pool: h.intern(o.Pool),
		part: h.intern(o.Partition), kv: h.intern(o.KeyVersion)}
	if o.WriteID != "" {
		r.write = uint32(len(h.writes))
		h.writes = append(h.writes, o.WriteID)
	}
	if n := len(h.ops); n > 0 && r.call < h.ops[n-1].call {
		h.sorted = false
	}
	h.ops = append(h.ops, r)
	return int64(len(h.ops))
}

func (h *History) op(i int, r rec) Op {
	return Op{Seq: int64(i) + 1, Probe: h.strs[r.probe], Kind: h.strs[r.kind], Target: h.strs[r.target], Region: h.strs[r.region],
		Path: h.strs[r.path], Call: fromNanos(r.call), Return: fromNanos(r.ret), OK: r.ok, Code: h.strs[r.code], Error: h.strs[r.err],
		Pool: h.strs[r.pool], Partition: h.strs[r.part], KeyVersion: h.strs[r.kv], WriteID: h.writes[r.write]}
}

// sortLocked puts the operations in call-time order, keeping append order
// for equal times.
func (h *History) sortLocked() {
	if !h.sorted {
		sort.SliceStable(h.ops, func(i, j int) bool { return h.ops[i].call < h.ops[j].call })
		h.sorted = true
	}
}

// Each calls f for every operation in call-time order (then append order)
// until f returns false. It holds the history's lock: f must not call the
// history.
func (h *History) Each(f func(Op) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sortLocked()
	for i, r := range h.ops {
		if !f(h.op(i, r)) {
			return
		}
	}
}

// Index is a read-only view of the operations for metrics: per target, the
// positions of its operations in call-time order. It shares the history's
// storage; take it after the run, when nothing is added any more.
type Index struct {
	ops      []rec
	strs     []string
	ByTarget map[string][]int32
}

// Index builds the view.
func (h *History) Index() *Index {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sortLocked()
	ix := &Index{ops: h.ops, strs: h.strs, ByTarget: map[string][]int32{}}
	counts := map[uint32]int{}
	for _, r := range h.ops {
		counts[r.target]++
	}
	for t, n := range counts {
		ix.ByTarget[h.strs[t]] = make([]int32, 0, n)
	}
	for i, r := range h.ops {
		t := h.strs[r.target]
		ix.ByTarget[t] = append(ix.ByTarget[t], int32(i))
	}
	return ix
}

// CallNs is operation i's call time in Unix nanoseconds.
func (ix *Index) CallNs(i int32) int64 { return ix.ops[i].call }

// Latency is operation i's return minus call time.
func (ix *Index) Latency(i int32) time.Duration { return time.Duration(ix.ops[i].ret - ix.ops[i].call) }

// OK reports whether operation i succeeded.
func (ix *Index) OK(i int32) bool { return ix.ops[i].ok }

// Kind is operation i's probe kind.
func (ix *Index) Kind(i int32) string { return ix.strs[ix.ops[i].kind] }

// Code is operation i's error code.
func (ix *Index) Code(i int32) string { return ix.strs[ix.ops[i].code] }

// Ops returns the operations ordered by call time, then append order.
func (h *History) Ops() []Op {
	var out []Op
	h.Each(func(o Op) bool { out = append(out, o); return true })
	return out
}

// Len returns the number of operations.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
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
	var err error
	h.Each(func(o Op) bool {
		err = enc.Encode(record{Op: &o})
		return err == nil
	})
	if err != nil {
		return err
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
			h.Add(*rec.Op)
		case rec.State != nil:
			h.State(*rec.State)
		case rec.Event != nil:
			h.Event(*rec.Event)
		case rec.Lost != nil:
			h.LostWrite(*rec.Lost)
		default:
			return nil, fmt.Errorf("history record %d: empty", line)
		}
	}
}
