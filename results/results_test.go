package results_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/results"
	"github.com/hsmlab/hsmlab/scenarios"
	"github.com/hsmlab/hsmlab/topology/sim"
)

func result(t *testing.T, name string, mutate func(*lab.Scenario)) *results.Result {
	t.Helper()
	sc, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(sc)
	}
	run, err := lab.Execute(context.Background(), sc, lab.Options{Provider: sim.Provider{}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return results.FromRun(run)
}

func TestJSONRoundTrip(t *testing.T) {
	r := result(t, "partition-loss-two", nil)
	var a bytes.Buffer
	if err := r.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	back, err := results.ReadJSON(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := back.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("result.json does not survive a read/write round trip")
	}
	if back.Schema != results.SchemaVersion || back.Verdict != lab.Pass || len(back.Targets) == 0 || len(back.Latency) == 0 {
		t.Fatalf("round-tripped result %+v", back)
	}
}

func TestJUnit(t *testing.T) {
	pass := result(t, "partition-loss-two", nil)
	fail := result(t, "partition-loss-two", func(s *lab.Scenario) {
		s.Name = "partition-loss-two-slow"
		s.Overrides = map[string]any{"behaviour.hsm.throughput.rsa2048.unwrap": 50}
	})
	var buf bytes.Buffer
	if err := results.WriteJUnit(&buf, "suite", []*results.Result{pass, fail}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if len(doc.Suites) != 2 || doc.Failures == 0 || doc.Tests != len(pass.Checks)+len(fail.Checks) {
		t.Fatalf("junit: %d suites, %d tests, %d failures", len(doc.Suites), doc.Tests, doc.Failures)
	}
	failed := 0
	for _, c := range doc.Suites[1].Cases {
		if c.Failure != nil {
			failed++
			if !strings.Contains(c.Name, "p99_unwrap") {
				t.Errorf("unexpected failing case %q", c.Name)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d failing cases in the slow run, want 1", failed)
	}
}

func TestSummaryNamesEverything(t *testing.T) {
	r := result(t, "chennai-region-outage", nil)
	var b bytes.Buffer
	r.WriteSummary(&b)
	for _, want := range []string{"chennai-region-outage", "Question", "sqlmi-pune", "contoso-fog", "Avail before", "p99",
		"Online → Unavailable", "runbook-asr", "Verdict: PASS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}
