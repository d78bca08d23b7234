package results

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/hsmlab/hsmlab/lab"
)

// Table renders rows under header; cells wider than maxCol wrap.
func Table(w io.Writer, header []string, rows [][]string, maxCol int) {
	cell := tw.CellConfig{
		Formatting:   tw.CellFormatting{AutoWrap: tw.WrapNormal},
		Alignment:    tw.CellAlignment{Global: tw.AlignLeft},
		ColMaxWidths: tw.CellWidth{Global: maxCol},
	}
	head := cell
	head.Formatting.AutoFormat = tw.Off
	t := tablewriter.NewTable(w, tablewriter.WithConfig(tablewriter.Config{Header: head, Row: cell}))
	t.Header(header)
	_ = t.Bulk(rows)
	_ = t.Render()
}

func pct(m map[string]float64, phase string) string {
	v, ok := m[phase]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", v*100)
}

func dur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d < time.Second {
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Second).String()
}

// WriteSummary prints the terminal summary of a result: the question, the
// workloads table, the unwrap latency table, the state timeline and the
// checks with the verdict.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "Scenario  %s (%s provider, seed %d)\n", r.Scenario.Name, r.Provider, r.Seed)
	fmt.Fprintf(w, "Question  %s\n", r.Scenario.Question)
	if r.Scenario.Expected != "" {
		fmt.Fprintf(w, "Expected  %s\n", r.Scenario.Expected)
	}
	fmt.Fprintf(w, "Modelled  %v; faults active %v → %v\n", r.Duration.D(), r.Window.From.D(), r.Window.To.D())
	if r.TimeScale > 0 {
		fmt.Fprintf(w, "Clock     wall clock at time scale %g× (modelled durations compressed; latencies are real wall-clock measurements)\n", r.TimeScale)
	}
	fmt.Fprintln(w)

	if len(r.Timeline) > 0 {
		var rows [][]string
		for _, e := range r.Timeline {
			detail := e.Detail
			if e.Error != "" {
				detail = strings.TrimSpace(detail + " ERROR: " + e.Error)
			}
			rows = append(rows, []string{dur(e.Time.Sub(r.Start)), e.Phase, e.Name, detail})
		}
		Table(w, []string{"At", "Phase", "Fault / action", "Detail"}, rows, 60)
	}

	var rows [][]string
	for _, t := range r.Targets {
		rec := "yes"
		if !t.Recovered {
			rec = "NO"
		}
		rows = append(rows, []string{t.Target, t.Kind, pct(t.Availability, lab.PhaseBefore), pct(t.Availability, lab.PhaseDuring),
			pct(t.Availability, lab.PhaseAfter), dur(t.Downtime.D()), dur(t.RTO.D()), rec, fmt.Sprint(t.WritesLost), errorsText(t.Errors)})
	}
	Table(w, []string{"Target", "Probes", "Avail before", "during", "after", "Downtime", "RTO", "Recovered", "Writes lost", "Errors"}, rows, 36)

	if len(r.Latency) > 0 {
		var lrows [][]string
		for _, l := range r.Latency {
			if l.Phase == lab.PhaseAll {
				continue
			}
			lrows = append(lrows, []string{l.Region, l.Phase, fmt.Sprint(l.Count), dur(l.P50.D()), dur(l.P95.D()), dur(l.P99.D()), dur(l.Max.D())})
		}
		fmt.Fprintln(w, "\nHSM unwrap latency by client region (network + queueing + service)")
		Table(w, []string{"Region", "Phase", "OK ops", "p50", "p95", "p99", "max"}, lrows, 20)
	}

	if len(r.States) > 0 {
		fmt.Fprintln(w, "\nService state changes")
		var srows [][]string
		for _, s := range r.States {
			srows = append(srows, []string{dur(s.Time.Sub(r.Start)), s.Resource, s.From + " → " + s.To, s.Reason})
		}
		Table(w, []string{"At", "Resource", "Change", "Reason"}, srows, 60)
	}

	fmt.Fprintln(w, "\nExpectations")
	var crows [][]string
	for _, c := range r.Checks {
		measured := strings.Join(c.Measured, "\n")
		if c.Detail != "" {
			measured = strings.TrimSpace(measured + "\n" + c.Detail)
		}
		crows = append(crows, []string{strings.ToUpper(string(c.Verdict)), c.Expr, measured})
	}
	Table(w, []string{"Verdict", "Expectation", "Measured"}, crows, 60)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\nVerdict: %s\n", strings.ToUpper(string(r.Verdict)))
}

func errorsText(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
