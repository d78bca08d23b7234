// Package sqlmi emulates Azure SQL Managed Instance with TDE protected by a
// customer-managed key (facts §8): each Instance has a database encryption
// key (DEK, AES-256) wrapped by its TDE protector (RSA-OAEP-256) and stored
// next to the encrypted rows in its data path — an embedded directory store
// (NewDirStore) or SQL Server through go-mssqldb (OpenSQLServer). A
// FailoverGroup links a primary and a secondary instance in two regions with
// asynchronous replication.
//
// # Instance state machine
//
// The instance re-checks its protector every ProtectorCheckInterval
// (undocumented: default 5m) by unwrapping its DEK. "t_ok" is the last time
// access was known good (the last successful check).
//
//	from          event                                       to
//	Online        check denied (disabled/deleted/role gone)   Online, then Inaccessible at
//	                                                          max(now, t_ok+TimeToInaccessible)
//	Online        check unreachable (network)                 Unavailable (not Inaccessible)
//	Unavailable   check OK                                    Online
//	Unavailable   unreachable for NetworkErrorBuffer          Inaccessible (24h, UNCONFIRMED)
//	Inaccessible  check OK before t_ok+AutoHealWindow         Healing
//	Healing       AutoHealWithin later                        Online
//	Healing       check denied again                          Inaccessible (same episode)
//	Inaccessible  t_ok+AutoHealWindow passes, still denied    Inaccessible + NeedsRevalidation;
//	                                                          the failover-group link is lost
//	Inaccessible  Revalidate() (unwrap succeeds)              Revalidating
//	Revalidating  RevalidationTime later                      Online
//	any           SetOutage(true) / SetOutage(false)          Unavailable / the TDE state again
//
// Online serves Query and Write (Write on the primary or a standalone
// instance only). Unavailable fails with ErrUnavailable; Inaccessible,
// Healing and Revalidating fail with ErrInaccessible. Healing and
// Revalidating are the lab's names for "access is back, the database is
// coming back" (auto-heal, manual revalidation); Azure shows both as
// Inaccessible. The plaintext DEK is dropped (zeroed) on entering
// Inaccessible and unwrapped again on the way back.
//
// With a *rand.Rand (Config.Rand) the documented upper bounds ("in up to 10
// minutes", "within next hour") are drawn uniformly; without one each
// delay takes its upper bound (the pessimistic reading).
//
// With AutoRotate, the instance looks for a new current key version every
// AutoRotatePickup ("within 60 minutes") and re-wraps its DEK with it; data
// is never re-encrypted.
//
// This package must not import the engine (lab) or topology; it imports
// lab/clock, emulators/keyclient and emulators/envelope.
package sqlmi
