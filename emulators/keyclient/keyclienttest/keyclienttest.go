// Package keyclienttest is an in-memory fake of the key store behind
// keyclient.Client, for the workload emulators' tests: RSA keys with
// versions that can be rotated, disabled, given an expiry, deleted and
// recovered; role assignments revoked per principal (and key); the whole
// store or one client's network path made unreachable. Wrap and unwrap are
// real RSA-OAEP-256 (and RSA-OAEP).
//
// Behaviour follows Key Vault: an expired key still unwraps (exp forbids
// only wrapping new keys), a disabled version or a deleted key is refused
// (denied), a missing role is refused (denied), a cut network is
// unreachable. Time comes from the injected clock.
//
// This package imports only emulators/keyclient and lab/clock of the project.
package keyclienttest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Service error codes the fake returns (keyclient.Code).
const (
	CodeKeyNotFound = "KeyNotFound"
	CodeKeyDisabled = "KeyDisabled"
	CodeKeyExpired  = "KeyExpired"
	CodeNotYetValid = "KeyNotYetValid"
	CodeForbidden   = "Forbidden"
	CodeUnreachable = "ServiceUnavailable"
	CodeThrottled   = "Throttled"
	CodeBadRequest  = "BadParameter"
)

// Store is an in-memory key store. It is safe for concurrent use.
type Store struct {
	clk clock.Clock

	mu          sync.Mutex
	keys        map[string]*key
	materials   int                // RSA keys taken from the pool
	revoked     map[[2]string]bool // {principal, key}; key "" = every key
	cut         map[string]bool    // per-principal network cuts
	unreachable bool               // whole store
	throttled   bool               // whole store
	calls       map[[2]string]int  // {principal, op}
}

type key struct {
	name     string
	versions []*keyVersion
	deleted  bool
}

type keyVersion struct {
	id        string
	priv      *rsa.PrivateKey
	enabled   bool
	notBefore time.Time
	expires   time.Time
}

// NewStore returns an empty store that reads time from c (for key expiry
// and activation).
func NewStore(c clock.Clock) *Store {
	return &Store{
		clk:     c,
		keys:    map[string]*key{},
		revoked: map[[2]string]bool{},
		cut:     map[string]bool{},
		calls:   map[[2]string]int{},
	}
}

// CreateKey creates an RSA-2048 key with one enabled version and returns
// the version id. Creating an existing key adds a version (as Key Vault does).
func (s *Store) CreateKey(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[name]
	if k == nil {
		k = &key{name: name}
		s.keys[name] = k
	}
	if k.deleted {
		return "", fmt.Errorf("create %s: key is deleted (recover or purge it first)", name)
	}
	return s.addVersion(k), nil
}

// Rotate adds a new enabled version to an existing key and returns its id;
// the new version becomes current.
func (s *Store) Rotate(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[name]
	if k == nil || k.deleted {
		return "", fmt.Errorf("rotate %s: no such key", name)
	}
	return s.addVersion(k), nil
}

// MustCreateKey is CreateKey that panics on error (test setup).
func (s *Store) MustCreateKey(name string) string { return must(s.CreateKey(name)) }

// MustRotate is Rotate that panics on error (test setup).
func (s *Store) MustRotate(name string) string { return must(s.Rotate(name)) }

func must(v string, err error) string {
	if err != nil {
		panic(err)
	}
	return v
}

func (s *Store) addVersion(k *key) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", k.name, len(k.versions)+1))
	v := &keyVersion{id: fmt.Sprintf("%x", sum[:16]), priv: poolKey(s.materials), enabled: true}
	s.materials++
	k.versions = append(k.versions, v)
	return v.id
}

// CurrentVersion returns the id of the key's newest version ("" if none).
func (s *Store) CurrentVersion(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[name]; k != nil && len(k.versions) > 0 {
		return k.versions[len(k.versions)-1].id
	}
	return ""
}

// SetEnabled enables or disables one version ("" = the current one).
func (s *Store) SetEnabled(name, version string, enabled bool) error {
	return s.update(name, version, func(v *keyVersion) { v.enabled = enabled })
}

// SetExpires sets a version's expiry ("" version = current; zero t = none).
func (s *Store) SetExpires(name, version string, t time.Time) error {
	return s.update(name, version, func(v *keyVersion) { v.expires = t })
}

// SetNotBefore sets a version's activation time ("" version = current).
func (s *Store) SetNotBefore(name, version string, t time.Time) error {
	return s.update(name, version, func(v *keyVersion) { v.notBefore = t })
}

func (s *Store) update(name, version string, f func(*keyVersion)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[name]
	if k == nil {
		return fmt.Errorf("update %s: no such key", name)
	}
	v := k.version(version)
	if v == nil {
		return fmt.Errorf("update %s/%s: no such version", name, version)
	}
	f(v)
	return nil
}

// Delete soft-deletes the key: every operation on it is refused with
// KeyNotFound until Recover.
func (s *Store) Delete(name string) error { return s.setDeleted(name, true) }

// Recover undoes Delete.
func (s *Store) Recover(name string) error { return s.setDeleted(name, false) }

func (s *Store) setDeleted(name string, del bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[name]
	if k == nil {
		return fmt.Errorf("delete %s: no such key", name)
	}
	k.deleted = del
	return nil
}

// Purge removes the key for good (as removing an extended region does).
func (s *Store) Purge(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, name)
}

// Revoke removes principal's role assignment on key ("" = every key).
func (s *Store) Revoke(principal, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[[2]string{principal, key}] = true
}

// Grant undoes Revoke for the same principal and key.
func (s *Store) Grant(principal, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.revoked, [2]string{principal, key})
}

// SetUnreachable cuts (or restores) the network to the whole store.
func (s *Store) SetUnreachable(cut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreachable = cut
}

// SetThrottled makes every call fail as throttled (429) while on.
func (s *Store) SetThrottled(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttled = on
}

// Calls returns how many calls principal made with op ("getKey",
// "wrapKey", "unwrapKey"), refused ones included.
func (s *Store) Calls(principal, op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[[2]string{principal, op}]
}

// Client returns a client acting as principal.
func (s *Store) Client(principal string) *Client { return &Client{s: s, principal: principal} }

// Client is one principal's view of the store; it implements keyclient.Client.
type Client struct {
	s         *Store
	principal string
}

var _ keyclient.Client = (*Client)(nil)

// SetUnreachable cuts (or restores) this principal's network path only
// (for example the private endpoint of one region).
func (c *Client) SetUnreachable(cut bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.cut[c.principal] = cut
}

// Principal returns the identity the client acts as.
func (c *Client) Principal() string { return c.principal }

// GetKey implements keyclient.Client. A disabled version is returned with
// Enabled false (Key Vault returns attributes of disabled keys).
func (c *Client) GetKey(ctx context.Context, name, version string) (keyclient.Key, error) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := c.access(ctx, "getKey", name, version)
	if err != nil {
		return keyclient.Key{}, err
	}
	pub := v.priv.PublicKey
	return keyclient.Key{
		Name: name, Version: v.id, Type: "RSA-HSM", Enabled: v.enabled,
		NotBefore: v.notBefore, Expires: v.expires, Public: &pub,
	}, nil
}

// WrapKey implements keyclient.Client: RSA-OAEP-256 or RSA-OAEP with the
// version's public key. Disabled, not-yet-valid and expired versions refuse.
func (c *Client) WrapKey(ctx context.Context, name, version string, alg keyclient.Alg, dek []byte) (keyclient.Wrapped, error) {
	s := c.s
	s.mu.Lock()
	v, err := c.access(ctx, "wrapKey", name, version)
	if err == nil {
		err = c.usable(v, "wrapKey", name, true)
	}
	s.mu.Unlock()
	if err != nil {
		return keyclient.Wrapped{}, err
	}
	h, err := oaepHash(alg)
	if err != nil {
		return keyclient.Wrapped{}, c.fail(keyclient.ErrInvalid, CodeBadRequest, "wrapKey", name, err)
	}
	out, err := rsa.EncryptOAEP(h, rand.Reader, &v.priv.PublicKey, dek, nil)
	if err != nil {
		return keyclient.Wrapped{}, c.fail(keyclient.ErrInvalid, CodeBadRequest, "wrapKey", name, err)
	}
	return keyclient.Wrapped{KeyVersion: v.id, Alg: alg, Value: out}, nil
}

// UnwrapKey implements keyclient.Client. An expired version still unwraps.
func (c *Client) UnwrapKey(ctx context.Context, name string, w keyclient.Wrapped) ([]byte, error) {
	s := c.s
	s.mu.Lock()
	v, err := c.access(ctx, "unwrapKey", name, w.KeyVersion)
	if err == nil {
		err = c.usable(v, "unwrapKey", name, false)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	h, err := oaepHash(w.Alg)
	if err != nil {
		return nil, c.fail(keyclient.ErrInvalid, CodeBadRequest, "unwrapKey", name, err)
	}
	out, err := rsa.DecryptOAEP(h, nil, v.priv, w.Value, nil)
	if err != nil {
		return nil, c.fail(keyclient.ErrInvalid, CodeBadRequest, "unwrapKey", name, errors.New("decryption failed"))
	}
	return out, nil
}

// access checks, in the order a real request meets them: the context, the
// network, throttling, the role assignment, the key and the version. s.mu held.
func (c *Client) access(ctx context.Context, op, name, version string) (*keyVersion, error) {
	s := c.s
	s.calls[[2]string{c.principal, op}]++
	if err := ctx.Err(); err != nil {
		return nil, c.fail(keyclient.ErrUnreachable, "Timeout", op, name, err)
	}
	if s.unreachable || s.cut[c.principal] {
		return nil, c.fail(keyclient.ErrUnreachable, CodeUnreachable, op, name, errors.New("no route to the key store"))
	}
	if s.throttled {
		return nil, c.fail(keyclient.ErrThrottled, CodeThrottled, op, name, nil)
	}
	if s.revoked[[2]string{c.principal, ""}] || s.revoked[[2]string{c.principal, name}] {
		return nil, c.fail(keyclient.ErrDenied, CodeForbidden, op, name, fmt.Errorf("principal %s has no role assignment", c.principal))
	}
	k := s.keys[name]
	if k == nil || k.deleted {
		return nil, c.fail(keyclient.ErrDenied, CodeKeyNotFound, op, name, nil)
	}
	v := k.version(version)
	if v == nil {
		return nil, c.fail(keyclient.ErrDenied, CodeKeyNotFound, op, name, fmt.Errorf("no version %q", version))
	}
	return v, nil
}

func (c *Client) usable(v *keyVersion, op, name string, wrapping bool) error {
	now := c.s.clk.Now()
	switch {
	case !v.enabled:
		return c.fail(keyclient.ErrDenied, CodeKeyDisabled, op, name, nil)
	case !v.notBefore.IsZero() && now.Before(v.notBefore):
		return c.fail(keyclient.ErrDenied, CodeNotYetValid, op, name, nil)
	case wrapping && !v.expires.IsZero() && !now.Before(v.expires):
		return c.fail(keyclient.ErrDenied, CodeKeyExpired, op, name, nil)
	}
	return nil
}

func (c *Client) fail(class error, code, op, name string, err error) error {
	return &keyclient.Error{Class: class, Code: code, Op: op, Key: name, Err: err}
}

func (k *key) version(id string) *keyVersion {
	if len(k.versions) == 0 {
		return nil
	}
	if id == "" {
		return k.versions[len(k.versions)-1]
	}
	i := slices.IndexFunc(k.versions, func(v *keyVersion) bool { return v.id == id })
	if i < 0 {
		return nil
	}
	return k.versions[i]
}

func oaepHash(alg keyclient.Alg) (hash.Hash, error) {
	switch alg {
	case keyclient.RSAOAEP256:
		return sha256.New(), nil
	case keyclient.RSAOAEP:
		return sha1.New(), nil
	}
	return nil, fmt.Errorf("unsupported algorithm %q", alg)
}

// RSA key generation is slow under the race detector, so the RSA material
// is drawn from a process-wide pool: the n-th version a Store creates gets
// the pool's n-th key. Versions within one Store are distinct; two Stores in
// one test binary share material (harmless for a fake).
var pool struct {
	mu   sync.Mutex
	keys []*rsa.PrivateKey
}

func poolKey(n int) *rsa.PrivateKey {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for len(pool.keys) <= n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("keyclienttest: generate RSA key: %v", err))
		}
		pool.keys = append(pool.keys, k)
	}
	return pool.keys[n]
}
