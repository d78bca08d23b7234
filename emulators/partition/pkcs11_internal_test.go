//go:build cgo

package partition

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/miekg/pkcs11"
)

var internalTokenSeq atomic.Int64

// openInternal opens a PKCS#11 partition on a fresh token, for tests that
// inspect the token objects directly.
func openInternal(t *testing.T) *p11Partition {
	t.Helper()
	hsm := RequireSoftHSM(t)
	mod, err := OpenModule(hsm.ModulePath)
	t.Cleanup(func() {
		if mod != nil {
			mod.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	label := fmt.Sprintf("i%d", internalTokenSeq.Add(1))
	if err := mod.InitToken(label, "so-pin-0000", "user-pin-0000"); err != nil {
		t.Fatal(err)
	}
	p, err := NewPKCS11(mod, label, label, "user-pin-0000")
	t.Cleanup(func() {
		if p != nil {
			p.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*p11Partition)
}

// TestPKCS11KeysNotExtractable checks the at-rest rule in the token itself:
// every key object, generated or imported, and the domain key are sensitive
// and not extractable, the flag cannot be turned back on, and C_WrapKey of
// them fails.
func TestPKCS11KeysNotExtractable(t *testing.T) {
	ctx := context.Background()
	p := openInternal(t)
	dk := make([]byte, DomainKeySize)
	rand.Read(dk)
	if err := p.InstallDomainKey(ctx, dk); err != nil {
		t.Fatal(err)
	}
	src := NewMemory("src")
	t.Cleanup(func() { src.Close() })
	if err := src.InstallDomainKey(ctx, dk); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []KeySpec{{RSA, 2048}, {Oct, 256}} {
		if _, err := p.Generate(ctx, "gen-"+string(spec.Type), spec); err != nil {
			t.Fatal(err)
		}
		mat, err := src.Generate(ctx, "imp-"+string(spec.Type), spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Import(ctx, "imp-"+string(spec.Type), spec, mat.Wrapped); err != nil {
			t.Fatal(err)
		}
	}
	objs := map[string]pkcs11.ObjectHandle{"domain key": p.domain}
	for h, k := range p.keys {
		objs[h] = k.obj
	}
	if len(objs) != 5 {
		t.Fatalf("%d objects, want 5", len(objs))
	}
	sh, err := p.pool.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.pool.put(sh, nil)
	for name, obj := range objs {
		t.Run(name, func(t *testing.T) {
			attrs, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
			})
			if err != nil {
				t.Fatal(err)
			}
			if attrBool(attrs[0]) || !attrBool(attrs[1]) || !attrBool(attrs[3]) {
				t.Fatalf("CKA_EXTRACTABLE=%v CKA_SENSITIVE=%v CKA_TOKEN=%v, want false, true, true",
					attrBool(attrs[0]), attrBool(attrs[1]), attrBool(attrs[3]))
			}
			t.Logf("CKA_NEVER_EXTRACTABLE=%v", attrBool(attrs[2]))
			if _, err := p.ctx.WrapKey(sh, mechKWP, p.domain, obj); !errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_UNEXTRACTABLE)) {
				t.Fatalf("C_WrapKey = %v, want CKR_KEY_UNEXTRACTABLE", err)
			}
			err = p.ctx.SetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)})
			if err == nil {
				t.Fatal("CKA_EXTRACTABLE could be set back to true")
			}
			secret := uint(pkcs11.CKA_VALUE)
			if name == "gen-RSA" || name == "imp-RSA" {
				secret = pkcs11.CKA_PRIVATE_EXPONENT
			}
			if _, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(secret, nil)}); err == nil {
				t.Fatal("the secret attribute of a sensitive key could be read")
			}
		})
	}
}

// TestWrapPadMatchesToken checks the Go RFC 5649 implementation against
// SoftHSM's CKM_AES_KEY_WRAP_PAD in both directions, for values of many
// lengths. SoftHSM 2.6 zero-pads the key data to a multiple of 8 bytes
// before wrapping (the length indicator covers the padding), so its wrapping
// of an n-byte value unwraps in Go to the value plus zeros, and equals Go's
// wrapping only when n is a multiple of 8 — as every AES key is. The other
// direction is exact: the token unwraps Go's wrapping to the value itself.
func TestWrapPadMatchesToken(t *testing.T) {
	ctx := context.Background()
	p := openInternal(t)
	kek := make([]byte, 32)
	rand.Read(kek)
	if err := p.InstallDomainKey(ctx, kek); err != nil {
		t.Fatal(err)
	}
	sh, err := p.pool.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.pool.put(sh, nil)
	for _, n := range []int{1, 7, 8, 9, 16, 20, 24, 31, 32, 33, 64, 100, 1218} {
		value := make([]byte, n)
		rand.Read(value)
		padded := make([]byte, (n+7)/8*8)
		copy(padded, value)
		obj, err := p.ctx.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.ctx.WrapKey(sh, mechKWP, p.domain, obj)
		p.ctx.DestroyObject(sh, obj)
		if err != nil {
			t.Fatalf("%d bytes: C_WrapKey: %v", n, err)
		}
		if back, err := UnwrapPad(kek, got); err != nil || string(back) != string(padded) {
			t.Errorf("%d bytes: Go UnwrapPad of the token's wrapping = %x, %v; want %x", n, back, err, padded)
		}
		want, err := WrapPad(kek, padded)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%d bytes: token %x, Go %x", n, got, want)
		}
		// Token unwraps Go's exact wrapping to the exact value.
		goWrapped, err := WrapPad(kek, value)
		if err != nil {
			t.Fatal(err)
		}
		obj, err = p.ctx.UnwrapKey(sh, mechKWP, p.domain, goWrapped, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		})
		if err != nil {
			t.Fatalf("%d bytes: C_UnwrapKey of Go's wrapping: %v", n, err)
		}
		attrs, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		p.ctx.DestroyObject(sh, obj)
		if err != nil {
			t.Fatal(err)
		}
		if string(attrs[0].Value) != string(value) {
			t.Errorf("%d bytes: token unwrapped Go's wrapping to %x, want %x", n, attrs[0].Value, value)
		}
	}
}
