package scenarios_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/scenarios"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/sim"
)

// BenchmarkChennaiRegionOutage runs the main job's scenario (4 h modelled).
// Target: under 1 s of wall time, i.e. modelled/wall ≥ 10 000.
func BenchmarkChennaiRegionOutage(b *testing.B) {
	sc, err := scenarios.Load("chennai-region-outage")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := lab.Execute(context.Background(), sc, lab.Options{Provider: sim.Provider{}, DataDir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
	}
	perRun := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(sc.Duration.D())/float64(perRun), "modelled/wall")
}

// BenchmarkDayAt10ProbesPerSecond runs 24 h of modelled time with ten
// probes a second across the HSM and every kind of workload, and reports the
// peak heap. Target: under 200 MB.
func BenchmarkDayAt10ProbesPerSecond(b *testing.B) {
	sc, err := scenarios.Load("chennai-region-outage")
	if err != nil {
		b.Fatal(err)
	}
	day := *sc
	day.Name = "day-at-10-probes-per-second"
	day.Duration = topology.Duration(benchDay)
	every := topology.Duration(time.Second)
	day.Probes = nil
	for _, p := range []struct{ kind, target string }{
		{topology.ProbeHSMUnwrap, "southindia"}, {topology.ProbeHSMUnwrap, "centralindia"},
		{topology.ProbeSQLQuery, "sqlmi-chennai"}, {topology.ProbeSQLQuery, "sqlmi-pune"}, {topology.ProbeSQLWrite, "contoso-fog"},
		{topology.ProbeBlobRead, "contosostchennai"}, {topology.ProbeBlobRead, "contosostpune"}, {topology.ProbeBlobWrite, "contosostpune"},
		{topology.ProbeDiskIO, "ad-dc-1"}, {topology.ProbeDiskIO, "ad-dc-2"},
	} {
		day.Probes = append(day.Probes, topology.ProbeSpec{Type: p.kind, Target: p.target, Every: every})
	}
	var peak, live uint64
	var ms runtime.MemStats
	tick := 0
	for b.Loop() {
		runtime.GC()
		run, err := lab.Execute(context.Background(), &day, lab.Options{Provider: sim.Provider{}, DataDir: b.TempDir(),
			Progress: func(lab.Progress) {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
				if tick++; tick%10 == 0 { // live heap: what the run holds, garbage collected
					runtime.GC()
					runtime.ReadMemStats(&ms)
					live = max(live, ms.HeapAlloc)
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		if run.History.Len() < int(10*benchDay/time.Second)-100 {
			b.Fatalf("only %d operations recorded", run.History.Len())
		}
		_ = run.Summarize()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(live)/(1<<20), "peak-live-heap-MB")
}

// benchDay is the modelled length of BenchmarkDayAt10ProbesPerSecond.
var benchDay = 24 * time.Hour
