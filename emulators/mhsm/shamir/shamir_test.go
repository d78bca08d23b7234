package shamir_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/shamir"
)

// seeded returns a deterministic random source for the test.
func seeded(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// randomSecret returns size bytes from r.
func randomSecret(t *testing.T, r io.Reader, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// subsets calls fn with every subset of {0..n-1} of exactly size m, as index lists.
func subsets(n, m int, fn func(idx []int)) {
	idx := make([]int, 0, m)
	var rec func(start int)
	rec = func(start int) {
		if len(idx) == m {
			fn(slices.Clone(idx))
			return
		}
		for i := start; i < n; i++ {
			idx = append(idx, i)
			rec(i + 1)
			idx = idx[:len(idx)-1]
		}
	}
	rec(0)
}

func pick(shares []shamir.Share, idx []int) []shamir.Share {
	out := make([]shamir.Share, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestSplitShape(t *testing.T) {
	secret := []byte("the domain key, 32 bytes long!!!")
	orig := slices.Clone(secret)
	cr := &countingReader{r: seeded(1)}
	shares, err := shamir.Split(secret, 5, 3, cr)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 5 {
		t.Fatalf("got %d shares, want 5", len(shares))
	}
	for i, s := range shares {
		if s.X != byte(i+1) {
			t.Errorf("share %d: X = %d, want %d", i, s.X, i+1)
		}
		if len(s.Y) != len(secret) {
			t.Errorf("share %d: len(Y) = %d, want %d", i, len(s.Y), len(secret))
		}
	}
	if want := 2 * len(secret); cr.n != want {
		t.Errorf("read %d random bytes, want (k-1)*len(secret) = %d", cr.n, want)
	}
	if !bytes.Equal(secret, orig) {
		t.Error("Split modified the secret")
	}
}

func TestSplitValidation(t *testing.T) {
	secret := []byte{1, 2, 3}
	for _, tc := range []struct {
		name   string
		secret []byte
		n, k   int
		rand   io.Reader
		want   error
	}{
		{"empty secret", nil, 3, 2, seeded(0), shamir.ErrEmptySecret},
		{"threshold 1", secret, 3, 1, seeded(0), shamir.ErrBadThreshold},
		{"threshold 0", secret, 3, 0, seeded(0), shamir.ErrBadThreshold},
		{"negative threshold", secret, 3, -1, seeded(0), shamir.ErrBadThreshold},
		{"threshold above shares", secret, 3, 4, seeded(0), shamir.ErrBadThreshold},
		{"zero shares", secret, 0, 2, seeded(0), shamir.ErrBadThreshold},
		{"256 shares", secret, 256, 2, seeded(0), shamir.ErrBadThreshold},
		{"short random source", secret, 3, 2, bytes.NewReader([]byte{1, 2}), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shares, err := shamir.Split(tc.secret, tc.n, tc.k, tc.rand)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Split error = %v, want %v", err, tc.want)
			}
			if shares != nil {
				t.Fatalf("Split returned shares with an error")
			}
		})
	}
	t.Run("nil random source", func(t *testing.T) {
		if _, err := shamir.Split(secret, 3, 2, nil); err == nil {
			t.Fatal("Split with a nil reader succeeded")
		}
	})
}

func TestEveryKSubsetReconstructs(t *testing.T) {
	r := seeded(2)
	for n := 2; n <= 5; n++ {
		for k := 2; k <= n; k++ {
			for range 5 {
				secret := randomSecret(t, r, 1+int(r.Uint64()%40))
				shares, err := shamir.Split(secret, n, k, r)
				if err != nil {
					t.Fatal(err)
				}
				// Every subset of k or more shares, in two orders.
				for m := k; m <= n; m++ {
					subsets(n, m, func(idx []int) {
						sub := pick(shares, idx)
						got, err := shamir.Combine(sub)
						if err != nil {
							t.Fatalf("n=%d k=%d shares %v: %v", n, k, idx, err)
						}
						if !bytes.Equal(got, secret) {
							t.Fatalf("n=%d k=%d shares %v: got %x, want %x", n, k, idx, got, secret)
						}
						slices.Reverse(sub)
						got, err = shamir.Combine(sub)
						if err != nil || !bytes.Equal(got, secret) {
							t.Fatalf("n=%d k=%d shares %v reversed: got %x, %v; want %x", n, k, idx, got, err, secret)
						}
					})
				}
			}
		}
	}
}

func TestFewerThanThresholdSharesDoNotReconstruct(t *testing.T) {
	r := seeded(3)
	for n := 3; n <= 5; n++ {
		for k := 3; k <= n; k++ {
			for range 10 {
				secret := randomSecret(t, r, 32)
				shares, err := shamir.Split(secret, n, k, r)
				if err != nil {
					t.Fatal(err)
				}
				// Any k-1 shares interpolate a polynomial of degree k-2;
				// its value at 0 matches the 32-byte secret with
				// probability 2^-256.
				subsets(n, k-1, func(idx []int) {
					got, err := shamir.Combine(pick(shares, idx))
					if err != nil {
						t.Fatalf("n=%d k=%d shares %v: %v", n, k, idx, err)
					}
					if bytes.Equal(got, secret) {
						t.Fatalf("n=%d k=%d: %d shares %v reconstructed the secret", n, k, k-1, idx)
					}
				})
			}
		}
	}
	// With threshold 2 a single share cannot even be combined.
	shares, err := shamir.Split([]byte("secret"), 3, 2, seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shamir.Combine(shares[:1]); !errors.Is(err, shamir.ErrTooFewShares) {
		t.Fatalf("Combine(1 share) error = %v, want ErrTooFewShares", err)
	}
}

// TestKMinusOneSharesAreUniform checks perfect secrecy exhaustively for one
// byte: over every possible choice of random coefficients, the k-1 shares
// an attacker holds take every value exactly once, whatever the secret, so
// they carry no information about it.
func TestKMinusOneSharesAreUniform(t *testing.T) {
	t.Run("k=2, one share", func(t *testing.T) {
		for _, secret := range []byte{0x00, 0x01, 0xa5, 0xff} {
			for x := 1; x <= 3; x++ {
				var count [256]int
				for c := range 256 {
					shares, err := shamir.Split([]byte{secret}, 3, 2, bytes.NewReader([]byte{byte(c)}))
					if err != nil {
						t.Fatal(err)
					}
					count[shares[x-1].Y[0]]++
				}
				for v, n := range count {
					if n != 1 {
						t.Fatalf("secret %#02x, x=%d: share value %#02x occurs %d times, want 1", secret, x, v, n)
					}
				}
			}
		}
	})
	t.Run("k=3, two shares", func(t *testing.T) {
		for _, secret := range []byte{0x00, 0xa5} {
			for _, pair := range [][2]int{{0, 1}, {1, 2}, {0, 2}} {
				count := make([]int, 1<<16)
				for c := range 1 << 16 {
					shares, err := shamir.Split([]byte{secret}, 3, 3, bytes.NewReader([]byte{byte(c), byte(c >> 8)}))
					if err != nil {
						t.Fatal(err)
					}
					count[int(shares[pair[0]].Y[0])<<8|int(shares[pair[1]].Y[0])]++
				}
				for v, n := range count {
					if n != 1 {
						t.Fatalf("secret %#02x, shares %v: value pair %#04x occurs %d times, want 1", secret, pair, v, n)
					}
				}
			}
		}
	})
}

func TestDeterministicWithSeededReader(t *testing.T) {
	secret := []byte("same secret, same seed")
	a, err := shamir.Split(secret, 5, 3, seeded(7))
	if err != nil {
		t.Fatal(err)
	}
	b, err := shamir.Split(secret, 5, 3, seeded(7))
	if err != nil {
		t.Fatal(err)
	}
	c, err := shamir.Split(secret, 5, 3, seeded(8))
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i].X != b[i].X || !bytes.Equal(a[i].Y, b[i].Y) {
			t.Fatalf("share %d differs between two runs with the same seed", i)
		}
	}
	same := true
	for i := range a {
		same = same && bytes.Equal(a[i].Y, c[i].Y)
	}
	if same {
		t.Fatal("different seeds gave identical shares")
	}
}

// TestGoldenVector pins the field and the share layout: with threshold 2
// and coefficient 0x05, share x is secret ^ 0x05*x in GF(256) mod 0x11b.
func TestGoldenVector(t *testing.T) {
	shares, err := shamir.Split([]byte{0x42, 0x00}, 4, 2, bytes.NewReader([]byte{0x05, 0x57}))
	if err != nil {
		t.Fatal(err)
	}
	want := []shamir.Share{
		{X: 1, Y: []byte{0x42 ^ 0x05, 0x57}},
		{X: 2, Y: []byte{0x42 ^ 0x0a, 0xae}},
		{X: 3, Y: []byte{0x42 ^ 0x0f, 0x57 ^ 0xae}},
		{X: 4, Y: []byte{0x42 ^ 0x14, 0x47}}, // {57}.{04} = {47} (FIPS-197 4.2.1)
	}
	for i := range want {
		if shares[i].X != want[i].X || !bytes.Equal(shares[i].Y, want[i].Y) {
			t.Errorf("share %d = {%d %x}, want {%d %x}", i, shares[i].X, shares[i].Y, want[i].X, want[i].Y)
		}
	}
}

func TestMaxShares(t *testing.T) {
	r := seeded(9)
	secret := randomSecret(t, r, 16)
	for _, k := range []int{2, 128, 255} {
		shares, err := shamir.Split(secret, shamir.MaxShares, k, r)
		if err != nil {
			t.Fatal(err)
		}
		// The last k shares (highest x-coordinates).
		got, err := shamir.Combine(shares[len(shares)-k:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("k=%d of 255: got %x, want %x", k, got, secret)
		}
	}
}

func TestCombineValidation(t *testing.T) {
	ok := shamir.Share{X: 1, Y: []byte{1, 2}}
	for _, tc := range []struct {
		name   string
		shares []shamir.Share
		want   error
	}{
		{"no shares", nil, shamir.ErrTooFewShares},
		{"one share", []shamir.Share{ok}, shamir.ErrTooFewShares},
		{"empty Y", []shamir.Share{{X: 1}, {X: 2}}, shamir.ErrEmptySecret},
		{"length mismatch", []shamir.Share{ok, {X: 2, Y: []byte{1}}}, shamir.ErrLengthMismatch},
		{"zero x", []shamir.Share{ok, {X: 0, Y: []byte{1, 2}}}, shamir.ErrZeroX},
		{"duplicate x", []shamir.Share{ok, {X: 2, Y: []byte{3, 4}}, {X: 1, Y: []byte{5, 6}}}, shamir.ErrDuplicateX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shamir.Combine(tc.shares)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Combine error = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Fatal("Combine returned a secret with an error")
			}
		})
	}
}

func TestCombineDoesNotModifyShares(t *testing.T) {
	shares, err := shamir.Split([]byte("abc"), 3, 2, seeded(10))
	if err != nil {
		t.Fatal(err)
	}
	before := make([][]byte, len(shares))
	for i, s := range shares {
		before[i] = slices.Clone(s.Y)
	}
	if _, err := shamir.Combine(shares); err != nil {
		t.Fatal(err)
	}
	for i, s := range shares {
		if !bytes.Equal(s.Y, before[i]) {
			t.Fatalf("Combine modified share %d", i)
		}
	}
}

// decodeShares turns fuzz input into shares: the first byte is the share
// length, then each share is one x byte followed by length y bytes; a
// short tail becomes a short last share.
func decodeShares(data []byte) []shamir.Share {
	if len(data) == 0 {
		return nil
	}
	size := int(data[0] % 64)
	data = data[1:]
	var shares []shamir.Share
	for len(data) > 0 {
		x := data[0]
		data = data[1:]
		m := min(size, len(data))
		shares = append(shares, shamir.Share{X: x, Y: data[:m]})
		data = data[m:]
	}
	return shares
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 1, 0xaa, 0xbb, 2, 0xcc, 0xdd})
	f.Add([]byte{1, 1, 0xaa, 1, 0xbb})
	f.Add([]byte{1, 0, 0xaa, 1, 0xbb})
	f.Add([]byte{3, 1, 1, 2, 3, 2, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		shares := decodeShares(data)
		got, err := shamir.Combine(shares)
		if err != nil {
			if got != nil {
				t.Fatal("Combine returned a secret with an error")
			}
			return
		}
		if len(got) != len(shares[0].Y) {
			t.Fatalf("secret has %d bytes, shares have %d", len(got), len(shares[0].Y))
		}
	})
}

func FuzzSplitCombine(f *testing.F) {
	f.Add([]byte("secret"), uint8(3), uint8(2), uint64(1))
	f.Add([]byte{0}, uint8(255), uint8(255), uint64(2))
	f.Fuzz(func(t *testing.T, secret []byte, n, k uint8, seed uint64) {
		var s [32]byte
		s[0], s[1] = byte(seed), byte(seed>>8)
		shares, err := shamir.Split(secret, int(n), int(k), rand.NewChaCha8(s))
		if err != nil {
			return
		}
		// The k shares starting at an offset chosen by the seed.
		off := int(seed % uint64(int(n)-int(k)+1))
		got, err := shamir.Combine(shares[off : off+int(k)])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("round trip: got %x, want %x", got, secret)
		}
	})
}
