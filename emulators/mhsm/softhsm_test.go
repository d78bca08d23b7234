//go:build cgo

package mhsm_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// SoftHSM configuration is per process: one temporary token directory for
// the whole test binary, removed at exit.
var (
	softOnce sync.Once
	softMod  *partition.Module
	softErr  error
	softDir  string
	tokenSeq int
	tokenMu  sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	if softMod != nil {
		softMod.Close()
	}
	if softDir != "" {
		os.RemoveAll(softDir)
	}
	os.Exit(code)
}

// requireSoftHSM returns the process's PKCS#11 module, skipping (or failing
// when HSMLAB_REQUIRE_SOFTHSM=1) if SoftHSM is not installed.
func requireSoftHSM(tb testing.TB) *partition.Module {
	tb.Helper()
	softOnce.Do(func() {
		softDir, softErr = os.MkdirTemp("", "hsmlab-mhsm-softhsm-")
		if softErr != nil {
			return
		}
		var s *partition.SoftHSM
		if s, softErr = partition.NewSoftHSM(softDir); softErr != nil {
			return
		}
		softMod, softErr = partition.OpenModule(s.ModulePath)
	})
	if softErr != nil {
		msg := fmt.Sprintf("SoftHSM not available (%v); install it with scripts/install-softhsm.sh", softErr)
		if os.Getenv("HSMLAB_REQUIRE_SOFTHSM") == "1" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return softMod
}

// softPartitions makes one fresh SoftHSM token per partition.
func softPartitions(tb testing.TB) func(string, mhsm.PartitionConfig) (partition.Partition, error) {
	mod := requireSoftHSM(tb)
	return func(region string, pc mhsm.PartitionConfig) (partition.Partition, error) {
		tokenMu.Lock()
		tokenSeq++
		label := fmt.Sprintf("%s-%s-%d", region, pc.Name, tokenSeq)
		tokenMu.Unlock()
		if err := mod.InitToken(label, "5678", "1234"); err != nil {
			return nil, err
		}
		return partition.NewPKCS11(mod, region+"/"+pc.Name, label, "1234")
	}
}

// TestSoftHSMBackedHSM runs the core scenarios on SoftHSM tokens: keys
// generated in a token reach the other partitions and the extended pool only
// wrapped under the security domain key, and partition loss and replication
// behave as with the pure-Go partitions.
func TestSoftHSMBackedHSM(t *testing.T) {
	np := softPartitions(t)
	l := newLab(t, func(c *mhsm.Config) { c.NewPartition = np })
	l.createRSA(t, "Contoso-SQLMI-CMK")
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, pune), "Contoso-SQLMI-CMK", ""); !errors.Is(err, mhsm.ErrKeyNotFound) {
		t.Fatalf("Pune before the lag: %v", err)
	}
	l.clk.Advance(6 * time.Minute)
	for _, alg := range []partition.Alg{partition.RSAOAEP256, partition.RSAOAEP, partition.RSA15} {
		secret := dek()
		w, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "Contoso-SQLMI-CMK", "", alg, secret)
		if err != nil {
			t.Fatalf("%s wrap: %v", alg, err)
		}
		for _, region := range []string{chennai, pune} {
			got, err := l.h.UnwrapKey(ctx, as(keyMgr, region), "Contoso-SQLMI-CMK", w.Version, alg, w.Value)
			if err != nil || string(got.Value) != string(secret) || got.Served.Region != region {
				t.Fatalf("%s unwrap in %s: served by %s, %v", alg, region, got.Served.Region, err)
			}
		}
	}
	if _, _, err := l.h.CreateKey(ctx, as(keyMgr, ""), "aes", mhsm.KeyOptions{Type: mhsm.KeyTypeOct, Size: 256}); err != nil {
		t.Fatal(err)
	}
	w, err := l.h.WrapKey(ctx, as(keyMgr, ""), "aes", "", partition.A256KW, dek())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.h.UnwrapKey(ctx, as(keyMgr, ""), "aes", w.Version, partition.A256KW, w.Value); err != nil {
		t.Fatal(err)
	}
	// Two partitions lost: the third token still serves.
	if _, err := l.h.FailPartitions(chennai, 2); err != nil {
		t.Fatal(err)
	}
	r, err := l.h.UnwrapKey(ctx, as(keyMgr, chennai), "aes", w.Version, partition.A256KW, w.Value)
	if err != nil || r.Served.Partition != "p3" {
		t.Fatalf("after losing two partitions: %s %v", r.Served.Partition, err)
	}
}

// BenchmarkPoolUnwrapSoftHSM is an RSA-2048 RSA-OAEP (SHA-1, native in
// SoftHSM) unwrap through the whole HSM on SoftHSM partitions. Compare with
// BenchmarkRawSoftHSMDecrypt in emulators/partition (target ≥ 0.8×).
func BenchmarkPoolUnwrapSoftHSM(b *testing.B) {
	benchPoolUnwrap(b, softPartitions(b), partition.RSAOAEP)
}
