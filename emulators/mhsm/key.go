package mhsm

import (
	"crypto/rsa"
	"slices"
	"time"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Key types (Key Vault's kty for HSM keys).
const (
	KeyTypeRSA = "RSA-HSM"
	KeyTypeOct = "oct-HSM"
)

// Key operations (key_ops).
const (
	OpEncrypt = "encrypt"
	OpDecrypt = "decrypt"
	OpWrapKey = "wrapKey"
	OpUnwrap  = "unwrapKey"
	OpSign    = "sign"
	OpVerify  = "verify"
	OpImport  = "import"
)

// Recovery levels as Key Vault reports them.
const (
	RecoverableProtected = "Recoverable"           // purge protection on
	RecoverablePurgeable = "Recoverable+Purgeable" // purge protection off
)

// Attributes are a key version's attributes. NotBefore and Expires are zero
// when unset.
type Attributes struct {
	Enabled         bool
	NotBefore       time.Time
	Expires         time.Time
	Created         time.Time
	Updated         time.Time
	RecoveryLevel   string
	RecoverableDays int
}

// KeyVersion is the public view of one version of a key. Key material is not
// part of it.
type KeyVersion struct {
	Name    string
	Version string
	KID     string
	Type    string // RSA-HSM or oct-HSM
	Size    int
	Ops     []string
	Attr    Attributes
	Tags    map[string]string
	Public  *rsa.PublicKey // nil for oct keys
}

// DeletedKey is a soft-deleted key's current version plus its deletion data.
type DeletedKey struct {
	KeyVersion
	RecoveryID         string
	DeletedDate        time.Time
	ScheduledPurgeDate time.Time
}

// LifetimeAction is one action of a rotation policy.
type LifetimeAction struct {
	// Action is "Rotate" or "Notify" (Managed HSM has no Event Grid: notify is stored only).
	Action string
	// TimeAfterCreate or TimeBeforeExpiry triggers the action (one of them).
	TimeAfterCreate  time.Duration
	TimeBeforeExpiry time.Duration
}

// RotationPolicy is a key's rotation policy (facts §7).
type RotationPolicy struct {
	ID              string
	LifetimeActions []LifetimeAction
	// ExpiresAfter sets the expiry of new versions (the policy's
	// attributes.expiryTime); zero means none.
	ExpiresAfter time.Duration
	Created      time.Time
	Updated      time.Time
}

// version is a stored key version: its public view and its material wrapped
// under the security domain key.
type version struct {
	pub     KeyVersion
	spec    partition.KeySpec
	wrapped []byte
}

func (v *version) clone() *version {
	c := *v
	c.pub.Ops = slices.Clone(v.pub.Ops)
	c.pub.Tags = cloneTags(v.pub.Tags)
	return &c
}

// record is one key name in one replica: every version, the rotation policy
// and, when soft-deleted, the deletion data. seq orders replicated writes.
type record struct {
	name     string
	seq      uint64
	versions []*version // creation order; the last is current
	policy   *RotationPolicy
	deleted  *DeletedKey
	purged   bool // tombstone: replicas drop the record
}

func (r *record) current() *version {
	if len(r.versions) == 0 {
		return nil
	}
	return r.versions[len(r.versions)-1]
}

func (r *record) version(v string) *version {
	if v == "" {
		return r.current()
	}
	for _, x := range r.versions {
		if x.pub.Version == v {
			return x
		}
	}
	return nil
}

func (r *record) clone() *record {
	c := &record{name: r.name, seq: r.seq, purged: r.purged}
	for _, v := range r.versions {
		c.versions = append(c.versions, v.clone())
	}
	if r.policy != nil {
		p := *r.policy
		p.LifetimeActions = slices.Clone(r.policy.LifetimeActions)
		c.policy = &p
	}
	if r.deleted != nil {
		d := *r.deleted
		c.deleted = &d
	}
	return c
}

func cloneTags(t map[string]string) map[string]string {
	if t == nil {
		return nil
	}
	c := make(map[string]string, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

func handle(name, ver string) string { return name + "/" + ver }

func specOf(kty string, size int) (partition.KeySpec, bool) {
	switch kty {
	case KeyTypeRSA, "RSA":
		if size == 0 {
			size = 2048
		}
		if size == 2048 || size == 3072 || size == 4096 {
			return partition.KeySpec{Type: partition.RSA, Bits: size}, true
		}
	case KeyTypeOct, "oct":
		if size == 0 {
			size = 256
		}
		if size == 128 || size == 192 || size == 256 {
			return partition.KeySpec{Type: partition.Oct, Bits: size}, true
		}
	}
	return partition.KeySpec{}, false
}

func defaultOps(spec partition.KeySpec) []string {
	if spec.Type == partition.RSA {
		return []string{OpEncrypt, OpDecrypt, OpSign, OpVerify, OpWrapKey, OpUnwrap}
	}
	return []string{OpEncrypt, OpDecrypt, OpWrapKey, OpUnwrap}
}
