package shamir

// Arithmetic in GF(2^8) with the AES reduction polynomial
// x^8 + x^4 + x^3 + x + 1 (0x11b). Addition and subtraction are XOR;
// multiplication and inversion use log/exp tables over the generator 0x03
// (0x02 does not generate the multiplicative group modulo 0x11b).
//
// Table lookups are indexed by secret-dependent values and so are not
// constant-time. That is acceptable for a lab emulator; a production
// implementation would use a constant-time multiply.

const (
	fieldPoly = 0x11b // reduction polynomial
	generator = 0x03  // generator of the multiplicative group
)

var (
	// expTable[i] = generator^i. It has 510 entries so that
	// expTable[logTable[a]+logTable[b]] needs no reduction modulo 255.
	expTable [510]byte
	// logTable[a] = i such that generator^i = a, for a != 0. logTable[0] is unused.
	logTable [256]byte
)

func init() {
	x := 1
	for i := range 255 {
		expTable[i] = byte(x)
		expTable[i+255] = byte(x)
		logTable[x] = byte(i)
		// x *= generator (0x03): x*2 ^ x, reduced modulo 0x11b.
		x2 := x << 1
		if x2&0x100 != 0 {
			x2 ^= fieldPoly
		}
		x = x2 ^ x
	}
}

// gfMul returns a*b in GF(256).
func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return expTable[int(logTable[a])+int(logTable[b])]
}

// gfInv returns the multiplicative inverse of a in GF(256). a must not be 0
// (gfInv(0) returns 0; callers never ask for it).
func gfInv(a byte) byte {
	if a == 0 {
		return 0
	}
	return expTable[255-int(logTable[a])]
}

// gfDiv returns a/b in GF(256). b must not be 0.
func gfDiv(a, b byte) byte {
	return gfMul(a, gfInv(b))
}
