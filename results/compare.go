package results

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/hsmlab/hsmlab/lab"
)

// ErrDifferentScenarios is returned when two results to compare are not of
// the same scenario.
var ErrDifferentScenarios = errors.New("the results are of different scenarios")

// Row is one metric of a comparison: its value in each result and the
// difference (B − A).
type Row struct {
	Group  string // "run", a target, "unwrap <region>", "check"
	Metric string
	A, B   string
	Diff   string
	// Differs is true when the values are not the same.
	Differs bool
}

// Compare sets two results of the same scenario side by side, metric by
// metric: the run (provider, seed, time scale, topology, verdict), each
// target's availability per phase, downtime, RTO, time to detect, writes
// lost, RPO, probe counts and errors, the unwrap latency percentiles per
// region and phase, and each check's verdict and measured values. Results
// of different scenarios are refused with ErrDifferentScenarios.
func Compare(a, b *Result) ([]Row, error) {
	if a.Scenario.Name != b.Scenario.Name {
		return nil, fmt.Errorf("%w: %q and %q", ErrDifferentScenarios, a.Scenario.Name, b.Scenario.Name)
	}
	var rows []Row
	add := func(group, metric, va, vb, diff string) {
		rows = append(rows, Row{Group: group, Metric: metric, A: va, B: vb, Diff: diff, Differs: va != vb})
	}
	text := func(group, metric, va, vb string) {
		d := ""
		if va != vb {
			d = "differs"
		}
		add(group, metric, va, vb, d)
	}
	scale := func(r *Result) string {
		if r.TimeScale == 0 {
			return "virtual"
		}
		return fmt.Sprintf("%g×", r.TimeScale)
	}
	text("run", "provider", a.Provider, b.Provider)
	text("run", "seed", fmt.Sprint(a.Seed), fmt.Sprint(b.Seed))
	text("run", "clock", scale(a), scale(b))
	text("run", "topology", a.Topology.Name+" "+short(a.Topology.Digest), b.Topology.Name+" "+short(b.Topology.Digest))
	durRow("run", "modelled", a.Duration.D(), b.Duration.D(), true, true, add)
	durRow("run", "faults from", a.Window.From.D(), b.Window.From.D(), true, true, add)
	durRow("run", "faults to", a.Window.To.D(), b.Window.To.D(), true, true, add)
	text("run", "verdict", string(a.Verdict), string(b.Verdict))

	ta, tb := targetMap(a), targetMap(b)
	for _, name := range unionKeys(ta, tb) {
		x, okA := ta[name]
		y, okB := tb[name]
		kind := x.Kind
		if !okA {
			kind = y.Kind
		}
		g := name + " (" + kind + ")"
		for _, ph := range append(lab.Phases, lab.PhaseAll) {
			va, hasA := x.Availability[ph]
			vb, hasB := y.Availability[ph]
			if !hasA && !hasB {
				continue
			}
			diff := ""
			if hasA && hasB {
				diff = signedPct(vb - va)
			}
			add(g, "availability "+ph, pctOr(va, hasA && okA), pctOr(vb, hasB && okB), diff)
		}
		durRow(g, "downtime", x.Downtime.D(), y.Downtime.D(), okA, okB, add)
		durRow(g, "RTO", x.RTO.D(), y.RTO.D(), okA, okB, add)
		da, db := time.Duration(-1), time.Duration(-1)
		if x.Detect != nil {
			da = x.Detect.D()
		}
		if y.Detect != nil {
			db = y.Detect.D()
		}
		if da >= 0 || db >= 0 {
			d := ""
			if da >= 0 && db >= 0 {
				d = signedDur(db - da)
			}
			add(g, "time to detect", detectText(da, okA), detectText(db, okB), d)
		}
		intRow(g, "writes lost", x.WritesLost, y.WritesLost, okA, okB, add)
		durRow(g, "RPO", x.RPO.D(), y.RPO.D(), okA, okB, add)
		intRow(g, "probes", x.Ops, y.Ops, okA, okB, add)
		intRow(g, "failures", x.Failures, y.Failures, okA, okB, add)
		text(g, "recovered", boolText(x.Recovered, okA), boolText(y.Recovered, okB))
		if len(x.Errors) > 0 || len(y.Errors) > 0 {
			text(g, "errors", errorsText(x.Errors), errorsText(y.Errors))
		}
	}

	la, lb := latencyMap(a), latencyMap(b)
	for _, k := range unionKeys(la, lb) {
		x, okA := la[k]
		y, okB := lb[k]
		g := "unwrap " + k
		intRow(g, "OK ops", int(x.Count), int(y.Count), okA, okB, add)
		durRow(g, "p50", x.P50.D(), y.P50.D(), okA, okB, add)
		durRow(g, "p95", x.P95.D(), y.P95.D(), okA, okB, add)
		durRow(g, "p99", x.P99.D(), y.P99.D(), okA, okB, add)
		durRow(g, "max", x.Max.D(), y.Max.D(), okA, okB, add)
	}

	ca, cb := checkMap(a), checkMap(b)
	for _, expr := range checkOrder(a, b) {
		x, okA := ca[expr]
		y, okB := cb[expr]
		vA, vB := "–", "–"
		if okA {
			vA = strings.ToUpper(string(x.Verdict)) + measuredText(x)
		}
		if okB {
			vB = strings.ToUpper(string(y.Verdict)) + measuredText(y)
		}
		d := ""
		if okA && okB && x.Verdict != y.Verdict {
			d = "verdict differs"
		} else if vA != vB {
			d = "measured differs"
		}
		add("check", expr, vA, vB, d)
	}
	return rows, nil
}

// WriteComparison prints a comparison as a table: one row per metric with
// both values and the difference; rows whose values differ are marked.
func WriteComparison(w io.Writer, a, b *Result, rows []Row, onlyDiffs bool) {
	fmt.Fprintf(w, "Scenario  %s\n", a.Scenario.Name)
	fmt.Fprintf(w, "A         %s provider, seed %d, %s\n", a.Provider, a.Seed, clockText(a))
	fmt.Fprintf(w, "B         %s provider, seed %d, %s\n\n", b.Provider, b.Seed, clockText(b))
	var out [][]string
	n := 0
	for _, r := range rows {
		if r.Differs {
			n++
		}
		if onlyDiffs && !r.Differs {
			continue
		}
		mark := ""
		if r.Differs {
			mark = "≠"
		}
		out = append(out, []string{r.Group, r.Metric, r.A, r.B, r.Diff, mark})
	}
	Table(w, []string{"", "Metric", "A", "B", "B − A", ""}, out, 48)
	fmt.Fprintf(w, "%d of %d metrics differ\n", n, len(rows))
}

func clockText(r *Result) string {
	if r.TimeScale == 0 {
		return "virtual clock"
	}
	return fmt.Sprintf("wall clock at %g×", r.TimeScale)
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

func targetMap(r *Result) map[string]Target {
	m := map[string]Target{}
	for _, t := range r.Targets {
		m[t.Target] = t
	}
	return m
}

func latencyMap(r *Result) map[string]Latency {
	m := map[string]Latency{}
	for _, l := range r.Latency {
		m[l.Region+" "+l.Phase] = l
	}
	return m
}

func checkMap(r *Result) map[string]lab.Check {
	m := map[string]lab.Check{}
	for _, c := range r.Checks {
		m[c.Expr] = c
	}
	return m
}

// checkOrder lists the checks of A in order, then those only B has.
func checkOrder(a, b *Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range []*Result{a, b} {
		for _, c := range r.Checks {
			if !seen[c.Expr] {
				seen[c.Expr] = true
				out = append(out, c.Expr)
			}
		}
	}
	return out
}

func measuredText(c lab.Check) string {
	var vals []string
	for _, m := range c.Measured {
		if _, v, ok := strings.Cut(m, " = "); ok {
			vals = append(vals, v)
		} else {
			vals = append(vals, m)
		}
	}
	if len(vals) == 0 {
		return ""
	}
	return " (" + strings.Join(vals, "; ") + ")"
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func pctOr(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", v*100)
}

func signedPct(d float64) string {
	if math.Abs(d) < 5e-7 {
		return "0"
	}
	return fmt.Sprintf("%+.2f pp", d*100)
}

func durText(d time.Duration, ok bool) string {
	if !ok {
		return "–"
	}
	return dur(d)
}

func signedDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d > 0:
		return "+" + dur(d)
	}
	return "-" + dur(-d)
}

func durRow(g, metric string, a, b time.Duration, okA, okB bool, add func(g, m, a, b, d string)) {
	d := ""
	if okA && okB {
		d = signedDur(b - a)
	}
	add(g, metric, durText(a, okA), durText(b, okB), d)
}

func intRow(g, metric string, a, b int, okA, okB bool, add func(g, m, a, b, d string)) {
	va, vb, d := "–", "–", ""
	if okA {
		va = fmt.Sprint(a)
	}
	if okB {
		vb = fmt.Sprint(b)
	}
	if okA && okB {
		d = fmt.Sprintf("%+d", b-a)
		if a == b {
			d = "0"
		}
	}
	add(g, metric, va, vb, d)
}

func detectText(d time.Duration, ok bool) string {
	switch {
	case !ok:
		return "–"
	case d < 0:
		return "never failed"
	}
	return dur(d)
}

func boolText(v, ok bool) string {
	if !ok {
		return "–"
	}
	if v {
		return "yes"
	}
	return "no"
}
