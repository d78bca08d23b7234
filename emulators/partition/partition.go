// Package partition defines the HSM partition: the per-rack backend of a
// Managed HSM pool that generates keys and performs every operation with them
// without ever releasing key material in clear. Two backends implement it: a
// pure-Go partition (the embedded default) and a PKCS#11 partition that drives
// one SoftHSM token (build tag cgo).
//
// Key material leaves a partition only wrapped under the security domain's
// data-wrapping key (the "domain key", AES-256), in one format shared by every
// backend: RFC 5649 AES key wrap with padding of the PKCS#8 DER private key
// (RSA) or of the raw key bytes (AES); readers accept up to 7 zero bytes
// after the DER, because SoftHSM pads key data to a multiple of 8 bytes
// before wrapping. That is how keys move between the partitions of a pool,
// between pools, and into backups — as in the real service, never in clear.
//
// This package imports nothing of the project: it has no notion of time,
// RBAC or regions; the pool in emulators/mhsm adds those.
package partition

import (
	"context"
	"crypto/rsa"
	"errors"
)

// Alg names a cryptographic algorithm with Key Vault's JSON Web Algorithm names.
type Alg string

// Algorithms the partitions support.
const (
	RSAOAEP    Alg = "RSA-OAEP"     // RSA-OAEP with SHA-1 and MGF1-SHA1
	RSAOAEP256 Alg = "RSA-OAEP-256" // RSA-OAEP with SHA-256 and MGF1-SHA256
	RSA15      Alg = "RSA1_5"       // RSAES-PKCS1-v1_5
	A128KW     Alg = "A128KW"       // RFC 3394 AES key wrap, 128-bit key
	A192KW     Alg = "A192KW"
	A256KW     Alg = "A256KW"
	A128GCM    Alg = "A128GCM" // AES-GCM encrypt/decrypt, 128-bit key
	A192GCM    Alg = "A192GCM"
	A256GCM    Alg = "A256GCM"
)

// KeyType is the kind of key a partition holds.
type KeyType string

// Key types (Key Vault's kty without the -HSM suffix: all keys here are HSM keys).
const (
	RSA KeyType = "RSA"
	Oct KeyType = "oct"
)

// KeySpec describes a key to generate or import.
type KeySpec struct {
	Type KeyType
	Bits int // RSA: 2048, 3072, 4096; oct: 128, 192, 256
}

// Material is what leaves a partition when it generates a key: the public
// half (RSA only, nil for oct) and the whole key wrapped under the domain key.
type Material struct {
	Spec    KeySpec
	Public  *rsa.PublicKey
	Wrapped []byte // RFC 5649 wrap, under the domain key, of PKCS#8 DER (RSA) or raw bytes (oct)
}

// Sealed is the output of Encrypt. IV and Tag are set for AES-GCM only.
type Sealed struct {
	Ciphertext []byte
	IV         []byte
	Tag        []byte
}

// Partition is one HSM partition. Keys are named by a handle chosen by the
// caller (the pool uses "<key>/<version>").
//
// Every method is safe for concurrent use. Until InstallDomainKey succeeds,
// Generate and Import return ErrNotActivated.
type Partition interface {
	// Name identifies the partition (for example "southindia/rack-1").
	Name() string
	// InstallDomainKey installs the security domain's AES-256 data-wrapping
	// key. Installing the same key again is a no-op; a different key returns
	// ErrDomainMismatch.
	InstallDomainKey(ctx context.Context, key []byte) error
	// Generate creates a key inside the partition under handle and returns
	// its public half and its material wrapped under the domain key.
	Generate(ctx context.Context, handle string, spec KeySpec) (Material, error)
	// Import loads a key from material wrapped under the domain key (as
	// returned by Generate) and returns its public half (nil for oct).
	// Material wrapped under another key returns ErrBadMaterial.
	Import(ctx context.Context, handle string, spec KeySpec, wrapped []byte) (*rsa.PublicKey, error)
	// Delete destroys the key under handle. Deleting a missing handle is not an error.
	Delete(ctx context.Context, handle string) error
	// Has reports whether the partition holds a key under handle.
	Has(ctx context.Context, handle string) (bool, error)
	// Wrap wraps plaintext (a data-encryption key) with the key.
	Wrap(ctx context.Context, handle string, alg Alg, plaintext []byte) ([]byte, error)
	// Unwrap reverses Wrap. A ciphertext that does not decrypt returns ErrDecrypt.
	Unwrap(ctx context.Context, handle string, alg Alg, ciphertext []byte) ([]byte, error)
	// Encrypt encrypts plaintext; aad is used by AES-GCM only.
	Encrypt(ctx context.Context, handle string, alg Alg, plaintext, aad []byte) (Sealed, error)
	// Decrypt reverses Encrypt. A ciphertext that does not decrypt returns ErrDecrypt.
	Decrypt(ctx context.Context, handle string, alg Alg, s Sealed, aad []byte) ([]byte, error)
	// Health reports nil when the partition can serve requests.
	Health(ctx context.Context) error
	// Close releases the partition's resources. Keys in a persistent backend
	// (a SoftHSM token) stay in the token.
	Close() error
}

// Sentinel errors. Backends wrap them with context (fmt.Errorf("...: %w", Err...)).
var (
	ErrNotActivated      = errors.New("partition: no domain key installed")
	ErrDomainMismatch    = errors.New("partition: a different domain key is installed")
	ErrNoKey             = errors.New("partition: no such key")
	ErrKeyExists         = errors.New("partition: key handle already in use")
	ErrUnsupportedAlg    = errors.New("partition: algorithm not supported for this key")
	ErrUnsupportedSpec   = errors.New("partition: unsupported key type or size")
	ErrBadMaterial       = errors.New("partition: wrapped key material does not unwrap under the domain key")
	ErrDecrypt           = errors.New("partition: decryption failed")
	ErrBadInput          = errors.New("partition: invalid input") // wrong plaintext or key length, malformed handle
	ErrUnavailable       = errors.New("partition: unavailable")
	ErrPKCS11Unsupported = errors.New("partition: PKCS#11 support requires cgo")
	ErrSoftHSMNotFound   = errors.New("partition: SoftHSM2 not found (install it with scripts/install-softhsm.sh)")
)
