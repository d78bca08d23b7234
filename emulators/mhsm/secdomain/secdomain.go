// Package secdomain models a Managed HSM security domain: the HSM's secret
// data-wrapping key (the "domain key") that the partitions of a pool share,
// and the encrypted blob the customer downloads at activation and uploads
// to restore the HSM after a total loss.
//
// As in the real service (reference/azure-facts.md §4), Download splits the
// domain key with Shamir's secret sharing into one share per security
// officer, with a threshold equal to the quorum, and encrypts each share to
// that officer's RSA public key with RSA-OAEP-256. Recover reverses it given
// a quorum of the officers' private keys. An HMAC-SHA256 tag keyed from the
// domain key covers every field of the blob, so a tampered blob is rejected
// after recovery (ErrTampered) instead of yielding a wrong key. Seal and Open
// carry the recovered domain into a new, empty HSM under that HSM's transfer
// (exchange) key, the handshake `az keyvault security-domain upload` does.
//
// The blob format is this lab's own JSON, not Microsoft's. The package takes
// all randomness from the io.Reader passed in, never reads the clock, and
// imports nothing of the project except emulators/mhsm/shamir, which itself
// imports nothing of the project.
package secdomain

import (
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Limits on officers and quorum.
const (
	// KeySize is the size in bytes of the domain key (AES-256).
	KeySize = 32
	// MinOfficers is the least number of officer keys Download accepts: the
	// service needs "at least three RSA key pairs".
	MinOfficers = 3
	// MaxOfficers is the most officer keys Download accepts. The documents
	// state only a maximum quorum of 10; a maximum of 10 wrapping keys is
	// implied, not stated (UNCONFIRMED wording).
	MaxOfficers = 10
	// MinQuorum is the smallest quorum: the quorum "must be > 1".
	MinQuorum = 2
	// MaxQuorum is the documented maximum quorum size.
	MaxQuorum = 10
	// MinRSABits is the smallest officer or transfer RSA key accepted.
	MinRSABits = 2048
)

// Sentinel errors. Functions wrap them with context.
var (
	ErrTooFewOfficers     = errors.New("secdomain: too few officers")
	ErrTooManyOfficers    = errors.New("secdomain: too many officers")
	ErrBadQuorum          = errors.New("secdomain: quorum out of range")
	ErrWeakKey            = errors.New("secdomain: RSA key missing or shorter than 2048 bits")
	ErrDuplicateKey       = errors.New("secdomain: two officers share a public key")
	ErrInvalidDomain      = errors.New("secdomain: domain has no valid key")
	ErrMalformedBlob      = errors.New("secdomain: malformed security domain blob")
	ErrUnsupportedVersion = errors.New("secdomain: unsupported format version")
	ErrUnknownOfficerKey  = errors.New("secdomain: key does not belong to any officer of this security domain")
	ErrQuorumNotMet       = errors.New("secdomain: quorum not met")
	ErrTampered           = errors.New("secdomain: security domain has been tampered with")
	ErrUnseal             = errors.New("secdomain: sealed domain does not open with this transfer key")
)

// Domain is a security domain: the 32-byte domain key and its public ID.
// A Domain is immutable and safe for concurrent use. Its String and Format
// methods print the ID only, never the key.
type Domain struct {
	key []byte
	id  string
}

// idLabel separates the ID hash from any other use of the key.
const idLabel = "hsmlab security domain id\x00"

// deriveID returns the raw ID of key: the first 16 bytes of
// SHA-256(idLabel || key).
func deriveID(key []byte) []byte {
	h := sha256.New()
	h.Write([]byte(idLabel))
	h.Write(key)
	return h.Sum(nil)[:16]
}

// New creates a security domain with a domain key of KeySize bytes read
// from rand (crypto/rand.Reader in production).
//
// The domain's ID is derived from the key, not random: the lowercase hex of
// the first 16 bytes of SHA-256("hsmlab security domain id\x00" || key). It
// is a public fingerprint (the hash reveals nothing useful about the key)
// that lets Recover and Open check the key they rebuilt against the ID they
// were given.
func New(rand io.Reader) (*Domain, error) {
	if rand == nil {
		return nil, errors.New("new domain: nil random source")
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, fmt.Errorf("new domain: read random: %w", err)
	}
	return newDomain(key), nil
}

// newDomain takes ownership of key.
func newDomain(key []byte) *Domain {
	return &Domain{key: key, id: hex.EncodeToString(deriveID(key))}
}

// Key returns a copy of the domain key: the AES-256 data-wrapping key the
// partitions install. It returns nil for a nil or zero Domain.
func (d *Domain) Key() []byte {
	if d == nil || d.key == nil {
		return nil
	}
	return append([]byte(nil), d.key...)
}

// ID returns the domain's ID (32 lowercase hex characters; see New). Two
// Domains with the same key have the same ID.
func (d *Domain) ID() string {
	if d == nil {
		return ""
	}
	return d.id
}

// String describes the domain by its ID; it never includes the key.
func (d *Domain) String() string {
	return "secdomain.Domain{ID: " + d.ID() + "}"
}

// Format prints String for every verb, so no fmt verb (%v, %+v, %#v, %x, ...)
// prints the key.
func (d *Domain) Format(f fmt.State, _ rune) {
	io.WriteString(f, d.String())
}

// valid reports whether d holds a key of the right size and the matching ID.
func (d *Domain) valid() bool {
	return d != nil && len(d.key) == KeySize && d.id == hex.EncodeToString(deriveID(d.key))
}

// Thumbprint returns the thumbprint the blob uses to name an officer's key:
// the unpadded base64url encoding of SHA-256 over the PKIX (SubjectPublicKeyInfo)
// DER encoding of pub.
func Thumbprint(pub *rsa.PublicKey) (string, error) {
	if pub == nil || pub.N == nil {
		return "", errors.New("thumbprint: nil public key")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// checkRSA reports ErrWeakKey for a nil key or one shorter than MinRSABits.
func checkRSA(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil || pub.N.BitLen() < MinRSABits {
		bits := 0
		if pub != nil && pub.N != nil {
			bits = pub.N.BitLen()
		}
		return fmt.Errorf("%w: %d bits", ErrWeakKey, bits)
	}
	return nil
}

// macKey derives the blob's HMAC key from the domain key.
func macKey(key []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, key, nil, "hsmlab security domain mac", 32)
}
