package mhsm_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// BenchmarkRawGoRSA2048Decrypt is the baseline for the pure-Go pool: RSA-2048
// OAEP-SHA256 decryption straight through crypto/rsa, on every core.
func BenchmarkRawGoRSA2048Decrypt(b *testing.B) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, dek(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rsa.DecryptOAEP(sha256.New(), nil, k, ct, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkPoolUnwrapMemory is an RSA-2048 RSA-OAEP-256 unwrap through the
// whole HSM (routing, RBAC, key checks, capacity model, partition) on the
// pure-Go pool, under the wall clock. Target: ≥ 0.9× raw Go crypto and
// ≥ 1100 unwraps/s (the real service's per-partition rate, facts §3a).
func BenchmarkPoolUnwrapMemory(b *testing.B) {
	benchPoolUnwrap(b, nil, partition.RSAOAEP256)
}

func benchPoolUnwrap(b *testing.B, newPartition func(string, mhsm.PartitionConfig) (partition.Partition, error), alg partition.Alg) {
	h, err := mhsm.New(mhsm.Config{Name: "bench", Primary: mhsm.RegionConfig{Name: chennai}, Administrators: []string{admin},
		Clock: clock.Wall{}, NewPartition: newPartition})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if _, err := h.DownloadSecurityDomain(ctx, as(admin, ""), officerPubs(b), 2); err != nil {
		b.Fatal(err)
	}
	l := &lab{h: h}
	l.assign(b, keyMgr, "21dbd100-6940-42c2-9190-5d6cb909625b", "/keys")
	l.createRSA(b, "k")
	w, err := h.WrapKey(ctx, as(keyMgr, ""), "k", "", alg, dek())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.UnwrapKey(ctx, as(keyMgr, ""), "k", w.Version, alg, w.Value); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
