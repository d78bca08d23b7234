package sim_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/sim"
)

// upDR brings the default topology up in the sim and returns it as a
// DisasterRecovery environment.
func upDR(t *testing.T) (topology.Env, topology.DisasterRecovery, *clock.Virtual) {
	t.Helper()
	clk := clock.NewVirtual(time.Time{})
	env, err := sim.Provider{}.Up(context.Background(), topology.Default(), topology.UpOptions{Clock: clk, Rand: rand.New(rand.NewPCG(7, 7)), DataDir: t.TempDir()})
	if env != nil {
		t.Cleanup(func() { env.Down(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	dr, ok := env.(topology.DisasterRecovery)
	if !ok {
		t.Fatal("the sim environment does not implement topology.DisasterRecovery")
	}
	return env, dr, clk
}

// drDEK is a DEK wrapped before the loss, by the SQL MI's key.
type drDEK struct {
	key, version string
	plain, value []byte
}

func wrapBeforeLoss(t *testing.T, env topology.Env) drDEK {
	t.Helper()
	d := drDEK{key: "Contoso-SQLMI-CMK", plain: make([]byte, 32)}
	if _, err := crand.Read(d.plain); err != nil {
		t.Fatal(err)
	}
	w, err := env.HSM().WrapKey(context.Background(), env.Operator(), d.key, "", partition.RSAOAEP256, d.plain)
	if err != nil {
		t.Fatal(err)
	}
	d.version, d.value = w.Version, w.Value
	return d
}

// unwrapFrom unwraps d as the SQL MI identity of a region.
func (d drDEK) unwrapFrom(env topology.Env, principal, region string) ([]byte, error) {
	r, err := env.HSM().UnwrapKey(context.Background(), mhsm.Caller{Principal: principal, Region: region}, d.key, d.version, partition.RSAOAEP256, d.value)
	return r.Value, err
}

func TestLoseHSMNothingHeals(t *testing.T) {
	env, dr, clk := upDR(t)
	d := wrapBeforeLoss(t, env)
	if err := dr.LoseHSM(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := dr.LoseHSM(context.Background()); err != nil {
		t.Fatalf("losing a lost HSM again: %v", err)
	}
	// Well past behaviour.hsm.partitionHealTime (30m): no pool to sync from.
	clk.Advance(3 * time.Hour)
	for _, region := range env.HSM().Regions() {
		p, err := env.HSM().Pool(region)
		if err != nil {
			t.Fatal(err)
		}
		if p.Healthy() {
			t.Fatalf("%s healed without the security domain", region)
		}
	}
	if _, err := d.unwrapFrom(env, "sqlmi-chennai-mi", "southindia"); !errors.Is(err, mhsm.ErrUnavailable) {
		t.Fatalf("unwrap from a lost HSM: %v, want ErrUnavailable", err)
	}
	if r := env.Probe(context.Background(), topology.ProbeSpec{Type: topology.ProbeSQLQuery, Target: "sqlmi-chennai"}); r.OK {
		t.Fatal("SQL MI still answers with its key store lost")
	}
}

func TestRestoreHSMBelowQuorumFails(t *testing.T) {
	env, dr, clk := upDR(t)
	if err := dr.LoseHSM(context.Background()); err != nil {
		t.Fatal(err)
	}
	lost := env.HSM()
	err := dr.RestoreHSM(context.Background(), 1)
	if !errors.Is(err, secdomain.ErrQuorumNotMet) {
		t.Fatalf("restore with 1 of 3 officers: %v, want ErrQuorumNotMet", err)
	}
	for _, n := range []int{0, 4} {
		if err := dr.RestoreHSM(context.Background(), n); err == nil {
			t.Fatalf("restore with %d officers succeeded", n)
		}
	}
	clk.Advance(time.Hour)
	if env.HSM() != lost {
		t.Fatal("a failed restore replaced the HSM")
	}
}

func TestRestoreHSMWithQuorumRecoversEveryKey(t *testing.T) {
	env, dr, clk := upDR(t)
	d := wrapBeforeLoss(t, env)
	lost := env.HSM()
	if err := dr.LoseHSM(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := dr.RestoreHSM(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if err := dr.RestoreHSM(context.Background(), 2); err == nil {
		t.Fatal("a second restore while the first replicates succeeded")
	}
	// The workloads move once the restore has replicated to Pune.
	if env.HSM() != lost {
		t.Fatal("the workloads moved before the restore replicated to every pool")
	}
	clk.Advance(env.Topology().Behaviour.HSM.ReplicationLag.D() + 2*time.Second)
	h := env.HSM()
	if h == lost {
		t.Fatal("the environment still uses the lost HSM")
	}
	if h.Name() != lost.Name() || h.SecurityDomainID() != lost.SecurityDomainID() {
		t.Fatalf("restored HSM %s (domain %s), want %s (domain %s)", h.Name(), h.SecurityDomainID(), lost.Name(), lost.SecurityDomainID())
	}
	// Every key is back, with its role assignments, in both regions; the DEK
	// wrapped before the loss unwraps.
	for _, c := range []struct{ principal, region string }{{"sqlmi-chennai-mi", "southindia"}, {"sqlmi-pune-mi", "centralindia"}} {
		got, err := d.unwrapFrom(env, c.principal, c.region)
		if err != nil {
			t.Fatalf("unwrap from %s after the restore: %v", c.region, err)
		}
		if !bytes.Equal(got, d.plain) {
			t.Fatalf("unwrap from %s returned another DEK", c.region)
		}
	}
	ks, err := h.ListKeys(context.Background(), env.Operator())
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 3 {
		t.Fatalf("restored %d keys, want 3", len(ks))
	}
	// The workloads' key clients follow: SQL MI answers again after its next check.
	clk.Advance(10 * time.Minute)
	for _, p := range []topology.ProbeSpec{
		{Type: topology.ProbeSQLQuery, Target: "sqlmi-chennai"},
		{Type: topology.ProbeBlobRead, Target: "contosostchennai"},
		{Type: topology.ProbeHSMUnwrap, Target: "centralindia"},
	} {
		if r := env.Probe(context.Background(), p); !r.OK {
			t.Fatalf("%s %s after the restore: %s %s", p.Type, p.Target, r.Code, r.Err)
		}
	}
	// The lost HSM is closed: its timers no longer run.
	if _, err := lost.Backup(context.Background(), env.Operator()); err == nil {
		t.Fatal("the lost HSM still serves after the restore")
	}
}

// A region that comes back while the restore replicates is up in the
// restored HSM.
func TestRestoreHSMFollowsRegionOutages(t *testing.T) {
	env, dr, clk := upDR(t)
	d := wrapBeforeLoss(t, env)
	if err := env.SetRegionDown("centralindia", true); err != nil {
		t.Fatal(err)
	}
	if err := dr.LoseHSM(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := dr.RestoreHSM(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := env.SetRegionDown("centralindia", false); err != nil {
		t.Fatal(err)
	}
	clk.Advance(env.Topology().Behaviour.HSM.ReplicationLag.D() + time.Minute)
	p, err := env.HSM().Pool("centralindia")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Healthy() {
		t.Fatal("Pune's pool is down in the restored HSM although the region is back")
	}
	if _, err := d.unwrapFrom(env, "sqlmi-pune-mi", "centralindia"); err != nil {
		t.Fatalf("unwrap from Pune after the restore: %v", err)
	}
}
