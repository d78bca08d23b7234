package partition_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"math/big"
	"sync"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

var (
	testRSAOnce sync.Once
	testRSAKey  *rsa.PrivateKey
)

// testRSA returns a process-wide 2048-bit key for tests that only need
// some RSA key.
func testRSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	testRSAOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testRSAKey = k
	})
	return testRSAKey
}

// rawDecrypt is textbook RSA, c^d mod n, as CKM_RSA_X_509 returns it.
func rawDecrypt(priv *rsa.PrivateKey, ct []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(ct), priv.D, priv.N)
	return m.FillBytes(make([]byte, priv.Size()))
}

func TestDecodeOAEP(t *testing.T) {
	priv := testRSA(t)
	tests := []struct {
		name  string
		h     crypto.Hash
		newH  func() hash.Hash
		msg   []byte
		label []byte
	}{
		{"sha256 dek", crypto.SHA256, sha256.New, bytes.Repeat([]byte{0xAB}, 32), nil},
		{"sha256 empty", crypto.SHA256, sha256.New, nil, nil},
		{"sha256 label", crypto.SHA256, sha256.New, []byte("secret"), []byte("label")},
		{"sha256 max", crypto.SHA256, sha256.New, bytes.Repeat([]byte{1}, 256-2*32-2), nil},
		{"sha1 dek", crypto.SHA1, sha1.New, bytes.Repeat([]byte{0x01}, 32), nil},
		{"sha1 leading zeros", crypto.SHA1, sha1.New, []byte{0, 0, 1, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // random seeds: some ems start with more zeros
				ct, err := rsa.EncryptOAEP(tt.newH(), rand.Reader, &priv.PublicKey, tt.msg, tt.label)
				if err != nil {
					t.Fatal(err)
				}
				em := rawDecrypt(priv, ct)
				got, err := partition.DecodeOAEP(tt.h, priv.Size(), em, tt.label)
				if err != nil {
					t.Fatalf("DecodeOAEP: %v", err)
				}
				if !bytes.Equal(got, tt.msg) {
					t.Fatalf("DecodeOAEP = %x, want %x", got, tt.msg)
				}
				// A raw result that dropped its leading zero byte decodes too.
				if got, err := partition.DecodeOAEP(tt.h, priv.Size(), em[1:], tt.label); err != nil || !bytes.Equal(got, tt.msg) {
					t.Fatalf("DecodeOAEP(trimmed) = %x, %v", got, err)
				}
			}
		})
	}
}

func TestDecodeOAEPRejects(t *testing.T) {
	priv := testRSA(t)
	msg := []byte("0123456789abcdef0123456789abcdef")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	em := rawDecrypt(priv, ct)
	tampered := func(i int) []byte { b := bytes.Clone(em); b[i] ^= 1; return b }
	tests := []struct {
		name  string
		h     crypto.Hash
		k     int
		em    []byte
		label []byte
	}{
		{"wrong hash", crypto.SHA1, priv.Size(), em, nil},
		{"wrong label", crypto.SHA256, priv.Size(), em, []byte("x")},
		{"first byte", crypto.SHA256, priv.Size(), tampered(0), nil},
		{"seed", crypto.SHA256, priv.Size(), tampered(5), nil},
		{"db", crypto.SHA256, priv.Size(), tampered(100), nil},
		{"last byte", crypto.SHA256, priv.Size(), tampered(255), nil},
		{"too long", crypto.SHA256, priv.Size(), append([]byte{0}, em...), nil},
		{"k too small", crypto.SHA256, 60, em[:60], nil},
		{"zeros", crypto.SHA256, priv.Size(), make([]byte, priv.Size()), nil},
		{"pkcs1v15 ciphertext", crypto.SHA256, priv.Size(), pkcs1Raw(t, priv, msg), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := partition.DecodeOAEP(tt.h, tt.k, tt.em, tt.label); !errors.Is(err, partition.ErrDecrypt) {
				t.Fatalf("DecodeOAEP error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func pkcs1Raw(tb testing.TB, priv *rsa.PrivateKey, msg []byte) []byte {
	tb.Helper()
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, msg)
	if err != nil {
		tb.Fatal(err)
	}
	return rawDecrypt(priv, ct)
}
