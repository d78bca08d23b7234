package shamir

import "testing"

// slowMul multiplies in GF(256) by shift-and-add with reduction modulo
// 0x11b: the textbook definition, independent of the tables.
func slowMul(a, b byte) byte {
	var p byte
	x, y := a, b
	for y != 0 {
		if y&1 != 0 {
			p ^= x
		}
		hi := x & 0x80
		x <<= 1
		if hi != 0 {
			x ^= 0x1b // 0x11b without the x^8 term
		}
		y >>= 1
	}
	return p
}

// slowInv finds the inverse of a by exhaustive search.
func slowInv(a byte) byte {
	for b := 1; b < 256; b++ {
		if slowMul(a, byte(b)) == 1 {
			return byte(b)
		}
	}
	return 0
}

func TestSlowMulKnownAnswers(t *testing.T) {
	// FIPS-197 section 4.2: {57} . {83} = {c1}, {57} . {13} = {fe}.
	for _, tc := range []struct{ a, b, want byte }{
		{0x57, 0x83, 0xc1},
		{0x57, 0x13, 0xfe},
		{0x57, 0x02, 0xae},
		{0x57, 0x04, 0x47},
		{0x57, 0x08, 0x8e},
		{0x57, 0x10, 0x07},
	} {
		if got := slowMul(tc.a, tc.b); got != tc.want {
			t.Errorf("slowMul(%#02x, %#02x) = %#02x, want %#02x", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestGFMulExhaustive(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			if got, want := gfMul(byte(a), byte(b)), slowMul(byte(a), byte(b)); got != want {
				t.Fatalf("gfMul(%#02x, %#02x) = %#02x, want %#02x", a, b, got, want)
			}
		}
	}
}

func TestGFInvExhaustive(t *testing.T) {
	for a := 1; a < 256; a++ {
		inv := gfInv(byte(a))
		if want := slowInv(byte(a)); inv != want {
			t.Fatalf("gfInv(%#02x) = %#02x, want %#02x", a, inv, want)
		}
		if p := slowMul(byte(a), inv); p != 1 {
			t.Fatalf("%#02x * gfInv(%#02x) = %#02x, want 1", a, a, p)
		}
	}
}

func TestGFDivExhaustive(t *testing.T) {
	for a := range 256 {
		for b := 1; b < 256; b++ {
			q := gfDiv(byte(a), byte(b))
			if got := slowMul(q, byte(b)); got != byte(a) {
				t.Fatalf("gfDiv(%#02x, %#02x) * %#02x = %#02x, want %#02x", a, b, b, got, a)
			}
		}
	}
}

func TestTablesAreAPermutation(t *testing.T) {
	// The generator must reach every non-zero element exactly once.
	var seen [256]bool
	for i := range 255 {
		e := expTable[i]
		if e == 0 || seen[e] {
			t.Fatalf("expTable[%d] = %#02x repeats or is zero: 0x03 is not a generator", i, e)
		}
		seen[e] = true
		if int(logTable[e]) != i {
			t.Fatalf("logTable[%#02x] = %d, want %d", e, logTable[e], i)
		}
		if expTable[i+255] != e {
			t.Fatalf("expTable[%d] = %#02x, want copy %#02x", i+255, expTable[i+255], e)
		}
	}
}
