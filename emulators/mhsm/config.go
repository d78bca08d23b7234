package mhsm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Documented defaults (shared/reference/azure-facts.md).
const (
	DefaultRetentionDays     = 90               // §5
	DefaultReplicationLag    = 6 * time.Minute  // §2 MRR
	DefaultDNSTTL            = 5 * time.Second  // §2 MRR
	DefaultPartitionHealTime = 30 * time.Minute // §1: no number documented — assumption
	MaxVersions              = 100              // §7 ROT
	MinRotationInterval      = 28 * 24 * time.Hour
	PartitionsPerPool        = 3 // §1 TECH
)

// CannotExtendRegions are the regions Microsoft lists as ones that "cannot be
// extended regions at this time" (azure-facts.md §2 and finding 1, MRR
// 2025-06-19). The 2024 list also had centralus, kept in CannotExtend2024.
var CannotExtendRegions = []string{
	"eastus", "southcentralus", "westus2", "switzerlandnorth", "westeurope", "centralindia",
	"canadacentral", "canadaeast", "japanwest", "qatarcentral", "polandcentral", "westcentralus",
}

// CannotExtend2024 are regions only the 2024 version of the list had (MRR-old).
var CannotExtend2024 = []string{"centralus"}

// CanExtendTo reports whether Microsoft currently allows region as an
// extended region.
func CanExtendTo(region string) bool {
	for _, r := range CannotExtendRegions {
		if strings.EqualFold(r, region) {
			return false
		}
	}
	return true
}

// Rates are one partition's capacity in operations per second.
type Rates struct {
	Unwrap, Wrap, Encrypt, Decrypt, Get, Create float64
	// Admin covers delete, purge, backup and restore of a key (10/s, §3a).
	Admin float64
}

// Throughput is the capacity table by key type and size.
type Throughput map[partition.KeySpec]Rates

// DefaultThroughput is facts §3a (SCALE 2023-05-16): one partition, one key.
func DefaultThroughput() Throughput {
	return Throughput{
		{Type: partition.RSA, Bits: 2048}: {Unwrap: 1100, Wrap: 2200, Encrypt: 2800, Decrypt: 1100, Get: 1100, Create: 1, Admin: 10},
		{Type: partition.RSA, Bits: 3072}: {Unwrap: 360, Wrap: 1900, Encrypt: 2700, Decrypt: 360, Get: 1100, Create: 1, Admin: 10},
		{Type: partition.RSA, Bits: 4096}: {Unwrap: 160, Wrap: 1900, Encrypt: 2300, Decrypt: 160, Get: 1100, Create: 1, Admin: 10},
		{Type: partition.Oct, Bits: 128}:  {Unwrap: 1800, Wrap: 2100, Encrypt: 2100, Decrypt: 1800, Get: 1100, Create: 1, Admin: 10},
		{Type: partition.Oct, Bits: 192}:  {Unwrap: 1900, Wrap: 2100, Encrypt: 2100, Decrypt: 1900, Get: 1100, Create: 1, Admin: 10},
		{Type: partition.Oct, Bits: 256}:  {Unwrap: 2200, Wrap: 2100, Encrypt: 2100, Decrypt: 2200, Get: 1100, Create: 1, Admin: 10},
	}
}

// PartitionConfig places one partition of a pool.
type PartitionConfig struct {
	Name      string
	Placement string // "rack:rack-1", "zone:2"
}

// RegionConfig is one region's pool.
type RegionConfig struct {
	Name       string
	Partitions []PartitionConfig // three in the real service
}

// Config describes a Managed HSM. Zero values take the documented defaults.
type Config struct {
	// Name is the HSM name; the vault URL is https://<name>.managedhsm.azure.net
	// unless URL is set.
	Name string
	URL  string
	// Primary is the primary region's pool; Extended the optional extended one.
	Primary  RegionConfig
	Extended *RegionConfig
	// AllowUnsupportedExtendedRegion accepts an extended region on
	// CannotExtendRegions (to model a plan Microsoft does not allow today).
	AllowUnsupportedExtendedRegion bool

	SoftDeleteRetentionDays int  // 7–90, default 90 (§5)
	PurgeProtection         bool // off by default in Azure (§5)

	// Administrators get Managed HSM Administrator at "/" at creation
	// (az keyvault create --administrators).
	Administrators []string

	ReplicationLag time.Duration // default 6m (§2)
	DNSTTL         time.Duration // default 5s (§2)
	// PrimaryDownWritesDenied: the 2025 doc says writes work while the
	// primary region is down (the default, false here); the 2024 doc says
	// "Maybe" (§2, finding 3). Set true for the pessimistic reading.
	PrimaryDownWritesDenied bool
	// PartitionHealTime is how long a lost partition takes to heal; 0
	// disables healing (§1: no number documented).
	PartitionHealTime time.Duration
	Throughput        Throughput
	// MaxQueue bounds the queueing delay at a partition; a request that
	// would wait longer is refused with ErrThrottled (429). Zero means
	// unbounded: "Managed HSM does not throttle on cryptographic operation
	// transactions" (§3c).
	MaxQueue time.Duration
	// Nearness orders pool regions by proximity to a client region (nearest
	// first). Nil: the client's own region first, then the primary, then
	// the extended region.
	Nearness func(client string, pools []string) []string

	RBAC rbac.Options

	// Clock and Rand are injected; Rand makes version IDs reproducible.
	Clock clock.Clock
	Rand  *rand.Rand
	// OnChange, when set, receives every change of a partition's or pool's
	// state (called with the HSM's lock held: it must not call the HSM).
	OnChange func(Change)
	// NewPartition creates a partition; nil uses pure-Go partitions.
	NewPartition func(region string, p PartitionConfig) (partition.Partition, error)
}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	if c.SoftDeleteRetentionDays == 0 {
		c.SoftDeleteRetentionDays = DefaultRetentionDays
	}
	if c.ReplicationLag == 0 {
		c.ReplicationLag = DefaultReplicationLag
	}
	if c.DNSTTL == 0 {
		c.DNSTTL = DefaultDNSTTL
	}
	if c.Throughput == nil {
		c.Throughput = DefaultThroughput()
	}
	if c.Clock == nil {
		c.Clock = clock.Wall{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(1, 2))
	}
	if c.URL == "" {
		c.URL = "https://" + lower(c.Name) + ".managedhsm.azure.net"
	}
	if c.NewPartition == nil {
		c.NewPartition = func(region string, p PartitionConfig) (partition.Partition, error) {
			return partition.NewMemory(region + "/" + p.Name), nil
		}
	}
	fill := func(r *RegionConfig) {
		if len(r.Partitions) == 0 {
			for i := 1; i <= PartitionsPerPool; i++ {
				r.Partitions = append(r.Partitions, PartitionConfig{Name: fmt.Sprintf("p%d", i), Placement: fmt.Sprintf("rack:rack-%d", i)})
			}
		}
	}
	fill(&c.Primary)
	if c.Extended != nil {
		e := *c.Extended
		fill(&e)
		c.Extended = &e
	}
	return c
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if c.Name == "" {
		return errf(ErrBadParameter, "HSM name is required")
	}
	if c.SoftDeleteRetentionDays < 7 || c.SoftDeleteRetentionDays > 90 {
		return errf(ErrBadParameter, "soft-delete retention %d days is outside 7–90", c.SoftDeleteRetentionDays)
	}
	if c.Primary.Name == "" {
		return errf(ErrBadParameter, "primary region is required")
	}
	if c.Extended != nil {
		if c.Extended.Name == c.Primary.Name {
			return errf(ErrBadParameter, "extended region %s is the primary region", c.Extended.Name)
		}
		if !CanExtendTo(c.Extended.Name) && !c.AllowUnsupportedExtendedRegion {
			return errf(ErrRegionRefused, "%s is on Microsoft's list of regions that cannot be extended regions at this time", c.Extended.Name)
		}
	}
	if c.ReplicationLag < 0 || c.DNSTTL < 0 || c.PartitionHealTime < 0 || c.MaxQueue < 0 {
		return errf(ErrBadParameter, "durations must not be negative")
	}
	for spec, r := range c.Throughput {
		if r.Unwrap < 0 || r.Wrap < 0 || r.Get < 0 || r.Create < 0 || r.Encrypt < 0 || r.Decrypt < 0 || r.Admin < 0 {
			return errf(ErrBadParameter, "negative throughput for %s-%d", spec.Type, spec.Bits)
		}
	}
	return nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Change is a state change of a partition or pool, for the run's timeline.
type Change struct {
	Resource string // "southindia/p1" for a partition, "southindia" for a pool
	Kind     string // "hsm-partition" or "hsm-pool"
	From, To string
	Reason   string
}

// Partition and pool states reported through Config.OnChange.
const (
	StateHealthy = "Healthy"
	StateLost    = "Lost"
	StateServing = "Serving"
	StateDown    = "Down"
	StatePurged  = "Purged"
)
