package rbac

import "fmt"

// ForbiddenError is Authorize's denial. It names the principal, the action
// and the target, and unwraps to ErrForbidden.
type ForbiddenError struct {
	Principal string     // the caller's principal object ID
	Action    DataAction // the data action it asked for
	Target    Scope      // the scope it asked for it at
}

// Error reads like the real service's denial: the operation is not allowed.
func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("authorize: operation %q is not allowed for principal %q on %q: %v",
		e.Action, e.Principal, e.Target, ErrForbidden)
}

// Unwrap returns ErrForbidden.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// Authorize returns nil if some assignment of principal, at a scope that
// covers target, has a role granting action (a DataActions entry matches and
// no NotDataActions entry of the same Permission does). Otherwise it returns
// a *ForbiddenError (errors.Is(err, ErrForbidden)).
//
// The target of a key operation is the key's scope "/keys/<name>" (covered by
// assignments at "/", "/keys" and that key); the target of an HSM-wide action
// (security domain, role management, full backup and restore) is "/"
// (covered only by assignments at "/" and "/keys").
//
// Authorize fails closed: an unknown action returns an error wrapping
// ErrUnknownAction and an invalid target one wrapping ErrBadScope; both are
// caller bugs, and neither is ErrForbidden. It allocates nothing on success.
func (s *Store) Authorize(principal string, action DataAction, target Scope) error {
	bit, ok := indexOf(action)
	if !ok {
		return fmt.Errorf("authorize %q: %w", action, ErrUnknownAction)
	}
	targetHSM, targetKey, ok := splitScope(target)
	if !ok {
		return fmt.Errorf("authorize %q: target %q: %w", action, target, ErrBadScope)
	}
	m := actionSet(1) << bit
	s.mu.RLock()
	for _, e := range s.byPrincipal[principal] {
		if e.role.mask&m != 0 && (e.hsm || (!targetHSM && e.key == targetKey)) {
			s.mu.RUnlock()
			return nil
		}
	}
	s.mu.RUnlock()
	return &ForbiddenError{Principal: principal, Action: action, Target: target}
}
