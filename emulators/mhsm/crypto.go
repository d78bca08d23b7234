package mhsm

import (
	"context"
	"fmt"
	"slices"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Result is the outcome of a cryptographic operation.
type Result struct {
	KID     string // the key version that did the work
	Version string
	Value   []byte
	// IV and Tag are set by AES-GCM encryption.
	IV, Tag []byte
	Served  Served
}

// cryptoReq is one cryptographic request after parsing.
type cryptoReq struct {
	op      op
	action  rbac.DataAction
	keyOp   string // key_ops entry the key must allow
	produce bool   // wrap/encrypt: refused outside the nbf/exp window
	name    string
	ver     string
}

// prepare routes, authorizes and checks the key version, then books
// capacity on a partition. Checks follow the service: role first, then the
// key (exists, enabled, key_ops, validity window).
func (h *HSM) prepare(ctx context.Context, c Caller, q cryptoReq) (*member, *version, Served, error) {
	h.mu.RLock()
	r, err := h.read(c, q.action, rbac.KeyScope(q.name))
	if err != nil {
		h.mu.RUnlock()
		return nil, nil, Served{}, err
	}
	rec, err := live(r, q.name)
	if err != nil {
		h.mu.RUnlock()
		return nil, nil, Served{}, err
	}
	v := rec.version(q.ver)
	if v == nil {
		h.mu.RUnlock()
		return nil, nil, Served{}, errKeyNotFound(q.name, q.ver)
	}
	pool := r.pool
	now := h.clk.Now()
	h.mu.RUnlock()

	a := v.pub.Attr
	switch {
	case !a.Enabled:
		return nil, nil, Served{}, fmt.Errorf("%w: %s", ErrKeyDisabled, v.pub.KID)
	case !slices.Contains(v.pub.Ops, q.keyOp):
		return nil, nil, Served{}, fmt.Errorf("%w: %s does not allow %s", ErrOperationNotAllowed, v.pub.KID, q.keyOp)
	// Outside the nbf/exp window only decrypt, unwrap and verify still work
	// (Key Vault "date-time controlled operations").
	case q.produce && !a.NotBefore.IsZero() && now.Before(a.NotBefore):
		return nil, nil, Served{}, fmt.Errorf("%w: %s", ErrKeyNotYetValid, v.pub.KID)
	case q.produce && !a.Expires.IsZero() && !now.Before(a.Expires):
		return nil, nil, Served{}, fmt.Errorf("%w: %s", ErrKeyExpired, v.pub.KID)
	}
	m, served, err := pool.reserve(ctx, handle(q.name, v.pub.Version), v.spec, q.op)
	if err != nil {
		return nil, nil, Served{}, err
	}
	return m, v, served, nil
}

// WrapKey wraps a key (a DEK) with a key version (ver "" = current).
// Requires keys/wrap.
func (h *HSM) WrapKey(ctx context.Context, c Caller, name, ver string, alg partition.Alg, plaintext []byte) (Result, error) {
	m, v, s, err := h.prepare(ctx, c, cryptoReq{op: opWrap, action: rbac.KeysWrap, keyOp: OpWrapKey, produce: true, name: name, ver: ver})
	if err != nil {
		return Result{}, fmt.Errorf("wrap key %s: %w", name, err)
	}
	out, err := m.p.Wrap(ctx, handle(name, v.pub.Version), alg, plaintext)
	if err != nil {
		return Result{}, cryptoErr("wrap key", v.pub.KID, err)
	}
	return Result{KID: v.pub.KID, Version: v.pub.Version, Value: out, Served: s}, nil
}

// UnwrapKey unwraps a wrapped key. Requires keys/unwrap.
func (h *HSM) UnwrapKey(ctx context.Context, c Caller, name, ver string, alg partition.Alg, ciphertext []byte) (Result, error) {
	m, v, s, err := h.prepare(ctx, c, cryptoReq{op: opUnwrap, action: rbac.KeysUnwrap, keyOp: OpUnwrap, name: name, ver: ver})
	if err != nil {
		return Result{}, fmt.Errorf("unwrap key %s: %w", name, err)
	}
	out, err := m.p.Unwrap(ctx, handle(name, v.pub.Version), alg, ciphertext)
	if err != nil {
		return Result{}, cryptoErr("unwrap key", v.pub.KID, err)
	}
	return Result{KID: v.pub.KID, Version: v.pub.Version, Value: out, Served: s}, nil
}

// Encrypt encrypts with a key version; aad is used by AES-GCM. Requires keys/encrypt.
func (h *HSM) Encrypt(ctx context.Context, c Caller, name, ver string, alg partition.Alg, plaintext, aad []byte) (Result, error) {
	m, v, s, err := h.prepare(ctx, c, cryptoReq{op: opEncrypt, action: rbac.KeysEncrypt, keyOp: OpEncrypt, produce: true, name: name, ver: ver})
	if err != nil {
		return Result{}, fmt.Errorf("encrypt %s: %w", name, err)
	}
	sealed, err := m.p.Encrypt(ctx, handle(name, v.pub.Version), alg, plaintext, aad)
	if err != nil {
		return Result{}, cryptoErr("encrypt", v.pub.KID, err)
	}
	return Result{KID: v.pub.KID, Version: v.pub.Version, Value: sealed.Ciphertext, IV: sealed.IV, Tag: sealed.Tag, Served: s}, nil
}

// Decrypt reverses Encrypt. Requires keys/decrypt.
func (h *HSM) Decrypt(ctx context.Context, c Caller, name, ver string, alg partition.Alg, ciphertext, iv, tag, aad []byte) (Result, error) {
	m, v, s, err := h.prepare(ctx, c, cryptoReq{op: opDecrypt, action: rbac.KeysDecrypt, keyOp: OpDecrypt, name: name, ver: ver})
	if err != nil {
		return Result{}, fmt.Errorf("decrypt %s: %w", name, err)
	}
	out, err := m.p.Decrypt(ctx, handle(name, v.pub.Version), alg, partition.Sealed{Ciphertext: ciphertext, IV: iv, Tag: tag}, aad)
	if err != nil {
		return Result{}, cryptoErr("decrypt", v.pub.KID, err)
	}
	return Result{KID: v.pub.KID, Version: v.pub.Version, Value: out, Served: s}, nil
}
