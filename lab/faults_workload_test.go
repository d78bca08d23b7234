package lab_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/sim"
)

// upWorkloadSim brings a topology up in the sim (the default one when top
// is nil).
func upWorkloadSim(t *testing.T, top *topology.Topology) (topology.Env, *clock.Virtual) {
	t.Helper()
	if top == nil {
		top = topology.Default()
	}
	clk := clock.NewVirtual(time.Time{})
	env, err := sim.Provider{}.Up(context.Background(), top, topology.UpOptions{Clock: clk, Rand: rand.New(rand.NewPCG(3, 3)), DataDir: t.TempDir()})
	if env != nil {
		t.Cleanup(func() { env.Down(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return env, clk
}

// decodeStep decodes one timeline entry the way a scenario file would.
func decodeStep(t *testing.T, entry string) lab.Step {
	t.Helper()
	sc, err := lab.ParseScenario("t.yaml", []byte("name: t\nquestion: q?\nduration: 1h\ntimeline:\n  - "+entry+"\nexpect:\n  - ops(\"x\") >= 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	return sc.Timeline[0]
}

func TestWorkloadFaultsValidate(t *testing.T) {
	noPolicy := topology.Default()
	for i := range noPolicy.HSM.Keys {
		noPolicy.HSM.Keys[i].Rotation = nil
	}
	cases := []struct {
		name, entry string
		top         *topology.Topology
		want        string // substring of the error; "" = valid
	}{
		{"key-delete ok", "{type: key-delete, key: Contoso-SQLMI-CMK}", nil, ""},
		{"key-delete unknown key", "{type: key-delete, key: nope}", nil, `no key "nope"`},
		{"key-delete unknown principal", "{type: key-delete, key: Contoso-SQLMI-CMK, as: mallory}", nil, `as "mallory"`},
		{"key-rotation ok", "{type: key-rotation, key: Contoso-DISK-CMK, as: key-management-team}", nil, ""},
		{"key-rotation without policy", "{type: key-rotation, key: Contoso-DISK-CMK}", noPolicy, "no rotation policy"},
		{"key-version-disable ok", "{type: key-version-disable, key: Contoso-STORAGE-CMK, which: all-but-current}", nil, ""},
		{"key-version-disable bad which", "{type: key-version-disable, key: Contoso-STORAGE-CMK, which: oldest}", nil, `which "oldest"`},
		{"wrong-role default", "{type: wrong-role}", nil, ""},
		{"wrong-role team and principal", "{type: wrong-role, team: key-management, principal: key-management-team}", nil, "not both"},
		{"wrong-role unknown team", "{type: wrong-role, team: nobody}", nil, `team "nobody"`},
		{"wrong-role unknown principal", "{type: wrong-role, principal: nobody}", nil, `no principal "nobody"`},
		{"wrong-role unknown role", "{type: wrong-role, to: Crypto Wizard}", nil, "not a built-in role"},
		{"wrong-role same role", "{type: wrong-role, to: Managed HSM Crypto User}", nil, "same role"},
		{"missing-des ok", "{type: missing-des, region: centralindia}", nil, ""},
		{"missing-des unknown region", "{type: missing-des, region: mars}", nil, `no region "mars"`},
		{"purge-protection-off", "{type: purge-protection-off}", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			top := c.top
			if top == nil {
				top = topology.Default()
			}
			st := decodeStep(t, c.entry)
			v, ok := st.Value.(lab.Validator)
			if !ok {
				if c.want != "" {
					t.Fatalf("%s has no Validate", st.Type)
				}
				return
			}
			err := v.Validate(top)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestKeyDeleteInjectRevert(t *testing.T) {
	env, _ := upWorkloadSim(t, nil)
	ctx := context.Background()
	f := &lab.KeyDelete{Key: "Contoso-STORAGE-CMK"}
	if err := f.Validate(env.Topology()); err != nil {
		t.Fatal(err)
	}
	if err := f.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.HSM().GetKey(ctx, env.Operator(), f.Key, ""); !errors.Is(err, mhsm.ErrKeyNotFound) {
		t.Fatalf("get a soft-deleted key: %v", err)
	}
	if _, err := env.HSM().GetDeletedKey(ctx, env.Operator(), f.Key); err != nil {
		t.Fatalf("the key is not soft-deleted: %v", err)
	}
	for i := 0; i < 2; i++ { // Revert is idempotent
		if err := f.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := env.HSM().GetKey(ctx, env.Operator(), f.Key, ""); err != nil {
		t.Fatalf("get the recovered key: %v", err)
	}
	// A delete refused by RBAC leaves nothing to recover.
	g := &lab.KeyDelete{Key: "Contoso-STORAGE-CMK", As: "governance-team"}
	if err := g.Inject(ctx, env); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("delete as Crypto Officer: %v, want forbidden", err)
	}
	if err := g.Revert(ctx, env); err != nil {
		t.Fatalf("revert after a failed inject: %v", err)
	}
}

func TestKeyRotationAndVersionDisable(t *testing.T) {
	env, _ := upWorkloadSim(t, nil)
	ctx := context.Background()
	const key = "Contoso-SQLMI-CMK"
	versions := func() []mhsm.KeyVersion {
		t.Helper()
		vs, err := env.HSM().ListVersions(ctx, env.Operator(), key)
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	dis := &lab.KeyVersionDisable{Key: key, Which: lab.DisablePrevious}
	if err := dis.Inject(ctx, env); err == nil || !strings.Contains(err.Error(), "rotate it first") {
		t.Fatalf("disable the previous version of a key never rotated: %v", err)
	}
	rot := &lab.KeyRotation{Key: key, As: "key-management-team"}
	if !rot.Irreversible() {
		t.Fatal("key-rotation is not irreversible")
	}
	for i := 0; i < 2; i++ {
		if err := rot.Inject(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if err := rot.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	vs := versions()
	if len(vs) != 3 {
		t.Fatalf("%d versions after two rotations, want 3", len(vs))
	}
	if !strings.Contains(rot.Describe(), vs[2].Version) {
		t.Fatalf("describe %q does not name the new version", rot.Describe())
	}
	// previous: only the version before the current one.
	if err := dis.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	vs = versions()
	if !vs[0].Attr.Enabled || vs[1].Attr.Enabled || !vs[2].Attr.Enabled {
		t.Fatalf("after disabling the previous version: enabled %v %v %v, want true false true", vs[0].Attr.Enabled, vs[1].Attr.Enabled, vs[2].Attr.Enabled)
	}
	if err := dis.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	// all-but-current.
	all := &lab.KeyVersionDisable{Key: key, Which: lab.DisableAllButCurrent}
	if err := all.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	vs = versions()
	if vs[0].Attr.Enabled || vs[1].Attr.Enabled || !vs[2].Attr.Enabled {
		t.Fatalf("after disabling all but the current version: enabled %v %v %v", vs[0].Attr.Enabled, vs[1].Attr.Enabled, vs[2].Attr.Enabled)
	}
	for i := 0; i < 2; i++ {
		if err := all.Revert(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range versions() {
		if !v.Attr.Enabled {
			t.Fatalf("version %s still disabled after revert", v.Version)
		}
	}
}

func TestWrongRoleBlocksRotation(t *testing.T) {
	top := topology.Default()
	f := &lab.WrongRole{From: "Crypto User", To: "Crypto Officer"}
	if err := f.ApplyTopology(top); err != nil {
		t.Fatal(err)
	}
	if errs := top.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := f.Validate(top); err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, ra := range top.RoleAssignments {
		if ra.Principal == "key-management-team" {
			got = ra.Role
		}
	}
	if got != "Managed HSM Crypto Officer" {
		t.Fatalf("key-management-team holds %q, want Managed HSM Crypto Officer", got)
	}
	if !strings.Contains(f.Describe(), "key-management-team at /keys") {
		t.Fatalf("describe %q", f.Describe())
	}
	// Applying again finds no Crypto User assignment left to replace.
	if err := f.ApplyTopology(top); err == nil {
		t.Fatal("second apply succeeded")
	}
	env, _ := upWorkloadSim(t, top)
	rot := &lab.KeyRotation{Key: "Contoso-SQLMI-CMK", As: "key-management-team"}
	if err := rot.Inject(context.Background(), env); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("rotate as Crypto Officer: %v, want forbidden", err)
	}
	// The same team with the right role rotates.
	env2, _ := upWorkloadSim(t, nil)
	if err := rot.Inject(context.Background(), env2); err != nil {
		t.Fatalf("rotate as Crypto User: %v", err)
	}
}

func TestMissingDESApply(t *testing.T) {
	top := topology.Default()
	f := &lab.MissingDES{Region: "centralindia"}
	if err := f.ApplyTopology(top); err != nil {
		t.Fatal(err)
	}
	if errs := top.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, d := range top.Workloads.DiskEncryptionSets {
		if d.Region == "centralindia" {
			t.Fatalf("%s is still there", d.Name)
		}
	}
	for _, vm := range top.Workloads.VirtualMachines {
		if vm.ASR != nil && vm.ASR.TargetDES != "" {
			t.Fatalf("%s still replicates to %s", vm.Name, vm.ASR.TargetDES)
		}
	}
	if !slicesHasRule(topology.Lint(top), "des-missing-in-region") {
		t.Fatal("lint does not report the missing DES")
	}
	// The sim comes up without it; an ASR failover fails.
	env, _ := upWorkloadSim(t, top)
	if err := env.Workloads().ASRFailover(context.Background(), "ad-dc-1"); err == nil {
		t.Fatal("ASR failover without a DES in the target region succeeded")
	}
	// A region whose own VMs use its DES is refused.
	if err := (&lab.MissingDES{Region: "southindia"}).ApplyTopology(topology.Default()); err == nil || !strings.Contains(err.Error(), "uses des-chennai") {
		t.Fatalf("missing-des in the VMs' own region: %v", err)
	}
}

func slicesHasRule(fs []topology.Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

func TestPurgeProtectionOff(t *testing.T) {
	top := topology.Default()
	if err := (&lab.PurgeProtectionOff{}).ApplyTopology(top); err != nil {
		t.Fatal(err)
	}
	if top.HSM.PurgeProtection {
		t.Fatal("purge protection still on")
	}
	env, _ := upWorkloadSim(t, top)
	ctx := context.Background()
	if _, err := env.HSM().DeleteKey(ctx, env.Operator(), "Contoso-STORAGE-CMK"); err != nil {
		t.Fatal(err)
	}
	if err := env.HSM().PurgeDeletedKey(ctx, env.Operator(), "Contoso-STORAGE-CMK"); err != nil {
		t.Fatalf("purge without purge protection: %v", err)
	}
}

func TestTopologyFaultsRecordedNotInjected(t *testing.T) {
	for _, entry := range []string{"{type: wrong-role, at: 0s}", "{type: missing-des, at: 0s, region: centralindia}", "{type: purge-protection-off, at: 0s}"} {
		st := decodeStep(t, entry)
		if _, ok := st.Value.(lab.TopologyFault); !ok {
			t.Fatalf("%s is not a TopologyFault", st.Type)
		}
		if err := st.Fault().Inject(context.Background(), nil); err != nil {
			t.Fatalf("%s Inject: %v", st.Type, err)
		}
		if err := st.Fault().Revert(context.Background(), nil); err != nil {
			t.Fatalf("%s Revert: %v", st.Type, err)
		}
	}
}
