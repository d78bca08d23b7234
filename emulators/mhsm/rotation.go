package mhsm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// Lifetime action names.
const (
	ActionRotate = "Rotate"
	ActionNotify = "Notify"
)

// RotateKey creates a new version of a key with the same type, size and
// operations (az keyvault key rotate). As documented for Managed HSM, a
// rotation policy must exist first (facts §7). Requires keys/rotate (Crypto User).
func (h *HSM) RotateKey(ctx context.Context, c Caller, name string) (KeyVersion, Served, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysRotate, false)
	if err != nil {
		return KeyVersion{}, Served{}, fmt.Errorf("rotate key %s: %w", name, err)
	}
	if rec.policy == nil {
		return KeyVersion{}, Served{}, fmt.Errorf("rotate key %s: %w: set one with UpdateRotationPolicy first", name, ErrNoRotationPolicy)
	}
	if len(rec.versions) >= MaxVersions {
		return KeyVersion{}, Served{}, fmt.Errorf("rotate key %s: %w", name, ErrVersionLimit)
	}
	return h.rotateLocked(ctx, t, rec, name)
}

func (h *HSM) rotateLocked(ctx context.Context, t *replica, rec *record, name string) (KeyVersion, Served, error) {
	cur := rec.current()
	ver := h.newVersionID()
	hd := handle(name, ver)
	m, served, err := t.pool.reserve(ctx, "", cur.spec, opCreate)
	if err != nil {
		return KeyVersion{}, Served{}, fmt.Errorf("rotate key %s: %w", name, err)
	}
	mat, err := m.p.Generate(ctx, hd, cur.spec)
	if err != nil {
		return KeyVersion{}, Served{}, cryptoErr("rotate key", name, err)
	}
	v, err := h.newVersion(name, ver, cur.spec, mat.Public, mat.Wrapped, KeyOptions{Ops: cur.pub.Ops, Tags: cur.pub.Tags}, rec)
	if err != nil {
		_ = m.p.Delete(ctx, hd)
		return KeyVersion{}, Served{}, fmt.Errorf("rotate key %s: %w", name, err)
	}
	return h.commitVersion(ctx, t, rec, name, v), served, nil
}

// GetRotationPolicy returns a key's rotation policy (nil when none is set).
// Requires keys/read.
func (h *HSM) GetRotationPolicy(ctx context.Context, c Caller, name string) (*RotationPolicy, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.KeysRead, rbac.KeyScope(name))
	if err != nil {
		return nil, fmt.Errorf("get rotation policy %s: %w", name, err)
	}
	rec, err := live(r, name)
	if err != nil {
		return nil, fmt.Errorf("get rotation policy %s: %w", name, err)
	}
	if rec.policy == nil {
		return nil, nil
	}
	p := *rec.policy
	p.LifetimeActions = slices.Clone(rec.policy.LifetimeActions)
	return &p, nil
}

// UpdateRotationPolicy sets a key's rotation policy. Auto-rotation cannot run
// more often than every 28 days and expiry is at least 28 days (facts §7).
// Requires keys/write (facts §7: "Policy needs keys/write").
func (h *HSM) UpdateRotationPolicy(ctx context.Context, c Caller, name string, p RotationPolicy) (*RotationPolicy, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysWrite, false)
	if err != nil {
		return nil, fmt.Errorf("update rotation policy %s: %w", name, err)
	}
	if err := validatePolicy(p); err != nil {
		return nil, fmt.Errorf("update rotation policy %s: %w", name, err)
	}
	now := h.clk.Now().Truncate(time.Second)
	np := RotationPolicy{ID: h.cfg.URL + "/keys/" + name + "/rotationpolicy", LifetimeActions: slices.Clone(p.LifetimeActions), ExpiresAfter: p.ExpiresAfter, Created: now, Updated: now}
	if rec.policy != nil {
		np.Created = rec.policy.Created
	}
	rec.policy = &np
	rec.seq = h.nextSeq()
	h.replicate(t, rec.clone())
	h.scheduleRotation(name)
	out := np
	out.LifetimeActions = slices.Clone(np.LifetimeActions)
	return &out, nil
}

func validatePolicy(p RotationPolicy) error {
	if p.ExpiresAfter != 0 && p.ExpiresAfter < MinRotationInterval {
		return fmt.Errorf("%w: expiryTime must be at least P28D", ErrBadParameter)
	}
	rotates := 0
	for _, a := range p.LifetimeActions {
		switch {
		case strings.EqualFold(a.Action, ActionRotate):
			rotates++
		case strings.EqualFold(a.Action, ActionNotify):
		default:
			return fmt.Errorf("%w: lifetime action %q (Rotate or Notify)", ErrBadParameter, a.Action)
		}
		if (a.TimeAfterCreate == 0) == (a.TimeBeforeExpiry == 0) {
			return fmt.Errorf("%w: a lifetime action needs exactly one of timeAfterCreate and timeBeforeExpiry", ErrBadParameter)
		}
		if strings.EqualFold(a.Action, ActionRotate) && a.TimeAfterCreate != 0 && a.TimeAfterCreate < MinRotationInterval {
			return fmt.Errorf("%w: auto-rotation cannot run more often than every 28 days (P28D)", ErrBadParameter)
		}
		if a.TimeBeforeExpiry != 0 && p.ExpiresAfter == 0 {
			return fmt.Errorf("%w: timeBeforeExpiry needs an expiryTime", ErrBadParameter)
		}
		if a.TimeBeforeExpiry >= p.ExpiresAfter && a.TimeBeforeExpiry != 0 {
			return fmt.Errorf("%w: timeBeforeExpiry must be shorter than expiryTime", ErrBadParameter)
		}
	}
	if rotates > 1 {
		return fmt.Errorf("%w: at most one Rotate action", ErrBadParameter)
	}
	return nil
}

// scheduleRotation (re)arms the auto-rotation timer of a key from its policy
// and current version. Called with h.mu held.
func (h *HSM) scheduleRotation(name string) {
	h.stopTimer("rotate/" + name)
	t := h.replicas[h.primary]
	rec := t.keys[name]
	if rec == nil || rec.deleted != nil || rec.policy == nil || rec.current() == nil {
		return
	}
	cur := rec.current().pub
	for _, a := range rec.policy.LifetimeActions {
		if !strings.EqualFold(a.Action, ActionRotate) {
			continue
		}
		var due time.Time
		switch {
		case a.TimeAfterCreate > 0:
			due = cur.Attr.Created.Add(a.TimeAfterCreate)
		case a.TimeBeforeExpiry > 0 && !cur.Attr.Expires.IsZero():
			due = cur.Attr.Expires.Add(-a.TimeBeforeExpiry)
		default:
			continue
		}
		h.setTimer("rotate/"+name, due.Sub(h.clk.Now()), func() { h.autoRotate(name) })
	}
}

// autoRotate is the service's own rotation, run by the policy's timer.
func (h *HSM) autoRotate(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, err := h.writeTarget()
	if err != nil || h.domain == nil {
		h.setTimer("rotate/"+name, time.Hour, func() { h.autoRotate(name) }) // retry when the service is back
		return
	}
	rec := t.keys[name]
	if rec == nil || rec.deleted != nil || rec.policy == nil || len(rec.versions) >= MaxVersions {
		return
	}
	_, _, _ = h.rotateLocked(context.Background(), t, rec, name)
}
