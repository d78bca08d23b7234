package lab_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/topology"
)

const good = `name: t
question: does it work?
duration: 2h
probes:
  - {type: hsm-unwrap, target: southindia, every: 1m}
timeline:
  - {type: partition-loss, at: 30m, hold: 10m, region: southindia, count: 2}
expect:
  - availability("southindia") == 1.0
`

func TestParseScenario(t *testing.T) {
	sc, err := lab.ParseScenario("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Timeline) != 1 || sc.Timeline[0].Kind != lab.KindFault || sc.Timeline[0].Name != "partition-loss" {
		t.Fatalf("timeline %+v", sc.Timeline)
	}
	f, ok := sc.Timeline[0].Value.(*lab.PartitionLoss)
	if !ok || f.Region != "southindia" || f.Count != 2 {
		t.Fatalf("fault %+v", sc.Timeline[0].Value)
	}
}

func TestScenarioErrorsNamePosition(t *testing.T) {
	cases := []struct {
		name      string
		from, to  string
		line, col int
		msg       string
	}{
		{"unknown fault type lists the known ones", "type: partition-loss,", "type: partition-los,", 7, 12, "partition-loss, "},
		{"unknown parameter", "count: 2}", "count: 2, racks: 1}", 7, 0, `unknown field "racks"`},
		{"wrong parameter type", "count: 2}", "count: two}", 7, 0, "wrong type"},
		{"bad duration", "at: 30m,", "at: soon,", 7, 0, "invalid duration"},
		{"at after the end", "at: 30m,", "at: 3h,", 7, 5, "not inside the run"},
		{"hold past the end", "hold: 10m,", "hold: 2h,", 7, 5, "ends after the run"},
		{"bad expectation", `== 1.0`, `== `, 9, 0, "expect[0]"},
		{"unknown function", `availability("southindia") == 1.0`, `avail("southindia") == 1.0`, 9, 0, "avail"},
		{"unknown probe type", "type: hsm-unwrap", "type: hsm-unrap", 0, 0, "unknown probe type"},
		{"unknown scenario field", "duration: 2h\n", "duration: 2h\nretries: 3\n", 4, 1, `unknown field "retries"`},
		{"no expectations", "expect:\n  - availability(\"southindia\") == 1.0\n", "expect: []\n", 0, 0, "cannot fail"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(good, c.from, c.to, 1)
			if src == good {
				t.Fatal("case does not change the scenario")
			}
			_, err := lab.ParseScenario("s.yaml", []byte(src))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not mention %q", err, c.msg)
			}
			var e *topology.Error
			if !errors.As(err, &e) || e.File != "s.yaml" {
				t.Fatalf("not a positioned error: %T %v", err, err)
			}
			if c.line != 0 && e.Line != c.line {
				t.Fatalf("line %d, want %d (%v)", e.Line, c.line, err)
			}
			if c.col != 0 && e.Column != c.col {
				t.Fatalf("column %d, want %d (%v)", e.Column, c.col, err)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	src := good + "overrides:\n  behaviour.hsm.primaryDownWrites: denied\n  hsm.softDeleteRetentionDays: 7\n"
	sc, err := lab.ParseScenario("o.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	top, err := sc.ResolveTopology()
	if err != nil {
		t.Fatal(err)
	}
	if top.Behaviour.HSM.PrimaryDownWrites != topology.WritesDenied || top.HSM.SoftDeleteRetentionDays != 7 {
		t.Fatalf("overrides not applied: %q %d", top.Behaviour.HSM.PrimaryDownWrites, top.HSM.SoftDeleteRetentionDays)
	}
	for _, c := range []struct{ override, msg string }{
		{"  hsm.noSuchField: 1\n", "no parameter"},
		{"  behaviour.hsm.primaryDownWrites: sometimes\n", "not allowed or denied"},
		{"  behaviour.hsm.dnsTTL: forever\n", "invalid duration"},
	} {
		sc, err := lab.ParseScenario("o.yaml", []byte(good+"overrides:\n"+c.override))
		if err != nil {
			t.Fatal(err)
		}
		_, err = sc.ResolveTopology()
		var e *topology.Error
		if err == nil || !strings.Contains(err.Error(), c.msg) || !errors.As(err, &e) || e.Line != 11 {
			t.Fatalf("override %q: %v (want %q at line 11)", c.override, err, c.msg)
		}
	}
}

func FuzzParseScenario(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("timeline: [{type: key-revocation, at: 1h, key: k, mode: x}]"))
	f.Add([]byte("name: [\n"))
	f.Add([]byte("expect: ['availability(\"x\") >']"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := lab.ParseScenario("fuzz.yaml", data)
		if err == nil && sc == nil {
			t.Fatal("nil scenario without an error")
		}
		if err == nil {
			_, _ = sc.ResolveTopology()
		}
	})
}
