package scenarios_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/results"
	"github.com/hsmlab/hsmlab/scenarios"
	"github.com/hsmlab/hsmlab/topology/sim"
)

func execute(t *testing.T, sc *lab.Scenario, seed uint64) *lab.Run {
	t.Helper()
	run, err := lab.Execute(context.Background(), sc, lab.Options{Provider: sim.Provider{}, Seed: seed, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%s: %v", sc.Name, err)
	}
	return run
}

func report(t *testing.T, run *lab.Run) string {
	var b bytes.Buffer
	results.FromRun(run).WriteSummary(&b)
	return b.String()
}

// Every built-in scenario passes its own expectations in the sim.
func TestBuiltInScenariosPass(t *testing.T) {
	all, err := scenarios.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no built-in scenarios")
	}
	for _, sc := range all {
		t.Run(sc.Name, func(t *testing.T) {
			run := execute(t, sc, 0)
			if run.Verdict != lab.Pass {
				t.Fatalf("verdict %s\n%s", run.Verdict, report(t, run))
			}
		})
	}
}

// decisive names, for each scenario, one parameter change that must make it
// fail: no scenario has expectations that cannot fail. Other files add
// their scenarios' entries in init.
var decisive = map[string]func(*lab.Scenario){
	"partition-loss-two": override("behaviour.hsm.throughput.rsa2048.unwrap", 50), // 50 unwraps/s: latency blows up
	// A failover policy with a 3 h grace period never fails over during the 2 h outage.
	"chennai-region-outage": override("workloads.failoverGroups[0].gracePeriod", "3h"),
	// Pune next door: no inter-region latency to see.
	"chennai-pool-loss": override("network.links[0].rtt", "1ms"),
	// The seed's reading: Pune's clients lose access when the region is removed.
	"pune-extended-region-removal": override("behaviour.hsm.removedRegionAccess", "lost"),
	// A 10-minute auto-heal window: 20 minutes without the key needs revalidation.
	"sql-key-revoked-20m": override("behaviour.sql.autoHealWindow", "10m"),
	// A 60-minute window: 45 minutes heal by themselves, the group stays linked.
	"sql-key-revoked-45m": override("behaviour.sql.autoHealWindow", "60m"),
}

func override(path string, v any) func(*lab.Scenario) {
	return func(s *lab.Scenario) {
		if s.Overrides == nil {
			s.Overrides = map[string]any{}
		}
		s.Overrides[path] = v
	}
}

func TestDecisiveChangeFails(t *testing.T) {
	for _, name := range scenarios.Names() {
		t.Run(name, func(t *testing.T) {
			change, ok := decisive[name]
			if !ok {
				t.Fatalf("scenario %s has no decisive-change test", name)
			}
			sc, err := scenarios.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			change(sc)
			run := execute(t, sc, 0)
			if run.Verdict != lab.Fail {
				t.Fatalf("verdict %s after the decisive change, want fail\n%s", run.Verdict, report(t, run))
			}
		})
	}
}

// Same seed → byte-identical result.json; another seed → the same verdict.
func TestSameSeedSameResult(t *testing.T) {
	sc, err := scenarios.Load("partition-loss-two")
	if err != nil {
		t.Fatal(err)
	}
	var out [2]bytes.Buffer
	for i := range out {
		if err := results.FromRun(execute(t, sc, 42)).WriteJSON(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
		t.Fatal("two runs with seed 42 gave different result.json")
	}
}
