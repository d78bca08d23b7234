//go:build cgo

package partition_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

const (
	testSOPin   = "so-pin-5678"
	testUserPin = "user-pin-1234"
)

var tokenSeq atomic.Int64

// newToken opens the module and initialises a fresh token in it; the module
// reference is closed by t.Cleanup.
func newToken(t *testing.T) (*partition.Module, string) {
	t.Helper()
	hsm := partition.RequireSoftHSM(t)
	mod, err := partition.OpenModule(hsm.ModulePath)
	t.Cleanup(func() {
		if mod != nil {
			mod.Close()
		}
	})
	if err != nil {
		t.Fatalf("OpenModule: %v", err)
	}
	label := fmt.Sprintf("x%d", tokenSeq.Add(1))
	if err := mod.InitToken(label, testSOPin, testUserPin); err != nil {
		t.Fatalf("InitToken: %v", err)
	}
	return mod, label
}

func openPKCS11(t *testing.T, mod *partition.Module, name, label string) partition.Partition {
	t.Helper()
	p, err := partition.NewPKCS11(mod, name, label, testUserPin)
	t.Cleanup(func() {
		if p != nil {
			p.Close()
		}
	})
	if err != nil {
		t.Fatalf("NewPKCS11: %v", err)
	}
	return p
}

func pkcs11Factory(t *testing.T, name string) partition.Partition {
	t.Helper()
	mod, label := newToken(t)
	return openPKCS11(t, mod, name, label)
}

func TestPKCS11Conformance(t *testing.T) {
	partition.RequireSoftHSM(t)
	runConformance(t, pkcs11Factory, testSpecs())
}

// TestCrossBackendImport moves keys both ways between the pure-Go and the
// PKCS#11 backends: the material format is shared.
func TestCrossBackendImport(t *testing.T) {
	partition.RequireSoftHSM(t)
	ctx := context.Background()
	dk := newDomainKey(t)
	mem := memoryFactory(t, "mem")
	hsm := pkcs11Factory(t, "hsm")
	install(t, mem, dk)
	install(t, hsm, dk)
	specs := []partition.KeySpec{
		{Type: partition.RSA, Bits: 2048},
		{Type: partition.Oct, Bits: 128},
		{Type: partition.Oct, Bits: 192},
		{Type: partition.Oct, Bits: 256},
	}
	for _, dir := range []struct {
		name     string
		from, to partition.Partition
	}{{"memory to pkcs11", mem, hsm}, {"pkcs11 to memory", hsm, mem}} {
		for _, s := range specs {
			t.Run(dir.name+"/"+specName(s), func(t *testing.T) {
				handle := fmt.Sprintf("%s/%s", specName(s), dir.from.Name())
				k := generate(t, dir.from, dk, handle, s)
				pub, err := dir.to.Import(ctx, handle, s, k.mat.Wrapped)
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				if s.Type == partition.RSA && !pub.Equal(k.mat.Public) {
					t.Fatal("Import returned a different public key")
				}
				checkSameKey(t, dir.from, dir.to, k)
			})
		}
	}
}

func TestPKCS11Reopen(t *testing.T) {
	ctx := context.Background()
	mod, label := newToken(t)
	dk := newDomainKey(t)
	p, err := partition.NewPKCS11(mod, "first", label, testUserPin)
	if err != nil {
		t.Fatal(err)
	}
	install(t, p, dk)
	rsaKey := generate(t, p, dk, "rsa/v1", partition.KeySpec{Type: partition.RSA, Bits: 2048})
	octKey := generate(t, p, dk, "oct/v1", partition.KeySpec{Type: partition.Oct, Bits: 256})
	// An imported oct key: its size survives only through the size record.
	mem := memoryFactory(t, "mem")
	install(t, mem, dk)
	impKey := generate(t, mem, dk, "imported/v1", partition.KeySpec{Type: partition.Oct, Bits: 192})
	if _, err := p.Import(ctx, impKey.handle, impKey.spec, impKey.mat.Wrapped); err != nil {
		t.Fatal(err)
	}
	impRSA := generate(t, mem, dk, "imported-rsa/v1", partition.KeySpec{Type: partition.RSA, Bits: 2048})
	if _, err := p.Import(ctx, impRSA.handle, impRSA.spec, impRSA.mat.Wrapped); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	q := openPKCS11(t, mod, "second", label)
	for _, k := range []testKey{rsaKey, octKey, impKey, impRSA} {
		if has, err := q.Has(ctx, k.handle); !has || err != nil {
			t.Fatalf("Has(%s) after reopen = %v, %v", k.handle, has, err)
		}
	}
	checkWrapAlg(t, q, rsaKey, partition.RSAOAEP256)
	checkWrapAlg(t, q, octKey, partition.A256KW)
	checkWrapAlg(t, q, impKey, partition.A192KW)
	checkCryptAlg(t, q, impKey, partition.A192GCM)
	checkWrapAlg(t, q, impRSA, partition.RSAOAEP)
	// Deleting an imported key removes its size record too, and the handle
	// can be imported again.
	if err := q.Delete(ctx, impKey.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Import(ctx, impKey.handle, impKey.spec, impKey.mat.Wrapped); err != nil {
		t.Fatalf("Import after Delete: %v", err)
	}
	checkWrapAlg(t, q, impKey, partition.A192KW)
	// The domain key was found again: same key is a no-op, another is refused,
	// and new keys are wrapped under it.
	if err := q.InstallDomainKey(ctx, dk); err != nil {
		t.Fatalf("InstallDomainKey(same) after reopen: %v", err)
	}
	wantErr(t, "InstallDomainKey(other) after reopen", q.InstallDomainKey(ctx, newDomainKey(t)), partition.ErrDomainMismatch)
	generate(t, q, dk, "oct/v2", partition.KeySpec{Type: partition.Oct, Bits: 128})
	_, err = q.Generate(ctx, partition.DomainKeyLabel, partition.KeySpec{Type: partition.Oct, Bits: 128})
	wantErr(t, "Generate(domain key label)", err, partition.ErrBadInput)
}

func TestPKCS11PreMadeToken(t *testing.T) {
	hsm := partition.RequireSoftHSM(t)
	mod, err := partition.OpenModule(hsm.ModulePath)
	t.Cleanup(func() {
		if mod != nil {
			mod.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	labels, err := mod.TokenLabels()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(labels, partition.PreMadeToken) {
		t.Fatalf("TokenLabels = %q, want it to contain %q", labels, partition.PreMadeToken)
	}
	p, err := partition.NewPKCS11(mod, "premade", partition.PreMadeToken, partition.PreMadeTokenPin)
	t.Cleanup(func() {
		if p != nil {
			p.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPKCS11OpenErrors(t *testing.T) {
	mod, label := newToken(t)
	tests := []struct {
		name string
		open func() error
	}{
		{"missing module", func() error {
			m, err := partition.OpenModule("/nonexistent/libsofthsm2.so")
			if m != nil {
				return errors.New("returned a module")
			}
			return err
		}},
		{"not a pkcs11 module", func() error {
			m, err := partition.OpenModule("/etc/hostname")
			if m != nil {
				return errors.New("returned a module")
			}
			return err
		}},
		{"unknown token", func() error {
			_, err := partition.NewPKCS11(mod, "p", "no-such-token", testUserPin)
			return err
		}},
		{"wrong pin", func() error {
			_, err := partition.NewPKCS11(mod, "p", label, "wrong-pin")
			return err
		}},
		{"nil module", func() error {
			_, err := partition.NewPKCS11(nil, "p", label, testUserPin)
			return err
		}},
		{"token label too long", func() error {
			return mod.InitToken("this-label-is-longer-than-32-bytes", testSOPin, testUserPin)
		}},
		{"token label in use", func() error {
			return mod.InitToken(label, testSOPin, testUserPin)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.open(); err == nil {
				t.Fatal("no error")
			} else {
				t.Log(err)
			}
		})
	}
	t.Run("token open twice", func(t *testing.T) {
		openPKCS11(t, mod, "once", label)
		p, err := partition.NewPKCS11(mod, "twice", label, testUserPin)
		if err == nil {
			p.Close()
			t.Fatal("second NewPKCS11 on the same token succeeded")
		}
	})
}

// TestModuleRefcount checks that the library stays initialised while any
// Module reference or partition is open, and can be opened again after the
// last one closes.
func TestModuleRefcount(t *testing.T) {
	hsm := partition.RequireSoftHSM(t)
	ctx := context.Background()
	m1, err := partition.OpenModule(hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := partition.OpenModule(hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	label := fmt.Sprintf("x%d", tokenSeq.Add(1))
	if err := m2.InitToken(label, testSOPin, testUserPin); err != nil {
		t.Fatal(err)
	}
	p, err := partition.NewPKCS11(m1, "ref", label, testUserPin)
	if err != nil {
		t.Fatal(err)
	}
	dk := newDomainKey(t)
	install(t, p, dk)
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	// The partition's own reference keeps the library up.
	k := generate(t, p, dk, "k/1", partition.KeySpec{Type: partition.Oct, Bits: 128})
	if err := p.Health(ctx); err != nil {
		t.Fatalf("Health with only the partition's reference: %v", err)
	}
	if _, err := m1.TokenLabels(); err == nil {
		t.Fatal("TokenLabels on a closed Module succeeded")
	}
	if err := p.Close(); err != nil { // last reference: finalises
		t.Fatal(err)
	}
	m3, err := partition.OpenModule(hsm.ModulePath)
	if err != nil {
		t.Fatalf("OpenModule after finalise: %v", err)
	}
	defer m3.Close()
	q, err := partition.NewPKCS11(m3, "ref-again", label, testUserPin)
	if err != nil {
		t.Fatalf("NewPKCS11 after finalise: %v", err)
	}
	defer q.Close()
	checkWrapAlg(t, q, k, partition.A128KW)
}
