package partition

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// The initial values of RFC 3394 (section 2.2.3.1) and RFC 5649 (section 3).
var (
	kwIV   = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}
	kwpAIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}
)

// Wrap3394 wraps plaintext under kek with the AES key wrap of RFC 3394
// (default initial value). kek must be 16, 24 or 32 bytes; plaintext must be
// a multiple of 8 bytes and at least 16 bytes long, otherwise the error wraps
// ErrBadInput. The result is 8 bytes longer than plaintext.
func Wrap3394(kek, plaintext []byte) ([]byte, error) {
	b, err := newKEK(kek)
	if err != nil {
		return nil, fmt.Errorf("wrap rfc3394: %w", err)
	}
	return wrap3394(b, plaintext)
}

// Unwrap3394 reverses Wrap3394. A ciphertext whose integrity check fails
// returns an error wrapping ErrDecrypt; a kek or ciphertext of an impossible
// length returns an error wrapping ErrBadInput. It never panics.
func Unwrap3394(kek, ciphertext []byte) ([]byte, error) {
	b, err := newKEK(kek)
	if err != nil {
		return nil, fmt.Errorf("unwrap rfc3394: %w", err)
	}
	return unwrap3394(b, ciphertext)
}

// WrapPad wraps plaintext (1 byte or more, any length) under kek with the
// AES key wrap with padding of RFC 5649. kek must be 16, 24 or 32 bytes. It
// is the format of Material.Wrapped and matches PKCS#11 CKM_AES_KEY_WRAP_PAD.
func WrapPad(kek, plaintext []byte) ([]byte, error) {
	b, err := newKEK(kek)
	if err != nil {
		return nil, fmt.Errorf("wrap rfc5649: %w", err)
	}
	return wrapPad(b, plaintext)
}

// UnwrapPad reverses WrapPad. A ciphertext whose integrity check fails
// (wrong kek, tampering) returns an error wrapping ErrDecrypt; a kek or
// ciphertext of an impossible length returns an error wrapping ErrBadInput.
// It never panics.
func UnwrapPad(kek, ciphertext []byte) ([]byte, error) {
	b, err := newKEK(kek)
	if err != nil {
		return nil, fmt.Errorf("unwrap rfc5649: %w", err)
	}
	return unwrapPad(b, ciphertext)
}

func newKEK(kek []byte) (cipher.Block, error) {
	switch len(kek) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("key-encryption key is %d bytes, want 16, 24 or 32: %w", len(kek), ErrBadInput)
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("aes: %v: %w", err, ErrBadInput)
	}
	return b, nil
}

func wrap3394(b cipher.Block, plaintext []byte) ([]byte, error) {
	if len(plaintext) < 16 || len(plaintext)%8 != 0 {
		return nil, fmt.Errorf("wrap rfc3394: plaintext is %d bytes, want a multiple of 8 and at least 16: %w", len(plaintext), ErrBadInput)
	}
	return wrapCore(b, kwIV, plaintext), nil
}

func unwrap3394(b cipher.Block, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 {
		return nil, fmt.Errorf("unwrap rfc3394: ciphertext is %d bytes, want a multiple of 8 and at least 24: %w", len(ciphertext), ErrBadInput)
	}
	a, r := unwrapCore(b, ciphertext)
	if subtle.ConstantTimeCompare(a[:], kwIV[:]) != 1 {
		clear(r)
		return nil, fmt.Errorf("unwrap rfc3394: integrity check failed: %w", ErrDecrypt)
	}
	return r, nil
}

func wrapPad(b cipher.Block, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 || uint64(len(plaintext)) > 0xFFFFFFFF {
		return nil, fmt.Errorf("wrap rfc5649: plaintext is %d bytes, want 1 to 2^32-1: %w", len(plaintext), ErrBadInput)
	}
	var aiv [8]byte
	copy(aiv[:4], kwpAIV[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(plaintext)))
	padded := (len(plaintext) + 7) &^ 7
	if padded == 8 {
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], plaintext)
		b.Encrypt(out, out)
		return out, nil
	}
	p := make([]byte, padded)
	copy(p, plaintext)
	out := wrapCore(b, aiv, p)
	clear(p)
	return out, nil
}

func unwrapPad(b cipher.Block, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 {
		return nil, fmt.Errorf("unwrap rfc5649: ciphertext is %d bytes, want a multiple of 8 and at least 16: %w", len(ciphertext), ErrBadInput)
	}
	var a [8]byte
	var p []byte
	if len(ciphertext) == 16 {
		var buf [16]byte
		b.Decrypt(buf[:], ciphertext)
		copy(a[:], buf[:8])
		p = make([]byte, 8)
		copy(p, buf[8:])
		clear(buf[:])
	} else {
		a, p = unwrapCore(b, ciphertext)
	}
	// Integrity: AIV prefix, 8*(n-1) < MLI <= 8*n, and zero padding; every
	// check is folded into one flag so the failure reason does not leak.
	n := len(p) / 8
	mli := binary.BigEndian.Uint32(a[4:])
	ok := subtle.ConstantTimeCompare(a[:4], kwpAIV[:])
	lenOK := 0
	if uint64(mli) > uint64(8*(n-1)) && uint64(mli) <= uint64(8*n) {
		lenOK = 1
	}
	ok &= lenOK
	// Padding lives in the last 8 bytes; check them all under a mask.
	var pad byte
	last := len(p) - 8
	first := subtle.ConstantTimeSelect(lenOK, int(mli)-last, 8) // index in the last 8 bytes where padding starts, 1..8
	for i := range 8 {
		inPad := subtle.ConstantTimeLessOrEq(first, i)
		pad |= p[last+i] & byte(-inPad)
	}
	ok &= subtle.ConstantTimeByteEq(pad, 0)
	if ok != 1 {
		clear(p)
		return nil, fmt.Errorf("unwrap rfc5649: integrity check failed: %w", ErrDecrypt)
	}
	return p[:mli], nil
}

// wrapCore is the wrapping process W of RFC 3394 section 2.2.1 with initial
// value iv; len(p) is a multiple of 8 and at least 16.
func wrapCore(b cipher.Block, iv [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	var buf [16]byte
	copy(buf[:8], iv[:])
	for j := range 6 {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(buf[8:], r)
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(r, buf[8:])
		}
	}
	copy(out[:8], buf[:8])
	clear(buf[:])
	return out
}

// unwrapCore is the unwrapping process W^-1 of RFC 3394 section 2.2.2; it
// returns the recovered initial value and the plaintext without checking
// either. len(c) is a multiple of 8 and at least 24.
func unwrapCore(b cipher.Block, c []byte) ([8]byte, []byte) {
	n := len(c)/8 - 1
	p := make([]byte, len(c)-8)
	copy(p, c[8:])
	var buf [16]byte
	copy(buf[:8], c[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := p[8*(i-1) : 8*i]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(buf[8:], r)
			b.Decrypt(buf[:], buf[:])
			copy(r, buf[8:])
		}
	}
	var a [8]byte
	copy(a[:], buf[:8])
	clear(buf[:])
	return a, p
}
