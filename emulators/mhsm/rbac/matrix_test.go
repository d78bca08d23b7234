package rbac_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// The built-in roles as listed in reference/azure-facts.md §6, transcribed by
// hand (not derived from the package), in the column order of the facts'
// permitted-operations table.
var factRoles = []struct{ id, name string }{
	{"a290e904-7015-4bba-90c8-60543313cdb4", "Managed HSM Administrator"},
	{"515eb02d-2335-4d2d-92f2-b1cbdf9c3778", "Managed HSM Crypto Officer"},
	{"21dbd100-6940-42c2-9190-5d6cb909625b", "Managed HSM Crypto User"},
	{"4bd23610-cdcf-4971-bdee-bdc562cc28e4", "Managed HSM Policy Administrator"},
	{"33413926-3206-4cdd-b39a-83574fe37a17", "Managed HSM Crypto Service Encryption User"},
	{"7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8", "Managed HSM Backup"},
	{"2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "Managed HSM Crypto Auditor"},
	{"21dbd100-6940-42c2-9190-5d6cb909625c", "Managed HSM Crypto Service Release User"},
	{"6efe6056-5259-49d2-8b3d-d3d73544b20b", "Managed HSM Restore"},
}

// factGrid is the facts §6 data-action table, one row per action, one column
// per role in factRoles order: X = allowed, . = denied. The disputed auditor
// purge cell is written "?" and resolved by the option under test.
//
//	columns:   Admin, CryptoOfficer, CryptoUser, PolicyAdmin, CSEU, Backup, Auditor, CSRU, Restore
var factGrid = []struct {
	action string
	cells  string
}{
	{"Microsoft.KeyVault/managedHsm/securitydomain/download/action", "X........"},
	{"Microsoft.KeyVault/managedHsm/securitydomain/upload/action", "X........"},
	{"Microsoft.KeyVault/managedHsm/securitydomain/upload/read", "X........"},
	{"Microsoft.KeyVault/managedHsm/securitydomain/transferkey/read", "X........"},
	{"Microsoft.KeyVault/managedHsm/keys/read/action", "..X.X.X.."},
	{"Microsoft.KeyVault/managedHsm/keys/write/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/rotate/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/create", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/delete", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/import/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action", ".X......."},
	{"Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action", ".X......."},
	{"Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete", ".X....?.."},
	{"Microsoft.KeyVault/managedHsm/keys/backup/action", "..X..X..."},
	{"Microsoft.KeyVault/managedHsm/keys/restore/action", "..X.....X"},
	{"Microsoft.KeyVault/managedHsm/keys/release/action", "..X....X."},
	{"Microsoft.KeyVault/managedHsm/keys/encrypt/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/decrypt/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/sign/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/verify/action", "..X......"},
	{"Microsoft.KeyVault/managedHsm/keys/wrap/action", "..X.X...."},
	{"Microsoft.KeyVault/managedHsm/keys/unwrap/action", "..X.X...."},
	{"Microsoft.KeyVault/managedHsm/roleAssignments/read/action", "XXXX..X.."},
	{"Microsoft.KeyVault/managedHsm/roleDefinitions/read/action", "XXXX..X.."},
	{"Microsoft.KeyVault/managedHsm/roleAssignments/write/action", "XX.X....."},
	{"Microsoft.KeyVault/managedHsm/roleAssignments/delete/action", "XX.X....."},
	{"Microsoft.KeyVault/managedHsm/roleDefinitions/write/action", "XX.X....."},
	{"Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action", "XX.X....."},
	{"Microsoft.KeyVault/managedHsm/backup/start/action", "X....X..."},
	{"Microsoft.KeyVault/managedHsm/backup/status/action", "X....X..."},
	{"Microsoft.KeyVault/managedHsm/restore/start/action", "X.......X"},
	{"Microsoft.KeyVault/managedHsm/restore/status/action", "X.......X"},
}

// TestBuiltInRoleMatrix checks every built-in role against every data action
// of facts §6, through Authorize and through RoleDefinition.Allows, under
// both readings of the auditor purge cell.
func TestBuiltInRoleMatrix(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          rbac.Options
		auditorPurges bool
	}{
		{"corrected reading (default)", rbac.Options{}, false},
		{"as printed", rbac.Options{AuditorCanPurgeAsPrinted: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rbac.NewStore(tc.opts)
			for col, r := range factRoles {
				mustAssign(t, s, rbac.Assignment{Name: fmt.Sprintf("a-%d", col), Principal: "p-" + r.id, RoleDefinitionID: r.id, Scope: "/"})
			}
			for _, row := range factGrid {
				if len(row.cells) != len(factRoles) {
					t.Fatalf("grid row %s has %d cells", row.action, len(row.cells))
				}
				target := rbac.Scope("/")
				if strings.Contains(row.action, "/keys/") {
					target = "/keys/Contoso-SQLMI-CMK"
				}
				for col, r := range factRoles {
					want := row.cells[col] == 'X' || (row.cells[col] == '?' && tc.auditorPurges)
					t.Run(strings.TrimPrefix(row.action, "Microsoft.KeyVault/managedHsm/")+"/"+r.name, func(t *testing.T) {
						err := s.Authorize("p-"+r.id, rbac.DataAction(row.action), target)
						if want && err != nil {
							t.Errorf("Authorize = %v, want allowed", err)
						}
						if !want && !errors.Is(err, rbac.ErrForbidden) {
							t.Errorf("Authorize = %v, want ErrForbidden", err)
						}
						def, err := s.RoleDefinition(r.id)
						if err != nil {
							t.Fatal(err)
						}
						if got := def.Allows(rbac.DataAction(row.action)); got != want {
							t.Errorf("Allows = %v, want %v", got, want)
						}
					})
				}
			}
		})
	}
}

// TestDataActionsMatchFacts checks that the package knows exactly the facts'
// data actions, spelled exactly (case-sensitively) as in the facts.
func TestDataActionsMatchFacts(t *testing.T) {
	var want, got []string
	for _, row := range factGrid {
		want = append(want, row.action)
	}
	for _, a := range rbac.AllDataActions() {
		got = append(got, string(a))
		if !strings.HasPrefix(string(a), rbac.DataActionPrefix+"/") {
			t.Errorf("%s lacks the prefix", a)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("AllDataActions =\n%v\nwant\n%v", got, want)
	}
	named := []rbac.DataAction{
		rbac.SecurityDomainDownload, rbac.SecurityDomainUpload, rbac.SecurityDomainUploadRead, rbac.SecurityDomainTransferKeyRead,
		rbac.KeysRead, rbac.KeysWrite, rbac.KeysRotate, rbac.KeysCreate, rbac.KeysDelete,
		rbac.KeysDeletedRead, rbac.KeysDeletedRecover, rbac.KeysDeletedDelete,
		rbac.KeysBackup, rbac.KeysRestore, rbac.KeysRelease, rbac.KeysImport,
		rbac.KeysEncrypt, rbac.KeysDecrypt, rbac.KeysWrap, rbac.KeysUnwrap, rbac.KeysSign, rbac.KeysVerify,
		rbac.RoleAssignmentsRead, rbac.RoleAssignmentsWrite, rbac.RoleAssignmentsDelete,
		rbac.RoleDefinitionsRead, rbac.RoleDefinitionsWrite, rbac.RoleDefinitionsDelete,
		rbac.BackupStart, rbac.BackupStatus, rbac.RestoreStart, rbac.RestoreStatus,
	}
	var names []string
	for _, a := range named {
		names = append(names, string(a))
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("named constants =\n%v\nwant\n%v", names, want)
	}
	for _, tc := range []struct {
		a    rbac.DataAction
		want string
	}{
		{rbac.KeysRead, "Microsoft.KeyVault/managedHsm/keys/read/action"},
		{rbac.KeysDeletedDelete, "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete"},
		{rbac.SecurityDomainDownload, "Microsoft.KeyVault/managedHsm/securitydomain/download/action"},
		{rbac.RoleAssignmentsWrite, "Microsoft.KeyVault/managedHsm/roleAssignments/write/action"},
		{rbac.BackupStart, "Microsoft.KeyVault/managedHsm/backup/start/action"},
		{rbac.KeysCreate, "Microsoft.KeyVault/managedHsm/keys/create"},
	} {
		if string(tc.a) != tc.want {
			t.Errorf("constant = %q, want %q", tc.a, tc.want)
		}
	}
}

// TestBuiltInRoleIdentities checks the nine built-in roles' IDs, names, types
// and order against the facts.
func TestBuiltInRoleIdentities(t *testing.T) {
	roles := rbac.BuiltInRoles(rbac.Options{})
	if len(roles) != len(factRoles) {
		t.Fatalf("%d built-in roles, want %d", len(roles), len(factRoles))
	}
	for _, want := range factRoles {
		t.Run(want.name, func(t *testing.T) {
			r, ok := rbac.BuiltInRoleByID(rbac.Options{}, want.id)
			if !ok || r.Name != want.name || r.Type != "AKVBuiltInRole" {
				t.Errorf("BuiltInRoleByID(%s) = %q %q %v", want.id, r.Name, r.Type, ok)
			}
			if !slices.Equal(r.AssignableScopes, []rbac.Scope{"/"}) {
				t.Errorf("AssignableScopes = %v", r.AssignableScopes)
			}
			for _, n := range []string{want.name, strings.ToUpper(want.name), strings.TrimPrefix(want.name, "Managed HSM "), strings.ToLower(strings.TrimPrefix(want.name, "Managed HSM "))} {
				r, ok := rbac.BuiltInRoleByName(rbac.Options{}, n)
				if !ok || r.ID != want.id {
					t.Errorf("BuiltInRoleByName(%q) = %s %v, want %s", n, r.ID, ok, want.id)
				}
			}
		})
	}
	for _, n := range []string{"Managed HSM Backup User", "Backup User", "Crypto", "", "HSM Crypto User"} {
		if _, ok := rbac.BuiltInRoleByName(rbac.Options{}, n); ok {
			t.Errorf("BuiltInRoleByName(%q) found a role", n)
		}
	}
	want := []string{
		"Managed HSM Administrator", "Managed HSM Crypto Officer", "Managed HSM Crypto User",
		"Managed HSM Policy Administrator", "Managed HSM Crypto Auditor",
		"Managed HSM Crypto Service Encryption User", "Managed HSM Crypto Service Release User",
		"Managed HSM Backup", "Managed HSM Restore",
	}
	var got []string
	for _, r := range roles {
		got = append(got, r.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("BuiltInRoles order = %v, want %v", got, want)
	}
}
