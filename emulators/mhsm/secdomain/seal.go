package secdomain

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// sealLabel is the RSA-OAEP label of a sealed domain.
const sealLabel = "hsmlab security domain transfer v1"

// sealedSize is the plaintext size of a sealed domain: the version byte,
// the domain key and the 16-byte raw domain ID.
const sealedSize = 1 + KeySize + 16

// Seal encrypts d to a new HSM's transfer (exchange) public key, the last
// step of restoring a security domain into an empty HSM: the client
// recovers the domain with the officers' keys (Recover), then seals it to
// the key the new HSM published. The result is RSA-OAEP-256 (label
// "hsmlab security domain transfer v1") of the format version, the domain
// key and the raw domain ID. transfer must have at least MinRSABits
// (ErrWeakKey); the OAEP seed is read from rand.
func Seal(d *Domain, transfer *rsa.PublicKey, rand io.Reader) ([]byte, error) {
	if !d.valid() {
		return nil, fmt.Errorf("seal: %w", ErrInvalidDomain)
	}
	if err := checkRSA(transfer); err != nil {
		return nil, fmt.Errorf("seal: transfer key: %w", err)
	}
	if rand == nil {
		return nil, errors.New("seal: nil random source")
	}
	id, err := hex.DecodeString(d.id)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", ErrInvalidDomain)
	}
	pt := make([]byte, 0, sealedSize)
	pt = append(pt, FormatVersion)
	pt = append(pt, d.key...)
	pt = append(pt, id...)
	defer clear(pt)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand, transfer, pt, []byte(sealLabel))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return ct, nil
}

// Open decrypts a domain sealed by Seal with the new HSM's transfer private
// key. A ciphertext that does not decrypt under transfer (another key, or
// altered bytes) is ErrUnseal; a decrypted payload of another version is
// ErrUnsupportedVersion; one of the wrong size or whose ID does not match
// its key is ErrTampered.
func Open(sealed []byte, transfer *rsa.PrivateKey) (*Domain, error) {
	if transfer == nil {
		return nil, fmt.Errorf("open: transfer key: %w: nil", ErrWeakKey)
	}
	if err := checkRSA(&transfer.PublicKey); err != nil {
		return nil, fmt.Errorf("open: transfer key: %w", err)
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, transfer, sealed, []byte(sealLabel))
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrUnseal)
	}
	defer clear(pt)
	if len(pt) == 0 {
		return nil, fmt.Errorf("open: %w: empty payload", ErrTampered)
	}
	if pt[0] != FormatVersion {
		return nil, fmt.Errorf("open: %w: version %d, want %d", ErrUnsupportedVersion, pt[0], FormatVersion)
	}
	if len(pt) != sealedSize {
		return nil, fmt.Errorf("open: %w: payload has %d bytes, want %d", ErrTampered, len(pt), sealedSize)
	}
	key := append([]byte(nil), pt[1:1+KeySize]...)
	d := newDomain(key)
	if d.id != hex.EncodeToString(pt[1+KeySize:]) {
		clear(key)
		return nil, fmt.Errorf("open: %w: domain ID does not match the key", ErrTampered)
	}
	return d, nil
}
