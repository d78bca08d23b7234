package mhsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

func TestWrapUnwrapEveryAlgorithm(t *testing.T) {
	l := newLab(t)
	cases := []struct {
		kty  string
		size int
		alg  partition.Alg
	}{
		{mhsm.KeyTypeRSA, 2048, partition.RSAOAEP256},
		{mhsm.KeyTypeRSA, 2048, partition.RSAOAEP},
		{mhsm.KeyTypeRSA, 2048, partition.RSA15},
		{mhsm.KeyTypeRSA, 3072, partition.RSAOAEP256},
		{mhsm.KeyTypeOct, 128, partition.A128KW},
		{mhsm.KeyTypeOct, 192, partition.A192KW},
		{mhsm.KeyTypeOct, 256, partition.A256KW},
	}
	for _, c := range cases {
		name := c.kty + "-" + string(c.alg)
		t.Run(name, func(t *testing.T) {
			key := "k-" + string(rune('a'+c.size%26)) + map[string]string{mhsm.KeyTypeRSA: "rsa", mhsm.KeyTypeOct: "oct"}[c.kty]
			if _, _, err := l.h.GetKey(ctx, as(keyMgr, ""), key, ""); err != nil {
				if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), key, mhsm.KeyOptions{Type: c.kty, Size: c.size}); err != nil {
					t.Fatal(err)
				}
			}
			secret := dek()
			w, err := l.h.WrapKey(ctx, as(keyMgr, ""), key, "", c.alg, secret)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.h.UnwrapKey(ctx, as(keyMgr, ""), key, w.Version, c.alg, w.Value)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Value) != string(secret) {
				t.Fatal("round trip changed the DEK")
			}
			bad := append([]byte(nil), w.Value...)
			bad[0] ^= 0xff
			if _, err := l.h.UnwrapKey(ctx, as(keyMgr, ""), key, w.Version, c.alg, bad); !errors.Is(err, mhsm.ErrDecrypt) {
				t.Fatalf("corrupt ciphertext: %v", err)
			}
		})
	}
	if _, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k-arsa", "", partition.A256KW, dek()); err == nil {
		// "k-arsa" does not exist; a real key with a wrong alg:
		t.Fatal("wrap with a missing key succeeded")
	}
}

func TestEncryptDecrypt(t *testing.T) {
	l := newLab(t)
	if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "aes", mhsm.KeyOptions{Type: mhsm.KeyTypeOct, Size: 256}); err != nil {
		t.Fatal(err)
	}
	r, err := l.h.Encrypt(ctx, as(keyMgr, ""), "aes", "", partition.A256GCM, []byte("hello"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.h.Decrypt(ctx, as(keyMgr, ""), "aes", r.Version, partition.A256GCM, r.Value, r.IV, r.Tag, []byte("aad"))
	if err != nil || string(out.Value) != "hello" {
		t.Fatalf("decrypt: %q %v", out.Value, err)
	}
	if _, err := l.h.Decrypt(ctx, as(keyMgr, ""), "aes", r.Version, partition.A256GCM, r.Value, r.IV, r.Tag, []byte("other")); !errors.Is(err, mhsm.ErrDecrypt) {
		t.Fatalf("wrong aad: %v", err)
	}
}

// Disabled keys refuse everything; outside the nbf/exp window only
// decrypt/unwrap still work; key_ops restrict operations.
func TestKeyStateGatesOperations(t *testing.T) {
	l := newLab(t)
	k := l.createRSA(t, "k")
	w, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k", "", partition.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	f, tr := false, true
	past, future := l.clk.Now().Add(-time.Hour), l.clk.Now().Add(time.Hour)
	steps := []struct {
		name               string
		opts               mhsm.KeyOptions
		wrapErr, unwrapErr error
	}{
		{"disabled", mhsm.KeyOptions{Enabled: &f}, mhsm.ErrKeyDisabled, mhsm.ErrKeyDisabled},
		{"re-enabled", mhsm.KeyOptions{Enabled: &tr}, nil, nil},
		{"expired", mhsm.KeyOptions{Expires: &past}, mhsm.ErrKeyExpired, nil},
		{"valid again", mhsm.KeyOptions{Expires: &future}, nil, nil},
		{"not yet valid", mhsm.KeyOptions{NotBefore: &future, Expires: ptr(future.Add(time.Hour))}, mhsm.ErrKeyNotYetValid, nil},
		{"active", mhsm.KeyOptions{NotBefore: &past}, nil, nil},
		{"wrap only", mhsm.KeyOptions{Ops: []string{mhsm.OpWrapKey}}, nil, mhsm.ErrOperationNotAllowed},
	}
	for _, s := range steps {
		if _, err := l.h.UpdateKey(ctx, as(keyMgr, ""), "k", k.Version, s.opts); err != nil {
			t.Fatalf("%s: update: %v", s.name, err)
		}
		_, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k", "", partition.RSAOAEP256, dek())
		if !errors.Is(err, s.wrapErr) || (s.wrapErr == nil && err != nil) {
			t.Errorf("%s: wrap: %v, want %v", s.name, err, s.wrapErr)
		}
		_, err = l.h.UnwrapKey(ctx, as(keyMgr, ""), "k", w.Version, partition.RSAOAEP256, w.Value)
		if !errors.Is(err, s.unwrapErr) || (s.unwrapErr == nil && err != nil) {
			t.Errorf("%s: unwrap: %v, want %v", s.name, err, s.unwrapErr)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The seed's #1 mistake, end to end: a key manager given Crypto Officer
// cannot create or rotate keys; with Crypto User it can.
func TestRoleConfusion(t *testing.T) {
	l := newLab(t)
	_, _, err := l.h.CreateKey(ctx, as(officer, ""), "k", mhsm.KeyOptions{})
	if !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("Crypto Officer create: %v", err)
	}
	if code, status := mhsm.Code(err); code != mhsm.CodeForbidden || status != 403 {
		t.Fatalf("code %s %d", code, status)
	}
	l.createRSA(t, "k")
	if _, _, err := l.h.RotateKey(ctx, as(officer, ""), "k"); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("Crypto Officer rotate: %v", err)
	}
}

func TestVersionsRotationAndPolicy(t *testing.T) {
	l := newLab(t)
	v1 := l.createRSA(t, "k")
	if _, _, err := l.h.RotateKey(ctx, as(keyMgr, ""), "k"); !errors.Is(err, mhsm.ErrNoRotationPolicy) {
		t.Fatalf("rotate without a policy: %v", err)
	}
	bad := mhsm.RotationPolicy{LifetimeActions: []mhsm.LifetimeAction{{Action: "Rotate", TimeAfterCreate: 7 * 24 * time.Hour}}}
	if _, err := l.h.UpdateRotationPolicy(ctx, as(keyMgr, ""), "k", bad); !errors.Is(err, mhsm.ErrBadParameter) {
		t.Fatalf("policy under 28 days: %v", err)
	}
	p := mhsm.RotationPolicy{LifetimeActions: []mhsm.LifetimeAction{{Action: "Rotate", TimeAfterCreate: 30 * 24 * time.Hour}}, ExpiresAfter: 60 * 24 * time.Hour}
	if _, err := l.h.UpdateRotationPolicy(ctx, as(keyMgr, ""), "k", p); err != nil {
		t.Fatal(err)
	}
	v2, _, err := l.h.RotateKey(ctx, as(keyMgr, ""), "k")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version == v1.Version || v2.Size != 2048 || v2.Attr.Expires.Sub(v2.Attr.Created) != 60*24*time.Hour {
		t.Fatalf("rotated version %+v", v2.Attr)
	}
	// The policy rotates 30 days after the current version was created.
	l.clk.Advance(30*24*time.Hour + time.Minute)
	vs, err := l.h.ListVersions(ctx, as(keyMgr, ""), "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("versions after 30 days: %d, want 3 (auto-rotation)", len(vs))
	}
	// Old versions stay usable for unwrap.
	w, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k", v1.Version, partition.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.h.UnwrapKey(ctx, as(keyMgr, ""), "k", v1.Version, partition.RSAOAEP256, w.Value); err != nil {
		t.Fatalf("unwrap with the first version: %v", err)
	}
}

func TestVersionLimit(t *testing.T) {
	l := newLab(t)
	for i := 0; i < mhsm.MaxVersions; i++ {
		if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "k", mhsm.KeyOptions{Type: mhsm.KeyTypeOct, Size: 128}); err != nil {
			t.Fatalf("version %d: %v", i+1, err)
		}
	}
	if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "k", mhsm.KeyOptions{Type: mhsm.KeyTypeOct, Size: 128}); !errors.Is(err, mhsm.ErrVersionLimit) {
		t.Fatalf("version 101: %v", err)
	}
}

// Soft delete, recover, and purge under purge protection (facts §5).
func TestSoftDeleteRecoverPurge(t *testing.T) {
	for _, protected := range []bool{true, false} {
		t.Run(map[bool]string{true: "purge protection on", false: "purge protection off"}[protected], func(t *testing.T) {
			l := newLab(t, func(c *mhsm.Config) { c.PurgeProtection = protected; c.SoftDeleteRetentionDays = 7 })
			l.createRSA(t, "k")
			if _, err := l.h.DeleteKey(ctx, as(officer, ""), "k"); !errors.Is(err, rbac.ErrForbidden) {
				t.Fatalf("Crypto Officer delete: %v", err)
			}
			d, err := l.h.DeleteKey(ctx, as(keyMgr, ""), "k")
			if err != nil {
				t.Fatal(err)
			}
			if d.ScheduledPurgeDate.Sub(d.DeletedDate) != 7*24*time.Hour {
				t.Fatalf("scheduled purge %v after deletion", d.ScheduledPurgeDate.Sub(d.DeletedDate))
			}
			if _, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k", "", partition.RSAOAEP256, dek()); !errors.Is(err, mhsm.ErrKeyNotFound) {
				t.Fatalf("wrap with a deleted key: %v", err)
			}
			if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "k", mhsm.KeyOptions{}); !errors.Is(err, mhsm.ErrConflict) {
				t.Fatalf("create over a deleted key: %v", err)
			}
			if _, err := l.h.RecoverDeletedKey(ctx, as(keyMgr, ""), "k"); !errors.Is(err, rbac.ErrForbidden) {
				t.Fatalf("Crypto User recover: %v", err)
			}
			if _, err := l.h.RecoverDeletedKey(ctx, as(officer, ""), "k"); err != nil {
				t.Fatalf("Crypto Officer recover: %v", err)
			}
			if _, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k", "", partition.RSAOAEP256, dek()); err != nil {
				t.Fatalf("wrap after recovery: %v", err)
			}
			if _, err := l.h.DeleteKey(ctx, as(keyMgr, ""), "k"); err != nil {
				t.Fatal(err)
			}
			err = l.h.PurgeDeletedKey(ctx, as(officer, ""), "k")
			if protected {
				if !errors.Is(err, mhsm.ErrPurgeProtected) {
					t.Fatalf("purge under protection: %v", err)
				}
				l.clk.Advance(7*24*time.Hour + time.Second) // retention ends: the service purges it
			} else if err != nil {
				t.Fatalf("purge without protection: %v", err)
			}
			if _, err := l.h.GetDeletedKey(ctx, as(officer, ""), "k"); !errors.Is(err, mhsm.ErrDeletedKeyNotFound) {
				t.Fatalf("deleted key after purge: %v", err)
			}
			l.clk.Advance(7 * time.Minute)
			if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "k", mhsm.KeyOptions{Type: mhsm.KeyTypeOct}); err != nil {
				t.Fatalf("name reuse after purge: %v", err)
			}
		})
	}
}

func TestBackupRestoreKey(t *testing.T) {
	l := newLab(t)
	l.assign(t, "backup-op", rbac.BackupRoleID, "/")
	k := l.createRSA(t, "k")
	w, err := l.h.WrapKey(ctx, as(keyMgr, ""), "k", "", partition.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	blob, err := l.h.BackupKey(ctx, as("backup-op", ""), "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.h.RestoreKey(ctx, as(keyMgr, ""), blob); !errors.Is(err, mhsm.ErrConflict) {
		t.Fatalf("restore over a live key: %v", err)
	}
	if _, err := l.h.DeleteKey(ctx, as(keyMgr, ""), "k"); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(91 * 24 * time.Hour) // purged at the end of retention
	got, err := l.h.RestoreKey(ctx, as(keyMgr, ""), blob)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != k.Version {
		t.Fatalf("restored version %s, want %s", got.Version, k.Version)
	}
	if _, err := l.h.UnwrapKey(ctx, as(keyMgr, ""), "k", w.Version, partition.RSAOAEP256, w.Value); err != nil {
		t.Fatalf("unwrap after restore: %v", err)
	}
}

func TestListAndGet(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "b")
	l.createRSA(t, "a")
	ks, err := l.h.ListKeys(ctx, as(keyMgr, ""))
	if err != nil || len(ks) != 2 || ks[0].Name != "a" {
		t.Fatalf("list: %v %v", ks, err)
	}
	l.assign(t, sqlMI, rbac.CryptoServiceEncryptionUserRoleID, "/keys/a")
	if _, err := l.h.ListKeys(ctx, as(sqlMI, "")); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("a key-scoped identity listed every key: %v", err)
	}
	if _, _, err := l.h.GetKey(ctx, as(sqlMI, ""), "b", ""); !errors.Is(err, rbac.ErrForbidden) {
		t.Fatalf("get another key: %v", err)
	}
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, ""), "a", "0123"); !errors.Is(err, mhsm.ErrKeyNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "bad name!", mhsm.KeyOptions{}); !errors.Is(err, mhsm.ErrBadParameter) {
		t.Fatalf("bad name: %v", err)
	}
	if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "ec", mhsm.KeyOptions{Type: "EC-HSM"}); !errors.Is(err, mhsm.ErrBadParameter) {
		t.Fatalf("EC key: %v", err)
	}
}

// Version IDs come from the injected random source: the same seed gives the
// same IDs.
func TestDeterministicVersionIDs(t *testing.T) {
	a, b := newLab(t), newLab(t)
	ka := a.createRSA(t, "k")
	kb := b.createRSA(t, "k")
	if ka.Version != kb.Version || len(ka.Version) != 32 {
		t.Fatalf("versions %s vs %s", ka.Version, kb.Version)
	}
}
