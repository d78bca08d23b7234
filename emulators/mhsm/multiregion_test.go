package mhsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// A key created in the primary is usable in the extended region only after
// the replication lag (facts §2: "up to 6 minutes").
func TestReplicationLag(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "Contoso-SQLMI-CMK")
	secret := dek()
	w, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "Contoso-SQLMI-CMK", "", partition.RSAOAEP256, secret)
	if err != nil {
		t.Fatal(err)
	}
	if w.Served.Region != chennai {
		t.Fatalf("Chennai client served by %s", w.Served.Region)
	}
	_, err = l.h.UnwrapKey(ctx, as(keyMgr, pune), "Contoso-SQLMI-CMK", w.Version, partition.RSAOAEP256, w.Value)
	if !errors.Is(err, mhsm.ErrKeyNotFound) {
		t.Fatalf("Pune before the lag: %v, want KeyNotFound", err)
	}
	l.clk.Advance(6*time.Minute - time.Second)
	if _, err := l.h.UnwrapKey(ctx, as(keyMgr, pune), "Contoso-SQLMI-CMK", w.Version, partition.RSAOAEP256, w.Value); !errors.Is(err, mhsm.ErrKeyNotFound) {
		t.Fatalf("Pune 1 s before the lag: %v", err)
	}
	l.clk.Advance(time.Second)
	got, err := l.h.UnwrapKey(ctx, as(keyMgr, pune), "Contoso-SQLMI-CMK", w.Version, partition.RSAOAEP256, w.Value)
	if err != nil {
		t.Fatalf("Pune after the lag: %v", err)
	}
	if got.Served.Region != pune || string(got.Value) != string(secret) {
		t.Fatalf("served by %s, value ok=%v", got.Served.Region, string(got.Value) == string(secret))
	}
}

// Role assignments replicate with the same lag: a service identity given
// its role in the primary is refused in Pune until the write arrives.
func TestRoleAssignmentsReplicate(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "k")
	l.clk.Advance(10 * time.Minute)
	l.assign(t, sqlMI, rbac.CryptoServiceEncryptionUserRoleID, "/keys/k")
	if _, _, err := l.h.GetKey(ctx, as(sqlMI, chennai), "k", ""); err != nil {
		t.Fatalf("Chennai right after the assignment: %v", err)
	}
	if _, _, err := l.h.GetKey(ctx, as(sqlMI, pune), "k", ""); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("Pune before the lag: %v", err)
	}
	l.clk.Advance(6 * time.Minute)
	if _, _, err := l.h.GetKey(ctx, as(sqlMI, pune), "k", ""); err != nil {
		t.Fatalf("Pune after the lag: %v", err)
	}
}

// Primary region outage: reads and crypto fail over to Pune once DNS
// catches up (TTL 5 s); writes follow the primaryDownWrites parameter.
func TestPrimaryRegionOutage(t *testing.T) {
	for _, denied := range []bool{false, true} {
		name := map[bool]string{false: "writes allowed (2025 doc)", true: "writes denied (2024 doc)"}[denied]
		t.Run(name, func(t *testing.T) {
			l := newLab(t, func(c *mhsm.Config) { c.PrimaryDownWritesDenied = denied })
			l.createRSA(t, "k")
			l.clk.Advance(7 * time.Minute)
			w, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "k", "", partition.RSAOAEP256, dek())
			if err != nil {
				t.Fatal(err)
			}
			if err := l.h.SetRegionDown(chennai, true); err != nil {
				t.Fatal(err)
			}
			// Within the DNS TTL a Chennai client still resolves to Chennai.
			if _, err := l.h.UnwrapKey(ctx, as(keyMgr, chennai), "k", w.Version, partition.RSAOAEP256, w.Value); !errors.Is(err, mhsm.ErrUnavailable) {
				t.Fatalf("inside the DNS TTL: %v", err)
			}
			l.clk.Advance(5 * time.Second)
			got, err := l.h.UnwrapKey(ctx, as(keyMgr, chennai), "k", w.Version, partition.RSAOAEP256, w.Value)
			if err != nil || got.Served.Region != pune {
				t.Fatalf("after the TTL: served by %q, %v", got.Served.Region, err)
			}
			_, _, err = l.h.CreateKey(ctx, as(keyMgr, chennai), "new-key", mhsm.KeyOptions{Type: "oct-HSM", Size: 256})
			if denied {
				if !errors.Is(err, mhsm.ErrWriteUnavailable) {
					t.Fatalf("write with the primary down (denied): %v", err)
				}
			} else if err != nil {
				t.Fatalf("write with the primary down (allowed): %v", err)
			}
			// The region comes back; a write made in Pune reaches Chennai after the lag.
			if err := l.h.SetRegionDown(chennai, false); err != nil {
				t.Fatal(err)
			}
			l.clk.Advance(7 * time.Minute)
			_, _, err = l.h.GetKey(ctx, as(keyMgr, chennai), "new-key", "")
			if denied != errors.Is(err, mhsm.ErrKeyNotFound) || (!denied && err != nil) {
				t.Fatalf("new key in Chennai after recovery: %v", err)
			}
		})
	}
}

// A write not yet replicated when the primary fails reaches Pune only when
// the primary returns: a key version created just before the outage does not
// exist in the extended region during it.
func TestWriteInsideLagWindowIsMissingDuringOutage(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "k")
	l.clk.Advance(7 * time.Minute)
	if _, err := l.h.UpdateRotationPolicy(ctx, as(keyMgr, ""), "k", mhsm.RotationPolicy{LifetimeActions: []mhsm.LifetimeAction{{Action: "Rotate", TimeAfterCreate: 90 * 24 * time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	v2, _, err := l.h.RotateKey(ctx, as(keyMgr, ""), "k")
	if err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(2 * time.Minute)
	if err := l.h.SetRegionDown(chennai, true); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(time.Hour)
	cur, _, err := l.h.GetKey(ctx, as(keyMgr, pune), "k", "")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version == v2.Version {
		t.Fatal("the version created inside the lag window reached Pune while Chennai was down")
	}
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, pune), "k", v2.Version); !errors.Is(err, mhsm.ErrKeyNotFound) {
		t.Fatalf("new version in Pune during the outage: %v", err)
	}
	if err := l.h.SetRegionDown(chennai, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, pune), "k", v2.Version); err != nil {
		t.Fatalf("new version in Pune after Chennai returned: %v", err)
	}
}

// Removing the extended region purges its pool at once; Pune clients are
// then served by Chennai (the HSM is one resource) and re-adding Pune
// starts from an empty pool.
func TestExtendedRegionRemoval(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "k")
	l.clk.Advance(7 * time.Minute)
	if err := l.h.RemoveRegion(pune); err != nil {
		t.Fatal(err)
	}
	if _, err := l.h.Pool(pune); !errors.Is(err, mhsm.ErrNoSuchRegion) {
		t.Fatalf("Pune pool after removal: %v", err)
	}
	if got := l.h.Regions(); len(got) != 1 || got[0] != chennai {
		t.Fatalf("regions after removal: %v", got)
	}
	w, err := l.h.WrapKey(ctx, as(keyMgr, pune), "k", "", partition.RSAOAEP256, dek())
	if err != nil || w.Served.Region != chennai {
		t.Fatalf("Pune client after removal: %q %v", w.Served.Region, err)
	}
	if err := l.h.RemoveRegion(chennai); !errors.Is(err, mhsm.ErrBadParameter) {
		t.Fatalf("removing the primary: %v", err)
	}
	if err := l.h.AddRegion(mhsm.RegionConfig{Name: pune}); err != nil {
		t.Fatal(err)
	}
	// Before the lag the new pool has neither the role assignments nor the keys.
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, pune), "k", ""); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("a re-added region before the replication lag: %v, want Forbidden (roles not replicated yet)", err)
	}
	l.clk.Advance(6 * time.Minute)
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, pune), "k", ""); err != nil {
		t.Fatalf("re-added region after the lag: %v", err)
	}
	if err := l.h.AddRegion(mhsm.RegionConfig{Name: "westindia"}); !errors.Is(err, mhsm.ErrRegionRefused) {
		t.Fatalf("second extended region: %v", err)
	}
}

func TestCannotExtendList(t *testing.T) {
	_, err := mhsm.New(mhsm.Config{Name: "h", Primary: mhsm.RegionConfig{Name: chennai}, Extended: &mhsm.RegionConfig{Name: pune}})
	if !errors.Is(err, mhsm.ErrRegionRefused) {
		t.Fatalf("Central India as extended region without the override: %v", err)
	}
	h, err := mhsm.New(mhsm.Config{Name: "h", Primary: mhsm.RegionConfig{Name: chennai}, Extended: &mhsm.RegionConfig{Name: "westindia"}})
	if err != nil {
		t.Fatalf("West India: %v", err)
	}
	h.Close()
	if mhsm.CanExtendTo("centralindia") || !mhsm.CanExtendTo("southindia") {
		t.Fatal("CanExtendTo disagrees with the facts list")
	}
}

// The in-process key client classifies errors the way SQL MI reacts.
func TestClientClassifiesErrors(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "k")
	l.assign(t, sqlMI, rbac.CryptoServiceEncryptionUserRoleID, "/keys/k")
	c := mhsm.NewClient(l.h, sqlMI, chennai)
	var served []string
	c.Observe = func(op string, s mhsm.Served) { served = append(served, op+"@"+s.Region) }
	w, err := c.WrapKey(ctx, "k", "", keyclient.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UnwrapKey(ctx, "k", w); err != nil {
		t.Fatal(err)
	}
	if len(served) != 2 || served[0] != "wrapKey@southindia" {
		t.Fatalf("observed %v", served)
	}
	f := false
	if _, err := l.h.UpdateKey(ctx, as(keyMgr, ""), "k", "", mhsm.KeyOptions{Enabled: &f}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UnwrapKey(ctx, "k", w)
	if keyclient.Class(err) != keyclient.ErrDenied || keyclient.Code(err) != mhsm.CodeKeyDisabled {
		t.Fatalf("disabled key: class %v code %q (%v)", keyclient.Class(err), keyclient.Code(err), err)
	}
	_ = l.h.SetRegionDown(chennai, true)
	_ = l.h.SetRegionDown(pune, true)
	_, err = c.UnwrapKey(ctx, "k", w)
	if keyclient.Class(err) != keyclient.ErrUnreachable {
		t.Fatalf("both regions down: %v", err)
	}
	other := mhsm.NewClient(l.h, "stranger", chennai)
	_ = l.h.SetRegionDown(chennai, false)
	l.clk.Advance(10 * time.Second)
	if _, err := other.GetKey(ctx, "k", ""); keyclient.Class(err) != keyclient.ErrDenied || keyclient.Code(err) != mhsm.CodeForbidden {
		t.Fatalf("stranger: %v", err)
	}
}
