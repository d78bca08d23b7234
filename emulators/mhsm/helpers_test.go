package mhsm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const (
	chennai = "southindia"
	pune    = "centralindia"
	admin   = "hsm-admin"
	keyMgr  = "key-manager"
	officer = "governance"
	sqlMI   = "sqlmi-mi"
)

var ctx = context.Background()

var (
	officerOnce sync.Once
	officerKeys []*rsa.PrivateKey
)

// officers returns three 2048-bit officer keys, generated once per test binary.
func officers(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	officerOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			officerKeys = append(officerKeys, k)
		}
	})
	return officerKeys
}

func officerPubs(t testing.TB) []secdomain.Officer {
	var out []secdomain.Officer
	for i, k := range officers(t) {
		out = append(out, secdomain.Officer{Name: string(rune('a' + i)), Public: &k.PublicKey})
	}
	return out
}

type lab struct {
	h    *mhsm.HSM
	clk  *clock.Virtual
	blob *secdomain.Blob
}

func as(p, region string) mhsm.Caller { return mhsm.Caller{Principal: p, Region: region} }

// newLab builds the seed's HSM under a virtual clock: Chennai primary, Pune
// extended (override on), activated, with the seed's roles.
func newLab(t testing.TB, mutate ...func(*mhsm.Config)) *lab {
	t.Helper()
	clk := clock.NewVirtual(time.Time{})
	cfg := mhsm.Config{
		Name:                           "Contoso-PROD-HSM",
		Primary:                        mhsm.RegionConfig{Name: chennai},
		Extended:                       &mhsm.RegionConfig{Name: pune},
		AllowUnsupportedExtendedRegion: true,
		PurgeProtection:                true,
		Administrators:                 []string{admin},
		PartitionHealTime:              30 * time.Minute,
		Clock:                          clk,
		Rand:                           mrand.New(mrand.NewPCG(7, 7)),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := mhsm.New(cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(h.Close)
	blob, err := h.DownloadSecurityDomain(ctx, as(admin, ""), officerPubs(t), 2)
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	l := &lab{h: h, clk: clk, blob: blob}
	l.assign(t, keyMgr, rbac.CryptoUserRoleID, "/keys")
	l.assign(t, officer, rbac.CryptoOfficerRoleID, "/")
	l.clk.Advance(cfg.ReplicationLag + 7*time.Minute) // let role assignments reach every region
	return l
}

func (l *lab) assign(t testing.TB, principal, role string, scope rbac.Scope) {
	t.Helper()
	name := principal + "-" + role[:8] + "-" + string(scope)
	for i := range name {
		if name[i] == '/' {
			name = name[:i] + "_" + name[i+1:]
		}
	}
	if _, err := l.h.CreateRoleAssignment(ctx, as(admin, ""), rbac.Assignment{Name: name, Principal: principal, RoleDefinitionID: role, Scope: scope}); err != nil {
		t.Fatalf("assign %s %s at %s: %v", principal, role, scope, err)
	}
}

func (l *lab) createRSA(t testing.TB, name string) mhsm.KeyVersion {
	t.Helper()
	k, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), name, mhsm.KeyOptions{Type: mhsm.KeyTypeRSA, Size: 2048})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return k
}

func dek() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}
