// Package rbac is the Managed HSM local (data-plane) role-based access
// control of the emulator: the data actions, the nine built-in role
// definitions, custom role definitions, role assignments at the HSM or key
// scope, and Authorize, the check every data-plane operation (get, wrap,
// unwrap, create, rotate, purge, security-domain download, ...) passes
// through before it touches a key.
//
// Every role, ID, data action and limit follows section 6 ("Managed HSM local
// RBAC"), section 3b (object limits) and section 7 (rotation permissions) of
// reference/azure-facts.md (source ROLES: the "Local RBAC built-in roles for
// Managed HSM" doc, ms.date 2024-01-25; AC: the access-control doc). The
// package exists to make the lab catch the role confusion its seed warns
// about: "Managed HSM Crypto Officer" cannot create, rotate or use keys;
// "Managed HSM Crypto User" is the key-management role; a CMK identity needs
// only "Managed HSM Crypto Service Encryption User" scoped to its key.
//
// Management-plane (ARM) RBAC is out of scope: an ARM Owner or Contributor
// gets no key access here (facts §6).
//
// This package is a leaf: it imports nothing of the project, reads no clock
// and uses no randomness. The Managed HSM emulator (emulators/mhsm) owns one
// Store per region and calls Authorize; the multi-region layer replicates
// writes between Stores with Clone and the write methods.
package rbac
