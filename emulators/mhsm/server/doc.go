// Package server serves the Managed HSM emulator (emulators/mhsm) over the
// Azure Key Vault data-plane REST API, so that the official clients — the
// azkeys SDK first of all — work against it unmodified: keys (create,
// import, get, list, versions, update, delete, deleted keys, backup,
// restore, wrap/unwrap, encrypt/decrypt, rotate, rotation policy), local
// RBAC (role definitions and assignments at the Managed HSM data-plane
// paths) and the security domain (download, transfer key, upload).
//
// One handler serves one region's endpoint: Options.Region becomes the
// Caller.Region of every request, and the HSM's routing decides which pool
// serves it. Requests authenticate the way the real service asks for it: a
// request without a bearer token gets 401 with a challenge naming the tenant
// and the resource https://managedhsm.azure.net; tokens are HMAC-signed JWTs
// minted by a TokenIssuer (in-process, or at the token endpoint
// POST /{tenant}/oauth2/v2.0/token) and their subject is the principal RBAC
// authorizes. The emulator is lab equipment: serve it on loopback only.
//
// Time comes from the injected clock. Under the wall clock a response is
// not sent before the request's start plus the latency the HSM modelled
// (queueing and service time at the partition's documented capacity), so
// saturation shows over HTTP as it does in the simulator.
//
// Routes (every path takes ?api-version=2025-07-01 or 7.x; "[/{version}]"
// also matches the forms azkeys sends for version "": a trailing slash, or
// the empty segment dropped):
//
//	POST   /{tenant}/oauth2/v2.0/token                  token endpoint (no auth)
//	GET    /keys                                        list keys (paged)
//	POST   /keys/{name}/create                          create key
//	PUT    /keys/{name}                                 import key (JWK)
//	GET    /keys/{name}[/{version}]                     get key
//	PATCH  /keys/{name}[/{version}]                     update key
//	DELETE /keys/{name}                                 delete key (soft)
//	GET    /keys/{name}/versions                        list versions (paged)
//	POST   /keys/{name}/backup                          backup key
//	POST   /keys/restore                                restore key
//	POST   /keys/{name}[/{version}]/wrapkey|unwrapkey|encrypt|decrypt
//	POST   /keys/{name}/rotate                          rotate key
//	GET    /keys/{name}/rotationpolicy                  get rotation policy
//	PUT    /keys/{name}/rotationpolicy                  update rotation policy
//	GET    /deletedkeys                                 list deleted keys (paged)
//	GET    /deletedkeys/{name}                          get deleted key
//	DELETE /deletedkeys/{name}                          purge (204)
//	POST   /deletedkeys/{name}/recover                  recover
//	GET    /{scope}/providers/Microsoft.Authorization/roleAssignments[?$filter=atScope()|principalId eq '…']
//	GET|PUT|DELETE /{scope}/providers/Microsoft.Authorization/roleAssignments/{name}
//	GET    /{scope}/providers/Microsoft.Authorization/roleDefinitions[?$filter=roleName eq '…']
//	GET|PUT|DELETE /{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}
//	POST   /securitydomain/download                     activate: download the security domain (202)
//	GET    /securitydomain/download/pending             its status
//	GET    /securitydomain/upload                       transfer key (also /securitydomain/transferkey)
//	POST   /securitydomain/upload                       recover: upload the security domain (202)
//	GET    /securitydomain/upload/pending               its status
//
// {scope} is empty (HSM), "keys" or "keys/{name}". sign, verify, release,
// attestation, rng and full backup/restore answer 501.
//
// The package imports emulators/* and lab/clock of the project; never
// topology or the lab engine.
package server
