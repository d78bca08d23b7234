package secdomain_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
)

// forgeShare replaces officer i's share with a well-formed encryption, to
// the officer's public key and with the right OAEP label, of share x with
// random y: what an attacker who knows only public data can do.
func forgeShare(t *testing.T, b *secdomain.Blob, i int, pub *rsa.PublicKey, x byte) {
	t.Helper()
	pt := make([]byte, 1+secdomain.KeySize)
	pt[0] = x
	if _, err := rand.Read(pt[1:]); err != nil {
		t.Fatal(err)
	}
	label := []byte("hsmlab security domain share v1\x00" + b.DomainID + "\x00" + b.Officers[i].Thumbprint)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, pt, label)
	if err != nil {
		t.Fatal(err)
	}
	b.Officers[i].EncryptedShare = ct
}

func TestTamperedBlobIsRejected(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 20)
	b3 := download(t, d, 3, 2) // quorum 2 of 3
	b4 := download(t, d, 4, 2) // quorum 2 of 4
	b4q3 := download(t, d, 4, 3)

	// Every case must be rejected with the error named.
	for _, tc := range []struct {
		name   string
		blob   *secdomain.Blob
		keys   []int
		tamper func(t *testing.T, b *secdomain.Blob)
		want   error
	}{
		{"flip a byte in a used share", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers[0].EncryptedShare[17] ^= 0x01
		}, secdomain.ErrTampered},
		{"flip a byte in an unused share", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers[2].EncryptedShare[17] ^= 0x01
		}, secdomain.ErrTampered},
		{"swap two shares", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers[0].EncryptedShare, b.Officers[1].EncryptedShare = b.Officers[1].EncryptedShare, b.Officers[0].EncryptedShare
		}, secdomain.ErrTampered},
		{"swap two officer entries", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers[0], b.Officers[1] = b.Officers[1], b.Officers[0]
		}, secdomain.ErrTampered},
		{"forged share, same x", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			forgeShare(t, b, 0, &all[0].PublicKey, 1)
		}, secdomain.ErrTampered},
		{"forged share, duplicate x", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			forgeShare(t, b, 0, &all[0].PublicKey, 2)
		}, secdomain.ErrTampered},
		{"forged share, x = 0", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			forgeShare(t, b, 0, &all[0].PublicKey, 0)
		}, secdomain.ErrTampered},
		{"quorum raised to 3", b3, []int{0, 1, 2}, func(t *testing.T, b *secdomain.Blob) {
			b.Quorum = 3
		}, secdomain.ErrTampered},
		{"quorum lowered from 3 to 2", b4q3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Quorum = 2
		}, secdomain.ErrTampered},
		{"quorum lowered to 1", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Quorum = 1
		}, secdomain.ErrMalformedBlob},
		{"officer entry removed (4 to 3)", b4, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers = b.Officers[:3]
		}, secdomain.ErrTampered},
		{"officer entry removed (3 to 2)", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers = b.Officers[:2]
		}, secdomain.ErrMalformedBlob},
		{"officer entry duplicated", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers = append(b.Officers, b.Officers[0])
		}, secdomain.ErrMalformedBlob},
		{"domain ID changed", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.DomainID = newDomain(t, 21).ID()
		}, secdomain.ErrTampered},
		{"domain ID changed, shares re-labelled", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			// The attacker cannot re-encrypt the real shares, so this
			// amounts to forging them.
			b.DomainID = newDomain(t, 21).ID()
			forgeShare(t, b, 0, &all[0].PublicKey, 1)
			forgeShare(t, b, 1, &all[1].PublicKey, 2)
		}, secdomain.ErrTampered},
		{"domain ID not hex", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.DomainID = "zz" + b.DomainID[2:]
		}, secdomain.ErrMalformedBlob},
		{"officer renamed", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Officers[2].Name = "mallory"
		}, secdomain.ErrTampered},
		{"thumbprint replaced", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			tp, err := secdomain.Thumbprint(&all[5].PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			b.Officers[0].Thumbprint = tp
		}, secdomain.ErrUnknownOfficerKey},
		{"MAC bit flipped", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.MAC[31] ^= 0x80
		}, secdomain.ErrTampered},
		{"MAC truncated", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.MAC = b.MAC[:16]
		}, secdomain.ErrMalformedBlob},
		{"MAC removed", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.MAC = nil
		}, secdomain.ErrMalformedBlob},
		{"MAC of another domain's blob", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			other, err := secdomain.Download(newDomain(t, 22), officers(all[:3]), 2, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			b.MAC = other.MAC
		}, secdomain.ErrTampered},
		{"version changed", b3, []int{0, 1}, func(t *testing.T, b *secdomain.Blob) {
			b.Version = 2
		}, secdomain.ErrUnsupportedVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := pick(all, tc.keys...)
			// The untouched blob recovers (with every officer's key).
			if _, err := secdomain.Recover(tc.blob, all[:len(tc.blob.Officers)]); err != nil {
				t.Fatalf("untouched blob: %v", err)
			}
			b := cloneBlob(tc.blob)
			tc.tamper(t, b)

			// Directly.
			got, err := secdomain.Recover(b, ks)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Recover error = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Fatal("Recover returned a domain from a tampered blob")
			}
			t.Log(err)
			// Through JSON: rejected by ParseBlob or by Recover.
			js, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := secdomain.ParseBlob(js)
			if err == nil {
				_, err = secdomain.Recover(parsed, ks)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("after JSON round trip: error = %v, want %v", err, tc.want)
			}
		})
	}

	// The blobs the cases started from are untouched.
	for _, b := range []*secdomain.Blob{b3, b4, b4q3} {
		got, err := secdomain.Recover(b, pick(all, 0, 1, 2))
		if err != nil || !bytes.Equal(got.Key(), d.Key()) {
			t.Fatalf("original blob no longer recovers: %v", err)
		}
	}
}

func TestParseBlobErrors(t *testing.T) {
	b := download(t, newDomain(t, 23), 3, 2)
	good, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// mutate returns the JSON of a changed copy of b.
	mutate := func(change func(*secdomain.Blob)) []byte {
		c := cloneBlob(b)
		change(c)
		js, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, secdomain.ErrMalformedBlob},
		{"not JSON", []byte("security domain"), secdomain.ErrMalformedBlob},
		{"truncated", good[:len(good)/2], secdomain.ErrMalformedBlob},
		{"JSON null", []byte("null"), secdomain.ErrUnsupportedVersion},
		{"array", []byte("[]"), secdomain.ErrMalformedBlob},
		{"empty object", []byte("{}"), secdomain.ErrUnsupportedVersion},
		{"trailing data", append(append([]byte{}, good...), []byte(" {}")...), secdomain.ErrMalformedBlob},
		{"unknown field", bytes.Replace(good, []byte(`{"version"`), []byte(`{"extra":1,"version"`), 1), secdomain.ErrMalformedBlob},
		{"wrong type", bytes.Replace(good, []byte(`"quorum":2`), []byte(`"quorum":"2"`), 1), secdomain.ErrMalformedBlob},
		{"share not base64", bytes.Replace(good, []byte(`"encryptedShare":"`), []byte(`"encryptedShare":"!`), 1), secdomain.ErrMalformedBlob},
		{"bad thumbprint", bytes.Replace(good, []byte(`"thumbprint":"`), []byte(`"thumbprint":"AA`), 1), secdomain.ErrMalformedBlob},
		{"empty share", mutate(func(b *secdomain.Blob) { b.Officers[1].EncryptedShare = nil }), secdomain.ErrMalformedBlob},
		{"no officers", mutate(func(b *secdomain.Blob) { b.Officers = nil }), secdomain.ErrMalformedBlob},
		{"eleven officers", mutate(func(b *secdomain.Blob) {
			for i := 3; i < 11; i++ {
				o := b.Officers[0]
				o.Thumbprint = fmt.Sprintf("%043d", i)
				b.Officers = append(b.Officers, o)
			}
		}), secdomain.ErrMalformedBlob},
		{"quorum above officers", mutate(func(b *secdomain.Blob) { b.Quorum = 4 }), secdomain.ErrMalformedBlob},
		{"upper-case domain ID", mutate(func(b *secdomain.Blob) { b.DomainID = strings.ToUpper(b.DomainID) }), secdomain.ErrMalformedBlob},
		{"short domain ID", mutate(func(b *secdomain.Blob) { b.DomainID = b.DomainID[:30] }), secdomain.ErrMalformedBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secdomain.ParseBlob(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseBlob error = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Fatal("ParseBlob returned a blob with an error")
			}
		})
	}
	if _, err := secdomain.Recover(nil, keys(t)[:2]); !errors.Is(err, secdomain.ErrMalformedBlob) {
		t.Fatalf("Recover(nil) error = %v, want ErrMalformedBlob", err)
	}
}

func FuzzParseBlobRecover(f *testing.F) {
	all := keys(f)
	d := newDomain(f, 24)
	for _, nq := range [][2]int{{3, 2}, {3, 3}, {4, 2}} {
		b := download(f, d, nq[0], nq[1])
		js, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
		f.Add(bytes.Replace(js, []byte(`"quorum":`), []byte(`"quorum":1`), 1))
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	want := d.Key()
	byThumb := make(map[string]*rsa.PrivateKey)
	for _, k := range all[:4] {
		tp, err := secdomain.Thumbprint(&k.PublicKey)
		if err != nil {
			f.Fatal(err)
		}
		byThumb[tp] = k
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := secdomain.ParseBlob(data)
		if err != nil {
			if b != nil {
				t.Fatal("ParseBlob returned a blob with an error")
			}
			return
		}
		// Every officer key of ours the blob names (so that recovery
		// gets past key matching), plus one outsider if it names none.
		var ks []*rsa.PrivateKey
		for _, o := range b.Officers {
			if k, ok := byThumb[o.Thumbprint]; ok {
				ks = append(ks, k)
			}
		}
		if len(ks) == 0 {
			ks = all[4:5]
		}
		got, err := secdomain.Recover(b, ks)
		if err != nil {
			if got != nil {
				t.Fatal("Recover returned a domain with an error")
			}
			return
		}
		// Whatever was changed, a blob that recovers yields the true key.
		if !bytes.Equal(got.Key(), want) {
			t.Fatalf("Recover yielded a wrong key from %q", data)
		}
	})
}
