package topology

// Behaviour holds the timing and capacity parameters of each service. Every
// default comes from shared/reference/azure-facts.md (section in the field's
// comment); values the documentation does not give are marked UNCONFIRMED and
// are named parameters so a scenario can try both readings.
type Behaviour struct {
	HSM      HSMBehaviour      `yaml:"hsm" json:"hsm"`
	SQL      SQLBehaviour      `yaml:"sql" json:"sql"`
	Disks    DiskBehaviour     `yaml:"disks" json:"disks"`
	Storage  StorageBehaviour  `yaml:"storage" json:"storage"`
	Identity IdentityBehaviour `yaml:"identity" json:"identity"`
}

// Primary-region-down write behaviours (facts §2: the 2025 doc says writes
// work, the 2024 doc says they "may not").
const (
	WritesAllowed = "allowed" // MRR 2025-06-19
	WritesDenied  = "denied"  // the pessimistic reading of MRR-old 2024-02-07 ("Maybe")
)

// Removed-region access readings (HSMBehaviour.RemovedRegionAccess).
const (
	RemovedRerouted = "rerouted" // MRR routing: the closest healthy region serves
	RemovedLost     = "lost"     // the seed's "Pune workloads lose access instantly"
)

// HSMBehaviour parameterises the Managed HSM.
type HSMBehaviour struct {
	// ReplicationLag is how long a write takes to reach the extended region
	// ("may take up to 6 minutes", facts §2). Default 6m.
	ReplicationLag Duration `yaml:"replicationLag" json:"replicationLag"`
	// DNSTTL is the Traffic Manager TTL (facts §2). Default 5s.
	DNSTTL Duration `yaml:"dnsTTL" json:"dnsTTL"`
	// PrimaryDownWrites is "allowed" (2025 doc, default) or "denied" (2024
	// doc's "Maybe") — facts §2 and finding 3.
	PrimaryDownWrites string `yaml:"primaryDownWrites" json:"primaryDownWrites"`
	// PartitionHealTime is how long confidential service healing takes to
	// bring a lost partition back (facts §1 says it heals "quietly" with no
	// number: UNCONFIRMED; default 30m, an assumption).
	PartitionHealTime Duration `yaml:"partitionHealTime" json:"partitionHealTime"`
	// RemovedRegionAccess is what clients in a region whose extended pool
	// was removed experience. The facts say only that the pool is purged at
	// once (§2 MRR); Traffic Manager then routes to the closest healthy
	// region, so "rerouted" (default) sends them to the primary at
	// inter-region latency. The seed says Pune workloads "lose access
	// instantly": "lost" models that reading (their requests are
	// unreachable).
	RemovedRegionAccess string `yaml:"removedRegionAccess" json:"removedRegionAccess"`
	// Throughput is each partition's capacity in operations per second
	// (facts §3a, SCALE 2023-05-16).
	Throughput Throughput `yaml:"throughput" json:"throughput"`
}

// Throughput is per-partition capacity by key type and size.
type Throughput struct {
	RSA2048 OpRates `yaml:"rsa2048" json:"rsa2048"`
	RSA3072 OpRates `yaml:"rsa3072" json:"rsa3072"`
	RSA4096 OpRates `yaml:"rsa4096" json:"rsa4096"`
	AES128  OpRates `yaml:"aes128" json:"aes128"`
	AES192  OpRates `yaml:"aes192" json:"aes192"`
	AES256  OpRates `yaml:"aes256" json:"aes256"`
}

// OpRates are operations per second on one partition; zero means "not
// documented" and the op is modelled at the Get rate.
type OpRates struct {
	Unwrap  float64 `yaml:"unwrap" json:"unwrap"`
	Wrap    float64 `yaml:"wrap" json:"wrap"`
	Encrypt float64 `yaml:"encrypt,omitempty" json:"encrypt,omitempty"`
	Decrypt float64 `yaml:"decrypt,omitempty" json:"decrypt,omitempty"`
	Get     float64 `yaml:"get" json:"get"`
	Create  float64 `yaml:"create" json:"create"`
}

// SQLBehaviour parameterises SQL MI TDE with CMK (facts §8).
type SQLBehaviour struct {
	// TimeToInaccessible: denied key access makes databases Inaccessible
	// "in up to 10 minutes". Default 10m.
	TimeToInaccessible Duration `yaml:"timeToInaccessible" json:"timeToInaccessible"`
	// AutoHealWindow: access back within 30 minutes auto-heals. Default 30m.
	AutoHealWindow Duration `yaml:"autoHealWindow" json:"autoHealWindow"`
	// AutoHealWithin: the auto-heal happens "within next hour". Default 1h.
	AutoHealWithin Duration `yaml:"autoHealWithin" json:"autoHealWithin"`
	// ProtectorCheckInterval is how often the instance re-checks its TDE
	// protector: UNDOCUMENTED ("a few calls per hour", SCALE). Default 5m, an assumption.
	ProtectorCheckInterval Duration `yaml:"protectorCheckInterval" json:"protectorCheckInterval"`
	// NetworkErrorBuffer: a later doc version described a 24 h buffer before
	// network errors make a database Inaccessible; whether the current page
	// says so is UNCONFIRMED. Default 24h.
	NetworkErrorBuffer Duration `yaml:"networkErrorBuffer" json:"networkErrorBuffer"`
	// AutoRotatePickup: with auto-rotation on, a new version becomes the
	// protector "within 60 minutes". Default 60m.
	AutoRotatePickup Duration `yaml:"autoRotatePickup" json:"autoRotatePickup"`
	// RevalidationTime is how long a manual revalidation takes after the
	// 30-minute window: "few min to hours" (support blog, no SLA). Default
	// 30m, an assumption.
	RevalidationTime Duration `yaml:"revalidationTime" json:"revalidationTime"`
}

// DiskBehaviour parameterises managed disks behind a DES (facts §9).
type DiskBehaviour struct {
	// IOFailAfterKeyLoss: disk I/O "generally" fails one hour after the key
	// is disabled or deleted, then VMs shut down. Default 1h.
	IOFailAfterKeyLoss Duration `yaml:"ioFailAfterKeyLoss" json:"ioFailAfterKeyLoss"`
	// AutoRotatePickup: disks move to a new version "within one hour". Default 1h.
	AutoRotatePickup Duration `yaml:"autoRotatePickup" json:"autoRotatePickup"`
	// ExpiredKeyStopsVMs: the doc says expired keys shut VMs down too; a user
	// report (azure-docs#121652) says the product group said they do not.
	// Default false (the user report).
	ExpiredKeyStopsVMs bool `yaml:"expiredKeyStopsVMs" json:"expiredKeyStopsVMs"`
}

// StorageBehaviour parameterises Azure Storage with CMK (facts §10).
type StorageBehaviour struct {
	// KeyVersionPoll: with no version pinned, storage checks for a new key
	// version "only once daily". Default 24h.
	KeyVersionPoll Duration `yaml:"keyVersionPoll" json:"keyVersionPoll"`
	// KeyCacheTTL is how long storage keeps using an unwrapped key after
	// access is revoked: UNCONFIRMED (no documented number). Default 1h, an assumption.
	KeyCacheTTL Duration `yaml:"keyCacheTTL" json:"keyCacheTTL"`
}

// IdentityBehaviour parameterises Microsoft Entra ID as seen by the workloads.
type IdentityBehaviour struct {
	// TokenLifetime is how long an issued access token stays valid, which is
	// how long workloads keep working through an identity outage. Not in the
	// facts: default 24h, an assumption (managed-identity tokens).
	TokenLifetime Duration `yaml:"tokenLifetime" json:"tokenLifetime"`
}

// Pricing holds the monthly cost parameters (seed section 12; facts §12).
type Pricing struct {
	// PoolHourlyUSD is the price of one HSM pool per hour: ~$3.20
	// (third-party design note, UNCONFIRMED; seed: ~$2,304/month per pool).
	PoolHourlyUSD float64 `yaml:"poolHourlyUSD" json:"poolHourlyUSD"`
	// HoursPerMonth converts hourly to monthly prices; 720 reproduces the seed's $2,304.
	HoursPerMonth float64 `yaml:"hoursPerMonth" json:"hoursPerMonth"`
	// KeyMonthlyUSD is the price of one key per month: third-party note
	// "$3–$15/month for 3 keys" (UNCONFIRMED); default $5 (the upper end).
	KeyMonthlyUSD float64 `yaml:"keyMonthlyUSD" json:"keyMonthlyUSD"`
	// OperationsMonthlyUSD is the monthly cost of key operations; the seed
	// puts keys + operations at ~$15–20, so default $5.
	OperationsMonthlyUSD float64 `yaml:"operationsMonthlyUSD" json:"operationsMonthlyUSD"`
	// DedicatedHSMDeviceMonthlyUSD is one Dedicated HSM device per month:
	// ~$6,984 for an HA pair (third-party, UNCONFIRMED), so $3,492.
	DedicatedHSMDeviceMonthlyUSD float64 `yaml:"dedicatedHSMDeviceMonthlyUSD" json:"dedicatedHSMDeviceMonthlyUSD"`
	// DedicatedHSMDevicesPerRegion is the HA pair of the comparison (seed: 2).
	DedicatedHSMDevicesPerRegion int `yaml:"dedicatedHSMDevicesPerRegion" json:"dedicatedHSMDevicesPerRegion"`
}
