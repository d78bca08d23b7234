package mhsm

import (
	"context"
	"fmt"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// writeRBAC runs a role-management write against the write region's store
// and replicates the store. Requires action at "/".
func (h *HSM) writeRBAC(c Caller, action rbac.DataAction, f func(*rbac.Store) error) error {
	if err := h.checkActive(); err != nil {
		return err
	}
	t, err := h.writeTarget()
	if err != nil {
		return err
	}
	if err := authorize(t, c, action, rbac.ScopeHSM); err != nil {
		return err
	}
	if err := f(t.rbac); err != nil {
		return err
	}
	t.rbacSeq = h.nextSeq()
	h.replicateRBAC(t)
	return nil
}

// CreateRoleAssignment assigns a role to a principal at a scope ("/",
// "/keys" or "/keys/<name>"). Requires roleAssignments/write (Administrator,
// Crypto Officer, Policy Administrator).
func (h *HSM) CreateRoleAssignment(ctx context.Context, c Caller, a rbac.Assignment) (rbac.Assignment, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out rbac.Assignment
	err := h.writeRBAC(c, rbac.RoleAssignmentsWrite, func(s *rbac.Store) error {
		if err := s.Assign(a); err != nil {
			return err
		}
		var err error
		out, err = s.Get(a.Scope, a.Name)
		return err
	})
	if err != nil {
		return rbac.Assignment{}, fmt.Errorf("create role assignment %s: %w", a.Name, err)
	}
	return out, nil
}

// DeleteRoleAssignment removes a role assignment. Requires roleAssignments/delete.
func (h *HSM) DeleteRoleAssignment(ctx context.Context, c Caller, scope rbac.Scope, name string) (rbac.Assignment, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out rbac.Assignment
	err := h.writeRBAC(c, rbac.RoleAssignmentsDelete, func(s *rbac.Store) error {
		var err error
		if out, err = s.Get(scope, name); err != nil {
			return err
		}
		return s.Remove(scope, name)
	})
	if err != nil {
		return rbac.Assignment{}, fmt.Errorf("delete role assignment %s: %w", name, err)
	}
	return out, nil
}

// GetRoleAssignment returns one role assignment. Requires roleAssignments/read.
func (h *HSM) GetRoleAssignment(ctx context.Context, c Caller, scope rbac.Scope, name string) (rbac.Assignment, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.RoleAssignmentsRead, rbac.ScopeHSM)
	if err != nil {
		return rbac.Assignment{}, fmt.Errorf("get role assignment %s: %w", name, err)
	}
	a, err := r.rbac.Get(scope, name)
	if err != nil {
		return rbac.Assignment{}, fmt.Errorf("get role assignment %s: %w", name, err)
	}
	return a, nil
}

// ListRoleAssignments returns the assignments in effect at a scope (see
// rbac.Store.List). Requires roleAssignments/read.
func (h *HSM) ListRoleAssignments(ctx context.Context, c Caller, scope rbac.Scope) ([]rbac.Assignment, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.RoleAssignmentsRead, rbac.ScopeHSM)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	return r.rbac.List(scope), nil
}

// ListAllRoleAssignments returns every role assignment at every scope,
// sorted by scope, then name (rbac.Store.ListAll). Requires
// roleAssignments/read, like ListRoleAssignments.
func (h *HSM) ListAllRoleAssignments(ctx context.Context, c Caller) ([]rbac.Assignment, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.RoleAssignmentsRead, rbac.ScopeHSM)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	return r.rbac.ListAll(), nil
}

// RoleDefinitions returns the built-in and custom role definitions.
// Requires roleDefinitions/read.
func (h *HSM) RoleDefinitions(ctx context.Context, c Caller) ([]rbac.RoleDefinition, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.RoleDefinitionsRead, rbac.ScopeHSM)
	if err != nil {
		return nil, fmt.Errorf("list role definitions: %w", err)
	}
	return r.rbac.RoleDefinitions(), nil
}

// RoleDefinition returns one role definition by ID. Requires roleDefinitions/read.
func (h *HSM) RoleDefinition(ctx context.Context, c Caller, id string) (rbac.RoleDefinition, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.read(c, rbac.RoleDefinitionsRead, rbac.ScopeHSM)
	if err != nil {
		return rbac.RoleDefinition{}, fmt.Errorf("get role definition %s: %w", id, err)
	}
	d, err := r.rbac.RoleDefinition(id)
	if err != nil {
		return rbac.RoleDefinition{}, fmt.Errorf("get role definition %s: %w", id, err)
	}
	return d, nil
}

// PutRoleDefinition creates or replaces a custom role. Requires roleDefinitions/write.
func (h *HSM) PutRoleDefinition(ctx context.Context, c Caller, def rbac.RoleDefinition) (rbac.RoleDefinition, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out rbac.RoleDefinition
	err := h.writeRBAC(c, rbac.RoleDefinitionsWrite, func(s *rbac.Store) error {
		if err := s.PutRoleDefinition(def); err != nil {
			return err
		}
		var err error
		out, err = s.RoleDefinition(def.ID)
		return err
	})
	if err != nil {
		return rbac.RoleDefinition{}, fmt.Errorf("put role definition %s: %w", def.ID, err)
	}
	return out, nil
}

// DeleteRoleDefinition deletes a custom role. Requires roleDefinitions/delete.
func (h *HSM) DeleteRoleDefinition(ctx context.Context, c Caller, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.writeRBAC(c, rbac.RoleDefinitionsDelete, func(s *rbac.Store) error { return s.DeleteRoleDefinition(id) })
	if err != nil {
		return fmt.Errorf("delete role definition %s: %w", id, err)
	}
	return nil
}
