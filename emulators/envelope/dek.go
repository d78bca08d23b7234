// Package envelope is the envelope encryption shared by the workload
// emulators (sqlmi, storage, des): a random AES-256 data-encryption key
// (DEK) per resource, wrapped by the customer-managed key (RSA-OAEP-256)
// through a keyclient.Client and stored next to the data; the data itself is
// sealed with the DEK (AES-256-GCM, and per-block GCM for disk images).
//
// The plaintext DEK exists only in memory, inside a *DEK: it has no exported
// accessor, it prints and marshals as "redacted", and Zero wipes it. Registry
// and ScanDir check that a run never wrote a plaintext DEK to disk.
//
// This package imports only emulators/keyclient of the project.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Sizes of the envelope format.
const (
	// DEKSize is the size of a data-encryption key: AES-256.
	DEKSize = 32
	// NonceSize is the AES-GCM nonce size; the nonce prefixes every sealed value.
	NonceSize = 12
	// Overhead is what Seal and SealBlock add to a plaintext: nonce and tag.
	Overhead = NonceSize + 16
)

// Sentinel errors.
var (
	// ErrDecrypt: a sealed value failed authentication (wrong DEK, wrong
	// associated data such as another block index, or tampering).
	ErrDecrypt = errors.New("decrypt failed")
	// ErrZeroed: the DEK was wiped with Zero and can no longer be used.
	ErrZeroed = errors.New("dek was zeroed")
	// ErrBadDEK: an unwrapped value is not a 32-byte AES key.
	ErrBadDEK = errors.New("unwrapped value is not an AES-256 key")
)

// DEK is a plaintext data-encryption key held in memory. It is safe for
// concurrent use; after Zero every method fails with ErrZeroed. The key bytes
// are never exposed: String, Format and MarshalJSON print or refuse a
// redacted value, so a DEK cannot leak through logs or JSON by accident.
type DEK struct {
	mu   sync.RWMutex
	key  []byte
	aead cipher.AEAD
}

// NewDEK returns a fresh random DEK (crypto/rand) and remembers it in reg
// (nil reg: not remembered).
func NewDEK(reg *Registry) (*DEK, error) {
	b := make([]byte, DEKSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("new dek: %w", err)
	}
	d, err := fromBytes(b)
	if err != nil {
		return nil, err
	}
	reg.Add(b)
	return d, nil
}

// fromBytes takes ownership of b.
func fromBytes(b []byte) (*DEK, error) {
	if len(b) != DEKSize {
		clear(b)
		return nil, ErrBadDEK
	}
	blk, err := aes.NewCipher(b)
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("dek cipher: %w", err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("dek gcm: %w", err)
	}
	return &DEK{key: b, aead: g}, nil
}

// Zero wipes the key bytes and drops the cipher. It is idempotent and safe
// on a nil DEK. (The AES key schedule inside the dropped cipher cannot be
// wiped from outside crypto/aes; it becomes garbage.)
func (d *DEK) Zero() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.key)
	d.key = nil
	d.aead = nil
}

// Zeroed reports whether Zero was called.
func (d *DEK) Zeroed() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.aead == nil
}

// Equal reports whether d and o hold the same key, in constant time per byte.
func (d *DEK) Equal(o *DEK) bool {
	if d == nil || o == nil {
		return false
	}
	if d == o {
		return !d.Zeroed()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	o.mu.RLock()
	defer o.mu.RUnlock()
	if d.key == nil || o.key == nil {
		return false
	}
	var v byte
	for i := range d.key {
		v |= d.key[i] ^ o.key[i]
	}
	return v == 0
}

// Seal encrypts plaintext with AES-256-GCM under a random nonce and returns
// nonce || ciphertext || tag. aad is authenticated, not stored.
func (d *DEK) Seal(plaintext, aad []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.aead == nil {
		return nil, ErrZeroed
	}
	out := make([]byte, NonceSize, NonceSize+len(plaintext)+d.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal nonce: %w", err)
	}
	return d.aead.Seal(out, out[:NonceSize], plaintext, aad), nil
}

// Open decrypts a value produced by Seal with the same aad.
func (d *DEK) Open(sealed, aad []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.aead == nil {
		return nil, ErrZeroed
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open: short value: %w", ErrDecrypt)
	}
	pt, err := d.aead.Open(nil, sealed[:NonceSize], sealed[NonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrDecrypt)
	}
	return pt, nil
}

// SealBlock seals one disk block: like Seal, with the block index bound into
// the associated data (aad || "blk" || big-endian index), so a block copied
// to another index, or to another disk with a different aad, fails to open.
// The nonce is random per write, so rewriting a block never reuses a nonce.
func (d *DEK) SealBlock(index uint64, plaintext, aad []byte) ([]byte, error) {
	return d.Seal(plaintext, blockAAD(index, aad))
}

// OpenBlock opens a block sealed by SealBlock at the same index and aad.
func (d *DEK) OpenBlock(index uint64, sealed, aad []byte) ([]byte, error) {
	pt, err := d.Open(sealed, blockAAD(index, aad))
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", index, err)
	}
	return pt, nil
}

func blockAAD(index uint64, aad []byte) []byte {
	b := make([]byte, 0, len(aad)+3+8)
	b = append(b, aad...)
	b = append(b, "blk"...)
	return binary.BigEndian.AppendUint64(b, index)
}

const redacted = "envelope.DEK(redacted)"

// String returns a redacted placeholder, never the key.
func (d *DEK) String() string { return redacted }

// GoString returns a redacted placeholder, never the key.
func (d *DEK) GoString() string { return redacted }

// Format prints a redacted placeholder for every verb (%x included).
func (d *DEK) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON refuses: a plaintext DEK must never be serialised.
func (d *DEK) MarshalJSON() ([]byte, error) {
	return nil, errors.New("envelope: a plaintext DEK cannot be marshalled")
}

// MarshalText refuses: a plaintext DEK must never be serialised.
func (d *DEK) MarshalText() ([]byte, error) {
	return nil, errors.New("envelope: a plaintext DEK cannot be marshalled")
}
