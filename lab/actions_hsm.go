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
	Register(TypeInfo{Type: "enable-key", Kind: KindAction, New: func() any { return &EnableKey{Versions: VersionsAll} },
		Summary: "Re-enable a key's disabled versions (all, or the current one)",
		Facts:   "azure-facts.md §9 (DISK: VMs boot again once the key is enabled), §8"})
	Register(TypeInfo{Type: "restore-role-assignment", Kind: KindAction, New: func() any { return &RestoreRoleAssignment{} },
		Summary: "Create a role assignment (give a principal a role at a scope), as the lab's operator",
		Facts:   "azure-facts.md §6 (local RBAC: roles, scopes)"})
	Register(TypeInfo{Type: "set-key-version", Kind: KindAction, New: func() any { return &SetKeyVersion{Version: "latest"} },
		Summary: "Point a workload (SQL MI protector, storage account, DES) at a key version now — the seed's rotation step 2, \"update services to use the new version\"",
		Facts:   "azure-facts.md §8 (TDE: manual rotation re-wraps the DEK in seconds), §9 (DES key update), §10 (storage key version); seed section 10"})
}

// Versions enable-key re-enables.
const (
	VersionsAll     = "all"
	VersionsCurrent = "current"
)

// EnableKey re-enables a key's disabled versions as the lab's operator.
type EnableKey struct {
	Key      string `yaml:"key" doc:"the key" required:"true"`
	Versions string `yaml:"versions" doc:"all (every disabled version) or current"`
}

// Validate checks the key and the versions.
func (a *EnableKey) Validate(t *topology.Topology) error {
	if _, err := topoKey(t, "enable-key", a.Key); err != nil {
		return err
	}
	if a.Versions != VersionsAll && a.Versions != VersionsCurrent {
		return fmt.Errorf("enable-key: versions %q is not all or current", a.Versions)
	}
	return nil
}

// Describe names the key.
func (a *EnableKey) Describe() string {
	return fmt.Sprintf("enable %s (%s versions)", a.Key, a.Versions)
}

// Do enables every disabled version (or the current one).
func (a *EnableKey) Do(ctx context.Context, env topology.Env) error {
	admin, op := topology.AdminOf(env), env.Operator()
	vs, err := admin.ListVersions(ctx, op, a.Key)
	if err != nil {
		return err
	}
	if a.Versions == VersionsCurrent && len(vs) > 0 {
		vs = vs[len(vs)-1:]
	}
	on := true
	var errs []error
	for _, v := range vs {
		if v.Attr.Enabled {
			continue
		}
		if _, err := admin.UpdateKey(ctx, op, a.Key, v.Version, mhsm.KeyOptions{Enabled: &on}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RestoreRoleAssignment gives a principal a role at a scope, as the lab's
// operator (an Administrator). An identical assignment that already exists
// counts as done.
type RestoreRoleAssignment struct {
	Principal string `yaml:"principal" doc:"who gets the role" required:"true"`
	Role      string `yaml:"role" doc:"the role: full or short name (\"Crypto User\") or ID" required:"true"`
	Scope     string `yaml:"scope" doc:"/, /keys or /keys/<key>" required:"true"`

	roleID string
}

// Validate checks the principal, role and scope.
func (a *RestoreRoleAssignment) Validate(t *topology.Topology) error {
	if err := topoPrincipal(t, "restore-role-assignment", a.Principal); err != nil {
		return err
	}
	r, ok := topology.LookupRole(a.Role)
	if !ok {
		return fmt.Errorf("restore-role-assignment: unknown role %q", a.Role)
	}
	a.roleID = r.ID
	if _, err := rbac.ParseScope(a.Scope); err != nil {
		return fmt.Errorf("restore-role-assignment: %w", err)
	}
	return nil
}

// Describe names the grant.
func (a *RestoreRoleAssignment) Describe() string {
	return fmt.Sprintf("assign %s to %s at %s", a.Role, a.Principal, a.Scope)
}

// name is the assignment's name: derived from what it grants, so the same
// grant made twice conflicts instead of duplicating.
func (a *RestoreRoleAssignment) name() string {
	clean := strings.NewReplacer("/", "-", " ", "-").Replace
	return "restored-" + clean(a.Principal) + "-" + a.roleID[:8] + clean(a.Scope)
}

// Do creates the assignment.
func (a *RestoreRoleAssignment) Do(ctx context.Context, env topology.Env) error {
	if a.roleID == "" {
		if err := a.Validate(env.Topology()); err != nil {
			return err
		}
	}
	ra := rbac.Assignment{Name: a.name(), Principal: a.Principal, RoleDefinitionID: a.roleID, Scope: rbac.Scope(a.Scope)}
	_, err := topology.AdminOf(env).CreateRoleAssignment(ctx, env.Operator(), ra)
	if errors.Is(err, rbac.ErrConflict) {
		return nil
	}
	return err
}

// SetKeyVersion points a workload at a key version now: a SQL managed
// instance's manual protector rotation, a storage account's or a DES's key
// version. "latest" is the key's current version as the workload's own key
// store route sees it — in the extended region, only once the version has
// replicated. It needs an environment that implements
// topology.KeyVersionControl.
type SetKeyVersion struct {
	Workload string `yaml:"workload" doc:"a SQL managed instance, storage account or disk encryption set" required:"true"`
	Version  string `yaml:"version" doc:"latest, or a version ID"`
}

// Validate checks the workload.
func (a *SetKeyVersion) Validate(t *topology.Topology) error {
	var names []string
	for _, s := range t.Workloads.SQLManagedInstances {
		names = append(names, s.Name)
	}
	for _, s := range t.Workloads.StorageAccounts {
		names = append(names, s.Name)
	}
	for _, d := range t.Workloads.DiskEncryptionSets {
		names = append(names, d.Name)
	}
	if !slices.Contains(names, a.Workload) {
		return fmt.Errorf("set-key-version: %q is not a SQL managed instance, storage account or DES (workloads: %s)", a.Workload, strings.Join(names, ", "))
	}
	if a.Version == "" {
		a.Version = "latest"
	}
	return nil
}

// Describe names the workload and the version.
func (a *SetKeyVersion) Describe() string {
	return fmt.Sprintf("point %s at key version %s", a.Workload, a.Version)
}

// Do sets the version.
func (a *SetKeyVersion) Do(ctx context.Context, env topology.Env) error {
	kc, ok := env.(topology.KeyVersionControl)
	if !ok {
		return fmt.Errorf("set-key-version: on %s: %w", env.Provider(), ErrNotSupported)
	}
	v := a.Version
	if v == "latest" {
		v = ""
	}
	return kc.SetKeyVersion(ctx, a.Workload, v)
}
