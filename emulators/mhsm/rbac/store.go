package rbac

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Assignment grants a principal a role at a scope.
type Assignment struct {
	// ID is the assignment's resource ID. Assign keeps a caller-set ID and
	// fills an empty one with "<scope>/providers/Microsoft.Authorization/roleAssignments/<name>"
	// (the scope's trailing "/" dropped; the Key Vault data-plane form for
	// "/", UNCONFIRMED for key scopes).
	ID string
	// Name is a GUID-like string chosen by the caller, unique in the Store
	// (exact comparison), without '/'.
	Name string
	// Principal is the principal's object ID (user, group, service
	// principal or managed identity), compared exactly.
	Principal string
	// RoleDefinitionID names the role, bare or fully qualified; Assign
	// stores the role's bare ID.
	RoleDefinitionID string
	// Scope is where the assignment applies.
	Scope Scope
}

// compiledRole is a role definition with the known actions it grants.
type compiledRole struct {
	def     RoleDefinition
	mask    actionSet
	builtIn bool
}

// entry is a stored assignment.
type entry struct {
	a    Assignment
	hsm  bool   // HSM-wide scope
	key  string // key name of a key scope
	role *compiledRole
}

// Store holds the custom role definitions and the role assignments of one
// Managed HSM (one region's copy of it), and answers Authorize.
//
// A Store is safe for concurrent use. Reads (Authorize, Get, List, ...) take
// a read lock; writes take the write lock. Every returned value is a copy:
// changing it does not change the Store.
type Store struct {
	mu   sync.RWMutex
	opts Options

	builtIns []*compiledRole          // in the ROLES doc's order
	roles    map[string]*compiledRole // lower-cased ID → built-in or custom role
	custom   int                      // number of custom roles

	byName      map[string]*entry   // assignment name → assignment
	byPrincipal map[string][]*entry // principal → its assignments
	hsmCount    int                 // assignments at "/" or "/keys"
	keyCount    map[string]int      // key name → assignments at "/keys/<name>"
}

// NewStore returns a Store with the built-in roles of opts (see BuiltInRoles),
// no custom roles and no assignments. Limits <= 0 in opts take their defaults.
func NewStore(opts Options) *Store {
	s := &Store{
		opts:        opts.withDefaults(),
		roles:       make(map[string]*compiledRole),
		byName:      make(map[string]*entry),
		byPrincipal: make(map[string][]*entry),
		keyCount:    make(map[string]int),
	}
	for _, def := range BuiltInRoles(s.opts) {
		r := &compiledRole{def: def, mask: def.mask(), builtIn: true}
		s.builtIns = append(s.builtIns, r)
		s.roles[strings.ToLower(def.ID)] = r
	}
	return s
}

// Options returns the Store's options with every default filled in.
func (s *Store) Options() Options { return s.opts }

// Clone returns a deep copy of s: the same options, custom roles and
// assignments, sharing nothing with s. Later writes to either Store do not
// affect the other.
func (s *Store) Clone() *Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := NewStore(s.opts)
	for id, r := range s.roles {
		if !r.builtIn {
			c.roles[id] = &compiledRole{def: r.def.clone(), mask: r.mask}
		}
	}
	c.custom = s.custom
	for _, e := range s.sortedEntries(nil) {
		c.insert(e.a, c.roles[strings.ToLower(e.a.RoleDefinitionID)])
	}
	return c
}

// Assign adds a role assignment. Errors:
//   - ErrInvalidAssignment: empty Name or Principal, or '/' in Name;
//   - ErrBadScope: an invalid Scope, or one outside the role's assignable scopes;
//   - ErrRoleNotFound: RoleDefinitionID names no role;
//   - ErrConflict: the Name is taken, or the same principal already has the
//     same role at exactly the same scope string (Azure's RoleAssignmentExists;
//     "/" and "/keys" count as different strings here);
//   - ErrLimitExceeded: the HSM scope ("/" and "/keys" together) or the key
//     scope already holds its limit of assignments (Options).
func (s *Store) Assign(a Assignment) error {
	if a.Name == "" || strings.Contains(a.Name, "/") {
		return fmt.Errorf("assign %q: name must be non-empty and contain no '/': %w", a.Name, ErrInvalidAssignment)
	}
	if a.Principal == "" {
		return fmt.Errorf("assign %s: empty principal: %w", a.Name, ErrInvalidAssignment)
	}
	if err := a.Scope.Validate(); err != nil {
		return fmt.Errorf("assign %s: %w", a.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[strings.ToLower(canonicalRoleID(a.RoleDefinitionID))]
	if !ok {
		return fmt.Errorf("assign %s: role definition %q: %w", a.Name, a.RoleDefinitionID, ErrRoleNotFound)
	}
	if !r.def.assignableAt(a.Scope) {
		return fmt.Errorf("assign %s: role %q cannot be assigned at %q (assignable scopes %v): %w",
			a.Name, r.def.Name, a.Scope, r.def.AssignableScopes, ErrBadScope)
	}
	if _, dup := s.byName[a.Name]; dup {
		return fmt.Errorf("assign %s: an assignment with this name exists: %w", a.Name, ErrConflict)
	}
	for _, e := range s.byPrincipal[a.Principal] {
		if e.role == r && e.a.Scope == a.Scope {
			return fmt.Errorf("assign %s: RoleAssignmentExists: principal %q already has role %q at %q (assignment %s): %w",
				a.Name, a.Principal, r.def.Name, a.Scope, e.a.Name, ErrConflict)
		}
	}
	if key, isKey := a.Scope.KeyName(); isKey {
		if n := s.keyCount[key]; n >= s.opts.MaxKeyScopeAssignments {
			return fmt.Errorf("assign %s: key scope %q holds %d assignments, the limit: %w", a.Name, a.Scope, n, ErrLimitExceeded)
		}
	} else if s.hsmCount >= s.opts.MaxHSMScopeAssignments {
		return fmt.Errorf("assign %s: HSM scope holds %d assignments, the limit: %w", a.Name, s.hsmCount, ErrLimitExceeded)
	}
	s.insert(a, r)
	return nil
}

// insert stores a, granting role r. The caller holds the write lock and has
// validated a.
func (s *Store) insert(a Assignment, r *compiledRole) {
	a.RoleDefinitionID = r.def.ID
	if a.ID == "" {
		a.ID = strings.TrimSuffix(string(a.Scope), "/") + "/providers/Microsoft.Authorization/roleAssignments/" + a.Name
	}
	e := &entry{a: a, role: r}
	if key, isKey := a.Scope.KeyName(); isKey {
		e.key = key
		s.keyCount[key]++
	} else {
		e.hsm = true
		s.hsmCount++
	}
	s.byName[a.Name] = e
	s.byPrincipal[a.Principal] = append(s.byPrincipal[a.Principal], e)
}

// Remove deletes the assignment called name at scope. It returns an error
// wrapping ErrBadScope for an invalid scope, and ErrAssignmentNotFound if no
// assignment has that name at exactly that scope.
func (s *Store) Remove(scope Scope, name string) error {
	if err := scope.Validate(); err != nil {
		return fmt.Errorf("remove assignment %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byName[name]
	if !ok || e.a.Scope != scope {
		return fmt.Errorf("remove assignment %s at %q: %w", name, scope, ErrAssignmentNotFound)
	}
	delete(s.byName, name)
	list := s.byPrincipal[e.a.Principal]
	list = slices.DeleteFunc(list, func(x *entry) bool { return x == e })
	if len(list) == 0 {
		delete(s.byPrincipal, e.a.Principal)
	} else {
		s.byPrincipal[e.a.Principal] = list
	}
	if e.hsm {
		s.hsmCount--
	} else {
		s.keyCount[e.key]--
		if s.keyCount[e.key] == 0 {
			delete(s.keyCount, e.key)
		}
	}
	return nil
}

// Get returns the assignment called name at exactly scope. Errors wrap
// ErrBadScope or ErrAssignmentNotFound.
func (s *Store) Get(scope Scope, name string) (Assignment, error) {
	if err := scope.Validate(); err != nil {
		return Assignment{}, fmt.Errorf("get assignment %s: %w", name, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.byName[name]
	if !ok || e.a.Scope != scope {
		return Assignment{}, fmt.Errorf("get assignment %s at %q: %w", name, scope, ErrAssignmentNotFound)
	}
	return e.a, nil
}

// List returns the assignments in effect at scope, like Azure's list with
// the atScope() filter: those at scope itself and those at every scope that
// covers it. For "/keys/K" that is the assignments at "/", "/keys" and
// "/keys/K"; for "/" or "/keys" it is the assignments at "/" and "/keys"
// (assignments at key scopes are not included). An invalid scope gives nil.
// The result is sorted by scope, then name.
func (s *Store) List(scope Scope) []Assignment {
	if scope.Validate() != nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return assignments(s.sortedEntries(func(e *entry) bool { return e.a.Scope.Covers(scope) }))
}

// ListAll returns every assignment, sorted by scope, then name.
func (s *Store) ListAll() []Assignment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return assignments(s.sortedEntries(nil))
}

// sortedEntries returns the entries keep accepts (all if keep is nil),
// sorted by scope, then name. The caller holds a lock.
func (s *Store) sortedEntries(keep func(*entry) bool) []*entry {
	var out []*entry
	for _, e := range s.byName {
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y *entry) int {
		return cmp.Or(cmp.Compare(x.a.Scope, y.a.Scope), cmp.Compare(x.a.Name, y.a.Name))
	})
	return out
}

func assignments(es []*entry) []Assignment {
	out := make([]Assignment, len(es))
	for i, e := range es {
		out[i] = e.a
	}
	return out
}
