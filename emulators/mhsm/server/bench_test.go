package server_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// BenchmarkUnwrap compares, in one run, an RSA-2048 RSA-OAEP-256 unwrap
// in-process (HSM.UnwrapKey: routing, RBAC, key checks, capacity model,
// pure-Go partition) with the same unwrap through azkeys over HTTPS on
// loopback with keep-alive (token, JSON, base64url, TLS, and the latency
// model on, as `hsmlab serve` runs). Target: REST ≥ 0.8× in-process.
// Both use the wall clock and 4 goroutines per CPU.
func BenchmarkUnwrap(b *testing.B) {
	e := newEnv(b, envOpts{activate: true, latency: true})
	km := e.client(b, keyMgr)
	if _, err := km.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(2048))}, nil); err != nil {
		b.Fatal(err)
	}
	w, err := km.WrapKey(ctx, "k", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ver := w.KID.Version()

	b.Run("in-process", func(b *testing.B) {
		c := mhsm.Caller{Principal: keyMgr, Region: chennai}
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.h.UnwrapKey(ctx, c, "k", ver, partition.RSAOAEP256, w.Result); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("REST", func(b *testing.B) {
		p := azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := km.UnwrapKey(ctx, "k", ver, p, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}
