package lab

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/hsmlab/hsmlab/lab/history"

	"github.com/hsmlab/hsmlab/topology"
)

// Verdict is the outcome of a check or a run.
type Verdict string

// Verdicts.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive" // the history lacked the data to decide
)

// Check is one expectation with what it measured.
type Check struct {
	Expr string `json:"expr"`
	// Measured lists every value the expression read, e.g.
	// `availability("sqlmi-pune", "during") = 0.9995`.
	Measured []string `json:"measured"`
	Verdict  Verdict  `json:"verdict"`
	// Detail explains an inconclusive or failed evaluation.
	Detail string `json:"detail,omitempty"`
}

// ExpectFunctions documents the functions expectations can call.
var ExpectFunctions = []struct{ Sig, Doc string }{
	{`availability(target[, phase[, kind]]) float`, `fraction of successful probe operations on a workload or HSM region; phase is before, during, after or all (default)`},
	{`downtime(target) duration`, `total time the target's probes were failing`},
	{`rto(target) duration`, `the longest outage: time to recover from the worst interruption`},
	{`detect(target) duration`, `time from the first fault to the target's first failure (-1ns if it never failed)`},
	{`writes_lost(target) int`, `acknowledged writes missing at the end of the run`},
	{`rpo(target) duration`, `span of the lost acknowledged writes`},
	{`p50_unwrap(region[, phase])`, `median latency of successful hsm-unwrap probes from a region (also p95_unwrap, p99_unwrap, max_unwrap)`},
	{`errors(target[, code]) int`, `failed operations, optionally with one error code`},
	{`ops(target[, phase]) int`, `number of probe operations`},
	{`state_time(resource, state) duration`, `time a resource spent in a state (from its state timeline)`},
	{`ever_in(resource, state) bool`, `whether the resource was ever in the state`},
	{`final_state(resource) string`, `the resource's last state`},
	{`succeeded(step) bool`, `whether a timeline entry (fault or action, by name) ran without error — e.g. a key rotation attempted by the wrong role fails`},
	{`outcome(step) string`, `what a timeline entry's inject or action achieved when it can end more than one expected way — e.g. "refused" or "purged" for key-purge-attempt ("" if it reports none)`},
	{`duration("15m") duration`, `a duration literal (expr built-in)`},
}

// evaluator binds the expectation functions to one run's measure and logs
// every value they return.
type evaluator struct {
	m   *measure
	log []string
}

func (ev *evaluator) note(call string, v any) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			ev.log = append(ev.log, call+" = no data")
			return
		}
		ev.log = append(ev.log, fmt.Sprintf("%s = %.6g", call, x))
	case time.Duration:
		ev.log = append(ev.log, fmt.Sprintf("%s = %v", call, x))
	default:
		ev.log = append(ev.log, fmt.Sprintf("%s = %v", call, x))
	}
}

func (ev *evaluator) missing(what string) { ev.m.noData = append(ev.m.noData, what) }

func strArgs(name string, params []any, min, max int) ([]string, error) {
	if len(params) < min || len(params) > max {
		return nil, fmt.Errorf("%s takes %d to %d arguments", name, min, max)
	}
	out := make([]string, len(params))
	for i, p := range params {
		s, ok := p.(string)
		if !ok {
			return nil, fmt.Errorf("%s: argument %d must be a string", name, i+1)
		}
		out[i] = s
	}
	return out, nil
}

func callString(name string, args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return name + "(" + strings.Join(q, ", ") + ")"
}

func checkPhase(p string) error {
	switch p {
	case PhaseBefore, PhaseDuring, PhaseAfter, PhaseAll:
		return nil
	}
	return fmt.Errorf("phase %q is not before, during, after or all", p)
}

func (ev *evaluator) options() []expr.Option {
	m := ev.m
	target := func(t string) {
		if len(m.byTarget[t]) == 0 {
			ev.missing("no probe operations on " + t)
		}
	}
	fn := func(name string, min, max int, f func(a []string) (any, error), types ...any) expr.Option {
		return expr.Function(name, func(params ...any) (any, error) {
			a, err := strArgs(name, params, min, max)
			if err != nil {
				return nil, err
			}
			v, err := f(a)
			if err == nil {
				ev.note(callString(name, a), v)
			}
			return v, err
		}, types...)
	}
	pct := func(name string, q float64) expr.Option {
		return fn(name, 1, 2, func(a []string) (any, error) {
			phase := PhaseAll
			if len(a) > 1 {
				phase = a[1]
			}
			if err := checkPhase(phase); err != nil {
				return nil, err
			}
			d, ok := m.latency(a[0], phase, topology.ProbeHSMUnwrap, q)
			if !ok {
				ev.missing("no successful hsm-unwrap operations from " + a[0] + " " + phase)
			}
			return d, nil
		}, new(func(string) time.Duration), new(func(string, string) time.Duration))
	}
	return []expr.Option{
		expr.Env(struct{}{}),
		expr.AsBool(),
		fn("availability", 1, 3, func(a []string) (any, error) {
			phase, kind := PhaseAll, ""
			if len(a) > 1 {
				phase = a[1]
			}
			if len(a) > 2 {
				kind = a[2]
			}
			if err := checkPhase(phase); err != nil {
				return nil, err
			}
			v := m.availability(a[0], phase, kind)
			if math.IsNaN(v) {
				ev.missing(fmt.Sprintf("no probe operations on %s in phase %s", a[0], phase))
			}
			return v, nil
		}, new(func(string) float64), new(func(string, string) float64), new(func(string, string, string) float64)),
		fn("downtime", 1, 1, func(a []string) (any, error) { target(a[0]); return m.downtime(a[0]), nil }, new(func(string) time.Duration)),
		fn("rto", 1, 1, func(a []string) (any, error) { target(a[0]); return m.rto(a[0]), nil }, new(func(string) time.Duration)),
		fn("detect", 1, 1, func(a []string) (any, error) { target(a[0]); return m.detect(a[0]), nil }, new(func(string) time.Duration)),
		fn("writes_lost", 1, 1, func(a []string) (any, error) { target(a[0]); return m.writesLost(a[0]), nil }, new(func(string) int)),
		fn("rpo", 1, 1, func(a []string) (any, error) { target(a[0]); return m.rpo(a[0]), nil }, new(func(string) time.Duration)),
		pct("p50_unwrap", 0.50), pct("p95_unwrap", 0.95), pct("p99_unwrap", 0.99), pct("max_unwrap", 1.0),
		fn("errors", 1, 2, func(a []string) (any, error) {
			target(a[0])
			byCode := m.errorsByCode(a[0])
			if len(a) == 2 {
				return byCode[a[1]], nil
			}
			n := 0
			for _, c := range byCode {
				n += c
			}
			return n, nil
		}, new(func(string) int), new(func(string, string) int)),
		fn("ops", 1, 2, func(a []string) (any, error) {
			phase := PhaseAll
			if len(a) > 1 {
				phase = a[1]
			}
			if err := checkPhase(phase); err != nil {
				return nil, err
			}
			return m.count(a[0], phase, ""), nil
		}, new(func(string) int), new(func(string, string) int)),
		fn("state_time", 2, 2, func(a []string) (any, error) {
			d, seen := m.stateTime(a[0], a[1])
			if !seen {
				ev.missing("no state changes recorded for " + a[0])
			}
			return d, nil
		}, new(func(string, string) time.Duration)),
		fn("ever_in", 2, 2, func(a []string) (any, error) { return m.everIn(a[0], a[1]), nil }, new(func(string, string) bool)),
		fn("succeeded", 1, 1, func(a []string) (any, error) {
			ran, ok := m.stepOutcome(a[0])
			if !ran {
				ev.missing("timeline entry " + a[0] + " never ran")
			}
			return ran && ok, nil
		}, new(func(string) bool)),
		fn("outcome", 1, 1, func(a []string) (any, error) {
			o, ran := m.stepResult(a[0])
			if !ran {
				ev.missing("timeline entry " + a[0] + " never ran")
			}
			return o, nil
		}, new(func(string) string)),
		fn("final_state", 1, 1, func(a []string) (any, error) { return m.finalState(a[0]), nil }, new(func(string) string)),
	}
}

// compileExpect checks an expectation's syntax and types.
func compileExpect(src string) (*vm.Program, error) {
	ev := &evaluator{m: newMeasure(history.New(), time.Time{}, time.Time{})}
	return expr.Compile(src, ev.options()...)
}

// evaluate runs every expectation against the measure.
func evaluate(m *measure, exprs []string) []Check {
	var out []Check
	for _, src := range exprs {
		ev := &evaluator{m: m}
		m.noData = nil
		c := Check{Expr: src}
		prog, err := expr.Compile(src, ev.options()...)
		if err != nil {
			c.Verdict, c.Detail = Inconclusive, err.Error()
			out = append(out, c)
			continue
		}
		v, err := expr.Run(prog, nil)
		c.Measured = ev.log
		switch {
		case err != nil:
			c.Verdict, c.Detail = Inconclusive, err.Error()
		case len(m.noData) > 0:
			c.Verdict, c.Detail = Inconclusive, strings.Join(m.noData, "; ")
		case v == true:
			c.Verdict = Pass
		default:
			c.Verdict = Fail
		}
		out = append(out, c)
	}
	return out
}

// Overall combines check verdicts: any fail fails; otherwise any
// inconclusive is inconclusive; otherwise pass.
func Overall(checks []Check) Verdict {
	v := Pass
	for _, c := range checks {
		switch c.Verdict {
		case Fail:
			return Fail
		case Inconclusive:
			v = Inconclusive
		}
	}
	return v
}
