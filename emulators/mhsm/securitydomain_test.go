package mhsm_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

func TestActivationGatesTheDataPlane(t *testing.T) {
	h, err := mhsm.New(mhsm.Config{Name: "new-hsm", Primary: mhsm.RegionConfig{Name: chennai}, Administrators: []string{admin}, Clock: clock.NewVirtual(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if h.Activated() {
		t.Fatal("a new HSM is activated")
	}
	_, _, err = h.CreateKey(ctx, as(admin, ""), "k", mhsm.KeyOptions{})
	if !errors.Is(err, mhsm.ErrNotActivated) {
		t.Fatalf("create before activation: %v", err)
	}
	_, err = h.CreateRoleAssignment(ctx, as(admin, ""), rbac.Assignment{Name: "a", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"})
	if !errors.Is(err, mhsm.ErrNotActivated) {
		t.Fatalf("role assignment before activation: %v", err)
	}
	if code, status := mhsm.Code(err); code != mhsm.CodeNotActivated || status != 403 {
		t.Fatalf("code %s %d", code, status)
	}
	// Only an administrator can download; too few officers or a bad quorum is refused.
	if _, err := h.DownloadSecurityDomain(ctx, as("someone", ""), officerPubs(t), 2); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("download by a non-admin: %v", err)
	}
	if _, err := h.DownloadSecurityDomain(ctx, as(admin, ""), officerPubs(t)[:2], 2); !errors.Is(err, secdomain.ErrTooFewOfficers) {
		t.Fatalf("download with 2 officers: %v", err)
	}
	if _, err := h.DownloadSecurityDomain(ctx, as(admin, ""), officerPubs(t), 1); !errors.Is(err, secdomain.ErrBadQuorum) {
		t.Fatalf("download with quorum 1: %v", err)
	}
	if h.Activated() {
		t.Fatal("a refused download activated the HSM")
	}
	if _, err := h.DownloadSecurityDomain(ctx, as(admin, ""), officerPubs(t), 2); err != nil {
		t.Fatal(err)
	}
	if !h.Activated() {
		t.Fatal("not activated after download")
	}
	if _, err := h.CreateRoleAssignment(ctx, as(admin, ""), rbac.Assignment{Name: "a", Principal: keyMgr, RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.CreateKey(ctx, as(keyMgr, ""), "k", mhsm.KeyOptions{Type: mhsm.KeyTypeOct, Size: 256}); err != nil {
		t.Fatalf("create after activation: %v", err)
	}
}

// TestRecoverIntoNewHSM is the disaster-recovery path of facts §4: the old
// HSM is gone; a new, empty one receives the security domain (recovered
// with a quorum of officer keys) and the full backup, and unwraps what the
// old one wrapped.
func TestRecoverIntoNewHSM(t *testing.T) {
	old := newLab(t)
	old.createRSA(t, "Contoso-SQLMI-CMK")
	secret := dek()
	w, err := old.h.WrapKey(ctx, as(keyMgr, ""), "Contoso-SQLMI-CMK", "", partition.RSAOAEP256, secret)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := old.h.Backup(ctx, as(admin, ""))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := old.blob.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	keys := officers(t)
	cases := []struct {
		name    string
		keys    []*rsa.PrivateKey
		wantErr error
	}{
		{"officers 1 and 2", keys[:2], nil},
		{"officers 2 and 3", keys[1:], nil},
		{"officers 1 and 3", []*rsa.PrivateKey{keys[0], keys[2]}, nil},
		{"all three", keys, nil},
		{"one officer is not a quorum", keys[:1], secdomain.ErrQuorumNotMet},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			blob, err := secdomain.ParseBlob(raw)
			if err != nil {
				t.Fatal(err)
			}
			d, err := secdomain.Recover(blob, c.keys)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("recover: %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := mhsm.New(mhsm.Config{Name: "Contoso-DR-HSM", Primary: mhsm.RegionConfig{Name: chennai}, Administrators: []string{admin}, Clock: clock.NewVirtual(time.Time{})})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(fresh.Close)
			tk, err := fresh.TransferKey(ctx, as(admin, ""))
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := secdomain.Seal(d, tk, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := fresh.UploadSecurityDomain(ctx, as(admin, ""), sealed); err != nil {
				t.Fatal(err)
			}
			if fresh.SecurityDomainID() != old.h.SecurityDomainID() {
				t.Fatal("restored HSM has another security domain")
			}
			if err := fresh.Restore(ctx, as(admin, ""), backup); err != nil {
				t.Fatal(err)
			}
			got, err := fresh.UnwrapKey(ctx, as(keyMgr, ""), "Contoso-SQLMI-CMK", w.Version, partition.RSAOAEP256, w.Value)
			if err != nil {
				t.Fatalf("unwrap in the restored HSM: %v", err)
			}
			if string(got.Value) != string(secret) {
				t.Fatal("restored HSM unwrapped a different DEK")
			}
		})
	}
}

func TestBackupNeedsTheSameSecurityDomain(t *testing.T) {
	a, b := newLab(t), newLab(t)
	a.createRSA(t, "k")
	blob, err := a.h.BackupKey(ctx, as(keyMgr, ""), "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.h.RestoreKey(ctx, as(keyMgr, ""), blob); !errors.Is(err, mhsm.ErrDomainMismatch) {
		t.Fatalf("restore into another domain: %v", err)
	}
	full, err := a.h.Backup(ctx, as(admin, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.h.Restore(ctx, as(admin, ""), full); !errors.Is(err, mhsm.ErrDomainMismatch) {
		t.Fatalf("full restore into another domain: %v", err)
	}
	tampered := append([]byte(nil), blob...)
	tampered[len(tampered)-10] ^= 1
	if _, err := a.h.RestoreKey(ctx, as(keyMgr, ""), tampered); !errors.Is(err, mhsm.ErrBadParameter) {
		t.Fatalf("tampered backup: %v", err)
	}
}

func TestUploadRejectsATamperedSeal(t *testing.T) {
	l := newLab(t)
	d, err := secdomain.Recover(l.blob, officers(t)[:2])
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := mhsm.New(mhsm.Config{Name: "dr", Primary: mhsm.RegionConfig{Name: chennai}, Administrators: []string{admin}, Clock: clock.NewVirtual(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fresh.Close)
	tk, err := fresh.TransferKey(ctx, as(admin, ""))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secdomain.Seal(d, tk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sealed[5] ^= 0x40
	if err := fresh.UploadSecurityDomain(ctx, as(admin, ""), sealed); !errors.Is(err, mhsm.ErrBadParameter) {
		t.Fatalf("tampered upload: %v", err)
	}
	if fresh.Activated() {
		t.Fatal("activated by a tampered upload")
	}
}
