package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Virtual is a deterministic event-queue clock. Time stands still until the
// owner advances it with Step, RunUntil or Advance; scheduled functions then
// run synchronously, in order of due time and, for equal times, in the order
// they were scheduled. The same sequence of calls therefore always produces
// the same sequence of events.
//
// Virtual is safe for concurrent use, but functions run on the goroutine that
// advances the clock, one at a time.
type Virtual struct {
	mu   sync.Mutex
	now  time.Time
	seq  uint64
	q    eventQueue
	fire sync.Mutex // held while functions run, so advances do not interleave
}

// Epoch is the default start of virtual time: fixed so results are
// reproducible.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewVirtual returns a virtual clock that starts at start (Epoch if zero).
func NewVirtual(start time.Time) *Virtual {
	if start.IsZero() {
		start = Epoch
	}
	return &Virtual{now: start}
}

// Now returns the current virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// AfterFunc schedules f at now+d.
func (v *Virtual) AfterFunc(d time.Duration, f func()) Timer {
	if d < 0 {
		d = 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seq++
	e := &event{at: v.now.Add(d), seq: v.seq, f: f, v: v, index: -1}
	heap.Push(&v.q, e)
	return e
}

// Pending returns the number of scheduled functions that have not run.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.q)
}

// Next returns the due time of the earliest scheduled function.
func (v *Virtual) Next() (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.q) == 0 {
		return time.Time{}, false
	}
	return v.q[0].at, true
}

// Step runs the earliest scheduled function, moving time to its due time. It
// reports false when nothing is scheduled.
func (v *Virtual) Step() bool {
	v.fire.Lock()
	defer v.fire.Unlock()
	return v.step(time.Time{}, false)
}

// RunUntil runs, in order, every function due at or before t (including those
// scheduled by the functions themselves), then sets the time to t. Time never
// goes backwards: a t before now only runs what is already due.
func (v *Virtual) RunUntil(t time.Time) {
	v.fire.Lock()
	defer v.fire.Unlock()
	for v.step(t, true) {
	}
	v.mu.Lock()
	if t.After(v.now) {
		v.now = t
	}
	v.mu.Unlock()
}

// Advance is RunUntil(Now()+d).
func (v *Virtual) Advance(d time.Duration) { v.RunUntil(v.Now().Add(d)) }

func (v *Virtual) step(limit time.Time, bounded bool) bool {
	v.mu.Lock()
	if len(v.q) == 0 || (bounded && v.q[0].at.After(limit)) {
		v.mu.Unlock()
		return false
	}
	e := heap.Pop(&v.q).(*event)
	if e.at.After(v.now) {
		v.now = e.at
	}
	v.mu.Unlock()
	e.f()
	return true
}

type event struct {
	at    time.Time
	seq   uint64
	f     func()
	v     *Virtual
	index int
}

func (e *event) Stop() bool {
	e.v.mu.Lock()
	defer e.v.mu.Unlock()
	if e.index < 0 {
		return false
	}
	heap.Remove(&e.v.q, e.index)
	return true
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *eventQueue) Push(x any) {
	e := x.(*event)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*q = old[:n-1]
	return e
}
