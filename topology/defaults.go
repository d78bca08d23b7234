package topology

import "time"

// Defaults from shared/reference/azure-facts.md. Each constant cites its section.
const (
	DefaultRetentionDays     = 90                      // §5 SOFT: 7–90, default 90
	DefaultReplicationLag    = 6 * time.Minute         // §2 MRR: "may take up to 6 minutes"
	DefaultDNSTTL            = 5 * time.Second         // §2 MRR: Traffic Manager TTL 5 s
	DefaultPartitionHealTime = 30 * time.Minute        // §1: no number documented — assumption
	DefaultIntraRegionRTT    = 1500 * time.Microsecond // §13: cross-AZ ~1.55 ms (third-party)
	DefaultSQLInaccessible   = 10 * time.Minute        // §8 TDE
	DefaultSQLAutoHealWindow = 30 * time.Minute        // §8 TDE
	DefaultSQLAutoHealWithin = time.Hour               // §8 TDE
	DefaultSQLProtectorCheck = 5 * time.Minute         // §8: undocumented — assumption
	DefaultSQLNetworkBuffer  = 24 * time.Hour          // §8: sql-docs commit, UNCONFIRMED today
	DefaultSQLAutoRotate     = time.Hour               // §8 TDE: "within 60 minutes"
	DefaultSQLRevalidation   = 30 * time.Minute        // §8: "few min to hours" — assumption
	DefaultFOGReplicationLag = 5 * time.Second         // not documented — assumption
	DefaultFOGGracePeriod    = time.Hour               // failover policy grace period — assumption
	DefaultDiskIOFail        = time.Hour               // §9 DISK: "one hour"
	DefaultDiskAutoRotate    = time.Hour               // §9 DISK: "within one hour"
	DefaultStoragePoll       = 24 * time.Hour          // §10 STG: "only once daily"
	DefaultStorageKeyCache   = time.Hour               // §10: UNCONFIRMED — assumption
	DefaultTokenLifetime     = 24 * time.Hour          // not in the facts — assumption
	DefaultSQLDatabases      = 1
	MinRotationInterval      = 28 * 24 * time.Hour                // §7 ROT: P28D minimum
	PrivateLinkDNSZone       = "privatelink.managedhsm.azure.net" // §11 PL
)

// DefaultThroughput is the per-partition capacity table of facts §3a (SCALE,
// 2023-05-16), one partition, single key.
var DefaultThroughput = Throughput{
	RSA2048: OpRates{Unwrap: 1100, Wrap: 2200, Encrypt: 2800, Decrypt: 1100, Get: 1100, Create: 1},
	RSA3072: OpRates{Unwrap: 360, Wrap: 1900, Encrypt: 2700, Decrypt: 360, Get: 1100, Create: 1},
	RSA4096: OpRates{Unwrap: 160, Wrap: 1900, Encrypt: 2300, Decrypt: 160, Get: 1100, Create: 1},
	AES128:  OpRates{Unwrap: 1800, Wrap: 2100, Get: 1100, Create: 1},
	AES192:  OpRates{Unwrap: 1900, Wrap: 2100, Get: 1100, Create: 1},
	AES256:  OpRates{Unwrap: 2200, Wrap: 2100, Get: 1100, Create: 1},
}

// DefaultPricing is the seed's section 12 (facts §12 marks the sources).
var DefaultPricing = Pricing{
	PoolHourlyUSD:                3.20,
	HoursPerMonth:                720,
	KeyMonthlyUSD:                5,
	OperationsMonthlyUSD:         5,
	DedicatedHSMDeviceMonthlyUSD: 3492,
	DedicatedHSMDevicesPerRegion: 2,
}

// ApplyDefaults fills every zero-valued parameter with its documented
// default. Booleans have no defaults: a topology states them. It is
// idempotent.
func (t *Topology) ApplyDefaults() {
	if t.HSM.SoftDeleteRetentionDays == 0 {
		t.HSM.SoftDeleteRetentionDays = DefaultRetentionDays
	}
	for i := range t.Regions {
		setDur(&t.Regions[i].IntraRegionRTT, DefaultIntraRegionRTT)
	}
	for i := range t.Network.PrivateEndpoints {
		if t.Network.PrivateEndpoints[i].DNSZone == "" {
			t.Network.PrivateEndpoints[i].DNSZone = PrivateLinkDNSZone
		}
	}
	h := &t.Behaviour.HSM
	setDur(&h.ReplicationLag, DefaultReplicationLag)
	setDur(&h.DNSTTL, DefaultDNSTTL)
	setDur(&h.PartitionHealTime, DefaultPartitionHealTime)
	if h.PrimaryDownWrites == "" {
		h.PrimaryDownWrites = WritesAllowed
	}
	if h.RemovedRegionAccess == "" {
		h.RemovedRegionAccess = RemovedRerouted
	}
	fillRates(&h.Throughput.RSA2048, DefaultThroughput.RSA2048)
	fillRates(&h.Throughput.RSA3072, DefaultThroughput.RSA3072)
	fillRates(&h.Throughput.RSA4096, DefaultThroughput.RSA4096)
	fillRates(&h.Throughput.AES128, DefaultThroughput.AES128)
	fillRates(&h.Throughput.AES192, DefaultThroughput.AES192)
	fillRates(&h.Throughput.AES256, DefaultThroughput.AES256)

	s := &t.Behaviour.SQL
	setDur(&s.TimeToInaccessible, DefaultSQLInaccessible)
	setDur(&s.AutoHealWindow, DefaultSQLAutoHealWindow)
	setDur(&s.AutoHealWithin, DefaultSQLAutoHealWithin)
	setDur(&s.ProtectorCheckInterval, DefaultSQLProtectorCheck)
	setDur(&s.NetworkErrorBuffer, DefaultSQLNetworkBuffer)
	setDur(&s.AutoRotatePickup, DefaultSQLAutoRotate)
	setDur(&s.RevalidationTime, DefaultSQLRevalidation)
	setDur(&t.Behaviour.Disks.IOFailAfterKeyLoss, DefaultDiskIOFail)
	setDur(&t.Behaviour.Disks.AutoRotatePickup, DefaultDiskAutoRotate)
	setDur(&t.Behaviour.Storage.KeyVersionPoll, DefaultStoragePoll)
	setDur(&t.Behaviour.Storage.KeyCacheTTL, DefaultStorageKeyCache)
	setDur(&t.Behaviour.Identity.TokenLifetime, DefaultTokenLifetime)

	for i := range t.Workloads.SQLManagedInstances {
		if t.Workloads.SQLManagedInstances[i].Databases == 0 {
			t.Workloads.SQLManagedInstances[i].Databases = DefaultSQLDatabases
		}
	}
	for i := range t.Workloads.FailoverGroups {
		setDur(&t.Workloads.FailoverGroups[i].ReplicationLag, DefaultFOGReplicationLag)
		setDur(&t.Workloads.FailoverGroups[i].GracePeriod, DefaultFOGGracePeriod)
	}

	p := &t.Pricing
	setF(&p.PoolHourlyUSD, DefaultPricing.PoolHourlyUSD)
	setF(&p.HoursPerMonth, DefaultPricing.HoursPerMonth)
	setF(&p.KeyMonthlyUSD, DefaultPricing.KeyMonthlyUSD)
	setF(&p.OperationsMonthlyUSD, DefaultPricing.OperationsMonthlyUSD)
	setF(&p.DedicatedHSMDeviceMonthlyUSD, DefaultPricing.DedicatedHSMDeviceMonthlyUSD)
	if p.DedicatedHSMDevicesPerRegion == 0 {
		p.DedicatedHSMDevicesPerRegion = DefaultPricing.DedicatedHSMDevicesPerRegion
	}
}

func setDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func setF(f *float64, v float64) {
	if *f == 0 {
		*f = v
	}
}

func fillRates(r *OpRates, d OpRates) {
	setF(&r.Unwrap, d.Unwrap)
	setF(&r.Wrap, d.Wrap)
	setF(&r.Encrypt, d.Encrypt)
	setF(&r.Decrypt, d.Decrypt)
	setF(&r.Get, d.Get)
	setF(&r.Create, d.Create)
}
