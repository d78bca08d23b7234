package sim_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/sim"
)

func up(t *testing.T, mutate func(*topology.Topology)) (topology.Env, *clock.Virtual) {
	t.Helper()
	top := topology.Default().Clone()
	if mutate != nil {
		mutate(top)
	}
	clk := clock.NewVirtual(time.Time{})
	env, err := sim.Provider{}.Up(context.Background(), top, topology.UpOptions{Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), DataDir: t.TempDir()})
	if env != nil {
		t.Cleanup(func() { env.Down(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return env, clk
}

var ctx = context.Background()

func unwrap(env topology.Env, region string) topology.ProbeResult {
	return env.Probe(ctx, topology.ProbeSpec{Type: topology.ProbeHSMUnwrap, Target: region})
}

func TestNetworkPathsAndLatency(t *testing.T) {
	env, clk := up(t, nil)
	if got := env.Network().Links(); len(got) != 3 {
		t.Fatalf("links %v, want the inter-region path and two private endpoints", got)
	}
	r := unwrap(env, "southindia")
	if !r.OK || r.Pool != "southindia" || r.Path != "pe-hsm-chennai→southindia" {
		t.Fatalf("baseline %+v", r)
	}
	base := r.Latency
	// 1.5 ms intra-region RTT + 1/1100 s of service time.
	if want := 1500*time.Microsecond + time.Second/1100; base != want {
		t.Fatalf("baseline latency %v, want %v", base, want)
	}
	if err := env.Network().SetLatency("pe-hsm-chennai", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if r := unwrap(env, "southindia"); r.Latency != base+60*time.Millisecond {
		t.Fatalf("with 30 ms each way: %v, want %v", r.Latency, base+60*time.Millisecond)
	}
	if err := env.Network().SetCut("pe-hsm-chennai", true); err != nil {
		t.Fatal(err)
	}
	if r := unwrap(env, "southindia"); r.OK || r.Code != sim.CodeUnreachable {
		t.Fatalf("private endpoint cut: %+v", r)
	}
	if r := unwrap(env, "centralindia"); !r.OK {
		t.Fatalf("Pune through its own endpoint: %+v", r)
	}
	if err := env.Network().SetCut("no-such-link", true); !errors.Is(err, topology.ErrUnknownLink) {
		t.Fatalf("unknown link: %v", err)
	}
}

func TestRegionOutageReroutesAfterTheTTL(t *testing.T) {
	env, clk := up(t, nil)
	if err := env.SetRegionDown("southindia", true); err != nil {
		t.Fatal(err)
	}
	if r := unwrap(env, "southindia"); r.OK || r.Code != sim.CodeRegionDown {
		t.Fatalf("probe from the dark region: %+v", r)
	}
	clk.Advance(5 * time.Second)
	r := unwrap(env, "centralindia")
	if !r.OK || r.Pool != "centralindia" {
		t.Fatalf("Pune during the outage: %+v", r)
	}
	if err := env.SetRegionDown("southindia", false); err != nil {
		t.Fatal(err)
	}
	if err := env.Network().SetCut(topology.LinkName("southindia", "centralindia"), true); err != nil {
		t.Fatal(err)
	}
	// Chennai's pool is back; its clients never needed the inter-region link.
	clk.Advance(6 * time.Second)
	if r := unwrap(env, "southindia"); !r.OK || r.Pool != "southindia" {
		t.Fatalf("after the outage: %+v", r)
	}
}

func TestRemovedRegionAccessParameter(t *testing.T) {
	for _, mode := range []string{topology.RemovedRerouted, topology.RemovedLost} {
		t.Run(mode, func(t *testing.T) {
			env, clk := up(t, func(top *topology.Topology) { top.Behaviour.HSM.RemovedRegionAccess = mode })
			if err := env.HSM().RemoveRegion("centralindia"); err != nil {
				t.Fatal(err)
			}
			clk.Advance(10 * time.Second)
			r := unwrap(env, "centralindia")
			switch mode {
			case topology.RemovedRerouted:
				if !r.OK || r.Pool != "southindia" || r.Latency < 25*time.Millisecond {
					t.Fatalf("rerouted: %+v", r)
				}
			case topology.RemovedLost:
				if r.OK || r.Code != sim.CodeUnreachable {
					t.Fatalf("lost: %+v", r)
				}
			}
		})
	}
}

func TestWorkloadProbesAndLostWrites(t *testing.T) {
	env, clk := up(t, nil)
	for _, p := range []topology.ProbeSpec{
		{Type: topology.ProbeSQLQuery, Target: "sqlmi-pune"}, {Type: topology.ProbeBlobRead, Target: "contosostchennai"},
		{Type: topology.ProbeDiskIO, Target: "ad-dc-1"}, {Type: topology.ProbeVMBoot, Target: "ad-dc-2"},
	} {
		if r := env.Probe(ctx, p); !r.OK {
			t.Fatalf("%s %s: %+v", p.Type, p.Target, r)
		}
	}
	var ids []string
	for range 3 {
		r := env.Probe(ctx, topology.ProbeSpec{Type: topology.ProbeSQLWrite, Target: "contoso-fog"})
		if !r.OK || r.WriteID == "" {
			t.Fatalf("write: %+v", r)
		}
		ids = append(ids, r.WriteID)
	}
	clk.Advance(time.Minute)
	lost, err := env.LostWrites(ctx, "contoso-fog", ids)
	if err != nil || len(lost) != 0 {
		t.Fatalf("lost %v %v", lost, err)
	}
	if err := env.Workloads().SQLFailover(ctx, "contoso-fog", true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if lost, err := env.LostWrites(ctx, "contoso-fog", ids); err != nil || len(lost) != 0 {
		t.Fatalf("after a planned failover: lost %v %v", lost, err)
	}
	ps, ok := env.(topology.PlaintextScanner)
	if !ok {
		t.Fatal("the sim does not scan for plaintext DEKs")
	}
	if found, err := ps.PlaintextDEKs(); err != nil || len(found) != 0 {
		t.Fatalf("plaintext DEKs %v %v", found, err)
	}
}
