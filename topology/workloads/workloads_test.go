package workloads_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/workloads"
)

// The workload set on the emulator's in-process key client, under a
// virtual clock: every probe kind answers, a region outage takes its
// workloads down, writes are found again, and key versions can be set.
func TestSetOnInProcessHSM(t *testing.T) {
	ctx := context.Background()
	top := topology.Default()
	clk := clock.NewVirtual(time.Time{})
	h, err := mhsm.New(top.HSMConfig(clk, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var offs []*rsa.PublicKey
	for range top.HSM.SecurityDomain.Officers {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, &k.PublicKey)
	}
	if _, err := topology.Provision(ctx, h, top, offs); err != nil {
		t.Fatal(err)
	}
	clk.Advance(top.Behaviour.HSM.ReplicationLag.D() + time.Second)
	down := map[string]bool{}
	w, err := workloads.New(ctx, workloads.Config{Topology: top, Clock: clk, DataDir: t.TempDir(),
		Keys:       func(p, r string) keyclient.Client { return mhsm.NewClient(h, p, r) },
		RegionDown: func(r string) bool { return down[r] }})
	defer w.Close()
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if !w.Settled() {
		t.Fatal("failover groups not seeded after a minute")
	}
	probes := []topology.ProbeSpec{
		{Type: topology.ProbeSQLQuery, Target: "sqlmi-pune"}, {Type: topology.ProbeSQLWrite, Target: "contoso-fog"},
		{Type: topology.ProbeBlobRead, Target: "contosostchennai"}, {Type: topology.ProbeBlobWrite, Target: "contosostpune"},
		{Type: topology.ProbeDiskIO, Target: "ad-dc-1"}, {Type: topology.ProbeVMBoot, Target: "ad-dc-2"},
	}
	var acked []string
	for _, p := range probes {
		r := w.Probe(ctx, p)
		if !r.OK {
			t.Fatalf("%s %s: %+v", p.Type, p.Target, r)
		}
		if p.Target == "contoso-fog" {
			acked = append(acked, r.WriteID)
		}
	}
	if lost, err := w.LostWrites(ctx, "contoso-fog", acked); err != nil || len(lost) != 0 {
		t.Fatalf("lost writes %v, %v", lost, err)
	}
	down["southindia"] = true
	w.SetRegionDown("southindia", true)
	if r := w.Probe(ctx, topology.ProbeSpec{Type: topology.ProbeBlobRead, Target: "contosostchennai"}); r.OK || r.Code != workloads.CodeRegionDown {
		t.Fatalf("a probe in a dark region: %+v", r)
	}
	if err := w.SetKeyVersion(ctx, "contosostchennai", ""); err == nil {
		t.Fatal("set a key version in a dark region")
	}
	down["southindia"] = false
	w.SetRegionDown("southindia", false)
	if err := w.SetKeyVersion(ctx, "contosostchennai", ""); err != nil {
		t.Fatal(err)
	}
	if found, err := w.PlaintextDEKs(); err != nil || len(found) > 0 {
		t.Fatalf("plaintext DEKs %v, %v", found, err)
	}
	if as, key := workloads.ProbeIdentity(top, "centralindia", "", ""); as != "sqlmi-pune-mi" || key != "Contoso-SQLMI-CMK" {
		t.Fatalf("probe identity in Pune: %s %s", as, key)
	}
}
