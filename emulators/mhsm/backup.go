package mhsm

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Backups (one key, or the whole HSM) hold key material only wrapped under
// the security domain key, and are sealed with AES-256-GCM under a key
// derived from it: they restore only into an HSM with the same security
// domain (facts §4), and any change to a backup is detected.

const backupFormat = 1

type versionJSON struct {
	Version   string            `json:"version"`
	Type      string            `json:"kty"`
	Size      int               `json:"size"`
	Ops       []string          `json:"ops"`
	Enabled   bool              `json:"enabled"`
	NotBefore time.Time         `json:"nbf"`
	Expires   time.Time         `json:"exp"`
	Created   time.Time         `json:"created"`
	Updated   time.Time         `json:"updated"`
	Tags      map[string]string `json:"tags,omitempty"`
	Wrapped   []byte            `json:"wrapped"`
}

type recordJSON struct {
	Name     string          `json:"name"`
	Versions []versionJSON   `json:"versions"`
	Policy   *RotationPolicy `json:"policy,omitempty"`
}

type backupPayload struct {
	Format      int                   `json:"format"`
	DomainID    string                `json:"domainId"`
	Keys        []recordJSON          `json:"keys"`
	Assignments []rbac.Assignment     `json:"assignments,omitempty"`
	CustomRoles []rbac.RoleDefinition `json:"customRoles,omitempty"`
}

type sealedBackup struct {
	Format     int    `json:"format"`
	DomainID   string `json:"domainId"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

func (h *HSM) backupAEAD() (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, h.domain.Key(), nil, "hsmlab backup", 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (h *HSM) seal(p backupPayload) ([]byte, error) {
	p.Format, p.DomainID = backupFormat, h.domain.ID()
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	a, err := h.backupAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return json.Marshal(sealedBackup{Format: backupFormat, DomainID: p.DomainID, Nonce: nonce, Ciphertext: a.Seal(nil, nonce, plain, []byte(p.DomainID))})
}

func (h *HSM) open(blob []byte) (backupPayload, error) {
	var s sealedBackup
	if err := json.Unmarshal(blob, &s); err != nil || s.Format != backupFormat {
		return backupPayload{}, fmt.Errorf("%w: not a backup blob", ErrBadParameter)
	}
	if s.DomainID != h.domain.ID() {
		return backupPayload{}, fmt.Errorf("%w: backup of security domain %s, this HSM has %s", ErrDomainMismatch, s.DomainID, h.domain.ID())
	}
	a, err := h.backupAEAD()
	if err != nil {
		return backupPayload{}, err
	}
	if len(s.Nonce) != a.NonceSize() {
		return backupPayload{}, fmt.Errorf("%w: corrupt backup blob", ErrBadParameter)
	}
	plain, err := a.Open(nil, s.Nonce, s.Ciphertext, []byte(s.DomainID))
	if err != nil {
		return backupPayload{}, fmt.Errorf("%w: corrupt or tampered backup blob", ErrBadParameter)
	}
	var p backupPayload
	if err := json.Unmarshal(plain, &p); err != nil || p.DomainID != s.DomainID {
		return backupPayload{}, fmt.Errorf("%w: corrupt backup blob", ErrBadParameter)
	}
	return p, nil
}

func toJSON(rec *record) recordJSON {
	out := recordJSON{Name: rec.name, Policy: rec.policy}
	for _, v := range rec.versions {
		a := v.pub.Attr
		out.Versions = append(out.Versions, versionJSON{Version: v.pub.Version, Type: v.pub.Type, Size: v.spec.Bits, Ops: v.pub.Ops,
			Enabled: a.Enabled, NotBefore: a.NotBefore, Expires: a.Expires, Created: a.Created, Updated: a.Updated, Tags: v.pub.Tags, Wrapped: v.wrapped})
	}
	return out
}

// fromJSON rebuilds a record, importing every version into the replica's
// pool (which also proves the material unwraps under this domain).
func (h *HSM) fromJSON(ctx context.Context, t *replica, rj recordJSON) (*record, error) {
	if !keyNameRE.MatchString(rj.Name) || len(rj.Versions) == 0 || len(rj.Versions) > MaxVersions {
		return nil, fmt.Errorf("%w: corrupt key record %q", ErrBadParameter, rj.Name)
	}
	rec := &record{name: rj.Name, policy: rj.Policy}
	for _, vj := range rj.Versions {
		spec, ok := specOf(vj.Type, vj.Size)
		if !ok {
			return nil, fmt.Errorf("%w: corrupt key version %s/%s", ErrBadParameter, rj.Name, vj.Version)
		}
		v := &version{spec: spec, wrapped: vj.Wrapped, pub: KeyVersion{Name: rj.Name, Version: vj.Version, KID: h.kid(rj.Name, vj.Version),
			Type: kty(spec), Size: spec.Bits, Ops: vj.Ops, Tags: vj.Tags,
			Attr: Attributes{Enabled: vj.Enabled, NotBefore: vj.NotBefore, Expires: vj.Expires, Created: vj.Created, Updated: vj.Updated,
				RecoveryLevel: h.recoveryLevel(), RecoverableDays: h.cfg.SoftDeleteRetentionDays}}}
		hd := handle(rj.Name, vj.Version)
		err := t.pool.each(func(m *member) error {
			pub, err := m.p.Import(ctx, hd, spec, vj.Wrapped)
			if err == nil && pub != nil {
				v.pub.Public = pub
			}
			return err
		})
		if err != nil {
			for _, done := range rec.versions {
				h.deleteMaterial(ctx, t, handle(rj.Name, done.pub.Version))
			}
			h.deleteMaterial(ctx, t, hd)
			if isBadMaterial(err) {
				return nil, fmt.Errorf("%w: key %s", ErrDomainMismatch, rj.Name)
			}
			return nil, err
		}
		rec.versions = append(rec.versions, v)
	}
	return rec, nil
}

func isBadMaterial(err error) bool { return err != nil && errorsIs(err, partition.ErrBadMaterial) }

// BackupKey returns a protected backup of a key with every version
// (az keyvault key backup). Requires keys/backup.
func (h *HSM) BackupKey(ctx context.Context, c Caller, name string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, rec, err := h.prepareWrite(c, name, rbac.KeysBackup, false)
	if err != nil {
		return nil, fmt.Errorf("backup key %s: %w", name, err)
	}
	if _, _, err := t.pool.reserve(ctx, "", rec.current().spec, opAdmin); err != nil {
		return nil, fmt.Errorf("backup key %s: %w", name, err)
	}
	return h.seal(backupPayload{Keys: []recordJSON{toJSON(rec)}})
}

// RestoreKey restores a key backup into this HSM; it must share the
// backup's security domain and the name must be free (no live or deleted
// key). Requires keys/restore.
func (h *HSM) RestoreKey(ctx context.Context, c Caller, blob []byte) (KeyVersion, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkActive(); err != nil {
		return KeyVersion{}, fmt.Errorf("restore key: %w", err)
	}
	p, err := h.open(blob)
	if err != nil {
		return KeyVersion{}, fmt.Errorf("restore key: %w", err)
	}
	if len(p.Keys) != 1 {
		return KeyVersion{}, fmt.Errorf("restore key: %w: not a single-key backup", ErrBadParameter)
	}
	name := p.Keys[0].Name
	t, err := h.writeTarget()
	if err != nil {
		return KeyVersion{}, fmt.Errorf("restore key %s: %w", name, err)
	}
	if err := authorize(t, c, rbac.KeysRestore, rbac.KeyScope(name)); err != nil {
		return KeyVersion{}, fmt.Errorf("restore key %s: %w", name, err)
	}
	if rec := t.keys[name]; rec != nil && !rec.purged {
		return KeyVersion{}, fmt.Errorf("restore key %s: %w: a key with this name exists (live or deleted)", name, ErrConflict)
	}
	rec, err := h.fromJSON(ctx, t, p.Keys[0])
	if err != nil {
		return KeyVersion{}, fmt.Errorf("restore key %s: %w", name, err)
	}
	rec.seq = h.nextSeq()
	t.keys[name] = rec
	h.replicate(t, rec.clone())
	h.scheduleRotation(name)
	return clonePub(rec.current().pub), nil
}

// Backup is a full backup of the HSM: every live key with every version,
// the role assignments and the custom roles. Requires backup/start
// (Administrator, Backup).
func (h *HSM) Backup(ctx context.Context, c Caller) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkActive(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	t, err := h.writeTarget()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := authorize(t, c, rbac.BackupStart, rbac.ScopeHSM); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	p := backupPayload{Assignments: t.rbac.ListAll()}
	for _, d := range t.rbac.RoleDefinitions() {
		if d.Type == rbac.CustomRoleType {
			p.CustomRoles = append(p.CustomRoles, d)
		}
	}
	for _, name := range sortedKeys(t.keys) {
		if rec := t.keys[name]; rec.deleted == nil && !rec.purged {
			p.Keys = append(p.Keys, toJSON(rec))
		}
	}
	return h.seal(p)
}

// Restore restores a full backup (into an HSM activated with the same
// security domain, typically a new one after UploadSecurityDomain): keys
// in the backup replace keys of the same name; role assignments and custom
// roles missing here are added. Requires restore/start (Administrator, Restore).
func (h *HSM) Restore(ctx context.Context, c Caller, blob []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkActive(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	t, err := h.writeTarget()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := authorize(t, c, rbac.RestoreStart, rbac.ScopeHSM); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	p, err := h.open(blob)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, rj := range p.Keys {
		rec, err := h.fromJSON(ctx, t, rj)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if old := t.keys[rj.Name]; old != nil {
			for _, v := range old.versions {
				if rec.version(v.pub.Version) == nil {
					h.deleteMaterial(ctx, t, handle(rj.Name, v.pub.Version))
				}
			}
		}
		rec.seq = h.nextSeq()
		t.keys[rj.Name] = rec
		h.replicate(t, rec.clone())
		h.scheduleRotation(rj.Name)
	}
	for _, d := range p.CustomRoles {
		if _, err := t.rbac.RoleDefinition(d.ID); err != nil {
			_ = t.rbac.PutRoleDefinition(d)
		}
	}
	for _, a := range p.Assignments {
		if _, err := t.rbac.Get(a.Scope, a.Name); err != nil {
			_ = t.rbac.Assign(a)
		}
	}
	t.rbacSeq = h.nextSeq()
	h.replicateRBAC(t)
	return nil
}
