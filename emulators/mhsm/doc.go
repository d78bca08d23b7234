// Package mhsm emulates an Azure Key Vault Managed HSM as the real service
// behaves (shared/reference/azure-facts.md §1–7): one logical HSM with a
// pool of three partitions in its primary region and, optionally, in one
// extended region; keys and their versions; local RBAC; soft delete and
// purge protection; the security domain that gates activation and recovery;
// and asynchronous multi-region replication.
//
// Time is injected (a lab/clock.Clock): the emulator never reads the wall
// clock, never sleeps and owns no goroutines, so the same code runs under the
// simulator's virtual clock and under the wall clock. It does no network
// modelling either: an operation returns where and how it was served (pool,
// partition, queueing and service time at the partition's documented
// capacity) and the caller — the simulator's transport or the REST server —
// turns that into latency.
//
// Key material lives only inside partitions (emulators/partition) and moves
// between them — inside a pool, between pools, into backups — only wrapped
// under the security domain's key.
//
// The package imports only emulators/partition, its own sub-packages and
// lab/clock; never topology or the lab engine.
package mhsm
