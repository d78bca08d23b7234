package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/topology"
)

func init() {
	Register(TypeInfo{Type: "key-delete", Kind: KindFault, New: func() any { return &KeyDelete{} },
		Summary: "Soft-delete a key with every version (it becomes unusable to every operation); revert recovers it",
		Facts:   "azure-facts.md §5 (soft delete, recover), §8, §9, §10"})
	Register(TypeInfo{Type: "key-rotation", Kind: KindFault, New: func() any { return &KeyRotation{} },
		Summary: "Rotate a key now (a new version; needs a rotation policy). Storage picks it up at its daily poll, SQL MI within 60 min and a DES within 1 h when auto-rotation is on; an ASR replica keeps the old version until replication is re-enabled. Irreversible",
		Facts:   "azure-facts.md §7 (ROT), §8 (TDE auto-rotation), §9 (DES auto-rotation, ASR), §10 (daily poll)"})
	Register(TypeInfo{Type: "key-version-disable", Kind: KindFault, New: func() any { return &KeyVersionDisable{Which: DisablePrevious} },
		Summary: "Disable old versions of a key (the previous one, or all but the current): disabling them before every service moved to the new version breaks the ones still on it; revert re-enables them",
		Facts:   "azure-facts.md §9 (keep old and new versions enabled until re-wrap finishes), §10 (wait 24 hours before disabling the older version), §14 (azure-docs#92190)"})
	Register(TypeInfo{Type: "wrong-role", Kind: KindFault, New: func() any { return &WrongRole{From: "Crypto User", To: "Crypto Officer"} },
		Summary: "Misconfiguration: give a team (or principal) the wrong role — by default the key managers get Crypto Officer instead of Crypto User, the seed's #1 mistake. Applied to the topology before the run (at: 0s, no hold)",
		Facts:   "azure-facts.md §6 (ROLES: Crypto Officer cannot create, rotate or delete keys); seed step 4"})
	Register(TypeInfo{Type: "missing-des", Kind: KindFault, New: func() any { return &MissingDES{} },
		Summary: "Misconfiguration: no Disk Encryption Set in a region (and no ASR target DES pointing there). Applied to the topology before the run (at: 0s, no hold)",
		Facts:   "azure-facts.md §9 (DES is regional; ASR: pre-create the DES in the target region); seed section 5"})
	Register(TypeInfo{Type: "purge-protection-off", Kind: KindFault, New: func() any { return &PurgeProtectionOff{} },
		Summary: "Misconfiguration: the HSM was created without purge protection (Azure's default), so a deleted key can be purged before its retention ends. Applied to the topology before the run (at: 0s, no hold)",
		Facts:   "azure-facts.md §5 (purge protection off by default), §8 and §10 (SQL TDE and Storage CMK require it)"})
}

// checkKey checks that a fault's key exists in the topology and is emulated
// (EC keys are not: no workload uses them).
func checkKey(t *topology.Topology, typ, key string) (topology.Key, error) {
	i := slices.IndexFunc(t.HSM.Keys, func(k topology.Key) bool { return k.Name == key })
	if i < 0 {
		var names []string
		for _, k := range t.HSM.Keys {
			names = append(names, k.Name)
		}
		return topology.Key{}, fmt.Errorf("%s: no key %q (keys: %s)", typ, key, strings.Join(names, ", "))
	}
	if t.HSM.Keys[i].Type == "EC-HSM" {
		return topology.Key{}, fmt.Errorf("%s: %s is an EC key; EC keys are not emulated", typ, key)
	}
	return t.HSM.Keys[i], nil
}

// checkPrincipal checks an `as` parameter: empty (the lab's operator), the
// operator, or a principal of the topology.
func checkPrincipal(t *topology.Topology, typ, as string) error {
	if as == "" || as == topology.OperatorPrincipal || slices.ContainsFunc(t.Principals, func(p topology.Principal) bool { return p.Name == as }) {
		return nil
	}
	return fmt.Errorf("%s: as %q is not a principal of the topology", typ, as)
}

// caller is the principal a fault acts as: as, or the lab's operator.
func caller(env topology.Env, as string) mhsm.Caller {
	if as == "" {
		return env.Operator()
	}
	return mhsm.Caller{Principal: as}
}

func asSuffix(as string) string {
	if as == "" {
		return ""
	}
	return " as " + as
}

// KeyDelete soft-deletes a key.
type KeyDelete struct {
	Key string `yaml:"key" doc:"the key" required:"true"`
	As  string `yaml:"as,omitempty" doc:"principal that deletes it (default: the lab's operator); keys/delete is in Crypto User"`

	deleted bool
}

// Validate checks the key and the principal.
func (f *KeyDelete) Validate(t *topology.Topology) error {
	if _, err := checkKey(t, "key-delete", f.Key); err != nil {
		return err
	}
	return checkPrincipal(t, "key-delete", f.As)
}

// Describe names the key.
func (f *KeyDelete) Describe() string { return f.Key + " soft-deleted" + asSuffix(f.As) }

// Inject soft-deletes the key.
func (f *KeyDelete) Inject(ctx context.Context, env topology.Env) error {
	if _, err := topology.AdminOf(env).DeleteKey(ctx, caller(env, f.As), f.Key); err != nil {
		return err
	}
	f.deleted = true
	return nil
}

// Revert recovers the key if this fault deleted it (as the operator, who
// holds Crypto Officer: recovering needs keys/deletedKeys/recover). It is
// idempotent and a no-op after a failed Inject.
func (f *KeyDelete) Revert(ctx context.Context, env topology.Env) error {
	if !f.deleted {
		return nil
	}
	f.deleted = false
	if _, err := topology.AdminOf(env).RecoverDeletedKey(ctx, env.Operator(), f.Key); err != nil && !errors.Is(err, mhsm.ErrDeletedKeyNotFound) {
		return err
	}
	return nil
}

// KeyRotation rotates a key: a new current version, created now. Which
// services move to it, and when, follows from the workloads: a storage
// account with no pinned version at its next daily poll (24 h), SQL MI
// within 60 minutes and a DES within an hour when auto-rotation is on; an
// ASR replica keeps the version it was created with until
// asr-reenable-replication. A rotation is not undone: the fault is
// Irreversible and Revert does nothing.
type KeyRotation struct {
	Key string `yaml:"key" doc:"the key (it must have a rotation policy: facts §7)" required:"true"`
	As  string `yaml:"as,omitempty" doc:"principal that rotates it (default: the lab's operator); keys/rotate is in Crypto User, not in Crypto Officer"`

	version string
}

// Irreversible: a rotation is not undone.
func (f *KeyRotation) Irreversible() bool { return true }

// Validate checks the key has a rotation policy (Managed HSM refuses an
// on-demand rotation without one) and the principal.
func (f *KeyRotation) Validate(t *topology.Topology) error {
	k, err := checkKey(t, "key-rotation", f.Key)
	if err != nil {
		return err
	}
	if k.Rotation == nil {
		return fmt.Errorf("key-rotation: %s has no rotation policy; Managed HSM rotates a key only after one is set (facts §7)", f.Key)
	}
	return checkPrincipal(t, "key-rotation", f.As)
}

// Describe names the key and, once rotated, the new version.
func (f *KeyRotation) Describe() string {
	s := "rotate " + f.Key + asSuffix(f.As)
	if f.version != "" {
		s += " (new version " + f.version + ")"
	}
	return s
}

// Inject rotates the key.
func (f *KeyRotation) Inject(ctx context.Context, env topology.Env) error {
	kv, _, err := env.HSM().RotateKey(ctx, caller(env, f.As), f.Key)
	if err != nil {
		return err
	}
	f.version = kv.Version
	return nil
}

// Outcome names the new version (empty before a successful rotation).
func (f *KeyRotation) Outcome() string {
	if f.version == "" {
		return ""
	}
	return "new version " + f.version
}

// Revert does nothing: the rotation is irreversible.
func (f *KeyRotation) Revert(ctx context.Context, env topology.Env) error { return nil }

// Which versions key-version-disable disables.
const (
	DisablePrevious      = "previous"
	DisableAllButCurrent = "all-but-current"
)

// KeyVersionDisable disables old versions of a key.
type KeyVersionDisable struct {
	Key   string `yaml:"key" doc:"the key" required:"true"`
	Which string `yaml:"which" doc:"previous (the version before the current one) or all-but-current"`
	As    string `yaml:"as,omitempty" doc:"principal that disables them (default: the lab's operator); keys/write is in Crypto User"`

	disabled []string
}

// Validate checks the key, which and the principal.
func (f *KeyVersionDisable) Validate(t *topology.Topology) error {
	if _, err := checkKey(t, "key-version-disable", f.Key); err != nil {
		return err
	}
	if f.Which != DisablePrevious && f.Which != DisableAllButCurrent {
		return fmt.Errorf("key-version-disable: which %q is not %s or %s", f.Which, DisablePrevious, DisableAllButCurrent)
	}
	return checkPrincipal(t, "key-version-disable", f.As)
}

// Describe names the key and which versions.
func (f *KeyVersionDisable) Describe() string {
	s := f.Key + ": disable " + f.Which + " version"
	if f.Which == DisableAllButCurrent {
		s += "s"
	}
	if len(f.disabled) > 0 {
		s += " (" + strings.Join(f.disabled, ", ") + ")"
	}
	return s + asSuffix(f.As)
}

// Inject disables the chosen versions that are enabled. A key with a single
// version has no old version to disable: that is an error (rotate first).
func (f *KeyVersionDisable) Inject(ctx context.Context, env topology.Env) error {
	h, c := topology.AdminOf(env), caller(env, f.As)
	vs, err := h.ListVersions(ctx, c, f.Key)
	if err != nil {
		return err
	}
	if len(vs) < 2 {
		return fmt.Errorf("key-version-disable: %s has only its current version; rotate it first", f.Key)
	}
	old := vs[:len(vs)-1]
	if f.Which == DisablePrevious {
		old = old[len(old)-1:]
	}
	off := false
	for _, v := range old {
		if !v.Attr.Enabled {
			continue
		}
		if _, err := h.UpdateKey(ctx, c, f.Key, v.Version, mhsm.KeyOptions{Enabled: &off}); err != nil {
			return err
		}
		f.disabled = append(f.disabled, v.Version)
	}
	return nil
}

// Revert re-enables the versions this fault disabled (as the operator).
// It is idempotent and safe after a partial Inject.
func (f *KeyVersionDisable) Revert(ctx context.Context, env topology.Env) error {
	on := true
	var errs []error
	for _, v := range f.disabled {
		if _, err := topology.AdminOf(env).UpdateKey(ctx, env.Operator(), f.Key, v, mhsm.KeyOptions{Enabled: &on}); err != nil {
			errs = append(errs, err)
		}
	}
	f.disabled = nil
	return errors.Join(errs...)
}

// topologyOnly implements Inject and Revert for misconfigurations: they are
// applied to the topology before bring-up (ApplyTopology), so there is
// nothing to inject or revert while the run is in progress.
type topologyOnly struct{}

// Inject does nothing: the misconfiguration is in the topology.
func (topologyOnly) Inject(context.Context, topology.Env) error { return nil }

// Revert does nothing: the misconfiguration lasts the whole run.
func (topologyOnly) Revert(context.Context, topology.Env) error { return nil }

// WrongRole gives a team or principal the wrong role: every role assignment
// of From to them becomes an assignment of To (same scope).
type WrongRole struct {
	topologyOnly
	Team      string `yaml:"team,omitempty" doc:"team whose principals get the wrong role (default: key-management, unless principal is set)"`
	Principal string `yaml:"principal,omitempty" doc:"a single principal instead of a team"`
	From      string `yaml:"from" doc:"the role they should have (name, short name or ID)"`
	To        string `yaml:"to" doc:"the role they get instead"`

	changed []string
}

// who returns the principals the fault applies to.
func (f *WrongRole) who(t *topology.Topology) ([]string, error) {
	if f.Principal != "" && f.Team != "" {
		return nil, errors.New("wrong-role: set team or principal, not both")
	}
	if f.Principal != "" {
		if !slices.ContainsFunc(t.Principals, func(p topology.Principal) bool { return p.Name == f.Principal }) {
			return nil, fmt.Errorf("wrong-role: no principal %q", f.Principal)
		}
		return []string{f.Principal}, nil
	}
	team := f.Team
	if team == "" {
		team = "key-management"
	}
	var out []string
	for _, p := range t.Principals {
		if p.Team == team {
			out = append(out, p.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("wrong-role: no principal belongs to team %q", team)
	}
	return out, nil
}

func (f *WrongRole) roles() (from, to string, err error) {
	fr, ok := topology.LookupRole(f.From)
	if !ok {
		return "", "", fmt.Errorf("wrong-role: from %q is not a built-in role", f.From)
	}
	tr, ok := topology.LookupRole(f.To)
	if !ok {
		return "", "", fmt.Errorf("wrong-role: to %q is not a built-in role", f.To)
	}
	if fr.ID == tr.ID {
		return "", "", errors.New("wrong-role: from and to are the same role")
	}
	return fr.ID, tr.Name, nil
}

// Validate checks the principals and roles (the topology it sees already
// has the change applied).
func (f *WrongRole) Validate(t *topology.Topology) error {
	if _, err := f.who(t); err != nil {
		return err
	}
	_, _, err := f.roles()
	return err
}

// ApplyTopology replaces every From assignment of the principals with To.
// It fails when they have no From assignment to replace.
func (f *WrongRole) ApplyTopology(t *topology.Topology) error {
	who, err := f.who(t)
	if err != nil {
		return err
	}
	fromID, toName, err := f.roles()
	if err != nil {
		return err
	}
	f.changed = nil
	for i, ra := range t.RoleAssignments {
		r, ok := topology.LookupRole(ra.Role)
		if !ok || r.ID != fromID || !slices.Contains(who, ra.Principal) {
			continue
		}
		t.RoleAssignments[i].Role = toName
		f.changed = append(f.changed, ra.Principal+" at "+ra.Scope)
	}
	if len(f.changed) == 0 {
		return fmt.Errorf("wrong-role: %s hold no %s assignment to replace", strings.Join(who, ", "), f.From)
	}
	return nil
}

// Describe names who got which role.
func (f *WrongRole) Describe() string {
	who := f.Principal
	if who == "" {
		who = "team " + f.Team
		if f.Team == "" {
			who = "team key-management"
		}
	}
	s := fmt.Sprintf("%s given %s instead of %s", who, f.To, f.From)
	if len(f.changed) > 0 {
		s += " (" + strings.Join(f.changed, "; ") + ")"
	}
	return s
}

// MissingDES removes the Disk Encryption Sets of a region, and the ASR
// target-DES references to them: the DR region's DES was never created.
type MissingDES struct {
	topologyOnly
	Region string `yaml:"region" doc:"the region without a DES" required:"true"`

	removed []string
}

// Validate checks the region (the topology it sees already has the DES
// removed).
func (f *MissingDES) Validate(t *topology.Topology) error {
	if !slices.ContainsFunc(t.Regions, func(r topology.Region) bool { return r.Name == f.Region }) {
		return fmt.Errorf("missing-des: no region %q", f.Region)
	}
	return nil
}

// ApplyTopology removes the region's DESes. It refuses a region whose own
// VMs use one (a VM's disks cannot exist without their DES): the fault
// models a DR region where the DES was never pre-created.
func (f *MissingDES) ApplyTopology(t *topology.Topology) error {
	if err := f.Validate(t); err != nil {
		return err
	}
	w := &t.Workloads
	var keep []topology.DiskEncryptionSet
	f.removed = nil
	for _, d := range w.DiskEncryptionSets {
		if d.Region == f.Region {
			f.removed = append(f.removed, d.Name)
		} else {
			keep = append(keep, d)
		}
	}
	if len(f.removed) == 0 {
		return fmt.Errorf("missing-des: %s has no disk encryption set to remove", f.Region)
	}
	for _, vm := range w.VirtualMachines {
		if slices.Contains(f.removed, vm.DES) {
			return fmt.Errorf("missing-des: VM %s in %s uses %s; a VM's disks cannot exist without their DES (use a region that only receives ASR replicas)", vm.Name, vm.Region, vm.DES)
		}
	}
	w.DiskEncryptionSets = keep
	for i := range w.VirtualMachines {
		if a := w.VirtualMachines[i].ASR; a != nil && slices.Contains(f.removed, a.TargetDES) {
			c := *a
			c.TargetDES = ""
			w.VirtualMachines[i].ASR = &c
		}
	}
	return nil
}

// Describe names the region and what was removed.
func (f *MissingDES) Describe() string {
	s := "no disk encryption set in " + f.Region
	if len(f.removed) > 0 {
		s += " (" + strings.Join(f.removed, ", ") + " never created)"
	}
	return s
}

// PurgeProtectionOff creates the HSM without purge protection.
type PurgeProtectionOff struct {
	topologyOnly
}

// ApplyTopology turns purge protection off.
func (f *PurgeProtectionOff) ApplyTopology(t *topology.Topology) error {
	t.HSM.PurgeProtection = false
	return nil
}

// Describe says what changed.
func (f *PurgeProtectionOff) Describe() string {
	return "HSM created without purge protection (deleted keys can be purged at once)"
}
