package rbac

import "strings"

// DataAction is a Managed HSM data-plane permission, spelled in full with the
// prefix DataActionPrefix, exactly as the ROLES doc lists it (facts §6).
//
// Comparison between data actions is case-insensitive (the Microsoft docs
// themselves write both "managedHsm" and "managedHSM"; the facts do not say
// how the service compares them). In a role definition
// a data action may also be a wildcard pattern: "*" (every action) or a
// prefix ending in the segment "/*", such as
// "Microsoft.KeyVault/managedHsm/keys/*" (every action under keys/, including
// keys/deletedKeys/...). Built-in roles use no wildcards.
type DataAction string

// DataActionPrefix begins every Managed HSM data action.
const DataActionPrefix = "Microsoft.KeyVault/managedHsm"

// The data actions of facts §6 (ROLES), in the doc's order. No other action
// exists in this package: facts §7 says a rotation policy needs KeysWrite and
// an on-demand rotation needs KeysRotate, so there is no separate
// rotation-policy action.
const (
	// Security domain management.
	SecurityDomainDownload        DataAction = "Microsoft.KeyVault/managedHsm/securitydomain/download/action"
	SecurityDomainUpload          DataAction = "Microsoft.KeyVault/managedHsm/securitydomain/upload/action"
	SecurityDomainUploadRead      DataAction = "Microsoft.KeyVault/managedHsm/securitydomain/upload/read"
	SecurityDomainTransferKeyRead DataAction = "Microsoft.KeyVault/managedHsm/securitydomain/transferkey/read"

	// Key management.
	KeysRead           DataAction = "Microsoft.KeyVault/managedHsm/keys/read/action"
	KeysWrite          DataAction = "Microsoft.KeyVault/managedHsm/keys/write/action" // update attributes; set rotation policy (facts §7)
	KeysRotate         DataAction = "Microsoft.KeyVault/managedHsm/keys/rotate/action"
	KeysCreate         DataAction = "Microsoft.KeyVault/managedHsm/keys/create"
	KeysDelete         DataAction = "Microsoft.KeyVault/managedHsm/keys/delete" // soft delete
	KeysDeletedRead    DataAction = "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action"
	KeysDeletedRecover DataAction = "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action"
	KeysDeletedDelete  DataAction = "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete" // purge
	KeysBackup         DataAction = "Microsoft.KeyVault/managedHsm/keys/backup/action"
	KeysRestore        DataAction = "Microsoft.KeyVault/managedHsm/keys/restore/action"
	KeysRelease        DataAction = "Microsoft.KeyVault/managedHsm/keys/release/action"
	KeysImport         DataAction = "Microsoft.KeyVault/managedHsm/keys/import/action"

	// Key cryptographic operations.
	KeysEncrypt DataAction = "Microsoft.KeyVault/managedHsm/keys/encrypt/action"
	KeysDecrypt DataAction = "Microsoft.KeyVault/managedHsm/keys/decrypt/action"
	KeysWrap    DataAction = "Microsoft.KeyVault/managedHsm/keys/wrap/action"
	KeysUnwrap  DataAction = "Microsoft.KeyVault/managedHsm/keys/unwrap/action"
	KeysSign    DataAction = "Microsoft.KeyVault/managedHsm/keys/sign/action"
	KeysVerify  DataAction = "Microsoft.KeyVault/managedHsm/keys/verify/action"

	// Role management.
	RoleAssignmentsRead   DataAction = "Microsoft.KeyVault/managedHsm/roleAssignments/read/action"
	RoleAssignmentsWrite  DataAction = "Microsoft.KeyVault/managedHsm/roleAssignments/write/action"
	RoleAssignmentsDelete DataAction = "Microsoft.KeyVault/managedHsm/roleAssignments/delete/action"
	RoleDefinitionsRead   DataAction = "Microsoft.KeyVault/managedHsm/roleDefinitions/read/action"
	RoleDefinitionsWrite  DataAction = "Microsoft.KeyVault/managedHsm/roleDefinitions/write/action"
	RoleDefinitionsDelete DataAction = "Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action"

	// Backup and restore management (full HSM).
	BackupStart   DataAction = "Microsoft.KeyVault/managedHsm/backup/start/action"
	BackupStatus  DataAction = "Microsoft.KeyVault/managedHsm/backup/status/action"
	RestoreStart  DataAction = "Microsoft.KeyVault/managedHsm/restore/start/action"
	RestoreStatus DataAction = "Microsoft.KeyVault/managedHsm/restore/status/action"
)

// allActions lists every data action in the ROLES doc's order. Its index is
// the action's bit in an actionSet.
var allActions = [...]DataAction{
	SecurityDomainDownload, SecurityDomainUpload, SecurityDomainUploadRead, SecurityDomainTransferKeyRead,
	KeysRead, KeysWrite, KeysRotate, KeysCreate, KeysDelete,
	KeysDeletedRead, KeysDeletedRecover, KeysDeletedDelete,
	KeysBackup, KeysRestore, KeysRelease, KeysImport,
	KeysEncrypt, KeysDecrypt, KeysWrap, KeysUnwrap, KeysSign, KeysVerify,
	RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete,
	RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete,
	BackupStart, BackupStatus, RestoreStart, RestoreStatus,
}

// actionSet is a bit set over allActions.
type actionSet uint64

// The set must fit in an actionSet.
var _ = [64 - len(allActions)]struct{}{}

// actionIndex maps each action, exactly and lower-cased, to its bit.
var actionIndex = func() map[DataAction]int {
	m := make(map[DataAction]int, 2*len(allActions))
	for i, a := range allActions {
		m[a] = i
		m[DataAction(strings.ToLower(string(a)))] = i
	}
	return m
}()

// indexOf returns the bit of a known action, matching case-insensitively.
func indexOf(a DataAction) (int, bool) {
	if i, ok := actionIndex[a]; ok {
		return i, true
	}
	i, ok := actionIndex[DataAction(strings.ToLower(string(a)))]
	return i, ok
}

// AllDataActions returns every data action of facts §6, in the ROLES doc's
// order. The slice is a fresh copy.
func AllDataActions() []DataAction {
	out := make([]DataAction, len(allActions))
	copy(out, allActions[:])
	return out
}

// Known reports whether a is one of AllDataActions (case-insensitively). A
// wildcard pattern is not Known.
func (a DataAction) Known() bool {
	_, ok := indexOf(a)
	return ok
}

// IsKeyAction reports whether a is a key action (under keys/). Key actions are
// authorized against the key's scope "/keys/<name>"; every other action is
// HSM-wide and authorized against "/".
func (a DataAction) IsKeyAction() bool {
	return hasPrefixFold(string(a), DataActionPrefix+"/keys/")
}

// Matches reports whether the pattern a (an action or a wildcard pattern, as
// written in a role definition) matches the action b. Matching is
// case-insensitive; "*" matches everything; "prefix/*" matches every action
// beginning with "prefix/".
func (a DataAction) Matches(b DataAction) bool {
	p := string(a)
	if p == "*" {
		return true
	}
	if strings.HasSuffix(p, "/*") {
		return hasPrefixFold(string(b), p[:len(p)-1])
	}
	return strings.EqualFold(p, string(b))
}

// validPattern reports whether a may appear in a custom role definition: a
// known action, "*", or "prefix/*" where prefix/ begins at least one known
// action and holds no other '*'.
func validPattern(a DataAction) bool {
	p := string(a)
	if !strings.Contains(p, "*") {
		return a.Known()
	}
	if p == "*" {
		return true
	}
	if !strings.HasSuffix(p, "/*") || strings.Count(p, "*") != 1 {
		return false
	}
	for _, k := range allActions {
		if a.Matches(k) {
			return true
		}
	}
	return false
}

// setOf returns the known actions matched by any of patterns.
func setOf(patterns []DataAction) actionSet {
	var s actionSet
	for _, p := range patterns {
		for i, k := range allActions {
			if p.Matches(k) {
				s |= 1 << i
			}
		}
	}
	return s
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
