package rbac_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

func mustAssign(t testing.TB, s *rbac.Store, a rbac.Assignment) {
	t.Helper()
	if err := s.Assign(a); err != nil {
		t.Fatalf("Assign(%+v): %v", a, err)
	}
}

func mustPutRole(t testing.TB, s *rbac.Store, def rbac.RoleDefinition) {
	t.Helper()
	if err := s.PutRoleDefinition(def); err != nil {
		t.Fatalf("PutRoleDefinition(%s): %v", def.ID, err)
	}
}

func allowed(t *testing.T, s *rbac.Store, p string, a rbac.DataAction, target rbac.Scope) {
	t.Helper()
	if err := s.Authorize(p, a, target); err != nil {
		t.Errorf("Authorize(%s, %s, %s) = %v, want allowed", p, a, target, err)
	}
}

func denied(t *testing.T, s *rbac.Store, p string, a rbac.DataAction, target rbac.Scope) {
	t.Helper()
	if err := s.Authorize(p, a, target); !errors.Is(err, rbac.ErrForbidden) {
		t.Errorf("Authorize(%s, %s, %s) = %v, want ErrForbidden", p, a, target, err)
	}
}

const (
	sqlKey  rbac.Scope = "/keys/Contoso-SQLMI-CMK"
	diskKey rbac.Scope = "/keys/Contoso-DISK-CMK"
)

// TestSeedMistakeCryptoOfficer is the seed's "#1 mistake": a key-management
// team given Crypto Officer cannot create or rotate keys; Crypto User can.
func TestSeedMistakeCryptoOfficer(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	officer, _ := s.RoleDefinitionByName("Crypto Officer")
	user, _ := s.RoleDefinitionByName("Crypto User")
	mustAssign(t, s, rbac.Assignment{Name: "a1", Principal: "kmt-officer", RoleDefinitionID: officer.ID, Scope: "/"})
	mustAssign(t, s, rbac.Assignment{Name: "a2", Principal: "kmt-user", RoleDefinitionID: user.ID, Scope: "/"})

	for _, a := range []rbac.DataAction{rbac.KeysCreate, rbac.KeysRotate, rbac.KeysWrite, rbac.KeysDelete, rbac.KeysImport, rbac.KeysWrap, rbac.KeysUnwrap, rbac.KeysRead} {
		denied(t, s, "kmt-officer", a, sqlKey)
		allowed(t, s, "kmt-user", a, sqlKey)
	}
	for _, a := range []rbac.DataAction{rbac.KeysDeletedDelete, rbac.KeysDeletedRecover, rbac.RoleAssignmentsWrite} {
		target := sqlKey
		if !a.IsKeyAction() {
			target = "/"
		}
		allowed(t, s, "kmt-officer", a, target)
		denied(t, s, "kmt-user", a, target)
	}

	err := s.Authorize("kmt-officer", rbac.KeysCreate, sqlKey)
	var fe *rbac.ForbiddenError
	if !errors.As(err, &fe) || fe.Principal != "kmt-officer" || fe.Action != rbac.KeysCreate || fe.Target != sqlKey {
		t.Fatalf("denial = %#v", err)
	}
	for _, want := range []string{"kmt-officer", string(rbac.KeysCreate), string(sqlKey), "not allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q does not mention %q", err, want)
		}
	}
}

// TestCMKIdentityScopedToItsKey: SQL MI's identity holds Crypto Service
// Encryption User at its own key only (seed, resource inventory).
func TestCMKIdentityScopedToItsKey(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustAssign(t, s, rbac.Assignment{Name: "sqlmi", Principal: "sqlmi-mi", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: sqlKey})
	for _, a := range []rbac.DataAction{rbac.KeysRead, rbac.KeysWrap, rbac.KeysUnwrap} {
		allowed(t, s, "sqlmi-mi", a, sqlKey)
		denied(t, s, "sqlmi-mi", a, diskKey)
	}
	for _, a := range []rbac.DataAction{rbac.KeysDelete, rbac.KeysDeletedDelete, rbac.KeysCreate, rbac.KeysRotate, rbac.KeysEncrypt, rbac.KeysDecrypt, rbac.KeysBackup} {
		denied(t, s, "sqlmi-mi", a, sqlKey)
	}
	denied(t, s, "sqlmi-mi", rbac.KeysRead, "/")
	denied(t, s, "sqlmi-mi", rbac.RoleAssignmentsRead, "/")
	denied(t, s, "disk-des", rbac.KeysUnwrap, diskKey)
}

func TestScopeCoverage(t *testing.T) {
	for _, tc := range []struct {
		at     rbac.Scope
		target rbac.Scope
		want   bool
	}{
		{"/", "/keys/A", true},
		{"/", "/keys/B", true},
		{"/", "/", true},
		{"/keys", "/keys/A", true},
		{"/keys", "/keys/B", true},
		{"/keys", "/", true},
		{"/keys/A", "/keys/A", true},
		{"/keys/A", "/keys/B", false},
		{"/keys/A", "/", false},
		{"/keys/A", "/keys", false},
	} {
		t.Run(fmt.Sprintf("%s→%s", tc.at, tc.target), func(t *testing.T) {
			s := rbac.NewStore(rbac.Options{})
			mustAssign(t, s, rbac.Assignment{Name: "x", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: tc.at})
			for _, a := range []rbac.DataAction{rbac.KeysRead, rbac.RoleAssignmentsRead} {
				if err := s.Authorize("p", a, tc.target); (err == nil) != tc.want {
					t.Errorf("Authorize(%s) = %v, want allowed=%v", a, err, tc.want)
				}
			}
		})
	}
}

func TestAuthorizeCallerBugs(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustAssign(t, s, rbac.Assignment{Name: "x", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"})
	for _, tc := range []struct {
		name   string
		p      string
		a      rbac.DataAction
		target rbac.Scope
		want   error
	}{
		{"unknown action", "p", "Microsoft.KeyVault/managedHsm/keys/rotationpolicy/write/action", sqlKey, rbac.ErrUnknownAction},
		{"wildcard as action", "p", "Microsoft.KeyVault/managedHsm/keys/*", sqlKey, rbac.ErrUnknownAction},
		{"bad target", "p", rbac.KeysRead, "/keys/a/b", rbac.ErrBadScope},
		{"empty target", "p", rbac.KeysRead, "", rbac.ErrBadScope},
		{"unknown principal", "q", rbac.KeysRead, sqlKey, rbac.ErrForbidden},
		{"empty principal", "", rbac.KeysRead, sqlKey, rbac.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Authorize(tc.p, tc.a, tc.target)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Authorize = %v, want %v", err, tc.want)
			}
			if tc.want != rbac.ErrForbidden && errors.Is(err, rbac.ErrForbidden) {
				t.Errorf("caller bug reported as ErrForbidden: %v", err)
			}
		})
	}
	allowed(t, s, "p", "microsoft.keyvault/managedHSM/keys/read/action", sqlKey) // actions compare case-insensitively
}

func TestAssignErrors(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustPutRole(t, s, rbac.RoleDefinition{ID: "c1", Name: "Key A only", Permissions: []rbac.Permission{{DataActions: []rbac.DataAction{rbac.KeysRead}}}, AssignableScopes: []rbac.Scope{"/keys/A"}})
	mustAssign(t, s, rbac.Assignment{Name: "taken", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/A"})
	for _, tc := range []struct {
		name string
		a    rbac.Assignment
		want error
	}{
		{"empty name", rbac.Assignment{Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"}, rbac.ErrInvalidAssignment},
		{"slash in name", rbac.Assignment{Name: "a/b", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"}, rbac.ErrInvalidAssignment},
		{"empty principal", rbac.Assignment{Name: "n", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"}, rbac.ErrInvalidAssignment},
		{"bad scope", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/a/b"}, rbac.ErrBadScope},
		{"empty scope", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID}, rbac.ErrBadScope},
		{"unknown role", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: "00000000-0000-0000-0000-000000000000", Scope: "/"}, rbac.ErrRoleNotFound},
		{"role by name is not an ID", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: "Managed HSM Crypto User", Scope: "/"}, rbac.ErrRoleNotFound},
		{"duplicate name", rbac.Assignment{Name: "taken", Principal: "q", RoleDefinitionID: rbac.BackupRoleID, Scope: "/"}, rbac.ErrConflict},
		{"duplicate name other scope", rbac.Assignment{Name: "taken", Principal: "q", RoleDefinitionID: rbac.BackupRoleID, Scope: "/keys/B"}, rbac.ErrConflict},
		{"role assignment exists", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/A"}, rbac.ErrConflict},
		{"role assignment exists, upper-case role ID", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: strings.ToUpper(rbac.CryptoUserRoleID), Scope: "/keys/A"}, rbac.ErrConflict},
		{"outside assignable scopes", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: "c1", Scope: "/keys/B"}, rbac.ErrBadScope},
		{"outside assignable scopes at root", rbac.Assignment{Name: "n", Principal: "p", RoleDefinitionID: "c1", Scope: "/"}, rbac.ErrBadScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Assign(tc.a); !errors.Is(err, tc.want) {
				t.Errorf("Assign = %v, want %v", err, tc.want)
			}
		})
	}
	if n := len(s.ListAll()); n != 1 {
		t.Errorf("failed Assigns left %d assignments", n)
	}
	// Not duplicates: another principal, another role, another scope string.
	mustAssign(t, s, rbac.Assignment{Name: "n1", Principal: "q", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/A"})
	mustAssign(t, s, rbac.Assignment{Name: "n2", Principal: "p", RoleDefinitionID: rbac.CryptoAuditorRoleID, Scope: "/keys/A"})
	mustAssign(t, s, rbac.Assignment{Name: "n3", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"})
	mustAssign(t, s, rbac.Assignment{Name: "n4", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"})
	mustAssign(t, s, rbac.Assignment{Name: "n5", Principal: "p", RoleDefinitionID: "c1", Scope: "/keys/A"})
}

func TestAssignStoresCanonicalForm(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustAssign(t, s, rbac.Assignment{Name: "g1", Principal: "p", RoleDefinitionID: "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/" + strings.ToUpper(rbac.CryptoServiceEncryptionUserRoleID), Scope: sqlKey})
	mustAssign(t, s, rbac.Assignment{ID: "custom-id", Name: "g2", Principal: "p", RoleDefinitionID: rbac.BackupRoleID, Scope: "/"})
	got, err := s.Get(sqlKey, "g1")
	if err != nil {
		t.Fatal(err)
	}
	want := rbac.Assignment{
		ID:               "/keys/Contoso-SQLMI-CMK/providers/Microsoft.Authorization/roleAssignments/g1",
		Name:             "g1",
		Principal:        "p",
		RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID,
		Scope:            sqlKey,
	}
	if got != want {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	if got, _ := s.Get("/", "g2"); got.ID != "custom-id" {
		t.Errorf("caller ID not kept: %+v", got)
	}
	mustAssign(t, s, rbac.Assignment{Name: "g3", Principal: "p", RoleDefinitionID: rbac.BackupRoleID, Scope: "/keys"})
	if got, _ := s.Get("/keys", "g3"); got.ID != "/keys/providers/Microsoft.Authorization/roleAssignments/g3" {
		t.Errorf("ID = %q", got.ID)
	}
	mustAssign(t, s, rbac.Assignment{Name: "g4", Principal: "p", RoleDefinitionID: rbac.RestoreRoleID, Scope: "/"})
	if got, _ := s.Get("/", "g4"); got.ID != "/providers/Microsoft.Authorization/roleAssignments/g4" {
		t.Errorf("ID = %q", got.ID)
	}
}

func TestRemoveAndGet(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustAssign(t, s, rbac.Assignment{Name: "a", Principal: "p", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: sqlKey})
	mustAssign(t, s, rbac.Assignment{Name: "b", Principal: "p", RoleDefinitionID: rbac.CryptoAuditorRoleID, Scope: "/"})

	for _, tc := range []struct {
		name  string
		scope rbac.Scope
		an    string
		want  error
	}{
		{"unknown name", sqlKey, "zz", rbac.ErrAssignmentNotFound},
		{"wrong scope", "/", "a", rbac.ErrAssignmentNotFound},
		{"synonym scope is a different scope", "/keys", "b", rbac.ErrAssignmentNotFound},
		{"bad scope", "keys", "a", rbac.ErrBadScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Get(tc.scope, tc.an); !errors.Is(err, tc.want) {
				t.Errorf("Get = %v, want %v", err, tc.want)
			}
			if err := s.Remove(tc.scope, tc.an); !errors.Is(err, tc.want) {
				t.Errorf("Remove = %v, want %v", err, tc.want)
			}
		})
	}

	allowed(t, s, "p", rbac.KeysUnwrap, sqlKey)
	if err := s.Remove(sqlKey, "a"); err != nil {
		t.Fatal(err)
	}
	denied(t, s, "p", rbac.KeysUnwrap, sqlKey) // revocation by role-assignment removal
	allowed(t, s, "p", rbac.KeysRead, sqlKey)  // still the auditor at "/"
	if err := s.Remove(sqlKey, "a"); !errors.Is(err, rbac.ErrAssignmentNotFound) {
		t.Errorf("second Remove = %v", err)
	}
	if err := s.Remove("/", "b"); err != nil {
		t.Fatal(err)
	}
	denied(t, s, "p", rbac.KeysRead, sqlKey)
	if all := s.ListAll(); len(all) != 0 {
		t.Errorf("ListAll = %v", all)
	}
	// The name is free again.
	mustAssign(t, s, rbac.Assignment{Name: "a", Principal: "p", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: sqlKey})
}

func TestLimits(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		o := rbac.NewStore(rbac.Options{}).Options()
		if o.MaxHSMScopeAssignments != 50 || o.MaxKeyScopeAssignments != 10 || o.MaxCustomRoleDefinitions != 50 {
			t.Errorf("defaults = %+v", o)
		}
		if rbac.DefaultOptions() != o {
			t.Errorf("DefaultOptions = %+v", rbac.DefaultOptions())
		}
	})
	t.Run("HSM scope counts / and /keys together", func(t *testing.T) {
		s := rbac.NewStore(rbac.Options{})
		for i := range 50 {
			scope := rbac.Scope("/")
			if i%2 == 1 {
				scope = "/keys"
			}
			mustAssign(t, s, rbac.Assignment{Name: fmt.Sprintf("h%d", i), Principal: fmt.Sprintf("p%d", i), RoleDefinitionID: rbac.CryptoUserRoleID, Scope: scope})
		}
		for _, scope := range []rbac.Scope{"/", "/keys"} {
			if err := s.Assign(rbac.Assignment{Name: "over", Principal: "q", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: scope}); !errors.Is(err, rbac.ErrLimitExceeded) {
				t.Errorf("51st at %s: %v", scope, err)
			}
		}
		mustAssign(t, s, rbac.Assignment{Name: "k", Principal: "q", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: sqlKey})
		if err := s.Remove("/keys", "h1"); err != nil {
			t.Fatal(err)
		}
		mustAssign(t, s, rbac.Assignment{Name: "over", Principal: "q", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"})
	})
	t.Run("per key scope", func(t *testing.T) {
		s := rbac.NewStore(rbac.Options{})
		for i := range 10 {
			mustAssign(t, s, rbac.Assignment{Name: fmt.Sprintf("k%d", i), Principal: fmt.Sprintf("p%d", i), RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: sqlKey})
		}
		if err := s.Assign(rbac.Assignment{Name: "over", Principal: "q", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: sqlKey}); !errors.Is(err, rbac.ErrLimitExceeded) {
			t.Errorf("11th at key scope: %v", err)
		}
		mustAssign(t, s, rbac.Assignment{Name: "other", Principal: "q", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: diskKey})
		mustAssign(t, s, rbac.Assignment{Name: "hsm", Principal: "q", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: "/"})
	})
	t.Run("overridden", func(t *testing.T) {
		s := rbac.NewStore(rbac.Options{MaxHSMScopeAssignments: 1, MaxKeyScopeAssignments: 2, MaxCustomRoleDefinitions: 1})
		mustAssign(t, s, rbac.Assignment{Name: "h", Principal: "p", RoleDefinitionID: rbac.BackupRoleID, Scope: "/"})
		if err := s.Assign(rbac.Assignment{Name: "h2", Principal: "p", RoleDefinitionID: rbac.RestoreRoleID, Scope: "/keys"}); !errors.Is(err, rbac.ErrLimitExceeded) {
			t.Errorf("HSM scope: %v", err)
		}
		mustAssign(t, s, rbac.Assignment{Name: "k1", Principal: "p", RoleDefinitionID: rbac.BackupRoleID, Scope: sqlKey})
		mustAssign(t, s, rbac.Assignment{Name: "k2", Principal: "p", RoleDefinitionID: rbac.RestoreRoleID, Scope: sqlKey})
		if err := s.Assign(rbac.Assignment{Name: "k3", Principal: "p", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: sqlKey}); !errors.Is(err, rbac.ErrLimitExceeded) {
			t.Errorf("key scope: %v", err)
		}
		mustPutRole(t, s, readerRole("c1", "Reader 1"))
		if err := s.PutRoleDefinition(readerRole("c2", "Reader 2")); !errors.Is(err, rbac.ErrLimitExceeded) {
			t.Errorf("custom roles: %v", err)
		}
		mustPutRole(t, s, readerRole("c1", "Reader 1 renamed")) // replacing does not count
	})
	t.Run("50 custom role definitions", func(t *testing.T) {
		s := rbac.NewStore(rbac.Options{})
		for i := range 50 {
			mustPutRole(t, s, readerRole(fmt.Sprintf("c%02d", i), fmt.Sprintf("Reader %02d", i)))
		}
		if err := s.PutRoleDefinition(readerRole("c50", "Reader 50")); !errors.Is(err, rbac.ErrLimitExceeded) {
			t.Errorf("51st custom role: %v", err)
		}
		if err := s.DeleteRoleDefinition("c00"); err != nil {
			t.Fatal(err)
		}
		mustPutRole(t, s, readerRole("c50", "Reader 50"))
		if n := len(s.RoleDefinitions()); n != 59 {
			t.Errorf("%d role definitions, want 9 built-in + 50 custom", n)
		}
	})
}

func readerRole(id, name string) rbac.RoleDefinition {
	return rbac.RoleDefinition{ID: id, Name: name, Permissions: []rbac.Permission{{DataActions: []rbac.DataAction{rbac.KeysRead}}}}
}

func TestCustomRoles(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	keyManager := rbac.RoleDefinition{
		ID:          "11111111-1111-1111-1111-111111111111",
		Name:        "Key manager without delete",
		Description: "all key actions except delete and the deleted-key actions",
		Permissions: []rbac.Permission{{
			DataActions:    []rbac.DataAction{"Microsoft.KeyVault/managedHsm/keys/*"},
			NotDataActions: []rbac.DataAction{rbac.KeysDelete, "Microsoft.KeyVault/managedHsm/keys/deletedKeys/*"},
		}},
	}
	mustPutRole(t, s, keyManager)
	mustAssign(t, s, rbac.Assignment{Name: "km", Principal: "km", RoleDefinitionID: keyManager.ID, Scope: "/"})
	for _, a := range []rbac.DataAction{rbac.KeysCreate, rbac.KeysRotate, rbac.KeysWrite, rbac.KeysWrap, rbac.KeysUnwrap, rbac.KeysRead, rbac.KeysRelease} {
		allowed(t, s, "km", a, sqlKey)
	}
	for _, a := range []rbac.DataAction{rbac.KeysDelete, rbac.KeysDeletedDelete, rbac.KeysDeletedRead, rbac.KeysDeletedRecover} {
		denied(t, s, "km", a, sqlKey)
	}
	denied(t, s, "km", rbac.RoleAssignmentsWrite, "/")
	denied(t, s, "km", rbac.SecurityDomainDownload, "/")

	def, err := s.RoleDefinition(keyManager.ID)
	if err != nil {
		t.Fatal(err)
	}
	if def.Type != rbac.CustomRoleType || !slices.Equal(def.AssignableScopes, []rbac.Scope{"/"}) {
		t.Errorf("stored definition = %+v", def)
	}
	if !def.Allows(rbac.KeysCreate) || def.Allows(rbac.KeysDelete) {
		t.Error("RoleDefinition.Allows disagrees with Authorize")
	}

	// NotDataActions subtract within a Permission only; a second Permission
	// or another assignment can still grant the action.
	keyManager.Permissions = append(keyManager.Permissions, rbac.Permission{DataActions: []rbac.DataAction{rbac.KeysDelete}})
	mustPutRole(t, s, keyManager)
	allowed(t, s, "km", rbac.KeysDelete, sqlKey)
	denied(t, s, "km", rbac.KeysDeletedDelete, sqlKey)
	mustAssign(t, s, rbac.Assignment{Name: "km-officer", Principal: "km", RoleDefinitionID: rbac.CryptoOfficerRoleID, Scope: sqlKey})
	allowed(t, s, "km", rbac.KeysDeletedDelete, sqlKey)
	denied(t, s, "km", rbac.KeysDeletedDelete, diskKey)

	// Replacing a role changes every assignment at once.
	keyManager.Permissions = []rbac.Permission{{DataActions: []rbac.DataAction{rbac.KeysRead}}}
	mustPutRole(t, s, keyManager)
	denied(t, s, "km", rbac.KeysCreate, sqlKey)
	allowed(t, s, "km", rbac.KeysRead, diskKey)

	// "*" grants everything; actions compare case-insensitively.
	mustPutRole(t, s, rbac.RoleDefinition{ID: "all", Name: "Everything", Permissions: []rbac.Permission{{DataActions: []rbac.DataAction{"*"}, NotDataActions: []rbac.DataAction{"microsoft.keyvault/managedHSM/securitydomain/*"}}}})
	mustAssign(t, s, rbac.Assignment{Name: "all", Principal: "root", RoleDefinitionID: "ALL", Scope: "/"})
	for _, a := range rbac.AllDataActions() {
		target := rbac.Scope("/")
		if a.IsKeyAction() {
			target = sqlKey
		}
		if strings.Contains(string(a), "/securitydomain/") {
			denied(t, s, "root", a, target)
		} else {
			allowed(t, s, "root", a, target)
		}
	}
}

func TestRoleDefinitionErrors(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustPutRole(t, s, readerRole("c1", "Reader"))
	perm := func(actions ...rbac.DataAction) []rbac.Permission {
		return []rbac.Permission{{DataActions: actions}}
	}
	for _, tc := range []struct {
		name string
		def  rbac.RoleDefinition
		want error
	}{
		{"overwrite built-in", readerRole(rbac.CryptoUserRoleID, "Mine"), rbac.ErrForbiddenChange},
		{"overwrite built-in, upper case", readerRole(strings.ToUpper(rbac.AdministratorRoleID), "Mine"), rbac.ErrForbiddenChange},
		{"overwrite built-in, qualified", readerRole("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"+rbac.BackupRoleID, "Mine"), rbac.ErrForbiddenChange},
		{"empty ID", readerRole("", "Mine"), rbac.ErrInvalidRoleDefinition},
		{"empty name", readerRole("c2", " "), rbac.ErrInvalidRoleDefinition},
		{"built-in type", rbac.RoleDefinition{ID: "c2", Name: "Mine", Type: rbac.BuiltInRoleType}, rbac.ErrInvalidRoleDefinition},
		{"unknown action", rbac.RoleDefinition{ID: "c2", Name: "Mine", Permissions: perm("Microsoft.KeyVault/managedHsm/keys/rotationpolicy/write/action")}, rbac.ErrInvalidRoleDefinition},
		{"action without prefix", rbac.RoleDefinition{ID: "c2", Name: "Mine", Permissions: perm("/keys/read/action")}, rbac.ErrInvalidRoleDefinition},
		{"unknown NotDataAction", rbac.RoleDefinition{ID: "c2", Name: "Mine", Permissions: []rbac.Permission{{DataActions: []rbac.DataAction{"*"}, NotDataActions: []rbac.DataAction{"nope"}}}}, rbac.ErrInvalidRoleDefinition},
		{"mid-segment wildcard", rbac.RoleDefinition{ID: "c2", Name: "Mine", Permissions: perm("Microsoft.KeyVault/managedHsm/ke*")}, rbac.ErrInvalidRoleDefinition},
		{"inner wildcard", rbac.RoleDefinition{ID: "c2", Name: "Mine", Permissions: perm("Microsoft.KeyVault/managedHsm/*/read/action")}, rbac.ErrInvalidRoleDefinition},
		{"wildcard matching nothing", rbac.RoleDefinition{ID: "c2", Name: "Mine", Permissions: perm("Microsoft.KeyVault/managedHsm/secrets/*")}, rbac.ErrInvalidRoleDefinition},
		{"bad assignable scope", rbac.RoleDefinition{ID: "c2", Name: "Mine", AssignableScopes: []rbac.Scope{"/keys/a/b"}}, rbac.ErrBadScope},
		{"name of built-in", readerRole("c2", "Managed HSM Crypto User"), rbac.ErrConflict},
		{"short name of built-in", readerRole("c2", "crypto officer"), rbac.ErrConflict},
		{"name of custom", readerRole("c2", "READER"), rbac.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PutRoleDefinition(tc.def); !errors.Is(err, tc.want) {
				t.Errorf("PutRoleDefinition = %v, want %v", err, tc.want)
			}
		})
	}
	if n := len(s.RoleDefinitions()); n != 10 {
		t.Errorf("failed puts left %d roles", n)
	}

	// Deleting.
	for _, tc := range []struct {
		name, id string
		want     error
	}{
		{"built-in", rbac.CryptoOfficerRoleID, rbac.ErrForbiddenChange},
		{"unknown", "c9", rbac.ErrRoleNotFound},
	} {
		t.Run("delete "+tc.name, func(t *testing.T) {
			if err := s.DeleteRoleDefinition(tc.id); !errors.Is(err, tc.want) {
				t.Errorf("DeleteRoleDefinition = %v, want %v", err, tc.want)
			}
		})
	}
	mustAssign(t, s, rbac.Assignment{Name: "r", Principal: "p", RoleDefinitionID: "c1", Scope: sqlKey})
	if err := s.DeleteRoleDefinition("c1"); !errors.Is(err, rbac.ErrConflict) {
		t.Errorf("delete in use = %v", err)
	}
	// Narrowing the assignable scopes below an assignment is a conflict.
	narrow := readerRole("c1", "Reader")
	narrow.AssignableScopes = []rbac.Scope{diskKey}
	if err := s.PutRoleDefinition(narrow); !errors.Is(err, rbac.ErrConflict) {
		t.Errorf("narrowing = %v", err)
	}
	narrow.AssignableScopes = []rbac.Scope{sqlKey}
	mustPutRole(t, s, narrow)
	if err := s.Remove(sqlKey, "r"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoleDefinition("C1"); err != nil {
		t.Fatalf("delete unused = %v", err)
	}
	if _, err := s.RoleDefinition("c1"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("RoleDefinition after delete = %v", err)
	}
	if _, err := s.RoleDefinitionByName("Reader"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("RoleDefinitionByName after delete = %v", err)
	}
	if err := s.Assign(rbac.Assignment{Name: "r", Principal: "p", RoleDefinitionID: "c1", Scope: sqlKey}); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("Assign deleted role = %v", err)
	}
}

func TestRoleLookup(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustPutRole(t, s, readerRole("c1", "Key Reader"))
	for _, tc := range []struct {
		in, wantID string
	}{
		{"Managed HSM Crypto User", rbac.CryptoUserRoleID},
		{"Crypto User", rbac.CryptoUserRoleID},
		{"crypto service encryption user", rbac.CryptoServiceEncryptionUserRoleID},
		{"Managed HSM Backup", rbac.BackupRoleID},
		{"Administrator", rbac.AdministratorRoleID},
		{"key reader", "c1"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := s.RoleDefinitionByName(tc.in)
			if err != nil || r.ID != tc.wantID {
				t.Errorf("RoleDefinitionByName = %s, %v; want %s", r.ID, err, tc.wantID)
			}
		})
	}
	for _, in := range []string{"Managed HSM Backup User", "Managed HSM Key Reader", "Crypto"} {
		if _, err := s.RoleDefinitionByName(in); !errors.Is(err, rbac.ErrRoleNotFound) {
			t.Errorf("RoleDefinitionByName(%q) = %v", in, err)
		}
	}
	for _, id := range []string{rbac.CryptoUserRoleID, strings.ToUpper(rbac.CryptoUserRoleID), "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/" + rbac.CryptoUserRoleID} {
		if r, err := s.RoleDefinition(id); err != nil || r.Name != rbac.CryptoUserRoleName {
			t.Errorf("RoleDefinition(%q) = %q, %v", id, r.Name, err)
		}
	}
	if _, err := s.RoleDefinition("nope"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("RoleDefinition(nope) = %v", err)
	}
	// Store lookups follow the Store's auditor option.
	printed := rbac.NewStore(rbac.Options{AuditorCanPurgeAsPrinted: true})
	for _, tc := range []struct {
		s    *rbac.Store
		want bool
	}{{s, false}, {printed, true}} {
		r, _ := tc.s.RoleDefinition(rbac.CryptoAuditorRoleID)
		if r.Allows(rbac.KeysDeletedDelete) != tc.want {
			t.Errorf("auditor purge = %v, want %v", !tc.want, tc.want)
		}
	}
}

func TestReturnedValuesAreCopies(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	def := readerRole("c1", "Reader")
	mustPutRole(t, s, def)
	def.Permissions[0].DataActions[0] = rbac.KeysDeletedDelete // caller's slice, after the put
	got, _ := s.RoleDefinition("c1")
	got.Permissions[0].DataActions[0] = rbac.KeysDeletedDelete
	got.AssignableScopes[0] = "/keys/x"
	b, _ := s.RoleDefinition(rbac.CryptoServiceEncryptionUserRoleID)
	b.Permissions[0].DataActions[0] = rbac.KeysDeletedDelete
	for _, r := range s.RoleDefinitions() {
		r.Permissions[0].DataActions = nil
	}

	mustAssign(t, s, rbac.Assignment{Name: "a", Principal: "p", RoleDefinitionID: "c1", Scope: "/"})
	mustAssign(t, s, rbac.Assignment{Name: "b", Principal: "q", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: "/"})
	allowed(t, s, "p", rbac.KeysRead, sqlKey)
	denied(t, s, "p", rbac.KeysDeletedDelete, sqlKey)
	allowed(t, s, "q", rbac.KeysRead, sqlKey)
	denied(t, s, "q", rbac.KeysDeletedDelete, sqlKey)
	if r, _ := s.RoleDefinition("c1"); r.AssignableScopes[0] != "/" {
		t.Errorf("assignable scopes changed: %v", r.AssignableScopes)
	}
	// BuiltInRoles returns fresh copies too.
	rbac.BuiltInRoles(rbac.Options{})[0].Permissions[0].DataActions[0] = rbac.KeysCreate
	if rbac.BuiltInRoles(rbac.Options{})[0].Allows(rbac.KeysCreate) {
		t.Error("BuiltInRoles shares state")
	}
}

func TestListingIsSortedAndScoped(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	for _, a := range []rbac.Assignment{
		{Name: "z", Principal: "p1", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/B"},
		{Name: "m", Principal: "p2", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"},
		{Name: "b", Principal: "p3", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/A"},
		{Name: "a", Principal: "p4", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"},
		{Name: "c", Principal: "p5", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"},
		{Name: "d", Principal: "p6", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys/A"},
	} {
		mustAssign(t, s, a)
	}
	names := func(as []rbac.Assignment) string {
		var out []string
		for _, a := range as {
			out = append(out, string(a.Scope)+":"+a.Name)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name string
		got  []rbac.Assignment
		want string
	}{
		{"all", s.ListAll(), "/:c /:m /keys:a /keys/A:b /keys/A:d /keys/B:z"},
		{"at /", s.List("/"), "/:c /:m /keys:a"},
		{"at /keys", s.List("/keys"), "/:c /:m /keys:a"},
		{"at /keys/A", s.List("/keys/A"), "/:c /:m /keys:a /keys/A:b /keys/A:d"},
		{"at /keys/C", s.List("/keys/C"), "/:c /:m /keys:a"},
		{"invalid", s.List("/keys/A/"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(tc.got); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	mustPutRole(t, s, readerRole("c2", "Beta"))
	mustPutRole(t, s, readerRole("c1", "Gamma"))
	mustPutRole(t, s, readerRole("c3", "Alpha"))
	var got []string
	for _, r := range s.RoleDefinitions() {
		got = append(got, r.Name)
	}
	want := []string{
		rbac.AdministratorRoleName, rbac.CryptoOfficerRoleName, rbac.CryptoUserRoleName,
		rbac.PolicyAdministratorRoleName, rbac.CryptoAuditorRoleName,
		rbac.CryptoServiceEncryptionUserRoleName, rbac.CryptoServiceReleaseUserRoleName,
		rbac.BackupRoleName, rbac.RestoreRoleName, "Alpha", "Beta", "Gamma",
	}
	if !slices.Equal(got, want) {
		t.Errorf("RoleDefinitions = %v", got)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := rbac.NewStore(rbac.Options{MaxKeyScopeAssignments: 3, AuditorCanPurgeAsPrinted: true})
	mustPutRole(t, s, readerRole("c1", "Reader"))
	mustAssign(t, s, rbac.Assignment{Name: "a", Principal: "p", RoleDefinitionID: "c1", Scope: sqlKey})
	mustAssign(t, s, rbac.Assignment{Name: "b", Principal: "q", RoleDefinitionID: rbac.CryptoAuditorRoleID, Scope: "/"})

	c := s.Clone()
	if c.Options() != s.Options() {
		t.Errorf("options = %+v, want %+v", c.Options(), s.Options())
	}
	if !slices.Equal(c.ListAll(), s.ListAll()) {
		t.Fatalf("clone lists %v, want %v", c.ListAll(), s.ListAll())
	}
	allowed(t, c, "p", rbac.KeysRead, sqlKey)
	allowed(t, c, "q", rbac.KeysDeletedDelete, sqlKey) // the option travels with the clone

	// Writes to the original do not reach the clone ...
	if err := s.Remove(sqlKey, "a"); err != nil {
		t.Fatal(err)
	}
	mustAssign(t, s, rbac.Assignment{Name: "n", Principal: "r", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/"})
	mustPutRole(t, s, rbac.RoleDefinition{ID: "c1", Name: "Reader", Permissions: []rbac.Permission{{DataActions: []rbac.DataAction{rbac.KeysCreate}}}})
	mustPutRole(t, s, readerRole("c2", "Other"))
	allowed(t, c, "p", rbac.KeysRead, sqlKey)
	denied(t, c, "p", rbac.KeysCreate, sqlKey)
	denied(t, c, "r", rbac.KeysCreate, sqlKey)
	if _, err := c.RoleDefinition("c2"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("clone sees c2: %v", err)
	}
	// ... and the clone's writes do not reach the original.
	if err := c.Remove("/", "b"); err != nil {
		t.Fatal(err)
	}
	allowed(t, s, "q", rbac.KeysRead, sqlKey)
	if err := c.DeleteRoleDefinition("c1"); !errors.Is(err, rbac.ErrConflict) {
		t.Errorf("clone: c1 should still be in use: %v", err)
	}
	// Limits were copied with their counts.
	mustAssign(t, c, rbac.Assignment{Name: "k2", Principal: "x", RoleDefinitionID: rbac.BackupRoleID, Scope: sqlKey})
	mustAssign(t, c, rbac.Assignment{Name: "k3", Principal: "x", RoleDefinitionID: rbac.RestoreRoleID, Scope: sqlKey})
	if err := c.Assign(rbac.Assignment{Name: "k4", Principal: "x", RoleDefinitionID: rbac.CryptoUserRoleID, Scope: sqlKey}); !errors.Is(err, rbac.ErrLimitExceeded) {
		t.Errorf("clone key-scope limit: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := rbac.NewStore(rbac.Options{})
	mustAssign(t, s, rbac.Assignment{Name: "base", Principal: "p", RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: sqlKey})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("w%d-%d", w, i)
				scope := rbac.KeyScope(fmt.Sprintf("K%d", i%5))
				if err := s.Assign(rbac.Assignment{Name: name, Principal: name, RoleDefinitionID: rbac.CryptoUserRoleID, Scope: scope}); err == nil {
					_ = s.Authorize(name, rbac.KeysCreate, scope)
					_ = s.Remove(scope, name)
				}
			}
		})
		wg.Go(func() {
			for range 500 {
				if err := s.Authorize("p", rbac.KeysUnwrap, sqlKey); err != nil {
					t.Errorf("Authorize: %v", err)
					return
				}
				_ = s.List(sqlKey)
				_ = s.Clone().ListAll()
				_ = s.RoleDefinitions()
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			_ = s.PutRoleDefinition(readerRole("c", fmt.Sprintf("Reader %d", i)))
			_ = s.DeleteRoleDefinition("c")
		}
	})
	wg.Wait()
	if got := s.ListAll(); len(got) != 1 {
		t.Errorf("left %d assignments", len(got))
	}
}
