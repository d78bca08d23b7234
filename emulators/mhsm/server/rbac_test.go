package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// The azadmin rbac client is not on the module proxy, so RBAC is tested
// with the documented wire shapes over raw HTTPS.

type assignmentWire struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		Scope            string `json:"scope"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
	} `json:"properties"`
}

type definitionWire struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		RoleName    string `json:"roleName"`
		RoleType    string `json:"type"`
		Permissions []struct {
			DataActions    []string `json:"dataActions"`
			NotDataActions []string `json:"notDataActions"`
		} `json:"permissions"`
		AssignableScopes []string `json:"assignableScopes"`
	} `json:"properties"`
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

const prov = "/providers/Microsoft.Authorization"

// TestRoleAssignmentsOverHTTP lists, creates and removes role assignments
// the way `az keyvault role assignment` does, and checks that they take
// effect on key access.
func TestRoleAssignmentsOverHTTP(t *testing.T) {
	e := newEnv(t, envOpts{activate: true})
	km := e.client(t, keyMgr)
	createRSA(t, km, sqlKey)
	w, err := km.WrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unwrapAs := func(p string) error {
		_, err := e.client(t, p).UnwrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil)
		return err
	}
	if err := unwrapAs(desMI); err == nil {
		t.Fatal("des identity unwraps before any assignment")
	}

	// Role definitions: the nine built-ins at "/" (scope "/" → "//providers").
	st, _, body := e.do(t, admin, http.MethodGet, "/"+prov+"/roleDefinitions", nil)
	if st != 200 {
		t.Fatalf("list definitions: %d %s", st, body)
	}
	defs := decode[struct{ Value []definitionWire }](t, body).Value
	if len(defs) != 9 {
		t.Fatalf("%d role definitions", len(defs))
	}
	var cseu definitionWire
	for _, d := range defs {
		if d.Name == rbac.CryptoServiceEncryptionUserRoleID {
			cseu = d
		}
	}
	if cseu.Properties.RoleName != rbac.CryptoServiceEncryptionUserRoleName || cseu.Properties.RoleType != rbac.BuiltInRoleType ||
		cseu.ID != "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"+rbac.CryptoServiceEncryptionUserRoleID ||
		!slices.Contains(cseu.Properties.Permissions[0].DataActions, string(rbac.KeysUnwrap)) {
		t.Fatalf("CSEU definition %+v", cseu)
	}
	st, _, body = e.do(t, admin, http.MethodGet, prov+"/roleDefinitions/"+rbac.CryptoUserRoleID, nil)
	if st != 200 || decode[definitionWire](t, body).Properties.RoleName != rbac.CryptoUserRoleName {
		t.Fatalf("get definition: %d %s", st, body)
	}

	// Create an assignment at a key scope, with the role's full ID.
	name := "7f5c1d2e-0000-4000-8000-000000000001"
	st, _, body = e.do(t, admin, http.MethodPut, "/keys/"+sqlKey+prov+"/roleAssignments/"+name,
		map[string]any{"properties": map[string]string{"roleDefinitionId": cseu.ID, "principalId": desMI}})
	if st != 201 {
		t.Fatalf("create assignment: %d %s", st, body)
	}
	a := decode[assignmentWire](t, body)
	if a.Name != name || a.Type != "Microsoft.Authorization/roleAssignments" || a.Properties.Scope != "/keys/"+sqlKey ||
		a.Properties.PrincipalID != desMI || a.Properties.RoleDefinitionID != cseu.ID || a.ID != "/keys/"+sqlKey+prov+"/roleAssignments/"+name {
		t.Fatalf("assignment %+v", a)
	}
	if err := unwrapAs(desMI); err != nil {
		t.Fatalf("des identity after the assignment: %v", err)
	}
	st, _, body = e.do(t, auditor, http.MethodGet, "/keys/"+sqlKey+prov+"/roleAssignments/"+name, nil)
	if st != 200 || decode[assignmentWire](t, body).Properties.PrincipalID != desMI {
		t.Fatalf("get assignment: %d %s", st, body)
	}

	// List at "/" shows every assignment; atScope() those at "/" and "/keys";
	// at the key scope with atScope(), those at "/", "/keys" and the key.
	list := func(path string) []assignmentWire {
		st, _, body := e.do(t, auditor, http.MethodGet, path, nil)
		if st != 200 {
			t.Fatalf("list %s: %d %s", path, st, body)
		}
		return decode[struct{ Value []assignmentWire }](t, body).Value
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	names := func(as []assignmentWire) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Properties.PrincipalID)
		}
		slices.Sort(out)
		return out
	}
	if got := names(list("/" + prov + "/roleAssignments")); !slices.Equal(got, sorted(admin, auditor, desMI, keyMgr, officer, sqlMI)) {
		t.Fatalf("all assignments: %v", got)
	}
	if got := names(list("/" + prov + "/roleAssignments?$filter=atScope()")); !slices.Equal(got, sorted(admin, auditor, keyMgr, officer)) {
		t.Fatalf("at /: %v", got)
	}
	if got := names(list("/keys/" + sqlKey + prov + "/roleAssignments?$filter=atScope()")); !slices.Equal(got, sorted(admin, auditor, desMI, keyMgr, officer, sqlMI)) {
		t.Fatalf("at the key: %v", got)
	}
	if got := names(list("/" + prov + "/roleAssignments?$filter=principalId%20eq%20'" + desMI + "'")); !slices.Equal(got, []string{desMI}) {
		t.Fatalf("by principal: %v", got)
	}

	// Refusals.
	tests := []struct {
		name, principal, method, path string
		body                          any
		status                        int
		code                          string
	}{
		{"service identity cannot assign roles", sqlMI, http.MethodPut, "/" + prov + "/roleAssignments/x",
			map[string]any{"properties": map[string]string{"roleDefinitionId": rbac.CryptoUserRoleID, "principalId": sqlMI}}, 403, "Forbidden"},
		{"duplicate", admin, http.MethodPut, "/keys/" + sqlKey + prov + "/roleAssignments/dup",
			map[string]any{"properties": map[string]string{"roleDefinitionId": cseu.ID, "principalId": desMI}}, 409, "Conflict"},
		{"unknown role", admin, http.MethodPut, "/" + prov + "/roleAssignments/y",
			map[string]any{"properties": map[string]string{"roleDefinitionId": "nope", "principalId": desMI}}, 400, "BadParameter"},
		{"missing properties", admin, http.MethodPut, "/" + prov + "/roleAssignments/y", `{}`, 400, "BadParameter"},
		{"malformed body", admin, http.MethodPut, "/" + prov + "/roleAssignments/y", `{"properties":`, 400, "BadParameter"},
		{"bad scope", admin, http.MethodGet, "/keys/a/b" + prov + "/roleAssignments", nil, 400, "BadParameter"},
		{"bad filter", admin, http.MethodGet, "/" + prov + "/roleAssignments?$filter=assignedTo('x')", nil, 400, "BadParameter"},
		{"missing assignment", admin, http.MethodGet, "/" + prov + "/roleAssignments/missing", nil, 404, "RoleAssignmentNotFound"},
		{"missing definition", admin, http.MethodGet, "/" + prov + "/roleDefinitions/missing", nil, 404, "RoleDefinitionNotFound"},
		{"built-in roles are read-only", admin, http.MethodDelete, "/" + prov + "/roleDefinitions/" + rbac.CryptoUserRoleID, nil, 403, "Forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _, body := e.do(t, tc.principal, tc.method, tc.path, tc.body)
			if st != tc.status || decodeErr(t, body).Error.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", st, body, tc.status, tc.code)
			}
		})
	}

	// Remove the assignment: access goes with it.
	st, _, body = e.do(t, admin, http.MethodDelete, "/keys/"+sqlKey+prov+"/roleAssignments/"+name, nil)
	if st != 200 || decode[assignmentWire](t, body).Name != name {
		t.Fatalf("delete assignment: %d %s", st, body)
	}
	if err := unwrapAs(desMI); err == nil {
		t.Fatal("des identity still unwraps after the assignment was removed")
	} else {
		wantResponseError(t, err, 403, "Forbidden", "ForbiddenByRbac")
	}
}

// TestCustomRoleDefinition creates, assigns and deletes a custom role.
func TestCustomRoleDefinition(t *testing.T) {
	e := newEnv(t, envOpts{activate: true})
	createRSA(t, e.client(t, keyMgr), sqlKey)
	id := "11111111-2222-3333-4444-555555555555"
	st, _, body := e.do(t, admin, http.MethodPut, "/"+prov+"/roleDefinitions/"+id, map[string]any{"properties": map[string]any{
		"roleName": "Key Reader", "description": "reads keys", "type": "CustomRole",
		"permissions":      []map[string]any{{"dataActions": []string{string(rbac.KeysRead)}}},
		"assignableScopes": []string{"/"}}})
	if st != 201 {
		t.Fatalf("put definition: %d %s", st, body)
	}
	d := decode[definitionWire](t, body)
	if d.Name != id || d.Properties.RoleType != rbac.CustomRoleType || d.Properties.RoleName != "Key Reader" {
		t.Fatalf("definition %+v", d)
	}
	st, _, body = e.do(t, admin, http.MethodPut, "/"+prov+"/roleAssignments/r1",
		map[string]any{"properties": map[string]string{"roleDefinitionId": id, "principalId": "reader"}})
	if st != 201 {
		t.Fatalf("assign custom role: %d %s", st, body)
	}
	if _, err := e.client(t, "reader").GetKey(ctx, sqlKey, "", nil); err != nil {
		t.Fatalf("custom role grants keys/read: %v", err)
	}
	if st, _, body = e.do(t, admin, http.MethodDelete, "/"+prov+"/roleDefinitions/"+id, nil); st != 409 {
		t.Fatalf("delete an assigned role: %d %s", st, body)
	}
	if st, _, _ = e.do(t, admin, http.MethodDelete, "/"+prov+"/roleAssignments/r1", nil); st != 200 {
		t.Fatal("delete assignment")
	}
	if st, _, body = e.do(t, admin, http.MethodDelete, "/"+prov+"/roleDefinitions/"+id, nil); st != 200 || decode[definitionWire](t, body).Name != id {
		t.Fatalf("delete definition: %d %s", st, body)
	}
	st, _, body = e.do(t, admin, http.MethodPut, "/"+prov+"/roleDefinitions/bad", map[string]any{"properties": map[string]any{
		"roleName": "Bad", "permissions": []map[string]any{{"dataActions": []string{"Microsoft.KeyVault/vaults/keys/read"}}}}})
	if st != 400 {
		t.Fatalf("unknown data action: %d %s", st, body)
	}
}
