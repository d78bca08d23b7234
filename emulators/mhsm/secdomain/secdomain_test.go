package secdomain_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
)

func TestNewDomain(t *testing.T) {
	d := newDomain(t, 1)
	key := d.Key()
	if len(key) != secdomain.KeySize {
		t.Fatalf("Key() has %d bytes, want %d", len(key), secdomain.KeySize)
	}
	key[0] ^= 0xff
	if bytes.Equal(key, d.Key()) {
		t.Fatal("Key() returned the domain's own slice, not a copy")
	}
	if id, err := hex.DecodeString(d.ID()); err != nil || len(id) != 16 {
		t.Fatalf("ID() = %q, want 32 hex characters", d.ID())
	}

	// ID is derived from the key: SHA-256("hsmlab security domain id\x00" || key)[:16].
	sum := sha256.Sum256(append([]byte("hsmlab security domain id\x00"), d.Key()...))
	if want := hex.EncodeToString(sum[:16]); d.ID() != want {
		t.Fatalf("ID() = %s, want %s", d.ID(), want)
	}

	same := newDomain(t, 1)
	if !bytes.Equal(same.Key(), d.Key()) || same.ID() != d.ID() {
		t.Fatal("same seed gave a different domain")
	}
	other := newDomain(t, 2)
	if bytes.Equal(other.Key(), d.Key()) || other.ID() == d.ID() {
		t.Fatal("different seeds gave the same domain")
	}

	if _, err := secdomain.New(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("New with a short random source succeeded")
	}
	if _, err := secdomain.New(nil); err == nil {
		t.Fatal("New with a nil random source succeeded")
	}
}

func TestDomainNeverPrintsKey(t *testing.T) {
	d := newDomain(t, 3)
	keyHex := hex.EncodeToString(d.Key())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		out := fmt.Sprintf(verb, d)
		if strings.Contains(strings.ToLower(out), keyHex) || strings.Contains(out, fmt.Sprint(d.Key())) {
			t.Errorf("%s prints the key: %s", verb, out)
		}
		if !strings.Contains(out, d.ID()) {
			t.Errorf("%s does not print the ID: %s", verb, out)
		}
	}
	var nilDomain *secdomain.Domain
	if nilDomain.Key() != nil || nilDomain.ID() != "" {
		t.Error("nil Domain has a key or an ID")
	}
	_ = fmt.Sprint(nilDomain) // must not panic
}

// TestActivationShape checks the blob of the quick-start activation: three
// officers c0, c1, c2 and quorum 2.
func TestActivationShape(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 4)
	b, err := secdomain.Download(d, officers(all[:3]), 2, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != secdomain.FormatVersion || b.DomainID != d.ID() || b.Quorum != 2 {
		t.Fatalf("blob header = version %d, ID %s, quorum %d; want %d, %s, 2", b.Version, b.DomainID, b.Quorum, secdomain.FormatVersion, d.ID())
	}
	if len(b.Officers) != 3 {
		t.Fatalf("blob has %d officers, want 3", len(b.Officers))
	}
	for i, o := range b.Officers {
		tp, err := secdomain.Thumbprint(&all[i].PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if o.Name != fmt.Sprintf("c%d", i) || o.Thumbprint != tp {
			t.Errorf("officer %d = %q %s, want c%d %s", i, o.Name, o.Thumbprint, i, tp)
		}
		if len(o.EncryptedShare) != all[i].Size() {
			t.Errorf("officer %d share has %d bytes, want one RSA block (%d)", i, len(o.EncryptedShare), all[i].Size())
		}
	}
	if len(b.MAC) != sha256.Size {
		t.Errorf("MAC has %d bytes, want %d", len(b.MAC), sha256.Size)
	}

	js, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	keyHex := hex.EncodeToString(d.Key())
	if bytes.Contains(js, []byte(keyHex)) {
		t.Fatal("blob JSON contains the domain key")
	}
	for _, field := range []string{`"version":1`, `"domainId":"` + d.ID() + `"`, `"quorum":2`, `"officers":[`, `"name":"c0"`, `"thumbprint":"`, `"encryptedShare":"`, `"mac":"`} {
		if !bytes.Contains(js, []byte(field)) {
			t.Errorf("blob JSON lacks %s: %s", field, js)
		}
	}
	parsed, err := secdomain.ParseBlob(js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parsed, b) {
		t.Fatal("ParseBlob(Marshal(b)) != b")
	}
}

func TestThumbprint(t *testing.T) {
	k := keys(t)[0]
	tp, err := secdomain.Thumbprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp) != 43 || strings.ContainsAny(tp, "+/=") {
		t.Fatalf("Thumbprint = %q, want 43 unpadded base64url characters", tp)
	}
	if _, err := secdomain.Thumbprint(nil); err == nil {
		t.Fatal("Thumbprint(nil) succeeded")
	}
}

func TestRecoverEveryPairOfThree(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 5)
	b := download(t, d, 3, 2)
	for _, pair := range [][]int{{0, 1}, {1, 0}, {0, 2}, {2, 0}, {1, 2}, {2, 1}} {
		t.Run(fmt.Sprint(pair), func(t *testing.T) {
			got, err := secdomain.Recover(b, pick(all, pair...))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Key(), d.Key()) || got.ID() != d.ID() {
				t.Fatalf("recovered domain %s differs from %s", got, d)
			}
		})
	}
	t.Run("all three", func(t *testing.T) {
		got, err := secdomain.Recover(b, pick(all, 2, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Key(), d.Key()) {
			t.Fatal("recovered key differs")
		}
	})
}

func TestRecoverQuorumNotMet(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 6)
	b3 := download(t, d, 3, 2)
	b4 := download(t, d, 4, 3)
	for _, tc := range []struct {
		name string
		blob *secdomain.Blob
		keys []*rsa.PrivateKey
		msg  string
	}{
		{"one of three", b3, pick(all, 1), "2 officer keys needed, 1 given"},
		{"same key twice", b3, pick(all, 2, 2), "2 officer keys needed, 1 given"},
		{"no keys", b3, nil, "2 officer keys needed, 0 given"},
		{"two of four, quorum three", b4, pick(all, 0, 3), "3 officer keys needed, 2 given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secdomain.Recover(tc.blob, tc.keys)
			if !errors.Is(err, secdomain.ErrQuorumNotMet) {
				t.Fatalf("Recover error = %v, want ErrQuorumNotMet", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			if got != nil {
				t.Fatal("Recover returned a domain with an error")
			}
		})
	}
}

func TestRecoverUnknownKey(t *testing.T) {
	all := keys(t)
	b := download(t, newDomain(t, 7), 3, 2)
	for _, tc := range []struct {
		name string
		keys []*rsa.PrivateKey
	}{
		{"outsider alone", pick(all, 5)},
		{"outsider with a quorum", pick(all, 0, 1, 5)},
		{"nil key", []*rsa.PrivateKey{all[0], all[1], nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := secdomain.Recover(b, tc.keys); !errors.Is(err, secdomain.ErrUnknownOfficerKey) {
				t.Fatalf("Recover error = %v, want ErrUnknownOfficerKey", err)
			}
		})
	}
}

func TestTenOfficersQuorumTen(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 8)
	b := download(t, d, 10, 10)
	got, err := secdomain.Recover(b, all[:10])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Key(), d.Key()) {
		t.Fatal("recovered key differs")
	}
	if _, err := secdomain.Recover(b, all[1:10]); !errors.Is(err, secdomain.ErrQuorumNotMet) {
		t.Fatalf("9 of 10: error = %v, want ErrQuorumNotMet", err)
	}
}

func TestRedownloadWithNewOfficers(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 9)
	first := download(t, d, 3, 2)
	second, err := secdomain.Download(d, officers(all[3:7]), 3, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		blob *secdomain.Blob
		keys []*rsa.PrivateKey
	}{
		"first":  {first, pick(all, 0, 2)},
		"second": {second, pick(all, 3, 5, 6)},
	} {
		got, err := secdomain.Recover(tc.blob, tc.keys)
		if err != nil {
			t.Fatalf("%s blob: %v", name, err)
		}
		if !bytes.Equal(got.Key(), d.Key()) {
			t.Fatalf("%s blob: recovered key differs", name)
		}
	}
	if _, err := secdomain.Recover(second, pick(all, 0, 1)); !errors.Is(err, secdomain.ErrUnknownOfficerKey) {
		t.Fatalf("old officers on the new blob: error = %v, want ErrUnknownOfficerKey", err)
	}
}

func TestDownloadDeterministicWithSeededReader(t *testing.T) {
	all := keys(t)
	d := newDomain(t, 10)
	var out [2][]byte
	for i := range out {
		b, err := secdomain.Download(d, officers(all[:3]), 2, seeded(42))
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = b.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Fatal("same seed gave different blobs")
	}
}

func TestDownloadValidation(t *testing.T) {
	all := keys(t)
	weak, err := weakKey()
	if err != nil {
		t.Fatal(err)
	}
	d := newDomain(t, 11)
	eleven := officers(append(pick(all, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), all[0]))
	withWeak := officers(pick(all, 0, 1))
	withWeak = append(withWeak, secdomain.Officer{Name: "weak", Public: &weak.PublicKey})
	withNil := append(officers(pick(all, 0, 1)), secdomain.Officer{Name: "nil"})
	withDup := officers(pick(all, 0, 1, 0))
	for _, tc := range []struct {
		name     string
		domain   *secdomain.Domain
		officers []secdomain.Officer
		quorum   int
		want     error
	}{
		{"no officers", d, nil, 2, secdomain.ErrTooFewOfficers},
		{"two officers", d, officers(all[:2]), 2, secdomain.ErrTooFewOfficers},
		{"eleven officers", d, eleven, 2, secdomain.ErrTooManyOfficers},
		{"eleven officers, quorum eleven", d, eleven, 11, secdomain.ErrTooManyOfficers},
		{"quorum 1", d, officers(all[:3]), 1, secdomain.ErrBadQuorum},
		{"quorum 0", d, officers(all[:3]), 0, secdomain.ErrBadQuorum},
		{"quorum above officers", d, officers(all[:3]), 4, secdomain.ErrBadQuorum},
		{"1024-bit key", d, withWeak, 2, secdomain.ErrWeakKey},
		{"nil key", d, withNil, 2, secdomain.ErrWeakKey},
		{"duplicate keys", d, withDup, 2, secdomain.ErrDuplicateKey},
		{"nil domain", nil, officers(all[:3]), 2, secdomain.ErrInvalidDomain},
		{"zero domain", &secdomain.Domain{}, officers(all[:3]), 2, secdomain.ErrInvalidDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := secdomain.Download(tc.domain, tc.officers, tc.quorum, rand.Reader)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Download error = %v, want %v", err, tc.want)
			}
			if b != nil {
				t.Fatal("Download returned a blob with an error")
			}
		})
	}
	if _, err := secdomain.Download(d, officers(all[:3]), 2, nil); err == nil {
		t.Fatal("Download with a nil random source succeeded")
	}
}
