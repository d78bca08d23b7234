package rbac

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of
// them (Authorize's denial additionally carries a *ForbiddenError); test with
// errors.Is.
var (
	// ErrForbidden: no assignment of the principal grants the action at the
	// target (HTTP 403 Forbidden in the real service).
	ErrForbidden = errors.New("forbidden")
	// ErrRoleNotFound: no role definition has the given ID or name.
	ErrRoleNotFound = errors.New("role definition not found")
	// ErrAssignmentNotFound: no role assignment has the given name at the
	// given scope.
	ErrAssignmentNotFound = errors.New("role assignment not found")
	// ErrConflict: the write clashes with existing state — a duplicate
	// assignment name, an identical principal+role+scope assignment (Azure's
	// RoleAssignmentExists), a role name already taken, or deleting a role
	// definition that is still assigned.
	ErrConflict = errors.New("conflict")
	// ErrLimitExceeded: an object limit of facts §3b would be exceeded.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrBadScope: a scope is not "/", "/keys" or "/keys/<key-name>", or an
	// assignment scope is outside the role's assignable scopes.
	ErrBadScope = errors.New("bad scope")
	// ErrForbiddenChange: an attempt to create, overwrite or delete a
	// built-in role definition.
	ErrForbiddenChange = errors.New("built-in role definitions cannot be changed")
	// ErrInvalidRoleDefinition: a custom role definition is malformed (empty
	// ID or name, unknown data action, bad wildcard, wrong type).
	ErrInvalidRoleDefinition = errors.New("invalid role definition")
	// ErrInvalidAssignment: a role assignment is malformed (empty name or
	// principal, '/' in the name).
	ErrInvalidAssignment = errors.New("invalid role assignment")
	// ErrUnknownAction: Authorize was asked about a data action that is not
	// one of AllDataActions (a caller bug; the request is denied).
	ErrUnknownAction = errors.New("unknown data action")
)
