package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/topology"
)

func init() {
	Register(TypeInfo{Type: "partition-loss", Kind: KindFault, New: func() any { return &PartitionLoss{} },
		Summary: "Lose HSM partitions of one region's pool (a count, or named partitions); the pool serves while one is healthy; lost partitions heal after behaviour.hsm.partitionHealTime",
		Facts:   "azure-facts.md §1 (TECH, SCALE)"})
	Register(TypeInfo{Type: "region-outage", Kind: KindFault, New: func() any { return &RegionOutage{} },
		Summary: "Take a whole region out: its HSM pool, private endpoint, DNS and workloads",
		Facts:   "azure-facts.md §2 (MRR), §8, §9"})
	Register(TypeInfo{Type: "extended-region-removal", Kind: KindFault, New: func() any { return &ExtendedRegionRemoval{} },
		Summary: "Remove the extended region (az keyvault region remove): its pool is purged at once, no soft delete; irreversible",
		Facts:   "azure-facts.md §2 (MRR)"})
	Register(TypeInfo{Type: "key-revocation", Kind: KindFault, New: func() any { return &KeyRevocation{Mode: "disable"} },
		Summary: "Revoke access to a key: disable it, soft-delete it, or remove the role assignments of the identities that use it",
		Facts:   "azure-facts.md §5, §6, §8, §9, §10"})
	Register(TypeInfo{Type: "link-latency", Kind: KindFault, New: func() any { return &LinkLatency{} },
		Summary: "Add latency to a network link (an inter-region path or a private endpoint)",
		Facts:   "azure-facts.md §13 (latency is UNCONFIRMED: a parameter)"})
	Register(TypeInfo{Type: "link-cut", Kind: KindFault, New: func() any { return &LinkCut{} },
		Summary: "Cut a network link (an inter-region path or a private endpoint): requests over it fail as unreachable",
		Facts:   "azure-facts.md §8 (SQL MI: network errors make the instance unavailable, not Inaccessible), §11"})
}

// PartitionLoss loses partitions of a region's pool.
type PartitionLoss struct {
	Region     string   `yaml:"region" doc:"region whose pool loses partitions" required:"true"`
	Count      int      `yaml:"count,omitempty" doc:"how many partitions to lose (1–3), in pool order"`
	Partitions []string `yaml:"partitions,omitempty" doc:"names of the partitions to lose (instead of count)"`
	failed     []string
}

// Validate checks the region and partitions against the topology.
func (f *PartitionLoss) Validate(t *topology.Topology) error {
	for _, p := range t.HSM.Pools {
		if p.Region != f.Region {
			continue
		}
		if len(f.Partitions) == 0 && (f.Count < 1 || f.Count > len(p.Partitions)) {
			return fmt.Errorf("partition-loss: count %d is not 1–%d (or name partitions)", f.Count, len(p.Partitions))
		}
		if len(f.Partitions) > 0 && f.Count != 0 {
			return fmt.Errorf("partition-loss: set count or partitions, not both")
		}
		for _, name := range f.Partitions {
			if !slices.ContainsFunc(p.Partitions, func(x topology.Partition) bool { return x.Name == name }) {
				return fmt.Errorf("partition-loss: %s has no partition %q", f.Region, name)
			}
		}
		return nil
	}
	return fmt.Errorf("partition-loss: region %q has no HSM pool", f.Region)
}

// Describe names what is lost.
func (f *PartitionLoss) Describe() string {
	if len(f.Partitions) > 0 {
		return fmt.Sprintf("partitions %s of %s", strings.Join(f.Partitions, ", "), f.Region)
	}
	return fmt.Sprintf("%d partition(s) of %s", f.Count, f.Region)
}

// Inject fails the partitions.
func (f *PartitionLoss) Inject(ctx context.Context, env topology.Env) error {
	failed, err := env.HSM().FailPartitions(f.Region, f.Count, f.Partitions...)
	f.failed = failed
	return err
}

// Revert restores the partitions this fault failed (a no-op for those that
// healed meanwhile).
func (f *PartitionLoss) Revert(ctx context.Context, env topology.Env) error {
	if len(f.failed) == 0 {
		return nil
	}
	err := env.HSM().RestorePartitions(f.Region, f.failed...)
	f.failed = nil
	return err
}

// RegionOutage takes a region out.
type RegionOutage struct {
	Region string `yaml:"region" doc:"the region that goes dark" required:"true"`
}

// Validate checks the region.
func (f *RegionOutage) Validate(t *topology.Topology) error {
	if !slices.ContainsFunc(t.Regions, func(r topology.Region) bool { return r.Name == f.Region }) {
		return fmt.Errorf("region-outage: no region %q", f.Region)
	}
	return nil
}

// Describe names the region.
func (f *RegionOutage) Describe() string { return f.Region + " down" }

// Inject takes the region down.
func (f *RegionOutage) Inject(ctx context.Context, env topology.Env) error {
	return env.SetRegionDown(f.Region, true)
}

// Revert brings it back.
func (f *RegionOutage) Revert(ctx context.Context, env topology.Env) error {
	return env.SetRegionDown(f.Region, false)
}

// ExtendedRegionRemoval removes the extended region.
type ExtendedRegionRemoval struct {
	Region string `yaml:"region,omitempty" doc:"the extended region to remove (default: the topology's extended region)"`
}

// Irreversible: the removed pool is purged.
func (f *ExtendedRegionRemoval) Irreversible() bool { return true }

// Validate resolves the default region.
func (f *ExtendedRegionRemoval) Validate(t *topology.Topology) error {
	var ext []string
	for _, p := range t.HSM.Pools {
		if p.Region != t.OpenQuestions.PrimaryRegion {
			ext = append(ext, p.Region)
		}
	}
	if len(ext) == 0 {
		return errors.New("extended-region-removal: the topology has no extended region")
	}
	if f.Region == "" {
		f.Region = ext[0]
	}
	if !slices.Contains(ext, f.Region) {
		return fmt.Errorf("extended-region-removal: %q is not an extended region (extended: %s)", f.Region, strings.Join(ext, ", "))
	}
	return nil
}

// Describe names the region.
func (f *ExtendedRegionRemoval) Describe() string { return "remove " + f.Region + " (pool purged)" }

// Inject removes the region.
func (f *ExtendedRegionRemoval) Inject(ctx context.Context, env topology.Env) error {
	return env.HSM().RemoveRegion(f.Region)
}

// Revert does nothing: the removal is irreversible.
func (f *ExtendedRegionRemoval) Revert(ctx context.Context, env topology.Env) error { return nil }

// Key revocation modes.
const (
	RevokeDisable     = "disable"
	RevokeSoftDelete  = "soft-delete"
	RevokeRoleRemoval = "role-removal"
)

// KeyRevocation revokes access to a key.
type KeyRevocation struct {
	Key  string `yaml:"key" doc:"the key" required:"true"`
	Mode string `yaml:"mode" doc:"disable (every version), soft-delete, or role-removal"`
	// Principals whose role assignments are removed (role-removal);
	// default: every service identity whose workload uses the key.
	Principals []string `yaml:"principals,omitempty" doc:"role-removal: whose assignments to remove (default: the service identities of the key's workloads)"`

	disabled []string
	removed  []rbac.Assignment
}

// Validate checks the key and mode.
func (f *KeyRevocation) Validate(t *topology.Topology) error {
	if !slices.ContainsFunc(t.HSM.Keys, func(k topology.Key) bool { return k.Name == f.Key }) {
		return fmt.Errorf("key-revocation: no key %q", f.Key)
	}
	switch f.Mode {
	case RevokeDisable, RevokeSoftDelete:
		if len(f.Principals) > 0 {
			return fmt.Errorf("key-revocation: principals apply to mode role-removal only")
		}
	case RevokeRoleRemoval:
		if len(f.Principals) == 0 {
			f.Principals = KeyUsers(t, f.Key)
		}
	default:
		return fmt.Errorf("key-revocation: mode %q is not disable, soft-delete or role-removal", f.Mode)
	}
	return nil
}

// KeyUsers returns the service identities whose workloads use a key.
func KeyUsers(t *topology.Topology, key string) []string {
	var out []string
	add := func(id, k string) {
		if k == key && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, s := range t.Workloads.SQLManagedInstances {
		add(s.Identity, s.Key)
	}
	for _, d := range t.Workloads.DiskEncryptionSets {
		add(d.Identity, d.Key)
	}
	for _, s := range t.Workloads.StorageAccounts {
		add(s.Identity, s.Key)
	}
	return out
}

// Describe names the key and mode.
func (f *KeyRevocation) Describe() string {
	if f.Mode == RevokeRoleRemoval {
		return fmt.Sprintf("%s: remove roles of %s", f.Key, strings.Join(f.Principals, ", "))
	}
	return fmt.Sprintf("%s: %s", f.Key, f.Mode)
}

// Inject revokes access.
func (f *KeyRevocation) Inject(ctx context.Context, env topology.Env) error {
	h, op := topology.AdminOf(env), env.Operator()
	switch f.Mode {
	case RevokeDisable:
		vs, err := h.ListVersions(ctx, op, f.Key)
		if err != nil {
			return err
		}
		off := false
		for _, v := range vs {
			if !v.Attr.Enabled {
				continue
			}
			if _, err := h.UpdateKey(ctx, op, f.Key, v.Version, mhsm.KeyOptions{Enabled: &off}); err != nil {
				return err
			}
			f.disabled = append(f.disabled, v.Version)
		}
		return nil
	case RevokeSoftDelete:
		_, err := h.DeleteKey(ctx, op, f.Key)
		return err
	case RevokeRoleRemoval:
		all, err := h.ListRoleAssignments(ctx, op, rbac.KeyScope(f.Key))
		if err != nil {
			return err
		}
		for _, a := range all {
			if !slices.Contains(f.Principals, a.Principal) {
				continue
			}
			if _, err := h.DeleteRoleAssignment(ctx, op, a.Scope, a.Name); err != nil {
				return err
			}
			f.removed = append(f.removed, a)
		}
		if len(f.removed) == 0 {
			return fmt.Errorf("key-revocation: %s have no role assignment covering %s", strings.Join(f.Principals, ", "), f.Key)
		}
		return nil
	}
	return fmt.Errorf("key-revocation: mode %q", f.Mode)
}

// Revert restores access: re-enables, recovers, or re-creates the assignments.
func (f *KeyRevocation) Revert(ctx context.Context, env topology.Env) error {
	h, op := topology.AdminOf(env), env.Operator()
	var errs []error
	switch f.Mode {
	case RevokeDisable:
		on := true
		for _, v := range f.disabled {
			if _, err := h.UpdateKey(ctx, op, f.Key, v, mhsm.KeyOptions{Enabled: &on}); err != nil {
				errs = append(errs, err)
			}
		}
		f.disabled = nil
	case RevokeSoftDelete:
		if _, err := h.RecoverDeletedKey(ctx, op, f.Key); err != nil && !errors.Is(err, mhsm.ErrDeletedKeyNotFound) {
			errs = append(errs, err)
		}
	case RevokeRoleRemoval:
		for _, a := range f.removed {
			if _, err := h.CreateRoleAssignment(ctx, op, a); err != nil && !errors.Is(err, rbac.ErrConflict) {
				errs = append(errs, err)
			}
		}
		f.removed = nil
	}
	return errors.Join(errs...)
}

// LinkLatency adds latency to a link.
type LinkLatency struct {
	Link    string            `yaml:"link" doc:"link name: <regionA>~<regionB> for an inter-region path, or a private endpoint's name" required:"true"`
	Latency topology.Duration `yaml:"latency" doc:"extra one-way latency" required:"true"`
}

// Validate checks the link name.
func (f *LinkLatency) Validate(t *topology.Topology) error {
	if f.Latency <= 0 {
		return errors.New("link-latency: latency must be positive")
	}
	return checkLink(t, f.Link)
}

// Describe names the link.
func (f *LinkLatency) Describe() string { return fmt.Sprintf("+%v on %s", f.Latency, f.Link) }

// Inject adds the latency.
func (f *LinkLatency) Inject(ctx context.Context, env topology.Env) error {
	return env.Network().SetLatency(f.Link, f.Latency.D())
}

// Revert removes it.
func (f *LinkLatency) Revert(ctx context.Context, env topology.Env) error {
	return env.Network().SetLatency(f.Link, 0)
}

// LinkCut cuts a link.
type LinkCut struct {
	Link string `yaml:"link" doc:"link name: <regionA>~<regionB> or a private endpoint's name" required:"true"`
}

// Validate checks the link name.
func (f *LinkCut) Validate(t *topology.Topology) error { return checkLink(t, f.Link) }

// Describe names the link.
func (f *LinkCut) Describe() string { return f.Link + " cut" }

// Inject cuts the link.
func (f *LinkCut) Inject(ctx context.Context, env topology.Env) error {
	return env.Network().SetCut(f.Link, true)
}

// Revert restores it.
func (f *LinkCut) Revert(ctx context.Context, env topology.Env) error {
	return env.Network().SetCut(f.Link, false)
}

func checkLink(t *topology.Topology, name string) error {
	names := topology.LinkNames(t)
	if !slices.Contains(names, name) {
		return fmt.Errorf("no link %q (links: %s)", name, strings.Join(names, ", "))
	}
	return nil
}
