package partition

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
)

// Memory is the pure-Go partition, the embedded default. Keys live only in
// the struct's memory: no method returns private or secret key material
// except wrapped under the domain key (Material.Wrapped from Generate), and
// the keys are dropped on Close. RSA private keys are precomputed and AES keys
// are held as expanded ciphers, so the per-operation cost is the
// cryptography's.
//
// A Memory is safe for concurrent use. Its zero value is not usable; create
// it with NewMemory.
type Memory struct {
	name   string
	down   atomic.Bool
	closed atomic.Bool

	installMu sync.Mutex                // serialises InstallDomainKey
	domain    atomic.Pointer[domainKey] // nil until installed
	keys      sync.Map                  // handle -> *memKey
}

type domainKey struct {
	raw   [DomainKeySize]byte
	block cipher.Block
}

type memKey struct {
	spec  KeySpec
	priv  *rsa.PrivateKey // RSA
	block cipher.Block    // oct: AES-KW
	aead  cipher.AEAD     // oct: AES-GCM
}

var _ Partition = (*Memory)(nil)

// NewMemory returns an empty, healthy pure-Go partition named name, with no
// domain key installed.
func NewMemory(name string) *Memory {
	return &Memory{name: name}
}

// Name returns the name given to NewMemory.
func (m *Memory) Name() string { return m.name }

// SetHealthy marks the partition up (true) or down (false). While it is
// down, Health and every other method except Name, SetHealthy and Close
// return an error wrapping ErrUnavailable; its keys are kept and serve again
// once it is up. Fault injection ("rack power loss") uses it.
func (m *Memory) SetHealthy(up bool) { m.down.Store(!up) }

// Health returns nil when the partition serves requests, and an error
// wrapping ErrUnavailable when it is down or closed.
func (m *Memory) Health(ctx context.Context) error {
	if err := m.available(); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	return nil
}

// Close drops every key and makes every later call return ErrUnavailable.
// It is idempotent.
func (m *Memory) Close() error {
	m.closed.Store(true)
	m.keys.Clear()
	return nil
}

func (m *Memory) available() error {
	if m.closed.Load() {
		return fmt.Errorf("partition %s closed: %w", m.name, ErrUnavailable)
	}
	if m.down.Load() {
		return fmt.Errorf("partition %s down: %w", m.name, ErrUnavailable)
	}
	return nil
}

// InstallDomainKey installs the 32-byte domain key; see Partition. A key of
// another length returns ErrBadInput.
func (m *Memory) InstallDomainKey(ctx context.Context, key []byte) error {
	if err := m.available(); err != nil {
		return fmt.Errorf("install domain key: %w", err)
	}
	if len(key) != DomainKeySize {
		return fmt.Errorf("install domain key: key is %d bytes, want %d: %w", len(key), DomainKeySize, ErrBadInput)
	}
	m.installMu.Lock()
	defer m.installMu.Unlock()
	if cur := m.domain.Load(); cur != nil {
		if subtle.ConstantTimeCompare(cur.raw[:], key) == 1 {
			return nil
		}
		return fmt.Errorf("install domain key: %w", ErrDomainMismatch)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("install domain key: %w", err)
	}
	dk := &domainKey{block: block}
	copy(dk.raw[:], key)
	m.domain.Store(dk)
	return nil
}

// prepareNew runs the checks shared by Generate and Import.
func (m *Memory) prepareNew(ctx context.Context, handle string, spec KeySpec) (*domainKey, error) {
	if err := m.available(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkHandle(handle); err != nil {
		return nil, err
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	dk := m.domain.Load()
	if dk == nil {
		return nil, ErrNotActivated
	}
	if _, ok := m.keys.Load(handle); ok {
		return nil, ErrKeyExists
	}
	return dk, nil
}

// Generate creates a key; see Partition.
func (m *Memory) Generate(ctx context.Context, handle string, spec KeySpec) (Material, error) {
	dk, err := m.prepareNew(ctx, handle, spec)
	if err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	var km keyMaterial
	switch spec.Type {
	case RSA:
		priv, err := rsa.GenerateKey(rand.Reader, spec.Bits)
		if err != nil {
			return Material{}, fmt.Errorf("generate %s: %w", handle, err)
		}
		km.rsa = priv
	case Oct:
		km.raw = make([]byte, spec.Bits/8)
		if _, err := rand.Read(km.raw); err != nil {
			return Material{}, fmt.Errorf("generate %s: %w", handle, err)
		}
	}
	clearMat, err := encodeMaterial(km)
	if err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	wrapped, err := wrapPad(dk.block, clearMat)
	clear(clearMat)
	if err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	mk, err := newMemKey(spec, km)
	if err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	if _, loaded := m.keys.LoadOrStore(handle, mk); loaded {
		return Material{}, fmt.Errorf("generate %s: %w", handle, ErrKeyExists)
	}
	return Material{Spec: spec, Public: mk.public(), Wrapped: wrapped}, nil
}

// Import loads a key from wrapped material; see Partition.
func (m *Memory) Import(ctx context.Context, handle string, spec KeySpec, wrapped []byte) (*rsa.PublicKey, error) {
	dk, err := m.prepareNew(ctx, handle, spec)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	clearMat, err := unwrapPad(dk.block, wrapped)
	if err != nil {
		return nil, fmt.Errorf("import %s: %v: %w", handle, err, ErrBadMaterial)
	}
	km, err := decodeMaterial(spec, clearMat)
	clear(clearMat)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	mk, err := newMemKey(spec, km)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	if _, loaded := m.keys.LoadOrStore(handle, mk); loaded {
		return nil, fmt.Errorf("import %s: %w", handle, ErrKeyExists)
	}
	return mk.public(), nil
}

func newMemKey(spec KeySpec, km keyMaterial) (*memKey, error) {
	mk := &memKey{spec: spec}
	if spec.Type == RSA {
		km.rsa.Precompute()
		mk.priv = km.rsa
		return mk, nil
	}
	block, err := aes.NewCipher(km.raw)
	clear(km.raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mk.block, mk.aead = block, aead
	return mk, nil
}

// public returns a copy of the RSA public key, nil for oct keys.
func (k *memKey) public() *rsa.PublicKey {
	if k.priv == nil {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).Set(k.priv.N), E: k.priv.E}
}

// Delete destroys the key; see Partition.
func (m *Memory) Delete(ctx context.Context, handle string) error {
	if err := m.available(); err != nil {
		return fmt.Errorf("delete %s: %w", handle, err)
	}
	m.keys.Delete(handle)
	return nil
}

// Has reports whether a key exists under handle; see Partition.
func (m *Memory) Has(ctx context.Context, handle string) (bool, error) {
	if err := m.available(); err != nil {
		return false, fmt.Errorf("has %s: %w", handle, err)
	}
	_, ok := m.keys.Load(handle)
	return ok, nil
}

// lookup returns the key under handle after the availability, context and
// algorithm checks every crypto operation makes.
func (m *Memory) lookup(ctx context.Context, handle string, op opClass, alg Alg) (*memKey, error) {
	if err := m.available(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, ok := m.keys.Load(handle)
	if !ok {
		return nil, ErrNoKey
	}
	k := v.(*memKey)
	if err := checkAlg(op, k.spec, alg); err != nil {
		return nil, err
	}
	return k, nil
}

// Wrap wraps plaintext; see Partition. RSA keys take RSA-OAEP, RSA-OAEP-256
// and RSA1_5; oct keys take the AxxxKW matching their size, with a plaintext
// that is a multiple of 8 bytes and at least 16 bytes (else ErrBadInput).
func (m *Memory) Wrap(ctx context.Context, handle string, alg Alg, plaintext []byte) ([]byte, error) {
	k, err := m.lookup(ctx, handle, opWrap, alg)
	if err != nil {
		return nil, fmt.Errorf("wrap %s: %w", handle, err)
	}
	var out []byte
	if k.priv != nil {
		out, err = rsaEncrypt(&k.priv.PublicKey, alg, plaintext)
	} else {
		out, err = wrap3394(k.block, plaintext)
	}
	if err != nil {
		return nil, fmt.Errorf("wrap %s: %w", handle, err)
	}
	return out, nil
}

// Unwrap reverses Wrap; see Partition.
func (m *Memory) Unwrap(ctx context.Context, handle string, alg Alg, ciphertext []byte) ([]byte, error) {
	k, err := m.lookup(ctx, handle, opWrap, alg)
	if err != nil {
		return nil, fmt.Errorf("unwrap %s: %w", handle, err)
	}
	var out []byte
	if k.priv != nil {
		out, err = rsaDecrypt(k.priv, alg, ciphertext)
	} else if err = checkKWCiphertext(ciphertext); err == nil {
		out, err = unwrap3394(k.block, ciphertext)
	}
	if err != nil {
		return nil, fmt.Errorf("unwrap %s: %w", handle, err)
	}
	return out, nil
}

// Encrypt encrypts plaintext; see Partition. RSA keys take RSA-OAEP,
// RSA-OAEP-256 and RSA1_5 and ignore aad; oct keys take the AxxxGCM matching
// their size, with a fresh random 12-byte IV and a 16-byte tag.
func (m *Memory) Encrypt(ctx context.Context, handle string, alg Alg, plaintext, aad []byte) (Sealed, error) {
	k, err := m.lookup(ctx, handle, opCrypt, alg)
	if err != nil {
		return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
	}
	if k.priv != nil {
		ct, err := rsaEncrypt(&k.priv.PublicKey, alg, plaintext)
		if err != nil {
			return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
		}
		return Sealed{Ciphertext: ct}, nil
	}
	iv := make([]byte, gcmIVSize)
	if _, err := rand.Read(iv); err != nil {
		return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
	}
	out := k.aead.Seal(nil, iv, plaintext, aad)
	n := len(out) - gcmTagSize
	return Sealed{Ciphertext: out[:n:n], IV: iv, Tag: out[n:]}, nil
}

// Decrypt reverses Encrypt; see Partition.
func (m *Memory) Decrypt(ctx context.Context, handle string, alg Alg, s Sealed, aad []byte) ([]byte, error) {
	k, err := m.lookup(ctx, handle, opCrypt, alg)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, err)
	}
	if k.priv != nil {
		out, err := rsaDecrypt(k.priv, alg, s.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("decrypt %s: %w", handle, err)
		}
		return out, nil
	}
	if err := checkGCM(s); err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, err)
	}
	buf := make([]byte, len(s.Ciphertext)+gcmTagSize)
	copy(buf, s.Ciphertext)
	copy(buf[len(s.Ciphertext):], s.Tag)
	out, err := k.aead.Open(buf[:0], s.IV, buf, aad)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, ErrDecrypt)
	}
	return out, nil
}

// rsaDecrypt decrypts with the private key; every failure is ErrDecrypt.
func rsaDecrypt(priv *rsa.PrivateKey, alg Alg, ct []byte) ([]byte, error) {
	if err := checkRSACiphertext(priv.Size(), ct); err != nil {
		return nil, err
	}
	var out []byte
	var err error
	switch alg {
	case RSAOAEP, RSAOAEP256:
		out, err = rsa.DecryptOAEP(oaepHash(alg), nil, priv, ct, nil)
	case RSA15:
		out, err = rsa.DecryptPKCS1v15(nil, priv, ct) //nolint:staticcheck // RSA1_5 is a Key Vault algorithm
	default:
		return nil, fmt.Errorf("%s: %w", alg, ErrUnsupportedAlg)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", alg, ErrDecrypt)
	}
	return out, nil
}
