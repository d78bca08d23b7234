package server

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// The Key Vault data-plane RBAC wire shapes (the azadmin rbac client's
// RoleAssignment, RoleDefinition and their create parameters).

const (
	roleAssignmentType = "Microsoft.Authorization/roleAssignments"
	roleDefinitionType = "Microsoft.Authorization/roleDefinitions"
	// roleDefinitionPrefix qualifies a role definition ID the way the
	// Managed HSM data plane does.
	roleDefinitionPrefix = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
)

type roleAssignmentJSON struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Properties roleAssignmentPropsJSON `json:"properties"`
}

type roleAssignmentPropsJSON struct {
	Scope            string `json:"scope,omitempty"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
}

type roleAssignmentCreateJSON struct {
	Properties *roleAssignmentPropsJSON `json:"properties"`
}

type roleDefinitionJSON struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Properties roleDefinitionPropsJSON `json:"properties"`
}

type roleDefinitionPropsJSON struct {
	RoleName         string           `json:"roleName"`
	Description      string           `json:"description"`
	RoleType         string           `json:"type"`
	Permissions      []permissionJSON `json:"permissions"`
	AssignableScopes []string         `json:"assignableScopes"`
}

type permissionJSON struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type roleDefinitionCreateJSON struct {
	Properties *roleDefinitionPropsJSON `json:"properties"`
}

func assignmentJSON(a rbac.Assignment) roleAssignmentJSON {
	return roleAssignmentJSON{ID: a.ID, Name: a.Name, Type: roleAssignmentType,
		Properties: roleAssignmentPropsJSON{Scope: string(a.Scope), RoleDefinitionID: roleDefinitionPrefix + a.RoleDefinitionID, PrincipalID: a.Principal}}
}

func definitionJSON(d rbac.RoleDefinition) roleDefinitionJSON {
	out := roleDefinitionJSON{ID: roleDefinitionPrefix + d.ID, Name: d.ID, Type: roleDefinitionType,
		Properties: roleDefinitionPropsJSON{RoleName: d.Name, Description: d.Description, RoleType: d.Type,
			Permissions: []permissionJSON{}, AssignableScopes: []string{}}}
	for _, p := range d.Permissions {
		pj := permissionJSON{Actions: []string{}, NotActions: []string{}, DataActions: []string{}, NotDataActions: []string{}}
		for _, a := range p.DataActions {
			pj.DataActions = append(pj.DataActions, string(a))
		}
		for _, a := range p.NotDataActions {
			pj.NotDataActions = append(pj.NotDataActions, string(a))
		}
		out.Properties.Permissions = append(out.Properties.Permissions, pj)
	}
	for _, sc := range d.AssignableScopes {
		out.Properties.AssignableScopes = append(out.Properties.AssignableScopes, string(sc))
	}
	return out
}

func parseScope(s string) (rbac.Scope, error) {
	sc, err := rbac.ParseScope(s)
	if err != nil {
		return "", badParameter("%v", err)
	}
	return sc, nil
}

// roleFilter is a parsed $filter of a role-assignment list: atScope(),
// principalId eq '<id>', or both joined by "and".
type roleFilter struct {
	atScope   bool
	principal string
}

var (
	principalFilterRE = regexp.MustCompile(`^principalId eq '([^']*)'$`)
	roleNameFilterRE  = regexp.MustCompile(`^roleName eq '([^']*)'$`)
)

func parseRoleFilter(f string) (roleFilter, error) {
	var rf roleFilter
	if strings.TrimSpace(f) == "" {
		return rf, nil
	}
	for _, part := range strings.Split(f, " and ") {
		part = strings.TrimSpace(part)
		switch m := principalFilterRE.FindStringSubmatch(part); {
		case part == "atScope()":
			rf.atScope = true
		case m != nil:
			rf.principal = m[1]
		default:
			return rf, badParameter("$filter %.100q: supported are atScope() and principalId eq '<id>'", f)
		}
	}
	return rf, nil
}

// listRoleAssignments: GET /{scope}/providers/Microsoft.Authorization/roleAssignments.
// With atScope() it lists the assignments in effect at the scope (at it and
// above, rbac.Store.List); without, also those below it, so that the list
// at "/" shows every assignment (as `az keyvault role assignment list`).
func (s *handler) listRoleAssignments(q *request) (result, error) {
	scope, err := parseScope(q.params[0])
	if err != nil {
		return result{}, err
	}
	rf, err := parseRoleFilter(q.r.URL.Query().Get("$filter"))
	if err != nil {
		return result{}, err
	}
	var as []rbac.Assignment
	if rf.atScope {
		as, err = s.h.ListRoleAssignments(q.ctx, q.caller, scope)
	} else {
		var all []rbac.Assignment
		all, err = s.h.ListAllRoleAssignments(q.ctx, q.caller)
		for _, a := range all {
			if a.Scope.Covers(scope) || scope.Covers(a.Scope) {
				as = append(as, a)
			}
		}
	}
	if err != nil {
		return result{}, err
	}
	items := []roleAssignmentJSON{}
	for _, a := range as {
		if rf.principal == "" || a.Principal == rf.principal {
			items = append(items, assignmentJSON(a))
		}
	}
	return ok(listResult[roleAssignmentJSON]{Value: items})
}

// getRoleAssignment: GET /{scope}/providers/Microsoft.Authorization/roleAssignments/{name}.
func (s *handler) getRoleAssignment(q *request) (result, error) {
	scope, err := parseScope(q.params[0])
	if err != nil {
		return result{}, err
	}
	a, err := s.h.GetRoleAssignment(q.ctx, q.caller, scope, q.params[1])
	if err != nil {
		return result{}, err
	}
	return ok(assignmentJSON(a))
}

// putRoleAssignment: PUT /{scope}/providers/Microsoft.Authorization/roleAssignments/{name}
// with {"properties":{"roleDefinitionId":…,"principalId":…}} → 201.
func (s *handler) putRoleAssignment(q *request) (result, error) {
	scope, err := parseScope(q.params[0])
	if err != nil {
		return result{}, err
	}
	var req roleAssignmentCreateJSON
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if req.Properties == nil || req.Properties.PrincipalID == "" || req.Properties.RoleDefinitionID == "" {
		return result{}, badParameter("properties.roleDefinitionId and properties.principalId are required")
	}
	a, err := s.h.CreateRoleAssignment(q.ctx, q.caller, rbac.Assignment{Name: q.params[1], Principal: req.Properties.PrincipalID,
		RoleDefinitionID: req.Properties.RoleDefinitionID, Scope: scope})
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusCreated, v: assignmentJSON(a)}, nil
}

// deleteRoleAssignment: DELETE /{scope}/providers/Microsoft.Authorization/roleAssignments/{name}
// → 200 with the removed assignment.
func (s *handler) deleteRoleAssignment(q *request) (result, error) {
	scope, err := parseScope(q.params[0])
	if err != nil {
		return result{}, err
	}
	a, err := s.h.DeleteRoleAssignment(q.ctx, q.caller, scope, q.params[1])
	if err != nil {
		return result{}, err
	}
	return ok(assignmentJSON(a))
}

// listRoleDefinitions: GET /{scope}/providers/Microsoft.Authorization/roleDefinitions,
// the built-in and custom roles assignable at the scope; $filter
// "roleName eq '<name>'" narrows by name.
func (s *handler) listRoleDefinitions(q *request) (result, error) {
	scope, err := parseScope(q.params[0])
	if err != nil {
		return result{}, err
	}
	name := ""
	if f := strings.TrimSpace(q.r.URL.Query().Get("$filter")); f != "" {
		m := roleNameFilterRE.FindStringSubmatch(f)
		if m == nil {
			return result{}, badParameter("$filter %.100q: supported is roleName eq '<name>'", f)
		}
		name = m[1]
	}
	defs, err := s.h.RoleDefinitions(q.ctx, q.caller)
	if err != nil {
		return result{}, err
	}
	items := []roleDefinitionJSON{}
	for _, d := range defs {
		if name != "" && !strings.EqualFold(d.Name, name) {
			continue
		}
		if assignableAt(d, scope) {
			items = append(items, definitionJSON(d))
		}
	}
	return ok(listResult[roleDefinitionJSON]{Value: items})
}

func assignableAt(d rbac.RoleDefinition, scope rbac.Scope) bool {
	if len(d.AssignableScopes) == 0 {
		return true
	}
	for _, a := range d.AssignableScopes {
		if a.Covers(scope) {
			return true
		}
	}
	return false
}

// getRoleDefinition: GET /{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}.
func (s *handler) getRoleDefinition(q *request) (result, error) {
	if _, err := parseScope(q.params[0]); err != nil {
		return result{}, err
	}
	d, err := s.h.RoleDefinition(q.ctx, q.caller, q.params[1])
	if err != nil {
		if errors.Is(err, rbac.ErrRoleNotFound) {
			return result{}, newAPIError(http.StatusNotFound, CodeRoleAbsent, "%v", err)
		}
		return result{}, err
	}
	return ok(definitionJSON(d))
}

// putRoleDefinition: PUT /{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}
// creates or replaces a custom role → 201.
func (s *handler) putRoleDefinition(q *request) (result, error) {
	scope, err := parseScope(q.params[0])
	if err != nil {
		return result{}, err
	}
	var req roleDefinitionCreateJSON
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if req.Properties == nil {
		return result{}, badParameter("properties is required")
	}
	p := req.Properties
	def := rbac.RoleDefinition{ID: q.params[1], Name: p.RoleName, Description: p.Description, Type: p.RoleType}
	for _, pj := range p.Permissions {
		if len(pj.Actions) > 0 || len(pj.NotActions) > 0 {
			return result{}, badParameter("a Managed HSM role has dataActions only (actions are control-plane permissions)")
		}
		var perm rbac.Permission
		for _, a := range pj.DataActions {
			perm.DataActions = append(perm.DataActions, rbac.DataAction(a))
		}
		for _, a := range pj.NotDataActions {
			perm.NotDataActions = append(perm.NotDataActions, rbac.DataAction(a))
		}
		def.Permissions = append(def.Permissions, perm)
	}
	for _, sc := range p.AssignableScopes {
		def.AssignableScopes = append(def.AssignableScopes, rbac.Scope(sc))
	}
	if len(def.AssignableScopes) == 0 {
		def.AssignableScopes = []rbac.Scope{scope}
	}
	out, err := s.h.PutRoleDefinition(q.ctx, q.caller, def)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusCreated, v: definitionJSON(out)}, nil
}

// deleteRoleDefinition: DELETE /{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}
// → 200 with the deleted role.
func (s *handler) deleteRoleDefinition(q *request) (result, error) {
	if _, err := parseScope(q.params[0]); err != nil {
		return result{}, err
	}
	d, err := s.h.RoleDefinition(q.ctx, q.caller, q.params[1])
	if err != nil {
		if errors.Is(err, rbac.ErrRoleNotFound) {
			return result{}, newAPIError(http.StatusNotFound, CodeRoleAbsent, "%v", err)
		}
		return result{}, err
	}
	if err := s.h.DeleteRoleDefinition(q.ctx, q.caller, q.params[1]); err != nil {
		return result{}, err
	}
	return ok(definitionJSON(d))
}
