package secdomain

import (
	"bytes"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hsmlab/hsmlab/emulators/mhsm/shamir"
)

// FormatVersion is the version of the blob and sealed formats this package
// writes and the only one it reads.
const FormatVersion = 1

// shareSize is the plaintext size of one encrypted share: the Shamir
// x-coordinate followed by KeySize bytes of y values.
const shareSize = 1 + KeySize

// Blob is a downloaded security domain: what the customer stores and later
// uploads to restore the HSM. It holds no secret in clear; recovering the
// domain key needs a quorum of the officers' RSA private keys. Its JSON form
// (Marshal, ParseBlob) is this lab's own format.
//
// Every field is covered by MAC, which can only be checked after recovery:
// a Blob that parses and validates may still be tampered with.
type Blob struct {
	// Version is FormatVersion.
	Version int `json:"version"`
	// DomainID is the ID of the domain (Domain.ID).
	DomainID string `json:"domainId"`
	// Quorum is the number of distinct officers' keys Recover needs.
	Quorum int `json:"quorum"`
	// Officers holds one entry per officer, in the order given to Download.
	Officers []OfficerShare `json:"officers"`
	// MAC is HMAC-SHA256 over a canonical encoding of every other field,
	// keyed by HKDF-SHA256(domain key, info "hsmlab security domain mac").
	MAC []byte `json:"mac"`
}

// OfficerShare is one officer's entry in a Blob.
type OfficerShare struct {
	// Name labels the officer (for example the key file name); it is not
	// interpreted, only authenticated by the MAC.
	Name string `json:"name"`
	// Thumbprint names the officer's RSA public key (see Thumbprint).
	Thumbprint string `json:"thumbprint"`
	// EncryptedShare is the officer's Shamir share (x-coordinate, then the
	// 32 y bytes) encrypted with RSA-OAEP-256 to the officer's public key,
	// with a label binding it to the domain ID and the thumbprint.
	EncryptedShare []byte `json:"encryptedShare"`
}

// Officer is a security officer as Download sees it: a name and the RSA
// public key the officer's share is encrypted to.
type Officer struct {
	Name   string
	Public *rsa.PublicKey
}

// shareLabel is the RSA-OAEP label of an officer's share: it binds the
// ciphertext to its domain and to its entry.
func shareLabel(domainID, thumbprint string) []byte {
	return []byte("hsmlab security domain share v1\x00" + domainID + "\x00" + thumbprint)
}

// Download returns the security domain blob of d for officers: the domain
// key split with Shamir's secret sharing into one share per officer, any
// quorum of which recover it, each share encrypted to its officer's key.
//
// It needs MinOfficers..MaxOfficers officers (ErrTooFewOfficers,
// ErrTooManyOfficers), MinQuorum <= quorum <= min(len(officers), MaxQuorum)
// (ErrBadQuorum), RSA keys of at least MinRSABits (ErrWeakKey) and distinct
// keys (ErrDuplicateKey), checked in that order. Randomness (Shamir
// coefficients, OAEP seeds) comes from rand only. Download may be called
// again with other officers or another quorum (the service's "re-download
// with new wrapping keys"); earlier blobs stay valid for the same domain.
func Download(d *Domain, officers []Officer, quorum int, rand io.Reader) (*Blob, error) {
	if !d.valid() {
		return nil, fmt.Errorf("download: %w", ErrInvalidDomain)
	}
	if rand == nil {
		return nil, errors.New("download: nil random source")
	}
	if len(officers) < MinOfficers {
		return nil, fmt.Errorf("download: %w: %d given, at least %d needed", ErrTooFewOfficers, len(officers), MinOfficers)
	}
	if len(officers) > MaxOfficers {
		return nil, fmt.Errorf("download: %w: %d given, at most %d allowed", ErrTooManyOfficers, len(officers), MaxOfficers)
	}
	if quorum < MinQuorum || quorum > len(officers) || quorum > MaxQuorum {
		return nil, fmt.Errorf("download: %w: quorum %d with %d officers (need %d..%d)",
			ErrBadQuorum, quorum, len(officers), MinQuorum, min(len(officers), MaxQuorum))
	}
	thumbs := make([]string, len(officers))
	seen := make(map[string]int, len(officers))
	for i, o := range officers {
		if err := checkRSA(o.Public); err != nil {
			return nil, fmt.Errorf("download: officer %d (%q): %w", i, o.Name, err)
		}
		tp, err := Thumbprint(o.Public)
		if err != nil {
			return nil, fmt.Errorf("download: officer %d (%q): %w", i, o.Name, err)
		}
		if j, dup := seen[tp]; dup {
			return nil, fmt.Errorf("download: %w: officers %d (%q) and %d (%q)", ErrDuplicateKey, j, officers[j].Name, i, o.Name)
		}
		seen[tp] = i
		thumbs[i] = tp
	}

	shares, err := shamir.Split(d.key, len(officers), quorum, rand)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	b := &Blob{
		Version:  FormatVersion,
		DomainID: d.id,
		Quorum:   quorum,
		Officers: make([]OfficerShare, len(officers)),
	}
	pt := make([]byte, shareSize)
	defer clear(pt)
	for i, o := range officers {
		pt[0] = shares[i].X
		copy(pt[1:], shares[i].Y)
		clear(shares[i].Y)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand, o.Public, pt, shareLabel(d.id, thumbs[i]))
		if err != nil {
			return nil, fmt.Errorf("download: encrypt share for officer %d (%q): %w", i, o.Name, err)
		}
		b.Officers[i] = OfficerShare{Name: o.Name, Thumbprint: thumbs[i], EncryptedShare: ct}
	}
	mk, err := macKey(d.key)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	defer clear(mk)
	b.MAC = b.mac(mk)
	return b, nil
}

// Recover rebuilds the domain from b with officers' private keys.
//
// Each key is matched to its entry by thumbprint; a key of no officer in b
// is ErrUnknownOfficerKey. The same key given twice counts once; fewer than
// b.Quorum distinct officers is ErrQuorumNotMet. The shares of every given
// key are decrypted and combined, then the MAC and the domain ID are
// checked: a share that does not decrypt, a combination that fails, a MAC
// or ID that does not match are all ErrTampered, so Recover never returns
// a wrong key. A structurally invalid b is ErrMalformedBlob (or
// ErrUnsupportedVersion). b is not modified.
func Recover(b *Blob, keys []*rsa.PrivateKey) (*Domain, error) {
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	byThumb := make(map[string]int, len(b.Officers))
	for i, o := range b.Officers {
		byThumb[o.Thumbprint] = i
	}
	use := make(map[int]*rsa.PrivateKey, len(keys))
	for i, k := range keys {
		if k == nil {
			return nil, fmt.Errorf("recover: %w: key %d is nil", ErrUnknownOfficerKey, i)
		}
		tp, err := Thumbprint(&k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("recover: key %d: %w", i, err)
		}
		j, ok := byThumb[tp]
		if !ok {
			return nil, fmt.Errorf("recover: %w: key %d (thumbprint %s)", ErrUnknownOfficerKey, i, tp)
		}
		use[j] = k
	}
	if len(use) < b.Quorum {
		return nil, fmt.Errorf("recover: %w: %d officer keys needed, %d given", ErrQuorumNotMet, b.Quorum, len(use))
	}

	shares := make([]shamir.Share, 0, len(use))
	defer func() {
		for _, s := range shares {
			clear(s.Y)
		}
	}()
	// Decrypt in blob order so errors are deterministic.
	for j, o := range b.Officers {
		k, ok := use[j]
		if !ok {
			continue
		}
		pt, err := rsa.DecryptOAEP(sha256.New(), nil, k, o.EncryptedShare, shareLabel(b.DomainID, o.Thumbprint))
		if err != nil {
			return nil, fmt.Errorf("recover: %w: share of officer %d (%q) does not decrypt", ErrTampered, j, o.Name)
		}
		if len(pt) != shareSize {
			clear(pt)
			return nil, fmt.Errorf("recover: %w: share of officer %d (%q) has %d bytes", ErrTampered, j, o.Name, len(pt))
		}
		shares = append(shares, shamir.Share{X: pt[0], Y: pt[1:]})
	}
	key, err := shamir.Combine(shares)
	if err != nil {
		return nil, fmt.Errorf("recover: %w: %w", ErrTampered, err)
	}
	mk, err := macKey(key)
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("recover: %w", err)
	}
	defer clear(mk)
	if !hmac.Equal(b.mac(mk), b.MAC) {
		clear(key)
		return nil, fmt.Errorf("recover: %w: MAC mismatch", ErrTampered)
	}
	d := newDomain(key)
	if d.id != b.DomainID {
		clear(key)
		return nil, fmt.Errorf("recover: %w: domain ID mismatch", ErrTampered)
	}
	return d, nil
}

// Marshal returns the JSON encoding of b. It does not validate b.
func (b *Blob) Marshal() ([]byte, error) {
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("marshal blob: %w", err)
	}
	return out, nil
}

// ParseBlob parses the JSON encoding of a Blob and checks its structure:
// one JSON object with no unknown fields and no trailing data, version
// FormatVersion (else ErrUnsupportedVersion), a well-formed domain ID,
// MinOfficers..MaxOfficers entries with well-formed, distinct thumbprints
// and non-empty shares, a quorum in range and a 32-byte MAC (else
// ErrMalformedBlob). Authenticity is checked only by Recover.
func ParseBlob(data []byte) (*Blob, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Blob
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("parse blob: %w: %w", ErrMalformedBlob, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("parse blob: %w: trailing data after the JSON object", ErrMalformedBlob)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("parse blob: %w", err)
	}
	return &b, nil
}

// validate checks the structure of b (see ParseBlob).
func (b *Blob) validate() error {
	if b == nil {
		return fmt.Errorf("%w: nil blob", ErrMalformedBlob)
	}
	if b.Version != FormatVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrUnsupportedVersion, b.Version, FormatVersion)
	}
	if id, err := hex.DecodeString(b.DomainID); err != nil || len(id) != 16 || hex.EncodeToString(id) != b.DomainID {
		return fmt.Errorf("%w: domain ID %q is not 32 lowercase hex characters", ErrMalformedBlob, b.DomainID)
	}
	n := len(b.Officers)
	if n < MinOfficers || n > MaxOfficers {
		return fmt.Errorf("%w: %d officers, want %d..%d", ErrMalformedBlob, n, MinOfficers, MaxOfficers)
	}
	if b.Quorum < MinQuorum || b.Quorum > n || b.Quorum > MaxQuorum {
		return fmt.Errorf("%w: quorum %d with %d officers", ErrMalformedBlob, b.Quorum, n)
	}
	seen := make(map[string]bool, n)
	for i, o := range b.Officers {
		tp, err := base64.RawURLEncoding.DecodeString(o.Thumbprint)
		if err != nil || len(tp) != sha256.Size {
			return fmt.Errorf("%w: officer %d: thumbprint %q is not a base64url SHA-256", ErrMalformedBlob, i, o.Thumbprint)
		}
		if seen[o.Thumbprint] {
			return fmt.Errorf("%w: officer %d: duplicate thumbprint %s", ErrMalformedBlob, i, o.Thumbprint)
		}
		seen[o.Thumbprint] = true
		if len(o.EncryptedShare) == 0 {
			return fmt.Errorf("%w: officer %d: empty share", ErrMalformedBlob, i)
		}
	}
	if len(b.MAC) != sha256.Size {
		return fmt.Errorf("%w: MAC has %d bytes, want %d", ErrMalformedBlob, len(b.MAC), sha256.Size)
	}
	return nil
}

// mac returns HMAC-SHA256 under key of the canonical encoding of every
// field of b but MAC: a domain-separation tag, then the version, the
// domain ID, the quorum, the number of officers and, per officer in order,
// name, thumbprint and encrypted share. Integers are 4-byte big-endian;
// strings and byte strings are preceded by their 4-byte big-endian length,
// so no two different blobs encode the same.
func (b *Blob) mac(key []byte) []byte {
	var buf []byte
	bytesField := func(p []byte) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
	}
	intField := func(v int) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(v))
	}
	bytesField([]byte("hsmlab security domain blob"))
	intField(b.Version)
	bytesField([]byte(b.DomainID))
	intField(b.Quorum)
	intField(len(b.Officers))
	for _, o := range b.Officers {
		bytesField([]byte(o.Name))
		bytesField([]byte(o.Thumbprint))
		bytesField(o.EncryptedShare)
	}
	h := hmac.New(sha256.New, key)
	h.Write(buf)
	return h.Sum(nil)
}
