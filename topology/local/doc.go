// Package local is the provider that brings a topology up as real parts on
// loopback, on the wall clock:
//
//   - the Managed HSM emulator with each partition a SoftHSM token (PKCS#11)
//     — pure-Go partitions when SoftHSM is absent, announced loudly and
//     recorded in the run's notes — served over the Key Vault REST API on
//     one HTTPS endpoint per pool region (127.0.0.1, random port);
//   - the workload emulators, which reach the HSM only through the official
//     azkeys SDK, as their managed identities (tokens from an in-process
//     issuer standing in for Microsoft Entra ID);
//   - Azurite (npm, installed by scripts/install-azurite.sh) as the storage
//     data path, one process per region with storage accounts, on a random
//     loopback port, stopped by process group on Down; SQL Server through
//     go-mssqldb when a connection string is given, otherwise the embedded
//     SQL data path (the run's notes say which);
//   - toxiproxy (embedded, github.com/Shopify/toxiproxy/v2) for the network:
//     one proxy from each region's private endpoint to each pool (its own
//     pool directly, another region's through that inter-region path's
//     proxy), one per direction of each inter-region path. The topology's
//     round-trip times are the proxies' base delay; link faults add latency,
//     reset, bandwidth and cut toxics or stop the proxies.
//
// A client in region R resolves the HSM the way R's DNS would
// (mhsm.HSM.Resolve: Traffic Manager's nearest healthy pool, with the DNS
// TTL; or a misroute) and sends its request through R's private endpoint
// proxy — and the inter-region proxy when the pool is elsewhere — to that
// pool region's endpoint, whose handler serves it as that region (the
// emulator's core then routes to the healthy pool). Only 127.0.0.1 is ever
// dialled.
//
// Every fault maps to a real action (Supported) or is refused before the
// run starts (Provider.CheckStep): partition loss takes the tokens offline;
// a region outage stops the region's endpoint and proxies; key faults go
// through the REST API (topology.KeyAdmin over azkeys and the RBAC paths);
// an identity outage stops the token issuer, and each managed identity
// keeps its token for its modelled lifetime (one token per principal, as in
// the sim; the lab's own operator has an issuer of its own with the same
// signing key, so faults can still be injected and reverted).
//
// # Time
//
// The provider runs on clock.Scaled: modelled durations — the scenario's
// timeline, probe intervals, SQL's 10 minutes to Inaccessible, replication
// lag, DNS TTL, token lifetimes — run Factor times faster than the wall
// clock; the factor is recorded in the result. Bring-up skips the time the
// components need to settle (the extended region's replication, failover
// groups seeding) instead of waiting it out.
//
// Real latencies are not scaled: a probe's latency is measured on the wall
// clock (a 30 ms toxiproxy latency shows as 30 ms), but each real
// millisecond is Factor modelled milliseconds of the timeline. That bounds
// the compression: a probe or timer callback that takes w of wall time
// occupies w×Factor of modelled time, so intervals in modelled time must
// stay well above (real latency)×Factor. At 600× a 5 ms unwrap is 3 s
// modelled — fine against 30 s probe intervals and minutes-long service
// timers, too coarse for anything that must resolve below ~10 s modelled. At
// 6000× it is 30 s and the probes' own latency starts to distort the
// timeline. The HSM's modelled capacity (per-partition throughput, queueing)
// is compressed with the clock and effectively disabled: the real tokens'
// speed is the limit. Wall-clock timeouts (dial 2 s, response header 10 s)
// are not scaled either.
//
// Clean shutdown: Down stops the workloads' timers, the proxies, the
// endpoints, the HSM and its tokens, the Azurite processes and removes every
// temporary directory; the process's SoftHSM module is finalised and its
// token directory removed when the last local environment goes down.
//
// The package imports topology, topology/workloads, the emulators and
// lab/clock; never lab.
package local
