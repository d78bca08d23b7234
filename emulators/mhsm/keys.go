package mhsm

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,127}$`)

// KeyOptions are the settable properties of a key version. Nil pointers and
// zero times leave a property unset (create) or unchanged (update).
type KeyOptions struct {
	Type      string // create: RSA-HSM (default) or oct-HSM; "RSA"/"oct" accepted
	Size      int    // create: RSA 2048 (default)/3072/4096, oct 128/192/256 (default 256)
	Ops       []string
	Enabled   *bool
	NotBefore *time.Time
	Expires   *time.Time
	Tags      map[string]string
}

// CreateKey creates a key, or a new version of an existing key, generated
// inside a partition of the write region's pool and copied to every other
// partition and pool only wrapped under the security domain key. Requires
// keys/create (Crypto User).
func (h *HSM) CreateKey(ctx context.Context, c Caller, name string, o KeyOptions) (KeyVersion, Served, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysCreate, true)
	if err != nil {
		return KeyVersion{}, Served{}, fmt.Errorf("create key %s: %w", name, err)
	}
	spec, ok := specOf(o.Type, o.Size)
	if !ok {
		if o.Type == "EC-HSM" || o.Type == "EC" {
			return KeyVersion{}, Served{}, fmt.Errorf("create key %s: %w: EC keys are not emulated (RSA-HSM and oct-HSM are)", name, ErrBadParameter)
		}
		return KeyVersion{}, Served{}, fmt.Errorf("create key %s: %w: key type %q size %d (RSA-HSM 2048/3072/4096, oct-HSM 128/192/256)", name, ErrBadParameter, o.Type, o.Size)
	}
	ver := h.newVersionID()
	hd := handle(name, ver)
	m, served, err := t.pool.reserve(ctx, "", spec, opCreate)
	if err != nil {
		return KeyVersion{}, Served{}, fmt.Errorf("create key %s: %w", name, err)
	}
	mat, err := m.p.Generate(ctx, hd, spec)
	if err != nil {
		return KeyVersion{}, Served{}, cryptoErr("create key", name, err)
	}
	v, err := h.newVersion(name, ver, spec, mat.Public, mat.Wrapped, o, rec)
	if err != nil {
		_ = m.p.Delete(ctx, hd)
		return KeyVersion{}, Served{}, fmt.Errorf("create key %s: %w", name, err)
	}
	return h.commitVersion(ctx, t, rec, name, v), served, nil
}

// ImportKey imports customer key material (BYOK) as a new version: an RSA
// private key or the bytes of an AES key. The material is wrapped under the
// security domain key before it reaches any partition. Requires keys/import.
func (h *HSM) ImportKey(ctx context.Context, c Caller, name string, priv *rsa.PrivateKey, secret []byte, o KeyOptions) (KeyVersion, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysImport, true)
	if err != nil {
		return KeyVersion{}, fmt.Errorf("import key %s: %w", name, err)
	}
	var (
		spec  partition.KeySpec
		plain []byte
		pub   *rsa.PublicKey
	)
	switch {
	case priv != nil:
		if err := priv.Validate(); err != nil {
			return KeyVersion{}, fmt.Errorf("import key %s: %w: invalid RSA key: %v", name, ErrBadParameter, err)
		}
		bits := priv.N.BitLen()
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return KeyVersion{}, fmt.Errorf("import key %s: %w: RSA key of %d bits (2048/3072/4096)", name, ErrBadParameter, bits)
		}
		spec = partition.KeySpec{Type: partition.RSA, Bits: bits}
		if plain, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return KeyVersion{}, fmt.Errorf("import key %s: %w: %v", name, ErrBadParameter, err)
		}
		pub = &priv.PublicKey
	case len(secret) == 16 || len(secret) == 24 || len(secret) == 32:
		spec = partition.KeySpec{Type: partition.Oct, Bits: len(secret) * 8}
		plain = secret
	default:
		return KeyVersion{}, fmt.Errorf("import key %s: %w: need an RSA private key or a 128/192/256-bit AES key", name, ErrBadParameter)
	}
	wrapped, err := partition.WrapPad(h.domain.Key(), plain)
	clear(plain)
	if err != nil {
		return KeyVersion{}, fmt.Errorf("import key %s: %w", name, err)
	}
	v, err := h.newVersion(name, h.newVersionID(), spec, pub, wrapped, o, rec)
	if err != nil {
		return KeyVersion{}, fmt.Errorf("import key %s: %w", name, err)
	}
	return h.commitVersion(ctx, t, rec, name, v), nil
}

// prepareWrite checks activation, the write region, RBAC and the key name.
// With creating set, it returns the live record (nil for a new key) and
// refuses a name held by a soft-deleted key; otherwise the record must exist.
func (h *HSM) prepareWrite(c Caller, name string, action rbac.DataAction, creating bool) (*replica, *record, error) {
	if err := h.checkActive(); err != nil {
		return nil, nil, err
	}
	t, err := h.writeTarget()
	if err != nil {
		return nil, nil, err
	}
	if !keyNameRE.MatchString(name) {
		return nil, nil, fmt.Errorf("%w: key name %q (1–127 letters, digits and '-')", ErrBadParameter, name)
	}
	if err := authorize(t, c, action, rbac.KeyScope(name)); err != nil {
		return nil, nil, err
	}
	rec := t.keys[name]
	if rec != nil && rec.purged {
		rec = nil
	}
	if rec != nil && rec.deleted != nil {
		return nil, nil, fmt.Errorf("%w: key %s is deleted but recoverable; recover or purge it first", ErrConflict, name)
	}
	if !creating && rec == nil {
		return nil, nil, errKeyNotFound(name, "")
	}
	if creating && rec != nil && len(rec.versions) >= MaxVersions {
		return nil, nil, fmt.Errorf("%w (key %s)", ErrVersionLimit, name)
	}
	return t, rec, nil
}

func (h *HSM) newVersion(name, ver string, spec partition.KeySpec, pub *rsa.PublicKey, wrapped []byte, o KeyOptions, rec *record) (*version, error) {
	now := h.clk.Now().Truncate(time.Second)
	ops := o.Ops
	if len(ops) == 0 {
		ops = defaultOps(spec)
	}
	for _, op := range ops {
		if !slices.Contains(defaultOps(spec), op) && op != OpImport {
			return nil, fmt.Errorf("%w: key operation %q is not valid for %s keys", ErrBadParameter, op, kty(spec))
		}
	}
	attr := Attributes{Enabled: true, Created: now, Updated: now, RecoverableDays: h.cfg.SoftDeleteRetentionDays, RecoveryLevel: h.recoveryLevel()}
	if o.Enabled != nil {
		attr.Enabled = *o.Enabled
	}
	if o.NotBefore != nil {
		attr.NotBefore = *o.NotBefore
	}
	if o.Expires != nil {
		attr.Expires = *o.Expires
	} else if rec != nil && rec.policy != nil && rec.policy.ExpiresAfter > 0 {
		attr.Expires = now.Add(rec.policy.ExpiresAfter)
	}
	if !attr.NotBefore.IsZero() && !attr.Expires.IsZero() && !attr.Expires.After(attr.NotBefore) {
		return nil, fmt.Errorf("%w: expiry must be after the activation date", ErrBadParameter)
	}
	return &version{
		pub: KeyVersion{Name: name, Version: ver, KID: h.kid(name, ver), Type: kty(spec), Size: spec.Bits,
			Ops: slices.Clone(ops), Attr: attr, Tags: cloneTags(o.Tags), Public: pub},
		spec: spec, wrapped: wrapped,
	}, nil
}

// commitVersion adds a version to the write region's record, loads its
// material into the region's pool, replicates and (re)schedules rotation.
func (h *HSM) commitVersion(ctx context.Context, t *replica, rec *record, name string, v *version) KeyVersion {
	if rec == nil {
		rec = &record{name: name}
		t.keys[name] = rec
	}
	rec.versions = append(rec.versions, v)
	rec.seq = h.nextSeq()
	_ = h.importMaterial(ctx, t, name, v)
	h.replicate(t, rec.clone())
	h.scheduleRotation(name)
	return clonePub(v.pub)
}

func (h *HSM) recoveryLevel() string {
	if h.cfg.PurgeProtection {
		return RecoverableProtected
	}
	return RecoverablePurgeable
}

func kty(spec partition.KeySpec) string {
	if spec.Type == partition.Oct {
		return KeyTypeOct
	}
	return KeyTypeRSA
}

func clonePub(k KeyVersion) KeyVersion {
	k.Ops = slices.Clone(k.Ops)
	k.Tags = cloneTags(k.Tags)
	return k
}

// read routes a read to the nearest pool and authorizes it there. The
// replica's data lags the primary by the replication lag.
func (h *HSM) read(c Caller, action rbac.DataAction, target rbac.Scope) (*replica, error) {
	if err := h.checkActive(); err != nil {
		return nil, err
	}
	r, err := h.route(c.Region)
	if err != nil {
		return nil, err
	}
	if err := authorize(r, c, action, target); err != nil {
		return nil, err
	}
	return r, nil
}

// GetKey returns a key version's public view (version "" = current).
// Requires keys/read.
func (h *HSM) GetKey(ctx context.Context, c Caller, name, ver string) (KeyVersion, Served, error) {
	h.mu.RLock()
	r, err := h.read(c, rbac.KeysRead, rbac.KeyScope(name))
	if err != nil {
		h.mu.RUnlock()
		return KeyVersion{}, Served{}, fmt.Errorf("get key %s: %w", name, err)
	}
	rec, err := live(r, name)
	var v *version
	if err == nil {
		if v = rec.version(ver); v == nil {
			err = errKeyNotFound(name, ver)
		}
	}
	if err != nil {
		h.mu.RUnlock()
		return KeyVersion{}, Served{}, fmt.Errorf("get key %s: %w", name, err)
	}
	out, spec, pool := clonePub(v.pub), v.spec, r.pool
	h.mu.RUnlock()
	_, served, err := pool.reserve(ctx, "", spec, opGet)
	if err != nil {
		return KeyVersion{}, Served{}, fmt.Errorf("get key %s: %w", name, err)
	}
	return out, served, nil
}

// ListKeys returns the current version of every live key, sorted by name.
// Requires keys/read on the whole HSM.
func (h *HSM) ListKeys(ctx context.Context, c Caller) ([]KeyVersion, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.KeysRead, rbac.ScopeKeys)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var out []KeyVersion
	for _, rec := range r.keys {
		if rec.deleted == nil && !rec.purged && rec.current() != nil {
			out = append(out, clonePub(rec.current().pub))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListVersions returns every version of a key, oldest first. Requires keys/read.
func (h *HSM) ListVersions(ctx context.Context, c Caller, name string) ([]KeyVersion, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.KeysRead, rbac.KeyScope(name))
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", name, err)
	}
	rec, err := live(r, name)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", name, err)
	}
	out := make([]KeyVersion, len(rec.versions))
	for i, v := range rec.versions {
		out[i] = clonePub(v.pub)
	}
	return out, nil
}

// UpdateKey changes a version's attributes, operations and tags (version ""
// = current). Requires keys/write.
func (h *HSM) UpdateKey(ctx context.Context, c Caller, name, ver string, o KeyOptions) (KeyVersion, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysWrite, false)
	if err != nil {
		return KeyVersion{}, fmt.Errorf("update key %s: %w", name, err)
	}
	v := rec.version(ver)
	if v == nil {
		return KeyVersion{}, fmt.Errorf("update key %s: %w", name, errKeyNotFound(name, ver))
	}
	nv := v.clone()
	if o.Type != "" || o.Size != 0 {
		return KeyVersion{}, fmt.Errorf("update key %s: %w: type and size cannot change", name, ErrBadParameter)
	}
	if o.Enabled != nil {
		nv.pub.Attr.Enabled = *o.Enabled
	}
	if o.NotBefore != nil {
		nv.pub.Attr.NotBefore = *o.NotBefore
	}
	if o.Expires != nil {
		nv.pub.Attr.Expires = *o.Expires
	}
	if len(o.Ops) > 0 {
		for _, op := range o.Ops {
			if !slices.Contains(defaultOps(nv.spec), op) {
				return KeyVersion{}, fmt.Errorf("update key %s: %w: key operation %q", name, ErrBadParameter, op)
			}
		}
		nv.pub.Ops = slices.Clone(o.Ops)
	}
	if o.Tags != nil {
		nv.pub.Tags = cloneTags(o.Tags)
	}
	if a := nv.pub.Attr; !a.NotBefore.IsZero() && !a.Expires.IsZero() && !a.Expires.After(a.NotBefore) {
		return KeyVersion{}, fmt.Errorf("update key %s: %w: expiry must be after the activation date", name, ErrBadParameter)
	}
	nv.pub.Attr.Updated = h.clk.Now().Truncate(time.Second)
	for i, x := range rec.versions {
		if x == v {
			rec.versions[i] = nv
		}
	}
	rec.seq = h.nextSeq()
	h.replicate(t, rec.clone())
	h.scheduleRotation(name)
	return clonePub(nv.pub), nil
}

// DeleteKey soft-deletes a key with every version (facts §5): it becomes
// inaccessible to every operation, can be recovered or purged, and is purged
// automatically when the retention period ends. Requires keys/delete.
func (h *HSM) DeleteKey(ctx context.Context, c Caller, name string) (DeletedKey, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysDelete, false)
	if err != nil {
		return DeletedKey{}, fmt.Errorf("delete key %s: %w", name, err)
	}
	now := h.clk.Now().Truncate(time.Second)
	d := &DeletedKey{
		KeyVersion:         clonePub(rec.current().pub),
		RecoveryID:         h.cfg.URL + "/deletedkeys/" + name,
		DeletedDate:        now,
		ScheduledPurgeDate: now.Add(time.Duration(h.cfg.SoftDeleteRetentionDays) * 24 * time.Hour),
	}
	rec.deleted = d
	rec.seq = h.nextSeq()
	h.replicate(t, rec.clone())
	h.stopTimer("rotate/" + name)
	h.setTimer("purge/"+name, d.ScheduledPurgeDate.Sub(h.clk.Now()), func() { h.autoPurge(name) })
	return *d, nil
}

// GetDeletedKey returns a soft-deleted key. Requires keys/deletedKeys/read.
func (h *HSM) GetDeletedKey(ctx context.Context, c Caller, name string) (DeletedKey, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.KeysDeletedRead, rbac.KeyScope(name))
	if err != nil {
		return DeletedKey{}, fmt.Errorf("get deleted key %s: %w", name, err)
	}
	rec := r.keys[name]
	if rec == nil || rec.deleted == nil || rec.purged {
		return DeletedKey{}, fmt.Errorf("get deleted key %s: %w", name, ErrDeletedKeyNotFound)
	}
	d := *rec.deleted
	d.KeyVersion = clonePub(d.KeyVersion)
	return d, nil
}

// ListDeletedKeys returns every soft-deleted key, sorted by name. Requires
// keys/deletedKeys/read on the whole HSM.
func (h *HSM) ListDeletedKeys(ctx context.Context, c Caller) ([]DeletedKey, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.KeysDeletedRead, rbac.ScopeKeys)
	if err != nil {
		return nil, fmt.Errorf("list deleted keys: %w", err)
	}
	var out []DeletedKey
	for _, rec := range r.keys {
		if rec.deleted != nil && !rec.purged {
			d := *rec.deleted
			d.KeyVersion = clonePub(d.KeyVersion)
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// deletedRecord returns the soft-deleted record of name in the write region.
func (h *HSM) deletedRecord(c Caller, name string, action rbac.DataAction) (*replica, *record, error) {
	if err := h.checkActive(); err != nil {
		return nil, nil, err
	}
	t, err := h.writeTarget()
	if err != nil {
		return nil, nil, err
	}
	if err := authorize(t, c, action, rbac.KeyScope(name)); err != nil {
		return nil, nil, err
	}
	rec := t.keys[name]
	if rec == nil || rec.deleted == nil || rec.purged {
		return nil, nil, fmt.Errorf("%w: %s", ErrDeletedKeyNotFound, name)
	}
	return t, rec, nil
}

// RecoverDeletedKey undoes a soft delete. Requires keys/deletedKeys/recover
// (Crypto Officer).
func (h *HSM) RecoverDeletedKey(ctx context.Context, c Caller, name string) (KeyVersion, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.deletedRecord(c, name, rbac.KeysDeletedRecover)
	if err != nil {
		return KeyVersion{}, fmt.Errorf("recover key %s: %w", name, err)
	}
	rec.deleted = nil
	rec.seq = h.nextSeq()
	h.replicate(t, rec.clone())
	h.stopTimer("purge/" + name)
	h.scheduleRotation(name)
	return clonePub(rec.current().pub), nil
}

// PurgeDeletedKey destroys a soft-deleted key for good, in every pool.
// Under purge protection it is refused until the retention period ends
// (ErrPurgeProtected). Requires keys/deletedKeys/delete (Crypto Officer).
func (h *HSM) PurgeDeletedKey(ctx context.Context, c Caller, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.deletedRecord(c, name, rbac.KeysDeletedDelete)
	if err != nil {
		return fmt.Errorf("purge key %s: %w", name, err)
	}
	if h.cfg.PurgeProtection && h.clk.Now().Before(rec.deleted.ScheduledPurgeDate) {
		return fmt.Errorf("purge key %s: %w (scheduled purge %s)", name, ErrPurgeProtected, rec.deleted.ScheduledPurgeDate.Format(time.RFC3339))
	}
	h.purgeLocked(t, name)
	return nil
}

func (h *HSM) autoPurge(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.replicas[h.primary]
	if rec := t.keys[name]; rec != nil && rec.deleted != nil {
		h.purgeLocked(t, name)
	}
}

func (h *HSM) purgeLocked(t *replica, name string) {
	rec := t.keys[name]
	ctx := context.Background()
	for _, v := range rec.versions {
		h.deleteMaterial(ctx, t, handle(name, v.pub.Version))
	}
	tomb := &record{name: name, seq: h.nextSeq(), purged: true}
	delete(t.keys, name)
	h.replicate(t, tomb)
	h.stopTimer("purge/" + name)
	h.stopTimer("rotate/" + name)
}

func (h *HSM) setTimer(id string, d time.Duration, f func()) {
	h.stopTimer(id)
	h.timers[id] = h.clk.AfterFunc(d, func() {
		h.mu.Lock()
		delete(h.timers, id)
		h.mu.Unlock()
		f()
	})
}

func (h *HSM) stopTimer(id string) {
	if t, ok := h.timers[id]; ok {
		t.Stop()
		delete(h.timers, id)
	}
}
