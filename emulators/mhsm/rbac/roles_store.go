package rbac

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// PutRoleDefinition creates or replaces the custom role definition def.ID.
// The Store keeps a copy with Type CustomRoleType and, if def has none,
// AssignableScopes "/". Replacing a role takes effect at once for every
// assignment of it. Errors:
//   - ErrForbiddenChange: def.ID is a built-in role's ID;
//   - ErrInvalidRoleDefinition: empty or malformed ID or name, a type other
//     than CustomRoleType, or a data action that is neither a known action
//     nor a trailing "/*" wildcard of one;
//   - ErrBadScope: an invalid assignable scope;
//   - ErrConflict: the name (case-insensitively) is another role's name or a
//     built-in role's short name ("Crypto User"), or a replacement narrows the
//     assignable scopes below an existing assignment of the role;
//   - ErrLimitExceeded: a new role beyond MaxCustomRoleDefinitions.
func (s *Store) PutRoleDefinition(def RoleDefinition) error {
	id := strings.ToLower(canonicalRoleID(def.ID))
	s.mu.RLock()
	existing := s.roles[id]
	s.mu.RUnlock()
	if existing != nil && existing.builtIn {
		return fmt.Errorf("put role definition %s (%q): %w", def.ID, existing.def.Name, ErrForbiddenChange)
	}
	def.ID = canonicalRoleID(def.ID)
	c, err := validateCustom(def)
	if err != nil {
		return fmt.Errorf("put role definition: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, r := range s.roles {
		if key == id {
			continue
		}
		if strings.EqualFold(r.def.Name, c.Name) || (r.builtIn && builtInNameMatches(r.def.Name, c.Name)) {
			return fmt.Errorf("put role definition %s: name %q is taken by role %s (%q): %w", c.ID, c.Name, r.def.ID, r.def.Name, ErrConflict)
		}
	}
	if r, ok := s.roles[id]; ok {
		for _, e := range s.byName {
			if e.role == r && !c.assignableAt(e.a.Scope) {
				return fmt.Errorf("put role definition %s: assignable scopes %v exclude assignment %s at %q: %w",
					c.ID, c.AssignableScopes, e.a.Name, e.a.Scope, ErrConflict)
			}
		}
		r.def, r.mask = c, c.mask()
		return nil
	}
	if s.custom >= s.opts.MaxCustomRoleDefinitions {
		return fmt.Errorf("put role definition %s: %d custom role definitions, the limit: %w", c.ID, s.custom, ErrLimitExceeded)
	}
	s.roles[id] = &compiledRole{def: c, mask: c.mask()}
	s.custom++
	return nil
}

// DeleteRoleDefinition deletes the custom role definition id (bare or fully
// qualified, case-insensitive). Errors: ErrForbiddenChange for a built-in
// role, ErrRoleNotFound for an unknown ID, ErrConflict while any assignment
// uses the role.
func (s *Store) DeleteRoleDefinition(id string) error {
	key := strings.ToLower(canonicalRoleID(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[key]
	switch {
	case !ok:
		return fmt.Errorf("delete role definition %s: %w", id, ErrRoleNotFound)
	case r.builtIn:
		return fmt.Errorf("delete role definition %s (%q): %w", id, r.def.Name, ErrForbiddenChange)
	}
	if in := s.sortedEntries(func(e *entry) bool { return e.role == r }); len(in) > 0 {
		return fmt.Errorf("delete role definition %s (%q): assigned by %s at %q (%d assignments): %w",
			id, r.def.Name, in[0].a.Name, in[0].a.Scope, len(in), ErrConflict)
	}
	delete(s.roles, key)
	s.custom--
	return nil
}

// RoleDefinition returns the built-in or custom role with the given ID (bare
// or fully qualified, ".../roleDefinitions/<id>"; case-insensitive). The
// error wraps ErrRoleNotFound.
func (s *Store) RoleDefinition(id string) (RoleDefinition, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.roles[strings.ToLower(canonicalRoleID(id))]
	if !ok {
		return RoleDefinition{}, fmt.Errorf("role definition %s: %w", id, ErrRoleNotFound)
	}
	return r.def.clone(), nil
}

// RoleDefinitionByName returns the role with the given name, compared
// case-insensitively; built-in roles are also found by their short name
// without "Managed HSM " ("Crypto User"). The error wraps ErrRoleNotFound.
func (s *Store) RoleDefinitionByName(name string) (RoleDefinition, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.roles {
		if strings.EqualFold(r.def.Name, name) || (r.builtIn && builtInNameMatches(r.def.Name, name)) {
			return r.def.clone(), nil
		}
	}
	return RoleDefinition{}, fmt.Errorf("role definition named %q: %w", name, ErrRoleNotFound)
}

// RoleDefinitions returns every role: the nine built-in roles in the ROLES
// doc's order, then the custom roles sorted by name, then ID.
func (s *Store) RoleDefinitions() []RoleDefinition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]RoleDefinition, 0, len(s.roles))
	for _, r := range s.builtIns {
		out = append(out, r.def.clone())
	}
	var custom []RoleDefinition
	for _, r := range s.roles {
		if !r.builtIn {
			custom = append(custom, r.def.clone())
		}
	}
	slices.SortFunc(custom, func(x, y RoleDefinition) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.ID, y.ID))
	})
	return append(out, custom...)
}
