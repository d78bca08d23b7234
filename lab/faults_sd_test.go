package lab_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/topology"
)

func TestRestoreFromSecurityDomainValidate(t *testing.T) {
	cases := []struct {
		entry string
		want  int    // resolved officers
		err   string // substring; "" = valid
	}{
		{"{type: restore-from-security-domain}", 2, ""},
		{"{type: restore-from-security-domain, officers: 1}", 1, ""},
		{"{type: restore-from-security-domain, officers: 3}", 3, ""},
		{"{type: restore-from-security-domain, officers: 4}", 0, "not 1–3"},
		{"{type: restore-from-security-domain, officers: -1}", 0, "not 1–3"},
	}
	for _, c := range cases {
		st := decodeStep(t, c.entry)
		a := st.Value.(*lab.RestoreFromSecurityDomain)
		err := a.Validate(topology.Default())
		switch {
		case c.err == "" && err != nil:
			t.Fatalf("%s: %v", c.entry, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Fatalf("%s: %v, want an error containing %q", c.entry, err, c.err)
		case c.err == "" && a.Officers != c.want:
			t.Fatalf("%s: officers %d, want %d", c.entry, a.Officers, c.want)
		}
	}
	if st := decodeStep(t, "{type: security-domain-loss, at: 10m}"); !st.Value.(lab.Irreversible).Irreversible() {
		t.Fatal("security-domain-loss is not irreversible")
	}
}

func TestSecurityDomainLossAndRestore(t *testing.T) {
	env, clk := upWorkloadSim(t, nil)
	ctx := context.Background()
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	w, err := env.HSM().WrapKey(ctx, env.Operator(), "Contoso-DISK-CMK", "", partition.RSAOAEP256, secret)
	if err != nil {
		t.Fatal(err)
	}
	loss := &lab.SecurityDomainLoss{}
	if err := loss.Inject(ctx, env); err != nil {
		t.Fatal(err)
	}
	if err := loss.Revert(ctx, env); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := env.HSM().UnwrapKey(ctx, env.Operator(), "Contoso-DISK-CMK", w.Version, partition.RSAOAEP256, w.Value); err == nil {
		t.Fatal("the lost HSM still unwraps")
	}

	one := &lab.RestoreFromSecurityDomain{Officers: 1}
	if err := one.Validate(env.Topology()); err != nil {
		t.Fatal(err)
	}
	if err := one.Do(ctx, env); !errors.Is(err, secdomain.ErrQuorumNotMet) {
		t.Fatalf("restore with 1 of 3 officers: %v, want ErrQuorumNotMet", err)
	}
	two := &lab.RestoreFromSecurityDomain{}
	if err := two.Validate(env.Topology()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(two.Describe(), "2 of 3") {
		t.Fatalf("describe %q", two.Describe())
	}
	if err := two.Do(ctx, env); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	r, err := env.HSM().UnwrapKey(ctx, env.Operator(), "Contoso-DISK-CMK", w.Version, partition.RSAOAEP256, w.Value)
	if err != nil {
		t.Fatalf("unwrap after the restore: %v", err)
	}
	if string(r.Value) != string(secret) {
		t.Fatal("the restored HSM unwrapped another DEK")
	}
}

// noDR is an environment without topology.DisasterRecovery.
type noDR struct{ topology.Env }

func TestSecurityDomainFaultsNeedDisasterRecovery(t *testing.T) {
	env, _ := upWorkloadSim(t, nil)
	if err := (&lab.SecurityDomainLoss{}).Inject(context.Background(), noDR{env}); !errors.Is(err, lab.ErrNotSupported) {
		t.Fatalf("security-domain-loss without DisasterRecovery: %v", err)
	}
	if err := (&lab.RestoreFromSecurityDomain{Officers: 2}).Do(context.Background(), noDR{env}); !errors.Is(err, lab.ErrNotSupported) {
		t.Fatalf("restore without DisasterRecovery: %v", err)
	}
}
