package lab_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/sim"
)

// simEnv brings the default topology (changed by mod) up in the sim on a
// virtual clock.
func simEnv(t *testing.T, mod func(*topology.Topology)) (topology.Env, *clock.Virtual) {
	t.Helper()
	top := topology.Default()
	if mod != nil {
		mod(top)
	}
	clk := clock.NewVirtual(time.Time{})
	env, err := sim.Provider{}.Up(context.Background(), top, topology.UpOptions{Clock: clk, Rand: rand.New(rand.NewPCG(1, 2)), DataDir: t.TempDir()})
	if env != nil {
		t.Cleanup(func() { env.Down(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return env, clk
}

// validated runs Validate against the environment's topology.
func validated(t *testing.T, env topology.Env, v any) {
	t.Helper()
	if err := v.(lab.Validator).Validate(env.Topology()); err != nil {
		t.Fatalf("validate %T: %v", v, err)
	}
}

func probe(env topology.Env, region string) topology.ProbeResult {
	return env.Probe(context.Background(), topology.ProbeSpec{Type: topology.ProbeHSMUnwrap, Target: region})
}

// plainEnv hides every optional control of the environment it wraps.
type plainEnv struct{ topology.Env }

func TestPartAValidateErrors(t *testing.T) {
	top := topology.Default()
	cases := []struct {
		name string
		v    lab.Validator
		msg  string
	}{
		{"rack: no pool", &lab.RackPowerLoss{Region: "westeurope", Rack: "rack-1"}, "has no HSM pool"},
		{"rack: neither rack nor zone", &lab.RackPowerLoss{Region: "southindia"}, "set rack or zone"},
		{"rack: both", &lab.RackPowerLoss{Region: "southindia", Rack: "rack-1", Zone: "1"}, "set rack or zone"},
		{"rack: nothing on it", &lab.RackPowerLoss{Region: "southindia", Rack: "rack-9"}, "no partition of southindia is on rack rack-9"},
		{"zone: Chennai has racks", &lab.RackPowerLoss{Region: "southindia", Zone: "1"}, "chennai-p1 on rack:rack-1"},
		{"purge: no key", &lab.KeyPurgeAttempt{Key: "nope"}, `no key "nope"`},
		{"roles: unknown principal", &lab.RoleAssignmentRemoval{Principal: "mallory"}, "not a principal"},
		{"roles: unknown role", &lab.RoleAssignmentRemoval{Principal: "key-management-team", Role: "Crypto Wizard"}, "unknown role"},
		{"roles: bad scope", &lab.RoleAssignmentRemoval{Principal: "key-management-team", Scope: "/secrets"}, "role-assignment-removal"},
		{"lag: no key", &lab.ReplicationLagWindow{Key: "nope", FailAfter: topology.Duration(time.Minute), Scope: "region"}, `no key "nope"`},
		{"lag: failAfter", &lab.ReplicationLagWindow{Key: "Contoso-SQLMI-CMK", Scope: "region"}, "failAfter must be positive"},
		{"lag: scope", &lab.ReplicationLagWindow{Key: "Contoso-SQLMI-CMK", FailAfter: topology.Duration(time.Minute), Scope: "world"}, `scope "world"`},
		{"saturation: no pool", &lab.HSMSaturation{Region: "westeurope", Burst: 1}, "has no HSM pool"},
		{"saturation: no load", &lab.HSMSaturation{Region: "southindia"}, "set rate, burst or storm"},
		{"saturation: negative", &lab.HSMSaturation{Region: "southindia", Rate: -1}, "must not be negative"},
		{"saturation: alg", &lab.HSMSaturation{Region: "southindia", Burst: 1, Alg: "A256KW"}, "does not unwrap"},
		{"pe: none", &lab.PrivateEndpointDown{Region: "westeurope"}, "has no private endpoint"},
		{"dns: region", &lab.DNSMisroute{Region: "westeurope", To: "southindia"}, `no region "westeurope"`},
		{"dns: target", &lab.DNSMisroute{Region: "southindia", To: "westeurope"}, `is not "nowhere"`},
		{"enable: versions", &lab.EnableKey{Key: "Contoso-SQLMI-CMK", Versions: "some"}, "not all or current"},
		{"grant: role", &lab.RestoreRoleAssignment{Principal: "key-management-team", Role: "Crypto Wizard", Scope: "/"}, "unknown role"},
		{"grant: scope", &lab.RestoreRoleAssignment{Principal: "key-management-team", Role: "Crypto User", Scope: "keys"}, "restore-role-assignment"},

		{"set version: workload", &lab.SetKeyVersion{Workload: "ad-dc-1"}, "not a SQL managed instance"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.v.Validate(top)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, c.msg)
			}
		})
	}
	oks := []lab.Validator{
		&lab.RackPowerLoss{Region: "centralindia", Zone: "2"},
		&lab.RoleAssignmentRemoval{Principal: "key-management-team", Role: "Crypto User", Scope: "/keys"},
		&lab.DNSMisroute{Region: "southindia", To: topology.DNSNowhere},
		&lab.IdentityOutage{},
		&lab.RestoreRoleAssignment{Principal: "governance-team", Role: "Managed HSM Crypto Officer", Scope: "/"},
	}
	for _, v := range oks {
		if err := v.Validate(top); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}

// Every parameter of the new types is documented.
func TestPartATypesDocumented(t *testing.T) {
	for _, typ := range []string{"rack-power-loss", "key-purge-attempt", "role-assignment-removal", "replication-lag-window",
		"hsm-saturation", "private-endpoint-down", "dns-misroute", "identity-outage",
		"enable-key", "restore-role-assignment", "set-key-version"} {
		ti, ok := lab.Lookup(typ)
		if !ok {
			t.Fatalf("%s is not registered", typ)
		}
		if ti.Summary == "" || ti.Facts == "" {
			t.Errorf("%s: summary or facts missing", typ)
		}
		for _, p := range ti.Params() {
			if p.Doc == "" {
				t.Errorf("%s: parameter %s has no doc", typ, p.Name)
			}
		}
	}
}

func TestRackPowerLossRoundTrip(t *testing.T) {
	env, _ := simEnv(t, nil)
	f := &lab.RackPowerLoss{Region: "southindia", Rack: "rack-2"}
	validated(t, env, f)
	ctx := context.Background()
	if err := f.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	pool, _ := env.HSM().Pool("southindia")
	for _, p := range pool.Partitions() {
		if want := p.Name != "chennai-p2"; p.Healthy != want {
			t.Fatalf("%s healthy = %v, want %v", p.Name, p.Healthy, want)
		}
	}
	if r := probe(env, "southindia"); !r.OK || r.Pool != "southindia" {
		t.Fatalf("probe during the loss: %+v", r)
	}
	for range 2 { // idempotent
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pool.Partitions() {
		if !p.Healthy {
			t.Fatalf("%s still lost after revert", p.Name)
		}
	}
}

func TestKeyPurgeAttempt(t *testing.T) {
	ctx := context.Background()
	t.Run("purge protection on: refused, recoverable", func(t *testing.T) {
		env, _ := simEnv(t, nil)
		f := &lab.KeyPurgeAttempt{Key: "Contoso-DISK-CMK"}
		validated(t, env, f)
		if err := f.Inject(ctx, env); err != nil {
			t.Fatalf("a refused purge is not an error: %v", err)
		}
		if f.Outcome() != lab.PurgeRefused || f.Irreversible() {
			t.Fatalf("outcome %q, irreversible %v", f.Outcome(), f.Irreversible())
		}
		if _, _, err := env.HSM().GetKey(ctx, env.Operator(), "Contoso-DISK-CMK", ""); !errors.Is(err, mhsm.ErrKeyNotFound) {
			t.Fatalf("deleted key readable: %v", err)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		if _, _, err := env.HSM().GetKey(ctx, env.Operator(), "Contoso-DISK-CMK", ""); err != nil {
			t.Fatalf("not recovered: %v", err)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatalf("second revert: %v", err)
		}
	})
	t.Run("purge protection off: purged for good", func(t *testing.T) {
		env, _ := simEnv(t, func(top *topology.Topology) { top.HSM.PurgeProtection = false })
		f := &lab.KeyPurgeAttempt{Key: "Contoso-DISK-CMK"}
		validated(t, env, f)
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		if f.Outcome() != lab.PurgeDone || !f.Irreversible() {
			t.Fatalf("outcome %q, irreversible %v", f.Outcome(), f.Irreversible())
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		if _, err := env.HSM().GetDeletedKey(ctx, env.Operator(), "Contoso-DISK-CMK"); !errors.Is(err, mhsm.ErrDeletedKeyNotFound) {
			t.Fatalf("purged key still recoverable: %v", err)
		}
	})
	t.Run("a provider that cannot purge", func(t *testing.T) {
		env, _ := simEnv(t, nil)
		f := &lab.KeyPurgeAttempt{Key: "Contoso-DISK-CMK"}
		if err := f.Inject(ctx, adminEnv{env}); !errors.Is(err, lab.ErrNotSupported) {
			t.Fatalf("Inject = %v, want ErrNotSupported", err)
		}
		if _, _, err := env.HSM().GetKey(ctx, env.Operator(), "Contoso-DISK-CMK", ""); err != nil {
			t.Fatalf("the key was touched: %v", err)
		}
	})
}

// adminEnv's KeyAdmin offers only topology.KeyAdmin's methods (no purge).
type adminEnv struct{ topology.Env }

func (e adminEnv) KeyAdmin() topology.KeyAdmin { return struct{ topology.KeyAdmin }{e.HSM()} }

func TestRoleAssignmentRemovalRoundTrip(t *testing.T) {
	env, _ := simEnv(t, nil)
	ctx := context.Background()
	team := mhsm.Caller{Principal: "key-management-team"}
	f := &lab.RoleAssignmentRemoval{Principal: "key-management-team"}
	validated(t, env, f)
	if err := f.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.HSM().RotateKey(ctx, team, "Contoso-SQLMI-CMK"); err == nil {
		t.Fatal("the team rotated a key without its role")
	}
	if err := f.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.HSM().RotateKey(ctx, team, "Contoso-SQLMI-CMK"); err != nil {
		t.Fatalf("after revert: %v", err)
	}
	none := &lab.RoleAssignmentRemoval{Principal: "key-management-team", Scope: "/keys/Contoso-SQLMI-CMK"}
	validated(t, env, none)
	if err := none.Inject(ctx, env); err == nil || !strings.Contains(err.Error(), "no role assignment matching") {
		t.Fatalf("Inject with nothing to remove = %v", err)
	}
}

func TestReplicationLagWindow(t *testing.T) {
	ctx := context.Background()
	pune := func(principal string) mhsm.Caller { return mhsm.Caller{Principal: principal, Region: "centralindia"} }
	t.Run("region outage inside the lag", func(t *testing.T) {
		env, clk := simEnv(t, nil)
		f := &lab.ReplicationLagWindow{Key: "Contoso-SQLMI-CMK", FailAfter: topology.Duration(2 * time.Minute), Scope: lab.LagScopeRegion}
		validated(t, env, f)
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		newVer := strings.TrimPrefix(f.Outcome(), "new version ")
		if newVer == "" {
			t.Fatal("no new version recorded")
		}
		clk.Advance(time.Minute)
		if r := probe(env, "southindia"); !r.OK {
			t.Fatalf("southindia down before failAfter: %+v", r)
		}
		clk.Advance(time.Minute + time.Second)
		if r := probe(env, "southindia"); r.OK || r.Code != sim.CodeRegionDown {
			t.Fatalf("southindia not down after failAfter: %+v", r)
		}
		clk.Advance(10 * time.Minute) // well past the lag: replication is held
		cur, _, err := env.HSM().GetKey(ctx, pune(env.Operator().Principal), "Contoso-SQLMI-CMK", "")
		if err != nil || cur.Version == newVer {
			t.Fatalf("Pune's current version %q (err %v); the new one %s must be missing", cur.Version, err, newVer)
		}
		if _, _, err := env.HSM().GetKey(ctx, pune(env.Operator().Principal), "Contoso-SQLMI-CMK", newVer); !errors.Is(err, mhsm.ErrKeyNotFound) {
			t.Fatalf("new version in Pune during the outage: %v", err)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		if r := probe(env, "southindia"); !r.OK {
			t.Fatalf("southindia still down after revert: %+v", r)
		}
		if _, _, err := env.HSM().GetKey(ctx, pune(env.Operator().Principal), "Contoso-SQLMI-CMK", newVer); err != nil {
			t.Fatalf("held replication not released when Chennai returned: %v", err)
		}
	})
	t.Run("hsm scope: workloads stay, served by Pune", func(t *testing.T) {
		env, clk := simEnv(t, nil)
		f := &lab.ReplicationLagWindow{Key: "Contoso-SQLMI-CMK", FailAfter: topology.Duration(time.Minute), Scope: lab.LagScopeHSM}
		validated(t, env, f)
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute + time.Minute)
		if r := probe(env, "southindia"); !r.OK || r.Pool != "centralindia" {
			t.Fatalf("Chennai's clients not served by Pune: %+v", r)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("revert before failAfter cancels the outage", func(t *testing.T) {
		env, clk := simEnv(t, nil)
		f := &lab.ReplicationLagWindow{Key: "Contoso-SQLMI-CMK", FailAfter: topology.Duration(2 * time.Minute), Scope: lab.LagScopeRegion}
		validated(t, env, f)
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		clk.Advance(5 * time.Minute)
		if r := probe(env, "southindia"); !r.OK {
			t.Fatalf("the outage happened after the revert: %+v", r)
		}
	})
}

func TestPrivateEndpointDownRoundTrip(t *testing.T) {
	env, _ := simEnv(t, nil)
	ctx := context.Background()
	f := &lab.PrivateEndpointDown{Region: "southindia"}
	validated(t, env, f)
	if err := f.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	if r := probe(env, "southindia"); r.OK || r.Code != sim.CodeUnreachable {
		t.Fatalf("probe through a dead endpoint: %+v", r)
	}
	if r := probe(env, "centralindia"); !r.OK {
		t.Fatalf("Pune affected: %+v", r)
	}
	for range 2 {
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if r := probe(env, "southindia"); !r.OK {
		t.Fatalf("after revert: %+v", r)
	}
}

func TestDNSMisroute(t *testing.T) {
	ctx := context.Background()
	env, _ := simEnv(t, nil)
	f := &lab.DNSMisroute{Region: "southindia", To: "centralindia"}
	validated(t, env, f)
	if err := f.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	r := probe(env, "southindia")
	if !r.OK || r.Pool != "centralindia" || r.Latency < 25*time.Millisecond {
		t.Fatalf("misrouted probe: %+v", r)
	}
	// Pinned: with Pune's pool down, Chennai's clients still go there.
	if err := env.HSM().SetRegionDown("centralindia", true); err != nil {
		t.Fatal(err)
	}
	if r := probe(env, "southindia"); r.OK {
		t.Fatalf("misroute to a dead pool served: %+v", r)
	}
	if err := env.HSM().SetRegionDown("centralindia", false); err != nil {
		t.Fatal(err)
	}
	if err := f.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	if r := probe(env, "southindia"); !r.OK || r.Pool != "southindia" {
		t.Fatalf("after revert: %+v", r)
	}

	nowhere := &lab.DNSMisroute{Region: "southindia", To: topology.DNSNowhere}
	validated(t, env, nowhere)
	if err := nowhere.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	if r := probe(env, "southindia"); r.OK || r.Code != sim.CodeNameResolution {
		t.Fatalf("probe resolving to nowhere: %+v", r)
	}
	if err := nowhere.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	if err := f.Inject(ctx, plainEnv{env}); !errors.Is(err, lab.ErrNotSupported) {
		t.Fatalf("Inject without DNS control = %v, want ErrNotSupported", err)
	}
}

func TestIdentityOutage(t *testing.T) {
	ctx := context.Background()
	env, clk := simEnv(t, func(top *topology.Topology) { top.Behaviour.Identity.TokenLifetime = topology.Duration(time.Hour) })
	f := &lab.IdentityOutage{}
	validated(t, env, f)
	if !strings.Contains(f.Describe(), "1h0m0s") {
		t.Fatalf("describe: %s", f.Describe())
	}
	if r := probe(env, "southindia"); !r.OK { // the probe's identity gets its token
		t.Fatalf("before: %+v", r)
	}
	if err := f.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Minute)
	if r := probe(env, "southindia"); !r.OK {
		t.Fatalf("token still valid, probe failed: %+v", r)
	}
	clk.Advance(31 * time.Minute)
	r := probe(env, "southindia")
	if r.OK || r.Code != sim.CodeTokenUnavailable {
		t.Fatalf("expired token: %+v", r)
	}
	// A workload's key client fails the same way, as unreachable.
	kc := env.(interface {
		KeyClient(principal, region string) keyclient.Client
	}).KeyClient("stpune-mi", "centralindia")
	if _, err := kc.WrapKey(ctx, "Contoso-STORAGE-CMK", "", keyclient.RSAOAEP256, make([]byte, 32)); !errors.Is(err, keyclient.ErrUnreachable) || keyclient.Code(err) != sim.CodeTokenUnavailable {
		t.Fatalf("key client without a token: %v", err)
	}
	if err := f.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	if r := probe(env, "southindia"); !r.OK {
		t.Fatalf("after revert: %+v", r)
	}
	if err := f.Inject(ctx, plainEnv{env}); !errors.Is(err, lab.ErrNotSupported) {
		t.Fatalf("Inject without identity control = %v, want ErrNotSupported", err)
	}
}

func TestHSMSaturation(t *testing.T) {
	ctx := context.Background()
	t.Run("a storm queues, it does not fail", func(t *testing.T) {
		env, clk := simEnv(t, nil)
		f := &lab.HSMSaturation{Region: "centralindia", Burst: 3000, Storm: true}
		validated(t, env, f)
		if !strings.Contains(f.Describe(), "burst of 3040 unwraps") {
			t.Fatalf("storm not counted: %s", f.Describe())
		}
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		r := probe(env, "centralindia")
		if !r.OK || r.Latency < 500*time.Millisecond {
			t.Fatalf("probe behind 3040 unwraps: %+v", r)
		}
		if f.Outcome() != "" {
			t.Fatalf("failures: %s", f.Outcome())
		}
		clk.Advance(2 * time.Second)
		if r := probe(env, "centralindia"); !r.OK || r.Latency > 5*time.Millisecond {
			t.Fatalf("queue did not drain: %+v", r)
		}
		if r := probe(env, "southindia"); r.Latency > 5*time.Millisecond {
			t.Fatalf("Chennai's pool took Pune's load: %+v", r)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a sustained rate above capacity grows the queue until reverted", func(t *testing.T) {
		env, clk := simEnv(t, nil)
		f := &lab.HSMSaturation{Region: "southindia", Rate: 5000} // 3 × 1100/s capacity
		validated(t, env, f)
		if err := f.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		first := probe(env, "southindia")
		clk.Advance(time.Second)
		second := probe(env, "southindia")
		if !first.OK || !second.OK || second.Latency <= first.Latency || first.Latency < 100*time.Millisecond {
			t.Fatalf("queue not growing: %v then %v", first.Latency, second.Latency)
		}
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
		clk.Advance(5 * time.Second)
		if r := probe(env, "southindia"); r.Latency > 5*time.Millisecond {
			t.Fatalf("load continued after revert: %+v", r)
		}
	})
	t.Run("oct keys default to AES key wrap", func(t *testing.T) {
		top := topology.Default()
		top.HSM.Keys = append(top.HSM.Keys, topology.Key{Name: "aes", Type: "oct-HSM", Size: 256})
		f := &lab.HSMSaturation{Region: "southindia", Burst: 1, Key: "aes"}
		if err := f.Validate(top); err != nil || f.Alg != string(partition.A256KW) {
			t.Fatalf("alg %q, err %v", f.Alg, err)
		}
	})
}

func TestPartAActions(t *testing.T) {
	ctx := context.Background()
	env, _ := simEnv(t, nil)
	do := func(a lab.Action) error {
		t.Helper()
		validated(t, env, a)
		return a.Do(ctx, env)
	}

	// enable-key undoes a disable.
	rev := &lab.KeyRevocation{Key: "Contoso-DISK-CMK", Mode: lab.RevokeDisable}
	validated(t, env, rev)
	if err := rev.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	if err := do(&lab.EnableKey{Key: "Contoso-DISK-CMK", Versions: lab.VersionsAll}); err != nil {
		t.Fatal(err)
	}
	vs, err := env.HSM().ListVersions(ctx, env.Operator(), "Contoso-DISK-CMK")
	if err != nil || !vs[len(vs)-1].Attr.Enabled {
		t.Fatalf("not enabled: %+v %v", vs, err)
	}

	// key-rotation: the governance team (Crypto Officer) cannot, the key
	// managers (Crypto User) can.
	if err := (&lab.KeyRotation{Key: "Contoso-SQLMI-CMK", As: "governance-team"}).Inject(ctx, env); err == nil {
		t.Fatal("Crypto Officer rotated a key")
	}
	rot := &lab.KeyRotation{Key: "Contoso-SQLMI-CMK", As: "key-management-team"}
	if err := rot.Inject(ctx, env); err != nil || !strings.HasPrefix(rot.Outcome(), "new version ") {
		t.Fatalf("Crypto User rotation: %v (outcome %q)", err, rot.Outcome())
	}

	// restore-role-assignment grants, and granting again is not an error.
	grant := &lab.RestoreRoleAssignment{Principal: "governance-team", Role: "Crypto User", Scope: "/keys"}
	for range 2 {
		if err := do(grant); err != nil {
			t.Fatal(err)
		}
	}
	if err := (&lab.KeyRotation{Key: "Contoso-SQLMI-CMK", As: "governance-team"}).Inject(ctx, env); err != nil {
		t.Fatalf("after the grant: %v", err)
	}

	// set-key-version moves each kind of workload to the latest version.
	for _, w := range []string{"sqlmi-chennai", "contosostchennai", "des-chennai"} {
		if err := do(&lab.SetKeyVersion{Workload: w, Version: "latest"}); err != nil {
			t.Fatalf("%s: %v", w, err)
		}
	}
	if err := (&lab.SetKeyVersion{Workload: "sqlmi-chennai", Version: "latest"}).Do(ctx, plainEnv{env}); !errors.Is(err, lab.ErrNotSupported) {
		t.Fatalf("without key-version control = %v, want ErrNotSupported", err)
	}
}
