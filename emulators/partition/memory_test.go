package partition_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

// testSpecs is every supported spec, or a smaller set in -short mode (RSA
// 3072 and 4096 generation is slow).
func testSpecs() []partition.KeySpec {
	if testing.Short() {
		return []partition.KeySpec{
			{Type: partition.RSA, Bits: 2048},
			{Type: partition.Oct, Bits: 128},
			{Type: partition.Oct, Bits: 192},
			{Type: partition.Oct, Bits: 256},
		}
	}
	return allSpecs
}

func memoryFactory(t *testing.T, name string) partition.Partition {
	t.Helper()
	p := partition.NewMemory(name)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestMemoryConformance(t *testing.T) {
	runConformance(t, memoryFactory, testSpecs())
}

func TestMemoryImportCopiesNothingBack(t *testing.T) {
	// The public key returned is a copy: changing it does not change the
	// partition's key.
	ctx := context.Background()
	p := partition.NewMemory("copy")
	t.Cleanup(func() { p.Close() })
	dk := newDomainKey(t)
	install(t, p, dk)
	mat, err := p.Generate(ctx, "k/1", partition.KeySpec{Type: partition.RSA, Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	mat.Public.N.SetInt64(3)
	mat.Public.E = 3
	ct, err := p.Wrap(ctx, "k/1", partition.RSAOAEP256, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) != 256 {
		t.Fatalf("ciphertext is %d bytes", len(ct))
	}
	if _, err := p.Unwrap(ctx, "k/1", partition.RSAOAEP256, ct); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := partition.NewMemory("ctx")
	t.Cleanup(func() { p.Close() })
	install(t, p, newDomainKey(t))
	_, err := p.Generate(ctx, "k/1", partition.KeySpec{Type: partition.Oct, Bits: 128})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate with canceled context: %v", err)
	}
}

// SoftHSM zero-pads PKCS#8 DER to a multiple of 8 bytes before wrapping;
// the shared format therefore allows up to 7 zero bytes after the DER, and
// nothing else.
func TestMemoryImportTrailingBytes(t *testing.T) {
	ctx := context.Background()
	dk := newDomainKey(t)
	p := partition.NewMemory("trailing")
	t.Cleanup(func() { p.Close() })
	install(t, p, dk)
	der, err := x509.MarshalPKCS8PrivateKey(testRSA(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		trailing []byte
		want     error
	}{
		{"none", nil, nil},
		{"one zero", []byte{0}, nil},
		{"seven zeros", make([]byte, 7), nil},
		{"eight zeros", make([]byte, 8), partition.ErrBadMaterial},
		{"non-zero", []byte{0, 1}, partition.ErrBadMaterial},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := partition.WrapPad(dk, append(bytes.Clone(der), tt.trailing...))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Import(ctx, fmt.Sprintf("k/%d", i), partition.KeySpec{Type: partition.RSA, Bits: 2048}, w)
			if tt.want == nil && err != nil {
				t.Fatalf("Import = %v", err)
			}
			if tt.want != nil {
				wantErr(t, "Import", err, tt.want)
			}
		})
	}
}
