package rbac

import "strings"

// The built-in role IDs (facts §6, ROLES).
const (
	AdministratorRoleID               = "a290e904-7015-4bba-90c8-60543313cdb4"
	CryptoOfficerRoleID               = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"
	CryptoUserRoleID                  = "21dbd100-6940-42c2-9190-5d6cb909625b"
	PolicyAdministratorRoleID         = "4bd23610-cdcf-4971-bdee-bdc562cc28e4"
	CryptoAuditorRoleID               = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3"
	CryptoServiceEncryptionUserRoleID = "33413926-3206-4cdd-b39a-83574fe37a17"
	CryptoServiceReleaseUserRoleID    = "21dbd100-6940-42c2-9190-5d6cb909625c"
	BackupRoleID                      = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8"
	RestoreRoleID                     = "6efe6056-5259-49d2-8b3d-d3d73544b20b"
)

// The built-in role names, exactly as Azure spells them (facts §6). There is
// no role called "Managed HSM Backup User".
const (
	AdministratorRoleName               = "Managed HSM Administrator"
	CryptoOfficerRoleName               = "Managed HSM Crypto Officer"
	CryptoUserRoleName                  = "Managed HSM Crypto User"
	PolicyAdministratorRoleName         = "Managed HSM Policy Administrator"
	CryptoAuditorRoleName               = "Managed HSM Crypto Auditor"
	CryptoServiceEncryptionUserRoleName = "Managed HSM Crypto Service Encryption User"
	CryptoServiceReleaseUserRoleName    = "Managed HSM Crypto Service Release User"
	BackupRoleName                      = "Managed HSM Backup"
	RestoreRoleName                     = "Managed HSM Restore"
)

// builtInNamePrefix is what the short form of a built-in role name omits.
const builtInNamePrefix = "Managed HSM "

// BuiltInRoles returns the nine built-in role definitions of facts §6 in the
// ROLES doc's order, each a fresh deep copy with Type BuiltInRoleType and
// AssignableScopes "/". Their data actions are exactly the X cells of the
// ROLES permitted-operations table; opts.AuditorCanPurgeAsPrinted decides the
// one disputed cell (see Options).
func BuiltInRoles(opts Options) []RoleDefinition {
	role := func(id, name, desc string, actions ...DataAction) RoleDefinition {
		return RoleDefinition{
			ID: id, Name: name, Description: desc, Type: BuiltInRoleType,
			Permissions:      []Permission{{DataActions: actions}},
			AssignableScopes: []Scope{ScopeHSM},
		}
	}
	auditor := []DataAction{KeysRead, RoleAssignmentsRead, RoleDefinitionsRead}
	if opts.AuditorCanPurgeAsPrinted {
		auditor = []DataAction{KeysRead, KeysDeletedDelete, RoleAssignmentsRead, RoleDefinitionsRead}
	}
	return []RoleDefinition{
		role(AdministratorRoleID, AdministratorRoleName,
			"Grants permissions to perform all operations related to the security domain, full backup and restore, and role management. Not permitted to perform any key management operations.",
			SecurityDomainDownload, SecurityDomainUpload, SecurityDomainUploadRead, SecurityDomainTransferKeyRead,
			RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete,
			RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete,
			BackupStart, BackupStatus, RestoreStart, RestoreStatus),
		role(CryptoOfficerRoleID, CryptoOfficerRoleName,
			"Grants permissions to perform all role management, purge or recover deleted keys, and export keys. Not permitted to perform any other key management operations.",
			KeysDeletedRead, KeysDeletedRecover, KeysDeletedDelete,
			RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete,
			RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete),
		role(CryptoUserRoleID, CryptoUserRoleName,
			"Grants permissions to perform all key management operations except purge or recover deleted keys and export keys.",
			KeysRead, KeysWrite, KeysRotate, KeysCreate, KeysDelete,
			KeysBackup, KeysRestore, KeysRelease, KeysImport,
			KeysEncrypt, KeysDecrypt, KeysWrap, KeysUnwrap, KeysSign, KeysVerify,
			RoleAssignmentsRead, RoleDefinitionsRead),
		role(PolicyAdministratorRoleID, PolicyAdministratorRoleName,
			"Grants permissions to create and delete role assignments.",
			RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete,
			RoleDefinitionsRead, RoleDefinitionsWrite, RoleDefinitionsDelete),
		role(CryptoAuditorRoleID, CryptoAuditorRoleName,
			"Grants read permissions to read (but not use) key attributes.",
			auditor...),
		role(CryptoServiceEncryptionUserRoleID, CryptoServiceEncryptionUserRoleName,
			"Grants permissions to use a key for service encryption.",
			KeysRead, KeysWrap, KeysUnwrap),
		role(CryptoServiceReleaseUserRoleID, CryptoServiceReleaseUserRoleName,
			"Grants permissions to release a key to a trusted execution environment.",
			KeysRelease),
		role(BackupRoleID, BackupRoleName,
			"Grants permissions to perform single-key or whole-HSM backup.",
			KeysBackup, BackupStart, BackupStatus),
		role(RestoreRoleID, RestoreRoleName,
			"Grants permissions to perform single-key or whole-HSM restore.",
			KeysRestore, RestoreStart, RestoreStatus),
	}
}

// BuiltInRoleByID returns the built-in role with the given ID (compared
// case-insensitively; a fully qualified ".../roleDefinitions/<id>" is
// accepted too).
func BuiltInRoleByID(opts Options, id string) (RoleDefinition, bool) {
	id = canonicalRoleID(id)
	for _, r := range BuiltInRoles(opts) {
		if strings.EqualFold(r.ID, id) {
			return r, true
		}
	}
	return RoleDefinition{}, false
}

// BuiltInRoleByName returns the built-in role with the given name. Names are
// compared case-insensitively and accepted in full ("Managed HSM Crypto
// User") or in the short form the ROLES table, the seed and CLI users write,
// without "Managed HSM " ("Crypto User", "crypto user"). Names that do not
// exist, such as "Managed HSM Backup User", are not found.
func BuiltInRoleByName(opts Options, name string) (RoleDefinition, bool) {
	for _, r := range BuiltInRoles(opts) {
		if builtInNameMatches(r.Name, name) {
			return r, true
		}
	}
	return RoleDefinition{}, false
}

// builtInNameMatches reports whether name is the built-in role name full, in
// full or in short form, case-insensitively.
func builtInNameMatches(full, name string) bool {
	return strings.EqualFold(full, name) || strings.EqualFold(strings.TrimPrefix(full, builtInNamePrefix), name)
}
