// Package storage emulates an Azure Storage account encrypted with a
// customer-managed key (facts §10): one account DEK, wrapped by the CMK and
// stored with the account; every blob is sealed with it (AES-256-GCM) before
// it reaches the data path, which is either a directory (NewDirBackend) or
// Azurite through the azblob SDK (NewAzblobBackend).
//
// Behaviour (all times through the injected clock):
//
//   - The unwrapped account key is cached for KeyCacheTTL (UNCONFIRMED: no
//     documented number; default 1h). Revoking access (disable, delete, role
//     removal) bites only when the cache expires: from then on blob reads and
//     writes fail with 403 ErrForbidden, code KeyVaultEncryptionKeyNotFound
//     (the code Azure Storage returns when it cannot unwrap the account key).
//     Delete and List do not need the key and keep working (§10: "ops not
//     listed still work").
//   - With no pinned version, the account polls the key for a new version
//     every KeyVersionPoll (24h, "only once daily") and re-wraps its DEK with
//     it (no data re-encryption). Disabling the previous version before the
//     poll has run breaks the account once the cache expires; after the
//     poll it is harmless (the 6 h vs 25 h case of azure-docs#92190).
//   - Expired key versions keep working (user report, facts §10/§14): the
//     account never checks expiry; a key store that still unwraps expired
//     versions (Key Vault does) keeps it running.
//   - A key store that cannot be reached after the cache expired also fails
//     requests with 403, code KeyVaultVaultNotFound (UNCONFIRMED mapping;
//     the state is KeyVaultUnreachable so the two causes stay apart).
//
// State machine: Available ⇄ KeyAccessDenied, Available ⇄
// KeyVaultUnreachable (see State). While not Available, every request
// retries the unwrap, so access that comes back is seen by the next request;
// a background revalidation also runs every KeyCacheTTL.
//
// This package must not import the engine (lab) or topology; it imports
// lab/clock, emulators/keyclient and emulators/envelope.
package storage
