package local_test

import (
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// 15 ms of extra one-way latency on Chennai's private endpoint: toxiproxy
// latency toxics of 15 ms upstream and 15 ms downstream, 30 ms added to
// every round trip through it.
const latencyScenario = `
name: local-latency
question: Does a 30 ms toxiproxy latency on the private endpoint show as 30 ms more unwrap latency?
duration: 2h
probes:
  - {type: hsm-unwrap, target: southindia, every: 30s}
timeline:
  - {type: link-latency, name: pe-slow, at: 1h, link: pe-hsm-chennai, latency: 15ms}
expect:
  - availability("southindia") == 1.0
`

// TestLocalIntegrationLatency measures unwrap p50 before and while the
// private endpoint carries 30 ms of toxiproxy latency per round trip, in
// one run: the difference must be 30 ms ± 1 ms.
func TestLocalIntegrationLatency(t *testing.T) {
	p := requireReal(t)
	sc, err := lab.ParseScenario("local-latency.yaml", []byte(latencyScenario))
	if err != nil {
		t.Fatal(err)
	}
	run, err := lab.Execute(ctx, sc, lab.Options{Provider: p, Clock: clock.NewScaled(600), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if run.Verdict != lab.Pass {
		t.Fatalf("verdict %s\n%s", run.Verdict, summary(run))
	}
	var before, during lab.LatencySummary
	for _, l := range run.Summarize().Latency {
		if l.Region != "southindia" {
			continue
		}
		switch l.Phase {
		case lab.PhaseBefore:
			before = l
		case lab.PhaseDuring:
			during = l
		}
	}
	if before.Count < 50 || during.Count < 50 {
		t.Fatalf("too few unwraps: before %d, during %d", before.Count, during.Count)
	}
	added := during.P50 - before.P50
	t.Logf("unwrap p50 baseline %v (n=%d), with 30 ms toxiproxy latency %v (n=%d): +%v (want 30ms ± 1ms)",
		before.P50, before.Count, during.P50, during.Count, added)
	if d := added - 30*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("30 ms of toxiproxy latency added %v to the p50 (baseline %v, during %v)", added, before.P50, during.P50)
	}
}
