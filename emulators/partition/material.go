package partition

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

// This file holds what both backends share: spec and algorithm rules, the
// format of wrapped material, and the public-key half of RSA operations.

// DomainKeySize is the length in bytes of the security domain's data-wrapping
// key that InstallDomainKey accepts (AES-256).
const DomainKeySize = 32

// checkSpec reports whether a partition can hold a key of spec.
func checkSpec(spec KeySpec) error {
	switch spec.Type {
	case RSA:
		switch spec.Bits {
		case 2048, 3072, 4096:
			return nil
		}
	case Oct:
		switch spec.Bits {
		case 128, 192, 256:
			return nil
		}
	}
	return fmt.Errorf("%s %d: %w", spec.Type, spec.Bits, ErrUnsupportedSpec)
}

// checkHandle rejects handles no backend can store.
func checkHandle(handle string) error {
	if handle == "" || len(handle) > 255 {
		return fmt.Errorf("handle %q: want 1 to 255 bytes: %w", handle, ErrBadInput)
	}
	return nil
}

// opClass separates Wrap/Unwrap from Encrypt/Decrypt: oct keys wrap with
// AES-KW and encrypt with AES-GCM, never the other way round.
type opClass int

const (
	opWrap opClass = iota
	opCrypt
)

// checkAlg reports whether alg can be used with a key of spec for op.
func checkAlg(op opClass, spec KeySpec, alg Alg) error {
	ok := false
	switch spec.Type {
	case RSA:
		ok = alg == RSAOAEP || alg == RSAOAEP256 || alg == RSA15
	case Oct:
		switch op {
		case opWrap:
			ok = (alg == A128KW && spec.Bits == 128) || (alg == A192KW && spec.Bits == 192) || (alg == A256KW && spec.Bits == 256)
		case opCrypt:
			ok = (alg == A128GCM && spec.Bits == 128) || (alg == A192GCM && spec.Bits == 192) || (alg == A256GCM && spec.Bits == 256)
		}
	}
	if !ok {
		return fmt.Errorf("%s with %s %d: %w", alg, spec.Type, spec.Bits, ErrUnsupportedAlg)
	}
	return nil
}

// GCM parameters: the IV is generated inside the partition, the tag is
// returned separately in Sealed.
const (
	gcmIVSize  = 12
	gcmTagSize = 16
)

// oaepHash returns the OAEP hash of an RSA-OAEP algorithm.
func oaepHash(alg Alg) hash.Hash {
	if alg == RSAOAEP {
		return sha1.New()
	}
	return sha256.New()
}

// rsaEncrypt encrypts plaintext with the public key. Both backends use it:
// the operation involves no secret, so the PKCS#11 backend does it in Go too.
func rsaEncrypt(pub *rsa.PublicKey, alg Alg, plaintext []byte) ([]byte, error) {
	var ct []byte
	var err error
	switch alg {
	case RSAOAEP, RSAOAEP256:
		ct, err = rsa.EncryptOAEP(oaepHash(alg), rand.Reader, pub, plaintext, nil)
	case RSA15:
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, plaintext) //nolint:staticcheck // RSA1_5 is a Key Vault algorithm
	default:
		return nil, fmt.Errorf("%s: %w", alg, ErrUnsupportedAlg)
	}
	if errors.Is(err, rsa.ErrMessageTooLong) {
		return nil, fmt.Errorf("%s: %d-byte plaintext too long for a %d-bit key: %w", alg, len(plaintext), pub.N.BitLen(), ErrBadInput)
	}
	return ct, err
}

// checkRSACiphertext rejects ciphertexts that cannot decrypt under a key
// with a k-byte modulus.
func checkRSACiphertext(k int, ct []byte) error {
	if len(ct) != k {
		return fmt.Errorf("ciphertext is %d bytes, want %d: %w", len(ct), k, ErrDecrypt)
	}
	return nil
}

// checkKWPlaintext and checkKWCiphertext apply RFC 3394's length rules
// before a backend does any work.
func checkKWPlaintext(pt []byte) error {
	if len(pt) < 16 || len(pt)%8 != 0 {
		return fmt.Errorf("plaintext is %d bytes, want a multiple of 8 and at least 16: %w", len(pt), ErrBadInput)
	}
	return nil
}

func checkKWCiphertext(ct []byte) error {
	if len(ct) < 24 || len(ct)%8 != 0 {
		return fmt.Errorf("ciphertext is %d bytes, want a multiple of 8 and at least 24: %w", len(ct), ErrDecrypt)
	}
	return nil
}

// checkGCM validates the shape of a sealed AES-GCM message.
func checkGCM(s Sealed) error {
	if len(s.IV) != gcmIVSize || len(s.Tag) != gcmTagSize {
		return fmt.Errorf("iv %d bytes, tag %d bytes, want %d and %d: %w", len(s.IV), len(s.Tag), gcmIVSize, gcmTagSize, ErrDecrypt)
	}
	return nil
}

// keyMaterial is a key in clear, as it exists only transiently inside a
// partition: an RSA private key or raw AES key bytes.
type keyMaterial struct {
	rsa *rsa.PrivateKey
	raw []byte
}

// encodeMaterial returns the clear encoding of km (PKCS#8 DER or raw bytes).
func encodeMaterial(km keyMaterial) ([]byte, error) {
	if km.rsa != nil {
		der, err := x509.MarshalPKCS8PrivateKey(km.rsa)
		if err != nil {
			return nil, fmt.Errorf("pkcs8: %w", err)
		}
		return der, nil
	}
	return append([]byte(nil), km.raw...), nil
}

// decodeMaterial parses clear material for spec; a mismatch returns
// ErrBadMaterial.
func decodeMaterial(spec KeySpec, clearMat []byte) (keyMaterial, error) {
	switch spec.Type {
	case RSA:
		// SoftHSM 2.6 zero-pads the key data to a multiple of 8 bytes before
		// CKM_AES_KEY_WRAP_PAD, so its material unwraps to the DER followed
		// by up to 7 zero bytes: accept exactly that much trailing data.
		var outer asn1.RawValue
		rest, err := asn1.Unmarshal(clearMat, &outer)
		if err != nil {
			return keyMaterial{}, fmt.Errorf("pkcs8: %v: %w", err, ErrBadMaterial)
		}
		if len(rest) > 7 || !allZero(rest) {
			return keyMaterial{}, fmt.Errorf("pkcs8: %d bytes of trailing data: %w", len(rest), ErrBadMaterial)
		}
		k, err := x509.ParsePKCS8PrivateKey(clearMat[:len(clearMat)-len(rest)])
		if err != nil {
			return keyMaterial{}, fmt.Errorf("pkcs8: %v: %w", err, ErrBadMaterial)
		}
		priv, ok := k.(*rsa.PrivateKey)
		if !ok {
			return keyMaterial{}, fmt.Errorf("pkcs8 holds a %T, want RSA: %w", k, ErrBadMaterial)
		}
		if priv.N.BitLen() != spec.Bits {
			return keyMaterial{}, fmt.Errorf("material is RSA %d, spec says %d: %w", priv.N.BitLen(), spec.Bits, ErrBadMaterial)
		}
		priv.Precompute()
		return keyMaterial{rsa: priv}, nil
	case Oct:
		if len(clearMat)*8 != spec.Bits {
			return keyMaterial{}, fmt.Errorf("material is %d bits, spec says oct %d: %w", len(clearMat)*8, spec.Bits, ErrBadMaterial)
		}
		return keyMaterial{raw: append([]byte(nil), clearMat...)}, nil
	}
	return keyMaterial{}, fmt.Errorf("%s: %w", spec.Type, ErrUnsupportedSpec)
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
