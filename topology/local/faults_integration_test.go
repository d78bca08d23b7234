package local_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/local"
)

type localEnv interface {
	topology.Env
	topology.IdentityControl
	topology.DNSControl
	PartitionHealth(ctx context.Context, name string) error
	EndpointAddr(region string) (string, bool)
	ProcessIDs() []int
}

func up(t *testing.T, p topology.Provider) localEnv {
	t.Helper()
	env, err := p.Up(ctx, topology.Default(), topology.UpOptions{Clock: clock.NewScaled(600)})
	if env != nil {
		t.Cleanup(func() {
			if err := env.Down(context.Background()); err != nil {
				t.Errorf("down: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return env.(localEnv)
}

func unwrap(env topology.Env, region string) topology.ProbeResult {
	return env.Probe(ctx, topology.ProbeSpec{Type: topology.ProbeHSMUnwrap, Target: region})
}

func mustServe(t *testing.T, env topology.Env, region, pool string) topology.ProbeResult {
	t.Helper()
	r := unwrap(env, region)
	if !r.OK || (pool != "" && r.Pool != pool) {
		t.Fatalf("unwrap from %s: %+v (want served by %s)", region, r, pool)
	}
	return r
}

// TestLocalIntegrationFaults checks that each fault is a real action on the
// real parts.
func TestLocalIntegrationFaults(t *testing.T) {
	p := requireReal(t)
	env := up(t, p)
	for _, r := range []string{"southindia", "centralindia"} {
		mustServe(t, env, r, r)
	}

	t.Run("partition-loss takes the tokens offline", func(t *testing.T) {
		f := &lab.PartitionLoss{Region: "southindia", Count: 2}
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"southindia/chennai-p1", "southindia/chennai-p2"} {
			if err := env.PartitionHealth(ctx, name); !errors.Is(err, partition.ErrUnavailable) {
				t.Errorf("%s after partition loss: health %v, want unavailable", name, err)
			}
		}
		if err := env.PartitionHealth(ctx, "southindia/chennai-p3"); err != nil {
			t.Errorf("the third token: %v", err)
		}
		for i := 0; i < 6; i++ {
			if r := mustServe(t, env, "southindia", "southindia"); r.Partition != "chennai-p3" {
				t.Fatalf("served by %s with two tokens offline", r.Partition)
			}
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"southindia/chennai-p1", "southindia/chennai-p2"} {
			if err := env.PartitionHealth(ctx, name); err != nil {
				t.Errorf("%s after restore: %v", name, err)
			}
		}
		seen := map[string]bool{}
		for i := 0; i < 12; i++ {
			seen[mustServe(t, env, "southindia", "southindia").Partition] = true
		}
		if len(seen) != 3 {
			t.Errorf("after restore served by %v, want all three partitions", seen)
		}
	})

	t.Run("link-cut stops the private endpoint's proxies", func(t *testing.T) {
		if err := env.Network().SetCut("pe-hsm-chennai", true); err != nil {
			t.Fatal(err)
		}
		if r := unwrap(env, "southindia"); r.OK || r.Code != "NetworkUnreachable" {
			t.Errorf("through a cut private endpoint: %+v", r)
		}
		mustServe(t, env, "centralindia", "centralindia")
		if err := env.Network().SetCut("pe-hsm-chennai", false); err != nil {
			t.Fatal(err)
		}
		mustServe(t, env, "southindia", "southindia")
	})

	t.Run("reset and bandwidth toxics", func(t *testing.T) {
		sh, ok := env.Network().(topology.LinkShaper)
		if !ok {
			t.Fatal("the local links are not a LinkShaper")
		}
		if err := sh.SetReset("pe-hsm-pune", true); err != nil {
			t.Fatal(err)
		}
		if r := unwrap(env, "centralindia"); r.OK {
			t.Errorf("through a resetting link: %+v", r)
		}
		if err := sh.SetReset("pe-hsm-pune", false); err != nil {
			t.Fatal(err)
		}
		base := mustServe(t, env, "centralindia", "centralindia").Latency
		if err := sh.SetBandwidth("pe-hsm-pune", 1); err != nil { // 1 KB/s
			t.Fatal(err)
		}
		slow := mustServe(t, env, "centralindia", "centralindia").Latency
		if err := sh.SetBandwidth("pe-hsm-pune", 0); err != nil {
			t.Fatal(err)
		}
		if slow < base+100*time.Millisecond {
			t.Errorf("at 1 KB/s an unwrap took %v (unlimited: %v)", slow, base)
		}
	})

	t.Run("region-outage stops the endpoint and the private endpoint", func(t *testing.T) {
		addr, _ := env.EndpointAddr("southindia")
		f := &lab.RegionOutage{Region: "southindia"}
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		if _, up := env.EndpointAddr("southindia"); up {
			t.Error("Chennai's endpoint still serving in a Chennai outage")
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("Chennai's endpoint %s accepts connections in a Chennai outage", addr)
		}
		if r := unwrap(env, "southindia"); r.OK || r.Code != "RegionDown" {
			t.Errorf("a probe in the dark region: %+v", r)
		}
		mustServe(t, env, "centralindia", "centralindia")
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		if a, up := env.EndpointAddr("southindia"); !up || a != addr {
			t.Errorf("Chennai's endpoint after the outage: %s up=%v (was %s)", a, up, addr)
		}
		// DNS shows Chennai healthy again one TTL (5 s modelled) later.
		if err := waitServe(env, "southindia", "southindia"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("misroute takes the inter-region path", func(t *testing.T) {
		if err := env.Misroute("southindia", "centralindia"); err != nil {
			t.Fatal(err)
		}
		r := mustServe(t, env, "southindia", "centralindia")
		if r.Path != "pe-hsm-chennai→centralindia" || r.Latency < 25*time.Millisecond {
			t.Errorf("misrouted unwrap: path %s, latency %v (the link's 25 ms RTT)", r.Path, r.Latency)
		}
		if err := env.Network().SetCut("centralindia~southindia", true); err != nil {
			t.Fatal(err)
		}
		if r := unwrap(env, "southindia"); r.OK {
			t.Errorf("misrouted over a cut inter-region path: %+v", r)
		}
		if err := env.Network().SetCut("centralindia~southindia", false); err != nil {
			t.Fatal(err)
		}
		if err := env.Misroute("southindia", ""); err != nil {
			t.Fatal(err)
		}
		mustServe(t, env, "southindia", "southindia")
	})

	t.Run("key-revocation goes through the REST API", func(t *testing.T) {
		for _, mode := range []string{lab.RevokeRoleRemoval, lab.RevokeDisable, lab.RevokeSoftDelete} {
			f := &lab.KeyRevocation{Key: "Contoso-SQLMI-CMK", Mode: mode}
			if err := f.Validate(env.Topology()); err != nil {
				t.Fatal(err)
			}
			if err := f.Inject(ctx, env); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			r := unwrap(env, "southindia") // sqlmi-chennai-mi on the SQL key
			if r.OK || (!strings.Contains(r.Code+r.Err, "Forbidden") && !strings.Contains(r.Code, "Key")) {
				t.Errorf("%s: unwrap %+v", mode, r)
			}
			if mode == lab.RevokeRoleRemoval {
				as, err := env.HSM().ListRoleAssignments(ctx, env.Operator(), rbac.KeyScope("Contoso-SQLMI-CMK"))
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range as {
					if strings.HasPrefix(a.Principal, "sqlmi-") {
						t.Errorf("assignment of %s still there", a.Principal)
					}
				}
			}
			if err := f.Revert(ctx, env); err != nil {
				t.Fatalf("%s revert: %v", mode, err)
			}
			mustServe(t, env, "southindia", "southindia")
		}
	})

	t.Run("identity outage: no new tokens, issued ones stay valid", func(t *testing.T) {
		if err := env.SetIssuing(false); err != nil {
			t.Fatal(err)
		}
		// A client that already has its token keeps working ...
		mustServe(t, env, "southindia", "southindia")
		// ... one that needs a new token cannot get one.
		r := env.Probe(ctx, topology.ProbeSpec{Type: topology.ProbeHSMUnwrap, Target: "southindia", As: "key-management-team", Key: "Contoso-SQLMI-CMK"})
		if r.OK {
			t.Errorf("a new client got a token during the identity outage: %+v", r)
		}
		if err := env.SetIssuing(true); err != nil {
			t.Fatal(err)
		}
	})
}

// waitServe retries an unwrap until the pool serves it (up to 5 s wall).
func waitServe(env topology.Env, region, pool string) error {
	wall := clock.Wall{}
	deadline := wall.Now().Add(5 * time.Second)
	for {
		r := unwrap(env, region)
		if r.OK && r.Pool == pool {
			return nil
		}
		if wall.Now().After(deadline) {
			return errors.New("unwrap from " + region + " not served by " + pool + ": " + r.Code + " " + r.Err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLocalRejectsUnsupportedFaults: a fault the local provider has no real
// action for is refused before anything comes up.
func TestLocalRejectsUnsupportedFaults(t *testing.T) {
	const yaml = `
name: local-unsupported
question: Is a fault without a real action refused?
duration: 1h
timeline:
  - {type: security-domain-loss, at: 10m}
expect:
  - availability("southindia") == 1.0
`
	if _, ok := lab.Lookup("security-domain-loss"); !ok {
		t.Skip("no security-domain-loss fault registered")
	}
	sc, err := lab.ParseScenario("unsupported.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	_, err = lab.Execute(ctx, sc, lab.Options{Provider: &local.Provider{}, Clock: clock.NewScaled(600), DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not supported on this provider") || !strings.Contains(err.Error(), "security-domain-loss") {
		t.Fatalf("a run with security-domain-loss on local: %v", err)
	}
	t.Log(err)
}
