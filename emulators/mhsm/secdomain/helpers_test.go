package secdomain_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
)

// numKeys is how many 2048-bit test keys the binary generates: ten
// officers for the largest blob plus one outsider / transfer key.
const numKeys = 11

// testKeys generates the test binary's RSA keys once (keygen is slow),
// in parallel.
var testKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	keys := make([]*rsa.PrivateKey, numKeys)
	errs := make([]error, numKeys)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = rsa.GenerateKey(rand.Reader, 2048) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
})

// weakKey is a 1024-bit key, generated once.
var weakKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 1024)
})

// keys returns the cached test keys.
func keys(tb testing.TB) []*rsa.PrivateKey {
	tb.Helper()
	k, err := testKeys()
	if err != nil {
		tb.Fatalf("generate test keys: %v", err)
	}
	return k
}

// seeded returns a deterministic random source.
func seeded(seed byte) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

// officers names the public halves of keys c0, c1, ... as the quick-start does.
func officers(keys []*rsa.PrivateKey) []secdomain.Officer {
	out := make([]secdomain.Officer, len(keys))
	for i, k := range keys {
		out[i] = secdomain.Officer{Name: fmt.Sprintf("c%d", i), Public: &k.PublicKey}
	}
	return out
}

// newDomain creates a domain from a seeded reader.
func newDomain(tb testing.TB, seed byte) *secdomain.Domain {
	tb.Helper()
	d, err := secdomain.New(seeded(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// download returns the blob of d for the first n test keys with quorum q,
// after a JSON round trip.
func download(tb testing.TB, d *secdomain.Domain, n, q int) *secdomain.Blob {
	tb.Helper()
	b, err := secdomain.Download(d, officers(keys(tb)[:n]), q, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	js, err := b.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := secdomain.ParseBlob(js)
	if err != nil {
		tb.Fatal(err)
	}
	return parsed
}

// cloneBlob deep-copies b so a test can tamper with the copy.
func cloneBlob(b *secdomain.Blob) *secdomain.Blob {
	c := *b
	c.MAC = slices.Clone(b.MAC)
	c.Officers = slices.Clone(b.Officers)
	for i := range c.Officers {
		c.Officers[i].EncryptedShare = slices.Clone(b.Officers[i].EncryptedShare)
	}
	return &c
}

// pick returns the keys at idx.
func pick(all []*rsa.PrivateKey, idx ...int) []*rsa.PrivateKey {
	out := make([]*rsa.PrivateKey, len(idx))
	for i, j := range idx {
		out[i] = all[j]
	}
	return out
}
