// Package shamir implements Shamir's secret sharing over GF(256), the
// scheme Managed HSM uses to split its security domain across the
// customer's security officers: a secret is split into n shares of which
// any k reconstruct it, while k-1 shares reveal nothing about it.
//
// Each byte of the secret is the constant term of its own random
// polynomial of degree k-1 over GF(2^8) with the AES reduction polynomial
// (0x11b); share i holds the value of every polynomial at x = i (1..n; the
// x-coordinate 0 is never used, because the value there is the secret).
//
// Combine cannot tell a correct reconstruction from a wrong one: given
// fewer than k shares, or a tampered share, it returns a wrong secret
// without error. Callers that need integrity must authenticate the result
// (emulators/mhsm/secdomain does, with an HMAC).
//
// The package takes all randomness from the io.Reader passed to Split and
// imports nothing of the project.
package shamir

import (
	"errors"
	"fmt"
	"io"
)

// MaxShares is the largest number of shares Split can produce: one per
// non-zero element of GF(256).
const MaxShares = 255

// Share is one share of a split secret: the x-coordinate X (1..255, never
// 0) and the values Y of every byte's polynomial at X. len(Y) equals the
// length of the secret.
type Share struct {
	X byte
	Y []byte
}

// Sentinel errors. Split and Combine wrap them with context.
var (
	ErrEmptySecret    = errors.New("shamir: empty secret")
	ErrBadThreshold   = errors.New("shamir: need 2 <= threshold <= shares <= 255")
	ErrTooFewShares   = errors.New("shamir: at least 2 shares are needed")
	ErrZeroX          = errors.New("shamir: share has x-coordinate 0")
	ErrDuplicateX     = errors.New("shamir: two shares have the same x-coordinate")
	ErrLengthMismatch = errors.New("shamir: shares have different lengths")
)

// Split splits secret into n shares, any k of which reconstruct it with
// Combine. Share i (0-based) has X = i+1. It needs 2 <= k <= n <= 255 and a
// non-empty secret, and reads exactly (k-1)*len(secret) bytes from rand
// (crypto/rand.Reader in production; a seeded reader makes the output
// deterministic). secret is not modified or retained.
func Split(secret []byte, n, k int, rand io.Reader) ([]Share, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("split: %w", ErrEmptySecret)
	}
	if k < 2 || k > n || n > MaxShares {
		return nil, fmt.Errorf("split: %w: threshold %d, shares %d", ErrBadThreshold, k, n)
	}
	if rand == nil {
		return nil, errors.New("split: nil random source")
	}
	deg := k - 1
	// coeffs[i*deg+j] is the coefficient of x^(j+1) in byte i's polynomial.
	coeffs := make([]byte, len(secret)*deg)
	defer clear(coeffs)
	if _, err := io.ReadFull(rand, coeffs); err != nil {
		return nil, fmt.Errorf("split: read random: %w", err)
	}
	shares := make([]Share, n)
	for s := range shares {
		x := byte(s + 1)
		y := make([]byte, len(secret))
		for i, b := range secret {
			c := coeffs[i*deg : (i+1)*deg]
			// Horner: ((c[deg-1]*x + c[deg-2])*x + ... + c[0])*x + secret.
			var acc byte
			for j := deg - 1; j >= 0; j-- {
				acc = gfMul(acc, x) ^ c[j]
			}
			y[i] = gfMul(acc, x) ^ b
		}
		shares[s] = Share{X: x, Y: y}
	}
	return shares, nil
}

// Combine reconstructs a secret from shares by Lagrange interpolation at
// x = 0. It needs at least 2 shares, all with non-zero, distinct X and Y of
// the same non-zero length; the order of shares does not matter and extra
// shares beyond the threshold are harmless. Given fewer shares than the
// threshold used by Split, or a corrupted share, Combine returns a wrong
// value without error (see the package comment). shares are not modified.
func Combine(shares []Share) ([]byte, error) {
	if len(shares) < 2 {
		return nil, fmt.Errorf("combine: %w: %d given", ErrTooFewShares, len(shares))
	}
	size := len(shares[0].Y)
	if size == 0 {
		return nil, fmt.Errorf("combine: %w", ErrEmptySecret)
	}
	var seen [256]bool
	for i, s := range shares {
		if len(s.Y) != size {
			return nil, fmt.Errorf("combine: %w: share %d has %d bytes, share 0 has %d", ErrLengthMismatch, i, len(s.Y), size)
		}
		if s.X == 0 {
			return nil, fmt.Errorf("combine: %w: share %d", ErrZeroX, i)
		}
		if seen[s.X] {
			return nil, fmt.Errorf("combine: %w: x = %d", ErrDuplicateX, s.X)
		}
		seen[s.X] = true
	}
	// Lagrange basis at 0: l_i(0) = prod_{j != i} x_j / (x_j - x_i); in
	// GF(2^8) subtraction is XOR.
	secret := make([]byte, size)
	for i, si := range shares {
		basis := byte(1)
		for j, sj := range shares {
			if i == j {
				continue
			}
			basis = gfMul(basis, gfDiv(sj.X, sj.X^si.X))
		}
		for b := range secret {
			secret[b] ^= gfMul(basis, si.Y[b])
		}
	}
	return secret, nil
}
