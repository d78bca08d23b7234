package partition_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

// reportOps adds the throughput of a parallel benchmark as ops/s.
func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkRawGoRSA2048DecryptOAEP256 is the baseline: crypto/rsa directly,
// RSA-OAEP-256 of a 32-byte DEK, all CPUs.
func BenchmarkRawGoRSA2048DecryptOAEP256(b *testing.B) {
	key := testRSA(b)
	dek := make([]byte, 32)
	rand.Read(dek)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.PublicKey, dek, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rsa.DecryptOAEP(sha256.New(), nil, key, ct, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}

// BenchmarkMemoryPartitionUnwrap is the same operation through the pure-Go
// partition (RSA-2048, RSA-OAEP-256, 32-byte DEK).
func BenchmarkMemoryPartitionUnwrap(b *testing.B) {
	ctx := context.Background()
	p := partition.NewMemory("bench")
	defer p.Close()
	dk := make([]byte, partition.DomainKeySize)
	rand.Read(dk)
	if err := p.InstallDomainKey(ctx, dk); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Generate(ctx, "kek/1", partition.KeySpec{Type: partition.RSA, Bits: 2048}); err != nil {
		b.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	ct, err := p.Wrap(ctx, "kek/1", partition.RSAOAEP256, dek)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Unwrap(ctx, "kek/1", partition.RSAOAEP256, ct); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}
