package partition_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"sync"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

// factory returns a fresh partition with no domain key installed, closed
// by a t.Cleanup it registers. name is the partition's name.
type factory func(t *testing.T, name string) partition.Partition

var (
	allSpecs = []partition.KeySpec{
		{Type: partition.RSA, Bits: 2048},
		{Type: partition.RSA, Bits: 3072},
		{Type: partition.RSA, Bits: 4096},
		{Type: partition.Oct, Bits: 128},
		{Type: partition.Oct, Bits: 192},
		{Type: partition.Oct, Bits: 256},
	}
	allAlgs = []partition.Alg{
		partition.RSAOAEP, partition.RSAOAEP256, partition.RSA15,
		partition.A128KW, partition.A192KW, partition.A256KW,
		partition.A128GCM, partition.A192GCM, partition.A256GCM,
	}
	rsaAlgs = []partition.Alg{partition.RSAOAEP, partition.RSAOAEP256, partition.RSA15}
)

func specName(s partition.KeySpec) string { return fmt.Sprintf("%s-%d", s.Type, s.Bits) }

// Expected algorithm rules, written independently of the package.
func wrapValid(s partition.KeySpec, alg partition.Alg) bool {
	if s.Type == partition.RSA {
		return alg == partition.RSAOAEP || alg == partition.RSAOAEP256 || alg == partition.RSA15
	}
	return string(alg) == fmt.Sprintf("A%dKW", s.Bits)
}

func cryptValid(s partition.KeySpec, alg partition.Alg) bool {
	if s.Type == partition.RSA {
		return wrapValid(s, alg)
	}
	return string(alg) == fmt.Sprintf("A%dGCM", s.Bits)
}

func randBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func newDomainKey(tb testing.TB) []byte { return randBytes(tb, partition.DomainKeySize) }

func install(t *testing.T, p partition.Partition, dk []byte) {
	t.Helper()
	if err := p.InstallDomainKey(context.Background(), dk); err != nil {
		t.Fatalf("InstallDomainKey: %v", err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

// testKey is a generated key together with its clear material, recovered
// in the test from Material.Wrapped with the domain key.
type testKey struct {
	handle string
	spec   partition.KeySpec
	mat    partition.Material
	priv   *rsa.PrivateKey // RSA
	raw    []byte          // oct
	clear  []byte          // PKCS#8 DER or raw bytes
}

// openMaterial recovers the clear key from material the way a test (never
// a partition) may: with the domain key.
func openMaterial(t *testing.T, dk []byte, spec partition.KeySpec, wrapped []byte) (clearMat []byte, priv *rsa.PrivateKey, raw []byte) {
	t.Helper()
	clearMat, err := partition.UnwrapPad(dk, wrapped)
	if err != nil {
		t.Fatalf("UnwrapPad(material): %v", err)
	}
	if spec.Type == partition.Oct {
		if len(clearMat)*8 != spec.Bits {
			t.Fatalf("material is %d bytes, want %d bits", len(clearMat), spec.Bits)
		}
		return clearMat, nil, clearMat
	}
	k, err := x509.ParsePKCS8PrivateKey(clearMat)
	if err != nil {
		t.Fatalf("material is not PKCS#8: %v", err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("material holds a %T", k)
	}
	return clearMat, priv, nil
}

func generate(t *testing.T, p partition.Partition, dk []byte, handle string, spec partition.KeySpec) testKey {
	t.Helper()
	mat, err := p.Generate(context.Background(), handle, spec)
	if err != nil {
		t.Fatalf("Generate(%s, %s): %v", handle, specName(spec), err)
	}
	k := testKey{handle: handle, spec: spec, mat: mat}
	k.clear, k.priv, k.raw = openMaterial(t, dk, spec, mat.Wrapped)
	return k
}

func oaepHash(alg partition.Alg) hash.Hash {
	if alg == partition.RSAOAEP {
		return sha1.New()
	}
	return sha256.New()
}

func goRSAEncrypt(t *testing.T, pub *rsa.PublicKey, alg partition.Alg, pt []byte) []byte {
	t.Helper()
	var ct []byte
	var err error
	if alg == partition.RSA15 {
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, pt)
	} else {
		ct, err = rsa.EncryptOAEP(oaepHash(alg), rand.Reader, pub, pt, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func goRSADecrypt(t *testing.T, priv *rsa.PrivateKey, alg partition.Alg, ct []byte) []byte {
	t.Helper()
	var pt []byte
	var err error
	if alg == partition.RSA15 {
		pt, err = rsa.DecryptPKCS1v15(nil, priv, ct)
	} else {
		pt, err = rsa.DecryptOAEP(oaepHash(alg), nil, priv, ct, nil)
	}
	if err != nil {
		t.Fatalf("Go %s decrypt of the partition's ciphertext: %v", alg, err)
	}
	return pt
}

func goGCM(t *testing.T, raw []byte) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(raw)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// runConformance runs the behaviour every Partition must have against the
// backend newP builds. specs limits the key specs generated (all in
// non-short mode).
func runConformance(t *testing.T, newP factory, specs []partition.KeySpec) {
	ctx := context.Background()

	t.Run("NotActivated", func(t *testing.T) {
		p := newP(t, "not-activated")
		if p.Name() != "not-activated" {
			t.Errorf("Name() = %q", p.Name())
		}
		_, err := p.Generate(ctx, "k/1", partition.KeySpec{Type: partition.Oct, Bits: 256})
		wantErr(t, "Generate", err, partition.ErrNotActivated)
		_, err = p.Import(ctx, "k/1", partition.KeySpec{Type: partition.Oct, Bits: 256}, make([]byte, 40))
		wantErr(t, "Import", err, partition.ErrNotActivated)
		if has, err := p.Has(ctx, "k/1"); has || err != nil {
			t.Fatalf("Has = %v, %v", has, err)
		}
		if err := p.Delete(ctx, "k/1"); err != nil {
			t.Fatalf("Delete(missing) = %v", err)
		}
		_, err = p.Unwrap(ctx, "k/1", partition.A256KW, make([]byte, 40))
		wantErr(t, "Unwrap", err, partition.ErrNoKey)
		if err := p.Health(ctx); err != nil {
			t.Fatalf("Health = %v", err)
		}
	})

	t.Run("InstallDomainKey", func(t *testing.T) {
		p := newP(t, "install")
		dk := newDomainKey(t)
		install(t, p, dk)
		tests := []struct {
			name string
			key  []byte
			want error
		}{
			{"same key again", bytes.Clone(dk), nil},
			{"different key", newDomainKey(t), partition.ErrDomainMismatch},
			{"short key", dk[:16], partition.ErrBadInput},
			{"long key", append(bytes.Clone(dk), 0), partition.ErrBadInput},
			{"same key a third time", dk, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := p.InstallDomainKey(ctx, tt.key)
				if tt.want == nil && err != nil {
					t.Fatalf("InstallDomainKey = %v, want nil", err)
				}
				if tt.want != nil {
					wantErr(t, "InstallDomainKey", err, tt.want)
				}
			})
		}
		// The original key is still the one in use.
		k := generate(t, p, dk, "after-mismatch/1", partition.KeySpec{Type: partition.Oct, Bits: 128})
		if len(k.raw) != 16 {
			t.Fatalf("material is %d bytes", len(k.raw))
		}
	})

	t.Run("UnsupportedSpec", func(t *testing.T) {
		p := newP(t, "specs")
		install(t, p, newDomainKey(t))
		for _, s := range []partition.KeySpec{
			{Type: partition.RSA, Bits: 1024},
			{Type: partition.RSA, Bits: 2047},
			{Type: partition.RSA, Bits: 8192},
			{Type: partition.Oct, Bits: 64},
			{Type: partition.Oct, Bits: 512},
			{Type: "EC", Bits: 256},
			{},
		} {
			t.Run(specName(s), func(t *testing.T) {
				_, err := p.Generate(ctx, "x/1", s)
				wantErr(t, "Generate", err, partition.ErrUnsupportedSpec)
				_, err = p.Import(ctx, "x/1", s, make([]byte, 40))
				wantErr(t, "Import", err, partition.ErrUnsupportedSpec)
			})
		}
		_, err := p.Generate(ctx, "", partition.KeySpec{Type: partition.Oct, Bits: 128})
		wantErr(t, "Generate(empty handle)", err, partition.ErrBadInput)
	})

	// One partition with one key of every spec serves the subtests below.
	dk := newDomainKey(t)
	p := newP(t, "main")
	install(t, p, dk)
	keys := make([]testKey, 0, len(specs))
	t.Run("Generate", func(t *testing.T) {
		for _, s := range specs {
			t.Run(specName(s), func(t *testing.T) {
				k := generate(t, p, dk, specName(s)+"/v1", s)
				if k.mat.Spec != s {
					t.Errorf("Material.Spec = %+v, want %+v", k.mat.Spec, s)
				}
				if s.Type == partition.RSA {
					if k.mat.Public == nil || k.mat.Public.N.BitLen() != s.Bits {
						t.Fatalf("Material.Public = %v, want a %d-bit key", k.mat.Public, s.Bits)
					}
					if !k.mat.Public.Equal(&k.priv.PublicKey) {
						t.Fatal("Material.Public does not match the wrapped private key")
					}
				} else if k.mat.Public != nil {
					t.Fatal("Material.Public set for an oct key")
				}
				if has, err := p.Has(ctx, k.handle); !has || err != nil {
					t.Fatalf("Has = %v, %v", has, err)
				}
				keys = append(keys, k)
			})
		}
	})
	if len(keys) != len(specs) {
		t.Fatal("key generation failed")
	}

	t.Run("NoClearMaterial", func(t *testing.T) {
		for _, k := range keys {
			w := k.mat.Wrapped
			if bytes.Contains(w, k.clear) {
				t.Errorf("%s: Wrapped contains the clear material", k.handle)
			}
			if k.priv != nil {
				for i, secret := range [][]byte{k.priv.D.Bytes(), k.priv.Primes[0].Bytes(), k.priv.Primes[1].Bytes()} {
					if bytes.Contains(w, secret[:16]) {
						t.Errorf("%s: Wrapped contains private component %d", k.handle, i)
					}
				}
			}
			if want := (len(k.clear)+7)/8*8 + 8; len(w) != want {
				t.Errorf("%s: Wrapped is %d bytes, want %d (RFC 5649 of %d)", k.handle, len(w), want, len(k.clear))
			}
		}
	})

	t.Run("Algorithms", func(t *testing.T) {
		for _, k := range keys {
			for _, alg := range allAlgs {
				t.Run(specName(k.spec)+"/"+string(alg), func(t *testing.T) {
					checkWrapAlg(t, p, k, alg)
					checkCryptAlg(t, p, k, alg)
				})
			}
		}
	})

	t.Run("DecryptFailures", func(t *testing.T) {
		for _, k := range keys {
			t.Run(specName(k.spec), func(t *testing.T) { checkDecryptFailures(t, p, k) })
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, k := range keys {
			t.Run(specName(k.spec), func(t *testing.T) {
				if k.spec.Type == partition.RSA {
					for _, alg := range rsaAlgs {
						_, err := p.Wrap(ctx, k.handle, alg, make([]byte, k.spec.Bits/8))
						wantErr(t, "Wrap(plaintext as long as the modulus)", err, partition.ErrBadInput)
					}
					return
				}
				kw := partition.Alg(fmt.Sprintf("A%dKW", k.spec.Bits))
				for _, n := range []int{0, 8, 15, 17} {
					_, err := p.Wrap(ctx, k.handle, kw, make([]byte, n))
					wantErr(t, fmt.Sprintf("Wrap(%d bytes)", n), err, partition.ErrBadInput)
				}
			})
		}
	})

	t.Run("Import", func(t *testing.T) {
		q := newP(t, "import")
		install(t, q, dk)
		for _, k := range keys {
			t.Run(specName(k.spec), func(t *testing.T) {
				pub, err := q.Import(ctx, k.handle, k.spec, k.mat.Wrapped)
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				if k.spec.Type == partition.RSA {
					if pub == nil || !pub.Equal(k.mat.Public) {
						t.Fatal("Import returned a different public key")
					}
				} else if pub != nil {
					t.Fatal("Import returned a public key for an oct key")
				}
				checkSameKey(t, p, q, k)
				_, err = q.Import(ctx, k.handle, k.spec, k.mat.Wrapped)
				wantErr(t, "Import(same handle)", err, partition.ErrKeyExists)
			})
		}
	})

	t.Run("ImportMismatch", func(t *testing.T) {
		q := newP(t, "import-mismatch")
		install(t, q, dk)
		byType := map[partition.KeyType]testKey{}
		for _, k := range keys {
			if _, ok := byType[k.spec.Type]; !ok {
				byType[k.spec.Type] = k
			}
		}
		rsaKey, octKey := byType[partition.RSA], byType[partition.Oct]
		other := 3072
		if rsaKey.spec.Bits == 3072 {
			other = 2048
		}
		otherOct := 256
		if octKey.spec.Bits == 256 {
			otherOct = 128
		}
		tests := []struct {
			name    string
			spec    partition.KeySpec
			wrapped []byte
		}{
			{"rsa size", partition.KeySpec{Type: partition.RSA, Bits: other}, rsaKey.mat.Wrapped},
			{"oct size", partition.KeySpec{Type: partition.Oct, Bits: otherOct}, octKey.mat.Wrapped},
			{"rsa as oct", partition.KeySpec{Type: partition.Oct, Bits: 256}, rsaKey.mat.Wrapped},
			{"oct as rsa", partition.KeySpec{Type: partition.RSA, Bits: 2048}, octKey.mat.Wrapped},
			{"garbage", partition.KeySpec{Type: partition.Oct, Bits: 256}, randBytes(t, 40)},
			{"short", partition.KeySpec{Type: partition.Oct, Bits: 256}, randBytes(t, 7)},
			{"empty", partition.KeySpec{Type: partition.RSA, Bits: 2048}, nil},
			{"tampered", octKey.spec, flip(octKey.mat.Wrapped, 3)},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := fmt.Sprintf("mismatch/%d", i)
				_, err := q.Import(ctx, h, tt.spec, tt.wrapped)
				wantErr(t, "Import", err, partition.ErrBadMaterial)
				if has, err := q.Has(ctx, h); has || err != nil {
					t.Fatalf("Has after failed import = %v, %v", has, err)
				}
			})
		}
	})

	t.Run("WrongDomainKey", func(t *testing.T) {
		r := newP(t, "other-domain")
		install(t, r, newDomainKey(t))
		for _, k := range keys {
			t.Run(specName(k.spec), func(t *testing.T) {
				_, err := r.Import(ctx, k.handle, k.spec, k.mat.Wrapped)
				wantErr(t, "Import", err, partition.ErrBadMaterial)
				if has, _ := r.Has(ctx, k.handle); has {
					t.Fatal("Has after failed import")
				}
			})
		}
	})

	t.Run("KeyExists", func(t *testing.T) {
		_, err := p.Generate(ctx, keys[0].handle, keys[0].spec)
		wantErr(t, "Generate(existing handle)", err, partition.ErrKeyExists)
		_, err = p.Import(ctx, keys[0].handle, keys[0].spec, keys[0].mat.Wrapped)
		wantErr(t, "Import(existing handle)", err, partition.ErrKeyExists)
	})

	t.Run("DeleteHas", func(t *testing.T) {
		spec := partition.KeySpec{Type: partition.Oct, Bits: 256}
		k := generate(t, p, dk, "del/v1", spec)
		if has, err := p.Has(ctx, k.handle); !has || err != nil {
			t.Fatalf("Has = %v, %v", has, err)
		}
		if err := p.Delete(ctx, k.handle); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if has, err := p.Has(ctx, k.handle); has || err != nil {
			t.Fatalf("Has after Delete = %v, %v", has, err)
		}
		_, err := p.Wrap(ctx, k.handle, partition.A256KW, make([]byte, 32))
		wantErr(t, "Wrap after Delete", err, partition.ErrNoKey)
		_, err = p.Decrypt(ctx, k.handle, partition.A256GCM, partition.Sealed{}, nil)
		wantErr(t, "Decrypt after Delete", err, partition.ErrNoKey)
		if err := p.Delete(ctx, k.handle); err != nil {
			t.Fatalf("Delete again: %v", err)
		}
		// The handle is free again, and the deleted key can come back from
		// its material.
		if _, err := p.Import(ctx, k.handle, spec, k.mat.Wrapped); err != nil {
			t.Fatalf("Import after Delete: %v", err)
		}
		ct, err := partition.Wrap3394(k.raw, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Unwrap(ctx, k.handle, partition.A256KW, ct); err != nil {
			t.Fatalf("Unwrap after re-import: %v", err)
		}
	})

	t.Run("Unhealthy", func(t *testing.T) {
		hs, ok := p.(partition.HealthSetter)
		if !ok {
			t.Fatalf("%T does not implement HealthSetter", p)
		}
		hs.SetHealthy(false)
		t.Cleanup(func() { hs.SetHealthy(true) })
		k := keys[0]
		ct := make([]byte, 256)
		calls := map[string]func() error{
			"Health":           func() error { return p.Health(ctx) },
			"InstallDomainKey": func() error { return p.InstallDomainKey(ctx, dk) },
			"Generate": func() error {
				_, err := p.Generate(ctx, "down/1", partition.KeySpec{Type: partition.Oct, Bits: 128})
				return err
			},
			"Import": func() error { _, err := p.Import(ctx, "down/1", k.spec, k.mat.Wrapped); return err },
			"Delete": func() error { return p.Delete(ctx, k.handle) },
			"Has":    func() error { _, err := p.Has(ctx, k.handle); return err },
			"Wrap":   func() error { _, err := p.Wrap(ctx, k.handle, partition.RSAOAEP256, ct[:32]); return err },
			"Unwrap": func() error { _, err := p.Unwrap(ctx, k.handle, partition.RSAOAEP256, ct); return err },
			"Encrypt": func() error {
				_, err := p.Encrypt(ctx, k.handle, partition.RSAOAEP256, ct[:32], nil)
				return err
			},
			"Decrypt": func() error {
				_, err := p.Decrypt(ctx, k.handle, partition.RSAOAEP256, partition.Sealed{Ciphertext: ct}, nil)
				return err
			},
		}
		for name, call := range calls {
			wantErr(t, name+" while down", call(), partition.ErrUnavailable)
		}
		hs.SetHealthy(true)
		if err := p.Health(ctx); err != nil {
			t.Fatalf("Health after recovery: %v", err)
		}
		if has, err := p.Has(ctx, k.handle); !has || err != nil {
			t.Fatalf("key lost while down: Has = %v, %v", has, err)
		}
	})

	t.Run("Concurrency", func(t *testing.T) {
		checkConcurrency(t, p, dk, keys)
	})

	t.Run("Close", func(t *testing.T) {
		c := newP(t, "close")
		install(t, c, dk)
		if _, err := c.Import(ctx, keys[0].handle, keys[0].spec, keys[0].mat.Wrapped); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close again: %v", err)
		}
		wantErr(t, "Health after Close", c.Health(ctx), partition.ErrUnavailable)
		_, err := c.Unwrap(ctx, keys[0].handle, partition.RSAOAEP, make([]byte, 256))
		wantErr(t, "Unwrap after Close", err, partition.ErrUnavailable)
	})
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// checkWrapAlg checks Wrap and Unwrap with alg against Go's implementation
// of the algorithm, using the key's clear material.
func checkWrapAlg(t *testing.T, p partition.Partition, k testKey, alg partition.Alg) {
	t.Helper()
	ctx := context.Background()
	dek := randBytes(t, 32)
	if !wrapValid(k.spec, alg) {
		_, err := p.Wrap(ctx, k.handle, alg, dek)
		wantErr(t, "Wrap", err, partition.ErrUnsupportedAlg)
		_, err = p.Unwrap(ctx, k.handle, alg, make([]byte, k.spec.Bits/8))
		wantErr(t, "Unwrap", err, partition.ErrUnsupportedAlg)
		return
	}
	ct, err := p.Wrap(ctx, k.handle, alg, dek)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	var goCT []byte
	if k.priv != nil {
		if got := goRSADecrypt(t, k.priv, alg, ct); !bytes.Equal(got, dek) {
			t.Fatal("Go decrypt of Wrap output differs from the DEK")
		}
		goCT = goRSAEncrypt(t, &k.priv.PublicKey, alg, dek)
	} else {
		goCT, err = partition.Wrap3394(k.raw, dek)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ct, goCT) {
			t.Fatalf("Wrap = %x, RFC 3394 says %x", ct, goCT)
		}
	}
	for name, c := range map[string][]byte{"partition's": ct, "Go's": goCT} {
		got, err := p.Unwrap(ctx, k.handle, alg, c)
		if err != nil {
			t.Fatalf("Unwrap(%s ciphertext): %v", name, err)
		}
		if !bytes.Equal(got, dek) {
			t.Fatalf("Unwrap(%s ciphertext) = %x, want %x", name, got, dek)
		}
	}
}

// checkCryptAlg checks Encrypt and Decrypt with alg the same way.
func checkCryptAlg(t *testing.T, p partition.Partition, k testKey, alg partition.Alg) {
	t.Helper()
	ctx := context.Background()
	pt := []byte("the quick brown fox jumps over the lazy dog")
	aad := []byte("header")
	if !cryptValid(k.spec, alg) {
		_, err := p.Encrypt(ctx, k.handle, alg, pt, aad)
		wantErr(t, "Encrypt", err, partition.ErrUnsupportedAlg)
		_, err = p.Decrypt(ctx, k.handle, alg, partition.Sealed{Ciphertext: make([]byte, 64), IV: make([]byte, 12), Tag: make([]byte, 16)}, aad)
		wantErr(t, "Decrypt", err, partition.ErrUnsupportedAlg)
		return
	}
	s, err := p.Encrypt(ctx, k.handle, alg, pt, aad)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	var goSealed partition.Sealed
	if k.priv != nil {
		if s.IV != nil || s.Tag != nil {
			t.Fatal("RSA Encrypt set IV or Tag")
		}
		if got := goRSADecrypt(t, k.priv, alg, s.Ciphertext); !bytes.Equal(got, pt) {
			t.Fatal("Go decrypt of Encrypt output differs")
		}
		goSealed = partition.Sealed{Ciphertext: goRSAEncrypt(t, &k.priv.PublicKey, alg, pt)}
	} else {
		if len(s.IV) != 12 || len(s.Tag) != 16 || len(s.Ciphertext) != len(pt) {
			t.Fatalf("Sealed has IV %d, Tag %d, Ciphertext %d bytes", len(s.IV), len(s.Tag), len(s.Ciphertext))
		}
		g := goGCM(t, k.raw)
		got, err := g.Open(nil, s.IV, append(bytes.Clone(s.Ciphertext), s.Tag...), aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Go GCM open of Encrypt output = %q, %v", got, err)
		}
		s2, err := p.Encrypt(ctx, k.handle, alg, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(s2.IV, s.IV) {
			t.Fatal("two Encrypts used the same IV")
		}
		iv := randBytes(t, 12)
		sealed := g.Seal(nil, iv, pt, aad)
		goSealed = partition.Sealed{Ciphertext: sealed[:len(pt)], IV: iv, Tag: sealed[len(pt):]}
		_, err = p.Decrypt(ctx, k.handle, alg, s, []byte("other header"))
		wantErr(t, "Decrypt(wrong aad)", err, partition.ErrDecrypt)
	}
	for name, c := range map[string]partition.Sealed{"partition's": s, "Go's": goSealed} {
		got, err := p.Decrypt(ctx, k.handle, alg, c, aad)
		if err != nil {
			t.Fatalf("Decrypt(%s ciphertext): %v", name, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt(%s ciphertext) = %q", name, got)
		}
	}
}

// checkDecryptFailures feeds ciphertexts that cannot decrypt.
func checkDecryptFailures(t *testing.T, p partition.Partition, k testKey) {
	t.Helper()
	ctx := context.Background()
	if k.priv != nil {
		size := k.priv.Size()
		one := make([]byte, size)
		one[size-1] = 1 // decrypts to 1: invalid under every padding
		for _, alg := range rsaAlgs {
			good := goRSAEncrypt(t, &k.priv.PublicKey, alg, make([]byte, 32))
			cases := map[string][]byte{
				"one":     one,
				"above n": bytes.Repeat([]byte{0xFF}, size),
				"short":   good[:size-1],
				"long":    append(bytes.Clone(good), 0),
				"empty":   nil,
			}
			if alg != partition.RSA15 {
				// OAEP rejects these with overwhelming probability; PKCS#1
				// v1.5 padding would accept some by chance (about 1 in 300).
				cases["tampered"] = flip(good, 7)
				cases["other scheme"] = goRSAEncrypt(t, &k.priv.PublicKey, otherRSAAlg(alg), make([]byte, 32))
			}
			for name, ct := range cases {
				_, err := p.Unwrap(ctx, k.handle, alg, ct)
				wantErr(t, fmt.Sprintf("Unwrap %s (%s)", alg, name), err, partition.ErrDecrypt)
				_, err = p.Decrypt(ctx, k.handle, alg, partition.Sealed{Ciphertext: ct}, nil)
				wantErr(t, fmt.Sprintf("Decrypt %s (%s)", alg, name), err, partition.ErrDecrypt)
			}
		}
		return
	}
	kw := partition.Alg(fmt.Sprintf("A%dKW", k.spec.Bits))
	gcm := partition.Alg(fmt.Sprintf("A%dGCM", k.spec.Bits))
	good, err := partition.Wrap3394(k.raw, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := partition.Wrap3394(randBytes(t, len(k.raw)), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	for name, ct := range map[string][]byte{
		"tampered":     flip(good, 0),
		"tampered end": flip(good, len(good)-1),
		"other key":    foreign,
		"short":        good[:16],
		"odd":          good[:len(good)-1],
		"empty":        nil,
	} {
		_, err := p.Unwrap(ctx, k.handle, kw, ct)
		wantErr(t, fmt.Sprintf("Unwrap %s (%s)", kw, name), err, partition.ErrDecrypt)
	}
	s, err := p.Encrypt(ctx, k.handle, gcm, []byte("payload"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]partition.Sealed{
		"tag":         {Ciphertext: s.Ciphertext, IV: s.IV, Tag: flip(s.Tag, 0)},
		"ciphertext":  {Ciphertext: flip(s.Ciphertext, 0), IV: s.IV, Tag: s.Tag},
		"iv":          {Ciphertext: s.Ciphertext, IV: flip(s.IV, 0), Tag: s.Tag},
		"short iv":    {Ciphertext: s.Ciphertext, IV: s.IV[:8], Tag: s.Tag},
		"short tag":   {Ciphertext: s.Ciphertext, IV: s.IV, Tag: s.Tag[:12]},
		"missing tag": {Ciphertext: s.Ciphertext, IV: s.IV},
	} {
		_, err := p.Decrypt(ctx, k.handle, gcm, bad, nil)
		wantErr(t, fmt.Sprintf("Decrypt %s (%s)", gcm, name), err, partition.ErrDecrypt)
	}
}

func otherRSAAlg(alg partition.Alg) partition.Alg {
	if alg == partition.RSAOAEP {
		return partition.RSAOAEP256
	}
	return partition.RSAOAEP
}

// checkSameKey checks that p and q hold the same key k: what one wraps or
// encrypts, the other unwraps or decrypts.
func checkSameKey(t *testing.T, p, q partition.Partition, k testKey) {
	t.Helper()
	ctx := context.Background()
	dek := randBytes(t, 32)
	wrapAlg, cryptAlg := partition.RSAOAEP256, partition.RSAOAEP
	if k.spec.Type == partition.Oct {
		wrapAlg = partition.Alg(fmt.Sprintf("A%dKW", k.spec.Bits))
		cryptAlg = partition.Alg(fmt.Sprintf("A%dGCM", k.spec.Bits))
	}
	for _, dir := range []struct {
		name     string
		from, to partition.Partition
	}{{"p to q", p, q}, {"q to p", q, p}} {
		ct, err := dir.from.Wrap(ctx, k.handle, wrapAlg, dek)
		if err != nil {
			t.Fatalf("%s: Wrap: %v", dir.name, err)
		}
		got, err := dir.to.Unwrap(ctx, k.handle, wrapAlg, ct)
		if err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("%s: Unwrap = %x, %v", dir.name, got, err)
		}
		s, err := dir.from.Encrypt(ctx, k.handle, cryptAlg, dek, []byte("aad"))
		if err != nil {
			t.Fatalf("%s: Encrypt: %v", dir.name, err)
		}
		got, err = dir.to.Decrypt(ctx, k.handle, cryptAlg, s, []byte("aad"))
		if err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("%s: Decrypt = %x, %v", dir.name, got, err)
		}
	}
}

// checkConcurrency runs many goroutines against one partition: RSA unwraps
// (the hot path), AES-KW unwraps, GCM round trips, and generate/delete of
// keys under distinct handles.
func checkConcurrency(t *testing.T, p partition.Partition, dk []byte, keys []testKey) {
	ctx := context.Background()
	var rsaKey, octKey testKey
	for _, k := range keys {
		if k.spec.Type == partition.RSA && rsaKey.priv == nil {
			rsaKey = k
		}
		if k.spec.Type == partition.Oct {
			octKey = k
		}
	}
	dek := randBytes(t, 32)
	rsaCT := goRSAEncrypt(t, &rsaKey.priv.PublicKey, partition.RSAOAEP256, dek)
	rsaCT1 := goRSAEncrypt(t, &rsaKey.priv.PublicKey, partition.RSAOAEP, dek)
	kwCT, err := partition.Wrap3394(octKey.raw, dek)
	if err != nil {
		t.Fatal(err)
	}
	kw := partition.Alg(fmt.Sprintf("A%dKW", octKey.spec.Bits))
	gcm := partition.Alg(fmt.Sprintf("A%dGCM", octKey.spec.Bits))

	const workers, iterations = 16, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*iterations)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iterations {
				var got []byte
				var err error
				switch (w + i) % 4 {
				case 0:
					got, err = p.Unwrap(ctx, rsaKey.handle, partition.RSAOAEP256, rsaCT)
				case 1:
					got, err = p.Unwrap(ctx, rsaKey.handle, partition.RSAOAEP, rsaCT1)
				case 2:
					got, err = p.Unwrap(ctx, octKey.handle, kw, kwCT)
				case 3:
					var s partition.Sealed
					if s, err = p.Encrypt(ctx, octKey.handle, gcm, dek, nil); err == nil {
						got, err = p.Decrypt(ctx, octKey.handle, gcm, s, nil)
					}
				}
				if err == nil && !bytes.Equal(got, dek) {
					err = fmt.Errorf("worker %d op %d: got %x", w, i, got)
				}
				if err != nil {
					errs <- err
				}
			}
			h := fmt.Sprintf("concurrent/%d", w)
			if _, err := p.Generate(ctx, h, partition.KeySpec{Type: partition.Oct, Bits: 128}); err != nil {
				errs <- err
			}
			if err := p.Delete(ctx, h); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
