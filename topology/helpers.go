package topology

import (
	"sort"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

func sortStrings(s []string) { sort.Strings(s) }

// sortErrs orders errors by field path so output is deterministic (map
// iteration in Validate must not leak into messages' order).
func sortErrs(es Errors) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Field < es[j].Field })
}

// LookupRole resolves a role as written in a topology: a built-in role's full
// name ("Managed HSM Crypto User"), its short name ("Crypto User"), or its ID.
func LookupRole(s string) (rbac.RoleDefinition, bool) {
	opts := rbac.DefaultOptions()
	if r, ok := rbac.BuiltInRoleByName(opts, s); ok {
		return r, true
	}
	return rbac.BuiltInRoleByID(opts, s)
}

func builtInRoleNames() []string {
	var names []string
	for _, r := range rbac.BuiltInRoles(rbac.DefaultOptions()) {
		names = append(names, r.Name)
	}
	return names
}
