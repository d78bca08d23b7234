package scenarios_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/scenarios"
	"github.com/hsmlab/hsmlab/topology/sim"
)

var update = flag.Bool("update", false, "rewrite scenarios/README.md from the scenario files")

// readme renders the scenario catalogue from the scenario files themselves.
func readme(t testing.TB) []byte {
	all, err := scenarios.All()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("# The scenario library\n\n")
	b.WriteString("One file per DR question, embedded in `hsmlab`. `hsmlab run <name>` runs one, `hsmlab suite` all of\n")
	b.WriteString("them. Each states its question, the outcome Microsoft's documentation leads us to expect, and the facts\n")
	b.WriteString("that outcome rests on (`azure-facts.md` is `shared/reference/azure-facts.md`). Every scenario passes in\n")
	b.WriteString("the simulator, and `scenarios_test.go` shows for each one a decisive parameter change that makes it fail.\n\n")
	b.WriteString("This file is generated from the scenario files: `go test ./scenarios -run TestReadme -update`.\n\n")
	b.WriteString("| Scenario | Question | Modelled | Faults and actions |\n|---|---|---|---|\n")
	for _, s := range all {
		var steps []string
		for _, st := range s.Timeline {
			steps = append(steps, "`"+st.Type+"`")
		}
		fmt.Fprintf(&b, "| [%s](%s.yaml) | %s | %s | %s |\n", s.Name, s.Name, oneLine(s.Question), s.Duration, strings.Join(steps, ", "))
	}
	for _, s := range all {
		fmt.Fprintf(&b, "\n## %s\n\n**Question.** %s\n\n**Expected.** %s\n\n", s.Name, oneLine(s.Question), oneLine(s.Expected))
		if len(s.Facts) > 0 {
			b.WriteString("**Facts.**\n\n")
			for _, f := range s.Facts {
				fmt.Fprintf(&b, "- %s\n", oneLine(f))
			}
			b.WriteString("\n")
		}
		b.WriteString("**Expectations.**\n\n")
		for _, e := range s.Expect {
			fmt.Fprintf(&b, "- `%s`\n", e)
		}
	}
	return b.Bytes()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestReadmeListsEveryScenario(t *testing.T) {
	want := readme(t)
	if *update {
		if err := os.WriteFile("README.md", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("scenarios/README.md is out of date: run go test ./scenarios -run TestReadme -update")
	}
}

// BenchmarkSuite runs every built-in scenario once in the sim, sequentially.
// Target: the whole suite in under 10 s on 2 cores.
func BenchmarkSuite(b *testing.B) {
	all, err := scenarios.All()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, sc := range all {
			run, err := lab.Execute(context.Background(), sc, lab.Options{Provider: sim.Provider{}, DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			if run.Verdict != lab.Pass {
				b.Fatalf("%s: %s", sc.Name, run.Verdict)
			}
		}
	}
	b.ReportMetric(float64(len(all)), "scenarios")
}
