package results_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/results"
)

func TestCompareSideBySide(t *testing.T) {
	a := result(t, "partition-loss-two", nil)
	b := result(t, "partition-loss-two", func(s *lab.Scenario) {
		s.Overrides = map[string]any{"behaviour.hsm.throughput.rsa2048.unwrap": 50}
	})
	b.Provider, b.TimeScale = "local", 600
	rows, err := results.Compare(a, b)
	if err != nil {
		t.Fatal(err)
	}
	find := func(group, metric string) results.Row {
		t.Helper()
		for _, r := range rows {
			if strings.HasPrefix(r.Group, group) && r.Metric == metric {
				return r
			}
		}
		t.Fatalf("no row %s / %s", group, metric)
		return results.Row{}
	}
	if r := find("run", "provider"); !r.Differs || r.A != "sim" || r.B != "local" {
		t.Errorf("provider row %+v", r)
	}
	if r := find("run", "clock"); r.A != "virtual" || r.B != "600×" {
		t.Errorf("clock row %+v", r)
	}
	if r := find("unwrap southindia during", "p99"); !r.Differs || !strings.HasPrefix(r.Diff, "+") {
		t.Errorf("p99 row %+v: the throttled HSM is slower", r)
	}
	if r := find("southindia", "availability during"); r.Differs || r.Diff != "0" {
		t.Errorf("availability row %+v", r)
	}
	if r := find("check", `p99_unwrap("southindia", "during") < duration("10ms")`); !r.Differs || r.Diff != "verdict differs" ||
		!strings.HasPrefix(r.A, "PASS") || !strings.HasPrefix(r.B, "FAIL") {
		t.Errorf("check row %+v", r)
	}
	for _, m := range []string{"downtime", "RTO", "writes lost", "RPO"} {
		find("southindia", m)
	}
	var buf bytes.Buffer
	results.WriteComparison(&buf, a, b, rows, false)
	out := buf.String()
	for _, want := range []string{"Scenario  partition-loss-two", "sim provider", "wall clock at 600×", "≠", "metrics differ"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
}

func TestCompareRefusesDifferentScenarios(t *testing.T) {
	a := result(t, "partition-loss-two", nil)
	b := result(t, "chennai-region-outage", nil)
	if _, err := results.Compare(a, b); !errors.Is(err, results.ErrDifferentScenarios) {
		t.Fatalf("Compare of two scenarios: %v", err)
	}
}
