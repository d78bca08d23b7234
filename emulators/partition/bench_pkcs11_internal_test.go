//go:build cgo

package partition

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

// BenchmarkRawSoftHSMDecrypt is the PKCS#11 baseline: C_DecryptInit +
// C_Decrypt with CKM_RSA_PKCS_OAEP (SHA-1) on an RSA-2048 token key, one
// session per goroutine, straight through miekg/pkcs11 with no partition.
func BenchmarkRawSoftHSMDecrypt(b *testing.B) {
	RequireSoftHSM(b)
	rawBenchOnce.Do(func() { rawBench, rawBenchErr = setupRawBench() })
	if rawBenchErr != nil {
		b.Fatal(rawBenchErr)
	}
	rb := rawBench
	ctx := rb.mod.core.ctx
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s, err := openSession(ctx, rb.slot, rb.pin)
		if err != nil {
			b.Error(err)
			return
		}
		defer ctx.CloseSession(s)
		for pb.Next() {
			if err := ctx.DecryptInit(s, mechOAEPSHA1, rb.priv); err != nil {
				b.Error(err)
				return
			}
			if _, err := ctx.Decrypt(s, rb.ct); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// rawBenchSetup is made once per process (the benchmark function runs
// several times) and left open until the process exits: its anchor session
// keeps the token logged in.
type rawBenchSetup struct {
	mod  *Module
	slot uint
	pin  string
	priv pkcs11.ObjectHandle
	ct   []byte
}

var (
	rawBenchOnce sync.Once
	rawBench     *rawBenchSetup
	rawBenchErr  error
)

func setupRawBench() (*rawBenchSetup, error) {
	mod, err := OpenModule(testHSM.ModulePath)
	if err != nil {
		return nil, err
	}
	const label, pin = "bench-raw", "user-pin-0000"
	if err := mod.InitToken(label, "so-pin-0000", pin); err != nil {
		return nil, err
	}
	ctx := mod.core.ctx
	slot, err := mod.core.findSlot(label)
	if err != nil {
		return nil, err
	}
	sh, err := openSession(ctx, slot, pin)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ctx.GenerateKeyPair(sh, mechRSAGen,
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		})
	if err != nil {
		return nil, err
	}
	ctx.DestroyObject(sh, pub)
	pk, err := (&p11Partition{ctx: ctx}).rsaPublic(sh, priv)
	if err != nil {
		return nil, err
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pk, dek, nil)
	if err != nil {
		return nil, err
	}
	return &rawBenchSetup{mod: mod, slot: slot, pin: pin, priv: priv, ct: ct}, nil
}
