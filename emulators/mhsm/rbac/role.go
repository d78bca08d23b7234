package rbac

import (
	"fmt"
	"strings"
)

// Role definition types, as the Key Vault data-plane API reports them.
const (
	BuiltInRoleType = "AKVBuiltInRole"
	CustomRoleType  = "CustomRole"
)

// RoleDefinition is a named set of permissions.
type RoleDefinition struct {
	// ID identifies the role: a GUID for the built-in roles, any non-empty
	// string without '/' (conventionally a GUID) for custom roles. IDs are
	// compared case-insensitively.
	ID string
	// Name is the role name, unique in a Store (case-insensitively).
	Name        string
	Description string
	// Type is BuiltInRoleType or CustomRoleType.
	Type string
	// Permissions are united: the role grants an action if any Permission
	// does.
	Permissions []Permission
	// AssignableScopes are the scopes at (or under) which the role may be
	// assigned; empty means "/" (anywhere). Built-in roles have "/".
	AssignableScopes []Scope
}

// Permission grants DataActions minus NotDataActions. Both may hold wildcard
// patterns (see DataAction). NotDataActions only subtract within this
// Permission: they are not a deny, and another Permission or another
// assignment can still grant the action.
type Permission struct {
	DataActions    []DataAction
	NotDataActions []DataAction
}

// Allows reports whether p grants a: some DataActions entry matches and no
// NotDataActions entry does.
func (p Permission) Allows(a DataAction) bool {
	granted := false
	for _, d := range p.DataActions {
		if d.Matches(a) {
			granted = true
			break
		}
	}
	if !granted {
		return false
	}
	for _, n := range p.NotDataActions {
		if n.Matches(a) {
			return false
		}
	}
	return true
}

// Allows reports whether any of r's Permissions grants a.
func (r RoleDefinition) Allows(a DataAction) bool {
	for _, p := range r.Permissions {
		if p.Allows(a) {
			return true
		}
	}
	return false
}

// clone returns a deep copy of r.
func (r RoleDefinition) clone() RoleDefinition {
	c := r
	c.Permissions = make([]Permission, len(r.Permissions))
	for i, p := range r.Permissions {
		c.Permissions[i] = Permission{
			DataActions:    append([]DataAction(nil), p.DataActions...),
			NotDataActions: append([]DataAction(nil), p.NotDataActions...),
		}
	}
	c.AssignableScopes = append([]Scope(nil), r.AssignableScopes...)
	return c
}

// mask returns the known actions r grants.
func (r RoleDefinition) mask() actionSet {
	var s actionSet
	for _, p := range r.Permissions {
		s |= setOf(p.DataActions) &^ setOf(p.NotDataActions)
	}
	return s
}

// assignableAt reports whether r may be assigned at scope.
func (r RoleDefinition) assignableAt(scope Scope) bool {
	if len(r.AssignableScopes) == 0 {
		return true
	}
	for _, s := range r.AssignableScopes {
		if s.Covers(scope) {
			return true
		}
	}
	return false
}

// validateCustom checks a custom role definition and returns the copy a
// Store keeps: Type set to CustomRoleType and AssignableScopes defaulted to
// "/". Errors wrap ErrInvalidRoleDefinition or ErrBadScope.
func validateCustom(def RoleDefinition) (RoleDefinition, error) {
	if def.ID == "" || strings.Contains(def.ID, "/") {
		return RoleDefinition{}, fmt.Errorf("role definition id %q: must be non-empty and contain no '/': %w", def.ID, ErrInvalidRoleDefinition)
	}
	if strings.TrimSpace(def.Name) == "" {
		return RoleDefinition{}, fmt.Errorf("role definition %s: empty name: %w", def.ID, ErrInvalidRoleDefinition)
	}
	switch def.Type {
	case "", CustomRoleType:
	default:
		return RoleDefinition{}, fmt.Errorf("role definition %s: type %q: a custom role must have type %q: %w", def.ID, def.Type, CustomRoleType, ErrInvalidRoleDefinition)
	}
	for _, p := range def.Permissions {
		for _, list := range [][]DataAction{p.DataActions, p.NotDataActions} {
			for _, a := range list {
				if !validPattern(a) {
					return RoleDefinition{}, fmt.Errorf("role definition %s: data action %q: not a Managed HSM data action or a trailing-\"/*\" wildcard of one: %w", def.ID, a, ErrInvalidRoleDefinition)
				}
			}
		}
	}
	for _, s := range def.AssignableScopes {
		if err := s.Validate(); err != nil {
			return RoleDefinition{}, fmt.Errorf("role definition %s: assignable scope: %w", def.ID, err)
		}
	}
	c := def.clone()
	c.Type = CustomRoleType
	if len(c.AssignableScopes) == 0 {
		c.AssignableScopes = []Scope{ScopeHSM}
	}
	return c, nil
}

// canonicalRoleID strips the path of a fully qualified role definition ID
// ("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/<id>",
// the form the Key Vault REST API uses) down to the bare ID.
func canonicalRoleID(id string) string {
	const seg = "/roledefinitions/"
	if i := strings.LastIndex(strings.ToLower(id), seg); i >= 0 {
		return id[i+len(seg):]
	}
	return id
}
