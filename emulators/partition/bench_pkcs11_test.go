//go:build cgo

package partition_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

func benchPKCS11Unwrap(b *testing.B, alg partition.Alg) {
	hsm := partition.RequireSoftHSM(b)
	ctx := context.Background()
	mod, err := partition.OpenModule(hsm.ModulePath)
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close()
	// The benchmark function runs several times with growing b.N: the
	// token and its key are made on the first run and reopened after.
	label := "bench-" + string(alg)
	labels, err := mod.TokenLabels()
	if err != nil {
		b.Fatal(err)
	}
	if !slices.Contains(labels, label) {
		if err := mod.InitToken(label, testSOPin, testUserPin); err != nil {
			b.Fatal(err)
		}
	}
	p, err := partition.NewPKCS11(mod, "bench", label, testUserPin)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.InstallDomainKey(ctx, make([]byte, partition.DomainKeySize)); err != nil {
		b.Fatal(err)
	}
	if has, err := p.Has(ctx, "kek/1"); err != nil {
		b.Fatal(err)
	} else if !has {
		if _, err := p.Generate(ctx, "kek/1", partition.KeySpec{Type: partition.RSA, Bits: 2048}); err != nil {
			b.Fatal(err)
		}
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	ct, err := p.Wrap(ctx, "kek/1", alg, dek)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Unwrap(ctx, "kek/1", alg, ct); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}

// BenchmarkPKCS11PartitionUnwrap unwraps a 32-byte DEK with RSA-OAEP
// (SHA-1, native CKM_RSA_PKCS_OAEP) through the PKCS#11 partition.
func BenchmarkPKCS11PartitionUnwrap(b *testing.B) { benchPKCS11Unwrap(b, partition.RSAOAEP) }

// BenchmarkPKCS11PartitionUnwrapOAEP256 unwraps with RSA-OAEP-256: raw RSA
// in the token plus OAEP decoding in Go.
func BenchmarkPKCS11PartitionUnwrapOAEP256(b *testing.B) {
	benchPKCS11Unwrap(b, partition.RSAOAEP256)
}
