package secdomain_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
)

// TestRestoreIntoNewHSM walks the whole disaster-recovery path: activate,
// download, lose the HSM, recover with two of three officers, seal to the
// new HSM's transfer key, open inside the new HSM.
func TestRestoreIntoNewHSM(t *testing.T) {
	all := keys(t)
	old := newDomain(t, 30)
	blob, err := secdomain.Download(old, officers(all[:3]), 2, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := blob.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	// Restore: the new, empty HSM publishes its transfer key (all[10]).
	transfer := all[10]
	parsed, err := secdomain.ParseBlob(stored)
	if err != nil {
		t.Fatal(err)
	}
	recovered, err := secdomain.Recover(parsed, pick(all, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secdomain.Seal(recovered, &transfer.PublicKey, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, old.Key()) {
		t.Fatal("sealed domain contains the key in clear")
	}
	restored, err := secdomain.Open(sealed, transfer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(restored.Key(), old.Key()) || restored.ID() != old.ID() {
		t.Fatalf("restored %s, want %s", restored, old)
	}
}

func TestSealOpenErrors(t *testing.T) {
	all := keys(t)
	weak, err := weakKey()
	if err != nil {
		t.Fatal(err)
	}
	d := newDomain(t, 31)
	transfer := all[10]
	sealed, err := secdomain.Seal(d, &transfer.PublicKey, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("wrong transfer key", func(t *testing.T) {
		if _, err := secdomain.Open(sealed, all[0]); !errors.Is(err, secdomain.ErrUnseal) {
			t.Fatalf("Open error = %v, want ErrUnseal", err)
		}
	})
	t.Run("flipped byte", func(t *testing.T) {
		bad := bytes.Clone(sealed)
		bad[100] ^= 0x01
		if _, err := secdomain.Open(bad, transfer); !errors.Is(err, secdomain.ErrUnseal) {
			t.Fatalf("Open error = %v, want ErrUnseal", err)
		}
	})
	t.Run("empty and truncated", func(t *testing.T) {
		for _, in := range [][]byte{nil, sealed[:10]} {
			if _, err := secdomain.Open(in, transfer); !errors.Is(err, secdomain.ErrUnseal) {
				t.Fatalf("Open(%d bytes) error = %v, want ErrUnseal", len(in), err)
			}
		}
	})
	t.Run("blob share is not a sealed domain", func(t *testing.T) {
		// A share encrypted to the same key uses another OAEP label.
		b, err := secdomain.Download(d, officers(pick(all, 10, 1, 2)), 2, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := secdomain.Open(b.Officers[0].EncryptedShare, transfer); !errors.Is(err, secdomain.ErrUnseal) {
			t.Fatalf("Open error = %v, want ErrUnseal", err)
		}
	})
	t.Run("weak or missing transfer key", func(t *testing.T) {
		if _, err := secdomain.Seal(d, &weak.PublicKey, rand.Reader); !errors.Is(err, secdomain.ErrWeakKey) {
			t.Fatalf("Seal(1024-bit) error = %v, want ErrWeakKey", err)
		}
		if _, err := secdomain.Seal(d, nil, rand.Reader); !errors.Is(err, secdomain.ErrWeakKey) {
			t.Fatalf("Seal(nil) error = %v, want ErrWeakKey", err)
		}
		if _, err := secdomain.Open(sealed, weak); !errors.Is(err, secdomain.ErrWeakKey) {
			t.Fatalf("Open(1024-bit) error = %v, want ErrWeakKey", err)
		}
		if _, err := secdomain.Open(sealed, nil); !errors.Is(err, secdomain.ErrWeakKey) {
			t.Fatalf("Open(nil) error = %v, want ErrWeakKey", err)
		}
	})
	t.Run("invalid domain", func(t *testing.T) {
		for _, bad := range []*secdomain.Domain{nil, {}} {
			if _, err := secdomain.Seal(bad, &transfer.PublicKey, rand.Reader); !errors.Is(err, secdomain.ErrInvalidDomain) {
				t.Fatalf("Seal error = %v, want ErrInvalidDomain", err)
			}
		}
		if _, err := secdomain.Seal(d, &transfer.PublicKey, nil); err == nil {
			t.Fatal("Seal with a nil random source succeeded")
		}
	})

	// Payloads that decrypt but are wrong: built the way Seal builds them
	// (RSA-OAEP-256, label "hsmlab security domain transfer v1").
	seal := func(t *testing.T, payload []byte) []byte {
		t.Helper()
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &transfer.PublicKey, payload, []byte("hsmlab security domain transfer v1"))
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	good := append([]byte{secdomain.FormatVersion}, d.Key()...)
	good = append(good, mustHex(t, d.ID())...)
	other := newDomain(t, 32)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"version 2", append([]byte{2}, good[1:]...), secdomain.ErrUnsupportedVersion},
		{"empty", []byte{}, secdomain.ErrTampered},
		{"short", good[:33], secdomain.ErrTampered},
		{"long", append(bytes.Clone(good), 0), secdomain.ErrTampered},
		{"ID of another domain", append(bytes.Clone(good[:33]), mustHex(t, other.ID())...), secdomain.ErrTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secdomain.Open(seal(t, tc.payload), transfer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open error = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Fatal("Open returned a domain with an error")
			}
		})
	}
	t.Run("hand-built good payload opens", func(t *testing.T) {
		got, err := secdomain.Open(seal(t, good), transfer)
		if err != nil || !bytes.Equal(got.Key(), d.Key()) {
			t.Fatalf("Open = %v, %v", got, err)
		}
	})
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
