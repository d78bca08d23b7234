package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/lab/history"
	"github.com/hsmlab/hsmlab/topology"
)

// DefaultProbeInterval is the interval of probes that do not set one.
const DefaultProbeInterval = time.Minute

// Options configure a run.
type Options struct {
	// Provider brings the topology up.
	Provider topology.Provider
	// Seed overrides the scenario's seed when non-zero.
	Seed uint64
	// Clock drives the run; nil means a virtual clock (the sim).
	Clock clock.Clock
	// DataDir holds the workloads' (encrypted) data; required.
	DataDir string
	// Progress, when set, is called as the run moves through its pipeline.
	Progress func(Progress)
}

// Progress reports where a run is.
type Progress struct {
	Stage   string        // up, health, traffic, revert, checks, done
	Elapsed time.Duration // modelled time since the start of traffic
	Total   time.Duration
	Active  []string // timeline entries in effect
}

// Run is everything a run produced. Checks read only History.
type Run struct {
	Scenario *Scenario
	Topology *topology.Topology
	Provider string
	Seed     uint64
	Start    time.Time
	End      time.Time
	History  *history.History
	Checks   []Check
	Verdict  Verdict
	// Notes are run-level remarks (failed health checks, faults that
	// could not be reverted).
	Notes []string
	// TimeScale is the clock's compression of modelled time (modelled
	// seconds per wall second) on a scaled wall clock; 0 under the virtual
	// clock.
	TimeScale float64
}

// Errors a run reports before it starts.
var (
	ErrBadScenario = errors.New("scenario does not fit the topology")
)

// Execute runs a scenario through the fixed pipeline: up → health check →
// traffic before, during and after each fault → revert → health check →
// history → checks. It returns an error only when the run could not take
// place (bad input, the provider failed to start); a run whose expectations
// fail returns a Run with Verdict Fail.
func Execute(ctx context.Context, sc *Scenario, o Options) (*Run, error) {
	top, err := sc.ResolveTopology()
	if err != nil {
		return nil, err
	}
	// Misconfigurations change the topology before anything comes up.
	for i, st := range sc.Timeline {
		if tf, ok := st.Value.(TopologyFault); ok {
			if err := tf.ApplyTopology(top); err != nil {
				return nil, &topology.Error{File: sc.File, Line: st.line, Column: st.col, Field: fmt.Sprintf("timeline[%d]", i), Msg: err.Error()}
			}
		}
	}
	if errs := top.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("the scenario's misconfiguration makes the topology invalid: %w", errs)
	}
	probes, err := resolveProbes(sc, top)
	if err != nil {
		return nil, err
	}
	for i, st := range sc.Timeline {
		if v, ok := st.Value.(Validator); ok {
			if err := v.Validate(top); err != nil {
				return nil, &topology.Error{File: sc.File, Line: st.line, Column: st.col, Field: fmt.Sprintf("timeline[%d]", i), Msg: err.Error()}
			}
		}
	}
	if chk, ok := o.Provider.(topology.StepChecker); ok {
		// Refuse, before anything comes up, what the provider cannot do.
		for i, st := range sc.Timeline {
			if err := chk.CheckStep(string(st.Kind), st.Type, st.Value); err != nil {
				return nil, &topology.Error{File: sc.File, Line: st.line, Column: st.col, Field: fmt.Sprintf("timeline[%d]", i),
					Msg: fmt.Sprintf("%s %q: %v: %v", st.Kind, st.Type, ErrNotSupported, err)}
			}
		}
	}
	seed := sc.Seed
	if o.Seed != 0 {
		seed = o.Seed
	}
	if seed == 0 {
		seed = 1
	}
	clk := o.Clock
	virt, _ := clk.(*clock.Virtual)
	if clk == nil {
		virt = clock.NewVirtual(time.Time{})
		clk = virt
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	expected := 0
	for _, p := range probes {
		expected += int(sc.Duration.D()/p.Every.D()) + 1
	}
	h := history.NewSized(expected)
	progress := func(p Progress) {
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	run := &Run{Scenario: sc, Topology: top, Provider: o.Provider.Name(), Seed: seed, History: h}
	if scaled, ok := clk.(*clock.Scaled); ok {
		run.TimeScale = scaled.Factor
	}

	progress(Progress{Stage: "up", Total: sc.Duration.D()})
	// State changes are recorded from the start of traffic to its end:
	// bring-up and tear-down are not part of the run.
	var recording atomic.Bool
	env, err := o.Provider.Up(ctx, top, topology.UpOptions{Clock: clk, Rand: rnd, DataDir: o.DataDir, OnState: func(s topology.StateChange) {
		if recording.Load() {
			h.State(history.StateChange{Time: s.Time, Resource: s.Resource, Kind: s.Kind, From: s.From, To: s.To, Reason: s.Reason})
		}
	}})
	if env != nil {
		defer env.Down(context.WithoutCancel(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("%s provider: %w", o.Provider.Name(), err)
	}
	if n, ok := env.(topology.Noter); ok {
		run.Notes = append(run.Notes, n.Notes()...)
	}

	run.Start = clk.Now()
	end := run.Start.Add(sc.Duration.D())
	recording.Store(true)

	// Health check: every probe once, before any traffic is recorded.
	progress(Progress{Stage: "health", Total: sc.Duration.D()})
	if bad := healthCheck(ctx, env, probes); len(bad) > 0 {
		run.Notes = append(run.Notes, "health check before the run failed: "+strings.Join(bad, "; "))
	}

	// Traffic: each probe on its own schedule, staggered within its interval.
	// On a wall clock the health check took time: the timeline and the
	// probes stay anchored at the start (a no-op under the virtual clock).
	r := &runner{ctx: ctx, env: env, clk: clk, h: h, end: end}
	// On a wall clock probes and faults run on timer goroutines: none may
	// start once Execute returns (Ctrl-C included), and those running are
	// waited for.
	defer r.stop()
	for i, p := range probes {
		offset := time.Duration(int64(p.Every.D()) * int64(i) / int64(len(probes)))
		r.scheduleAt(p, run.Start.Add(offset))
	}
	// Timeline.
	active := map[string]bool{}
	var pending []Step // faults to revert at the end
	for _, st := range sc.Timeline {
		st := st
		if _, ok := st.Value.(TopologyFault); ok {
			// Applied before bring-up; recorded as in effect from the start.
			h.Event(history.Event{Time: clk.Now(), Name: st.Name, Type: st.Type, Phase: history.PhaseInject, Detail: describe(st.Value) + " (applied to the topology before the run)"})
			continue
		}
		clk.AfterFunc(run.Start.Add(st.At.D()).Sub(clk.Now()), func() {
			if !r.begin() {
				return
			}
			defer r.inflight.Done()
			r.apply(st, active)
			if st.Kind == KindFault && !isIrreversible(st) {
				if st.Hold > 0 {
					clk.AfterFunc(st.Hold.D(), func() {
						if r.begin() {
							defer r.inflight.Done()
							r.revert(st, active)
						}
					})
				} else {
					r.mu.Lock()
					pending = append(pending, st)
					r.mu.Unlock()
				}
			}
		})
	}

	progress(Progress{Stage: "traffic", Total: sc.Duration.D()})
	if virt != nil {
		// Advance in slices so progress can be reported and ctx honoured.
		step := max(sc.Duration.D()/100, time.Second)
		for t := run.Start; t.Before(end); t = t.Add(step) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			next := t.Add(step)
			if next.After(end) {
				next = end
			}
			virt.RunUntil(next)
			progress(Progress{Stage: "traffic", Elapsed: next.Sub(run.Start), Total: sc.Duration.D(), Active: r.activeNames(active)})
		}
	} else if err := waitUntil(ctx, clk, end, func(el time.Duration) {
		progress(Progress{Stage: "traffic", Elapsed: el, Total: sc.Duration.D(), Active: r.activeNames(active)})
	}, run.Start); err != nil {
		return nil, err
	}
	r.stop()

	progress(Progress{Stage: "revert", Total: sc.Duration.D()})
	r.mu.Lock()
	toRevert := slices.Clone(pending)
	r.mu.Unlock()
	for _, st := range toRevert {
		r.revert(st, active)
	}
	if virt != nil {
		virt.RunUntil(clk.Now()) // run what the reverts scheduled for now
	}
	run.End = clk.Now()
	recording.Store(false)

	progress(Progress{Stage: "health", Total: sc.Duration.D()})
	if bad := healthCheck(ctx, env, probes); len(bad) > 0 {
		run.Notes = append(run.Notes, "health check after the run: "+strings.Join(bad, "; "))
	}
	r.mu.Lock()
	run.Notes = append(run.Notes, r.notes...)
	r.mu.Unlock()

	// Acknowledged writes that did not survive.
	for _, target := range sortedKeys(r.acked) {
		lost, err := env.LostWrites(ctx, target, r.ackedIDs(target))
		if err != nil {
			run.Notes = append(run.Notes, fmt.Sprintf("could not verify writes of %s: %v", target, err))
			continue
		}
		for _, id := range lost {
			h.LostWrite(history.Lost{Target: target, WriteID: id, Acked: r.ackedAt(target, id)})
		}
	}

	progress(Progress{Stage: "checks", Total: sc.Duration.D()})
	run.Checks = evaluate(newMeasure(h, run.Start, end), sc.Expect)
	if ps, ok := env.(topology.PlaintextScanner); ok {
		// The data path never holds a plaintext DEK (seed: "never written to disk").
		c := Check{Expr: "no plaintext DEK in the run's data directory", Verdict: Pass}
		found, err := ps.PlaintextDEKs()
		switch {
		case err != nil:
			c.Verdict, c.Detail = Inconclusive, err.Error()
		case len(found) > 0:
			c.Verdict, c.Measured = Fail, found
		default:
			c.Measured = []string{"0 plaintext DEKs found"}
		}
		run.Checks = append(run.Checks, c)
	}
	run.Verdict = Overall(run.Checks)
	progress(Progress{Stage: "done", Elapsed: sc.Duration.D(), Total: sc.Duration.D()})
	return run, nil
}

// Measure returns the run's measure (for reports).
func (r *Run) measure() *measure {
	return newMeasure(r.History, r.Start, r.Start.Add(r.Scenario.Duration.D()))
}

func isIrreversible(st Step) bool {
	ir, ok := st.Value.(Irreversible)
	return ok && ir.Irreversible()
}

type runner struct {
	ctx     context.Context
	env     topology.Env
	clk     clock.Clock
	h       *history.History
	end     time.Time
	stopped atomic.Bool

	// mu guards what probes and timeline entries share: on a wall clock
	// they run on timer goroutines.
	mu       sync.Mutex
	inflight sync.WaitGroup     // probes and timeline entries running
	acked    map[string][]acked // per target, in acknowledgement order
	notes    []string
}

// begin registers a probe or timeline entry about to run; false once the
// traffic has stopped. A true begin is paired with inflight.Done.
func (r *runner) begin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped.Load() {
		return false
	}
	r.inflight.Add(1)
	return true
}

// stop ends the traffic: nothing new starts, and what runs is waited for.
func (r *runner) stop() {
	r.mu.Lock()
	r.stopped.Store(true)
	r.mu.Unlock()
	r.inflight.Wait()
}

// activeNames lists the timeline entries in effect.
func (r *runner) activeNames(active map[string]bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return keys(active)
}

// acked is an acknowledged write.
type acked struct {
	id string
	at time.Time
}

// scheduleAt runs the probe at due and then every interval after due: at a
// fixed rate, so that on a wall clock neither the probes' own latency nor
// the timers' wake-up delays make the schedule drift.
func (r *runner) scheduleAt(p topology.ProbeSpec, due time.Time) {
	r.clk.AfterFunc(due.Sub(r.clk.Now()), func() {
		if !r.clk.Now().Before(r.end) || !r.begin() {
			return
		}
		defer r.inflight.Done()
		r.probe(p)
		r.scheduleAt(p, due.Add(p.Every.D()))
	})
}

func (r *runner) probe(p topology.ProbeSpec) {
	call := r.clk.Now()
	res := r.env.Probe(r.ctx, p)
	op := history.Op{Probe: p.Type + ":" + p.Target, Kind: p.Type, Target: p.Target, Region: res.Region, Path: res.Path,
		Call: call, Return: call.Add(res.Latency), OK: res.OK, Code: res.Code, Error: res.Err,
		Pool: res.Pool, Partition: res.Partition, KeyVersion: res.KeyVersion, WriteID: res.WriteID}
	if _, virtual := r.clk.(*clock.Virtual); !virtual && res.Latency <= 0 {
		// Wall clock: the measured return time, unless the provider
		// measured the latency itself (on a scaled clock real latencies
		// stay real: they are not multiplied by the time scale).
		op.Return = r.clk.Now()
	}
	r.h.Add(op)
	if res.OK && res.WriteID != "" {
		r.mu.Lock()
		if r.acked == nil {
			r.acked = map[string][]acked{}
		}
		r.acked[p.Target] = append(r.acked[p.Target], acked{id: res.WriteID, at: op.Return})
		r.mu.Unlock()
	}
}

func (r *runner) ackedIDs(target string) []string {
	ids := make([]string, len(r.acked[target]))
	for i, a := range r.acked[target] {
		ids[i] = a.id
	}
	return ids
}

func (r *runner) ackedAt(target, id string) time.Time {
	for _, a := range r.acked[target] {
		if a.id == id {
			return a.at
		}
	}
	return time.Time{}
}

func (r *runner) apply(st Step, active map[string]bool) {
	ev := history.Event{Time: r.clk.Now(), Name: st.Name, Type: st.Type, Detail: describe(st.Value)}
	var err error
	if st.Kind == KindAction {
		ev.Phase = history.PhaseAction
		err = st.Action().Do(r.ctx, r.env)
	} else {
		ev.Phase = history.PhaseInject
		err = st.Fault().Inject(r.ctx, r.env)
		r.mu.Lock()
		active[st.Name] = true
		r.mu.Unlock()
	}
	if err != nil {
		ev.Error = err.Error()
		r.note(fmt.Sprintf("%s %s failed: %v", st.Name, ev.Phase, err))
	}
	if o := outcomeOf(st.Value); o != "" {
		ev.Outcome = o
		if ev.Detail != "" {
			ev.Detail += " → "
		}
		ev.Detail += o
	}
	r.h.Event(ev)
}

func (r *runner) note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
}

func (r *runner) revert(st Step, active map[string]bool) {
	r.mu.Lock()
	was := active[st.Name]
	delete(active, st.Name)
	r.mu.Unlock()
	if !was {
		return
	}
	ev := history.Event{Time: r.clk.Now(), Name: st.Name, Type: st.Type, Phase: history.PhaseRevert}
	if err := st.Fault().Revert(r.ctx, r.env); err != nil {
		ev.Error = err.Error()
		r.note(fmt.Sprintf("%s revert failed: %v", st.Name, err))
	}
	r.h.Event(ev)
}

func describe(v any) string {
	if d, ok := v.(Describer); ok {
		return d.Describe()
	}
	return ""
}

// healthCheck runs every probe once; it returns what failed.
func healthCheck(ctx context.Context, env topology.Env, probes []topology.ProbeSpec) []string {
	var bad []string
	seen := map[string]bool{}
	for _, p := range probes {
		if p.Type == topology.ProbeSQLWrite || p.Type == topology.ProbeBlobWrite || seen[p.Type+p.Target] {
			continue // writes are not health checks: they would count as acknowledged
		}
		seen[p.Type+p.Target] = true
		if res := env.Probe(ctx, p); !res.OK {
			bad = append(bad, fmt.Sprintf("%s %s: %s", p.Type, p.Target, res.Code))
		}
	}
	return bad
}

// waitUntil blocks until the clock reaches t (wall-clock providers), calling
// tick about once a second (ten times a wall second on a scaled clock).
func waitUntil(ctx context.Context, clk clock.Clock, t time.Time, tick func(time.Duration), start time.Time) error {
	step := time.Second
	if sc, ok := clk.(*clock.Scaled); ok {
		step = time.Duration(float64(100*time.Millisecond) * max(1, sc.Factor))
	}
	for {
		now := clk.Now()
		if !now.Before(t) {
			return nil
		}
		d := min(t.Sub(now), step)
		ch := make(chan struct{})
		tm := clk.AfterFunc(d, func() { close(ch) })
		select {
		case <-ch:
			tick(clk.Now().Sub(start))
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// resolveProbes checks the scenario's probes against the topology, or
// derives the standard set when the scenario names none.
func resolveProbes(sc *Scenario, t *topology.Topology) ([]topology.ProbeSpec, error) {
	probes := slices.Clone(sc.Probes)
	if len(probes) == 0 {
		probes = StandardProbes(t)
	}
	regions, sqls, sts, vms := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range t.Regions {
		regions[r.Name] = true
	}
	for _, s := range t.Workloads.SQLManagedInstances {
		sqls[s.Name] = true
	}
	for _, g := range t.Workloads.FailoverGroups {
		sqls[g.Name] = true // the group's read-write listener
	}
	for _, s := range t.Workloads.StorageAccounts {
		sts[s.Name] = true
	}
	for _, v := range t.Workloads.VirtualMachines {
		vms[v.Name] = true
	}
	for i := range probes {
		p := &probes[i]
		if p.Every == 0 {
			p.Every = topology.Duration(DefaultProbeInterval)
		}
		var set map[string]bool
		what := ""
		switch p.Type {
		case topology.ProbeHSMUnwrap:
			set, what = regions, "region"
		case topology.ProbeSQLQuery, topology.ProbeSQLWrite:
			set, what = sqls, "SQL managed instance or failover group"
		case topology.ProbeBlobRead, topology.ProbeBlobWrite:
			set, what = sts, "storage account"
		case topology.ProbeVMBoot, topology.ProbeDiskIO:
			set, what = vms, "virtual machine"
		}
		if !set[p.Target] {
			e := &topology.Error{File: sc.File, Field: fmt.Sprintf("probes[%d].target", i),
				Msg: fmt.Sprintf("%s probe target %q is not a %s of the topology (known: %s)", p.Type, p.Target, what, strings.Join(sortedKeys(set), ", "))}
			if pos, ok := sc.pos[e.Field]; ok {
				e.Line, e.Column = pos[0], pos[1]
			}
			return nil, e
		}
	}
	return probes, nil
}

// StandardProbes is the probe set of a scenario that names none, once a
// minute: the HSM from every pool region; a query on every SQL instance and
// writes through every failover group's listener (or to a standalone
// instance); a read and a write on every storage account; disk I/O on every
// VM.
func StandardProbes(t *topology.Topology) []topology.ProbeSpec {
	every := topology.Duration(DefaultProbeInterval)
	var out []topology.ProbeSpec
	for _, p := range t.HSM.Pools {
		out = append(out, topology.ProbeSpec{Type: topology.ProbeHSMUnwrap, Target: p.Region, Every: every})
	}
	inFOG := map[string]bool{}
	for _, g := range t.Workloads.FailoverGroups {
		inFOG[g.Primary], inFOG[g.Secondary] = true, true
		out = append(out, topology.ProbeSpec{Type: topology.ProbeSQLWrite, Target: g.Name, Every: every})
	}
	for _, s := range t.Workloads.SQLManagedInstances {
		out = append(out, topology.ProbeSpec{Type: topology.ProbeSQLQuery, Target: s.Name, Every: every})
		if !inFOG[s.Name] {
			out = append(out, topology.ProbeSpec{Type: topology.ProbeSQLWrite, Target: s.Name, Every: every})
		}
	}
	for _, s := range t.Workloads.StorageAccounts {
		out = append(out, topology.ProbeSpec{Type: topology.ProbeBlobRead, Target: s.Name, Every: every},
			topology.ProbeSpec{Type: topology.ProbeBlobWrite, Target: s.Name, Every: every})
	}
	for _, v := range t.Workloads.VirtualMachines {
		out = append(out, topology.ProbeSpec{Type: topology.ProbeDiskIO, Target: v.Name, Every: every})
	}
	return out
}
