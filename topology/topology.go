// Package topology describes the deployment under test as data: regions, the
// Managed HSM with its pools, partitions, keys, RBAC and security domain, the
// private endpoints and DNS, the workloads (SQL Managed Instance, VMs with
// disks behind Disk Encryption Sets, storage accounts) and the parameters that
// decide how each service behaves. It loads and validates topology files and
// embeds the default topology (contoso.yaml), which mirrors the seed document.
//
// Every default number comes from shared/reference/azure-facts.md; the
// comments cite the section. Where Microsoft's documentation is silent or
// contradictory the value is a named parameter and both readings are
// documented.
//
// Providers that bring a topology to life (sim, local, containers, azure) live
// in sub-packages. This package may import emulators/ but never lab/.
package topology

// Topology is the whole system under test.
type Topology struct {
	// Name identifies the topology in results (for example "contoso").
	Name string `yaml:"name" json:"name"`
	// Description is free text shown by `hsmlab lint` and reports.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// OpenQuestions are the seed's section-13 questions as parameters.
	OpenQuestions OpenQuestions `yaml:"openQuestions" json:"openQuestions"`
	// Regions are the Azure regions the deployment uses.
	Regions []Region `yaml:"regions" json:"regions"`
	// Network holds inter-region links, private endpoints and jump boxes.
	Network Network `yaml:"network" json:"network"`
	// HSM is the Managed HSM.
	HSM HSM `yaml:"hsm" json:"hsm"`
	// Principals are the identities that appear in role assignments.
	Principals []Principal `yaml:"principals" json:"principals"`
	// RoleAssignments are the HSM's local RBAC assignments.
	RoleAssignments []RoleAssignment `yaml:"roleAssignments" json:"roleAssignments"`
	// Workloads are the services that use the HSM's keys.
	Workloads Workloads `yaml:"workloads" json:"workloads"`
	// Behaviour holds the timing parameters of each service.
	Behaviour Behaviour `yaml:"behaviour" json:"behaviour"`
	// Pricing holds the prices `hsmlab cost` uses.
	Pricing Pricing `yaml:"pricing" json:"pricing"`
}

// AD server hosting choices (open question 2).
const (
	ADSelfHosted = "self-hosted-vms"
	ADAzureADDS  = "azure-ad-ds"
)

// OpenQuestions are the decisions the seed leaves open (its section 13).
// Everything that depends on them is derived from these fields, so flipping
// one answers the question "what if".
type OpenQuestions struct {
	// PrimaryRegion is the HSM's primary region (Q1: "Is South India primary
	// and Central India DR?"). The other pool region is the extended region.
	PrimaryRegion string `yaml:"primaryRegion" json:"primaryRegion"`
	// ADServers is how the AD domain controllers are hosted (Q2):
	// "self-hosted-vms" or "azure-ad-ds". With Azure AD DS, CMK is not
	// possible for that workload.
	ADServers string `yaml:"adServers" json:"adServers"`
	// ASR says whether Azure Site Recovery replicates the VMs (Q3).
	ASR bool `yaml:"asr" json:"asr"`
	// JumpBoxRegions are the regions that have a jump box (Q4); with public
	// network access disabled, admins manage the HSM only from these.
	JumpBoxRegions []string `yaml:"jumpBoxRegions" json:"jumpBoxRegions"`
}

// Region is one Azure region.
type Region struct {
	// Name is the Azure region name, e.g. "southindia".
	Name string `yaml:"name" json:"name"`
	// City is the display name ("Chennai").
	City string `yaml:"city,omitempty" json:"city,omitempty"`
	// AvailabilityZones says whether the region has zones; without them a
	// pool's partitions are placed on racks (facts §1).
	AvailabilityZones bool `yaml:"availabilityZones" json:"availabilityZones"`
	// IntraRegionRTT is the round-trip time between two hosts of the region
	// (across racks or zones). Default 1.5ms (facts §13: cross-AZ ~1.55 ms,
	// third-party measurement; Azure's own figure is UNCONFIRMED).
	IntraRegionRTT Duration `yaml:"intraRegionRTT,omitempty" json:"intraRegionRTT,omitempty"`
}

// Network is the network between and inside the regions.
type Network struct {
	// Links are the inter-region round-trip times.
	Links []Link `yaml:"links" json:"links"`
	// PrivateEndpoints are the HSM's private endpoints, one per region in the seed.
	PrivateEndpoints []PrivateEndpoint `yaml:"privateEndpoints" json:"privateEndpoints"`
}

// Link is the network path between two regions.
type Link struct {
	Between [2]string `yaml:"between" json:"between"`
	// RTT is the round-trip time. South India ↔ Central India is UNCONFIRMED
	// (facts §13); the default topology assumes 25ms.
	RTT Duration `yaml:"rtt" json:"rtt"`
}

// PrivateEndpoint is a private endpoint of the HSM with its private DNS zone.
type PrivateEndpoint struct {
	Name   string `yaml:"name" json:"name"`
	Region string `yaml:"region" json:"region"`
	// DNSZone must be privatelink.managedhsm.azure.net (facts §11).
	DNSZone string `yaml:"dnsZone" json:"dnsZone"`
	// VNet is the virtual network the endpoint sits in.
	VNet string `yaml:"vnet,omitempty" json:"vnet,omitempty"`
}

// HSM is the Managed HSM resource.
type HSM struct {
	Name string `yaml:"name" json:"name"`
	// SoftDeleteRetentionDays is 7–90, default 90, fixed at creation (facts §5).
	SoftDeleteRetentionDays int `yaml:"softDeleteRetentionDays" json:"softDeleteRetentionDays"`
	// PurgeProtection is off by default in Azure (facts §5); SQL TDE and
	// Storage CMK require it.
	PurgeProtection bool `yaml:"purgeProtection" json:"purgeProtection"`
	// PublicNetworkAccess false means the HSM is reachable only through its
	// private endpoints (facts §11).
	PublicNetworkAccess bool `yaml:"publicNetworkAccess" json:"publicNetworkAccess"`
	// Pools are the HSM pools, one per region; the pool in
	// OpenQuestions.PrimaryRegion is the primary, any other is extended.
	Pools []Pool `yaml:"pools" json:"pools"`
	// AllowUnsupportedExtendedRegion models an extended region that
	// Microsoft lists as one that "cannot be extended regions at this time"
	// (facts, finding 1). Off, the emulator refuses such a topology; on, it
	// models the plan as a hypothetical. Lint reports the region either way.
	AllowUnsupportedExtendedRegion bool `yaml:"allowUnsupportedExtendedRegion,omitempty" json:"allowUnsupportedExtendedRegion,omitempty"`
	// SecurityDomain is the activation configuration.
	SecurityDomain SecurityDomain `yaml:"securityDomain" json:"securityDomain"`
	// Keys are the keys the HSM holds.
	Keys []Key `yaml:"keys" json:"keys"`
}

// Pool is the HSM pool in one region: three partitions (facts §1).
type Pool struct {
	Region     string      `yaml:"region" json:"region"`
	Partitions []Partition `yaml:"partitions" json:"partitions"`
}

// Partition is one HSM partition and where it is placed. Exactly one of Rack
// and Zone is set: racks in regions without availability zones, zones
// otherwise.
type Partition struct {
	Name string `yaml:"name" json:"name"`
	Rack string `yaml:"rack,omitempty" json:"rack,omitempty"`
	Zone string `yaml:"zone,omitempty" json:"zone,omitempty"`
}

// Placement returns the partition's rack or zone, prefixed by its kind
// ("rack:r1", "zone:1").
func (p Partition) Placement() string {
	if p.Zone != "" {
		return "zone:" + p.Zone
	}
	return "rack:" + p.Rack
}

// SecurityDomain is the activation configuration of the HSM (facts §4).
type SecurityDomain struct {
	// Officers hold one RSA key each; at least 3.
	Officers []string `yaml:"officers" json:"officers"`
	// Quorum is how many officers' keys are needed to restore; 2 ≤ quorum ≤ officers.
	Quorum int `yaml:"quorum" json:"quorum"`
}

// Key is one key in the HSM.
type Key struct {
	Name string `yaml:"name" json:"name"`
	// Type is RSA-HSM, EC-HSM or oct-HSM (facts §7).
	Type string `yaml:"type" json:"type"`
	// Size is the RSA modulus or AES key size in bits (RSA 2048/3072/4096, oct 128/192/256).
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Curve is the EC curve (P-256, P-256K, P-384, P-521).
	Curve string `yaml:"curve,omitempty" json:"curve,omitempty"`
	// Ops are the permitted key operations (wrapKey, unwrapKey, ...); empty means all the type supports.
	Ops []string `yaml:"ops,omitempty" json:"ops,omitempty"`
	// Rotation is the key's rotation policy; nil means none.
	Rotation *RotationPolicy `yaml:"rotation,omitempty" json:"rotation,omitempty"`
}

// RotationPolicy is a key's auto-rotation policy (facts §7).
type RotationPolicy struct {
	// RotateAfterCreate rotates this long after the current version was
	// created; at least 28 days (P28D).
	RotateAfterCreate Duration `yaml:"rotateAfterCreate,omitempty" json:"rotateAfterCreate,omitempty"`
	// RotateBeforeExpiry rotates this long before the current version expires.
	RotateBeforeExpiry Duration `yaml:"rotateBeforeExpiry,omitempty" json:"rotateBeforeExpiry,omitempty"`
	// ExpiresAfter sets each new version's expiry; at least 28 days.
	ExpiresAfter Duration `yaml:"expiresAfter,omitempty" json:"expiresAfter,omitempty"`
}

// Principal kinds.
const (
	PrincipalUser             = "user"
	PrincipalGroup            = "group"
	PrincipalManagedIdentity  = "managed-identity"
	PrincipalServicePrincipal = "service-principal"
)

// Principal is an identity that can hold HSM roles.
type Principal struct {
	Name string `yaml:"name" json:"name"`
	// Kind is user, group, managed-identity or service-principal.
	Kind string `yaml:"kind" json:"kind"`
	// Team is who the principal is (administrators, key-management, governance, ...).
	Team string `yaml:"team,omitempty" json:"team,omitempty"`
	// Description is free text.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// RoleAssignment grants a built-in or custom role to a principal at a scope.
type RoleAssignment struct {
	Principal string `yaml:"principal" json:"principal"`
	// Role is a role name ("Managed HSM Crypto User" or "Crypto User") or ID.
	Role string `yaml:"role" json:"role"`
	// Scope is "/", "/keys" or "/keys/<key>".
	Scope string `yaml:"scope" json:"scope"`
}

// Workloads are the services that depend on the HSM.
type Workloads struct {
	SQLManagedInstances []SQLManagedInstance `yaml:"sqlManagedInstances" json:"sqlManagedInstances"`
	FailoverGroups      []FailoverGroup      `yaml:"failoverGroups" json:"failoverGroups"`
	DiskEncryptionSets  []DiskEncryptionSet  `yaml:"diskEncryptionSets" json:"diskEncryptionSets"`
	VirtualMachines     []VirtualMachine     `yaml:"virtualMachines" json:"virtualMachines"`
	StorageAccounts     []StorageAccount     `yaml:"storageAccounts" json:"storageAccounts"`
}

// SQLManagedInstance is a SQL MI whose TDE protector is an HSM key.
type SQLManagedInstance struct {
	Name   string `yaml:"name" json:"name"`
	Region string `yaml:"region" json:"region"`
	// Identity is the instance's managed identity (a principal).
	Identity string `yaml:"identity" json:"identity"`
	// Key is the TDE protector (RSA 2048 or 3072, facts §8).
	Key string `yaml:"key" json:"key"`
	// AutoRotation makes the instance pick up new key versions within an hour (facts §8).
	AutoRotation bool `yaml:"autoRotation" json:"autoRotation"`
	// Databases is how many databases the instance hosts (a failover issues one key operation per database, facts §8).
	Databases int `yaml:"databases,omitempty" json:"databases,omitempty"`
}

// FailoverGroup is a SQL MI auto-failover group across two regions.
type FailoverGroup struct {
	Name      string `yaml:"name" json:"name"`
	Primary   string `yaml:"primary" json:"primary"`
	Secondary string `yaml:"secondary" json:"secondary"`
	// ReplicationLag is the asynchronous geo-replication lag. Not documented
	// as a number: an assumption (default 5s).
	ReplicationLag Duration `yaml:"replicationLag,omitempty" json:"replicationLag,omitempty"`
	// GracePeriod is how long an outage of the primary lasts before an
	// automatic (forced) failover; Azure's failover-policy grace period,
	// an assumption here (default 1h).
	GracePeriod Duration `yaml:"gracePeriod,omitempty" json:"gracePeriod,omitempty"`
}

// DiskEncryptionSet is a regional DES pointing at an HSM key (facts §9).
type DiskEncryptionSet struct {
	Name   string `yaml:"name" json:"name"`
	Region string `yaml:"region" json:"region"`
	// Identity is the DES's managed identity (a principal).
	Identity string `yaml:"identity" json:"identity"`
	Key      string `yaml:"key" json:"key"`
	// AutoRotation is rotationToLatestKeyVersionEnabled: disks move to a new
	// version within an hour (facts §9).
	AutoRotation bool `yaml:"autoRotation" json:"autoRotation"`
}

// VirtualMachine is a VM with CMK-encrypted managed disks.
type VirtualMachine struct {
	Name   string `yaml:"name" json:"name"`
	Region string `yaml:"region" json:"region"`
	// Role is what the VM does (for example "domain-controller").
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// DES is the disk encryption set of the VM's disks.
	DES   string `yaml:"des" json:"des"`
	Disks []Disk `yaml:"disks" json:"disks"`
	// ASR is the VM's Site Recovery replica; used when OpenQuestions.ASR is true.
	ASR *ASRReplica `yaml:"asr,omitempty" json:"asr,omitempty"`
}

// Disk is a managed disk.
type Disk struct {
	Name string `yaml:"name" json:"name"`
	// Kind is "os" or "data".
	Kind    string `yaml:"kind" json:"kind"`
	SizeGiB int    `yaml:"sizeGiB" json:"sizeGiB"`
}

// ASRReplica is where Site Recovery replicates a VM.
type ASRReplica struct {
	TargetRegion string `yaml:"targetRegion" json:"targetRegion"`
	// TargetDES is the DES pre-created in the target region (facts §9, ASR);
	// empty models the mistake of forgetting it.
	TargetDES string `yaml:"targetDES,omitempty" json:"targetDES,omitempty"`
}

// StorageAccount is a storage account encrypted with an HSM key (facts §10).
type StorageAccount struct {
	Name     string `yaml:"name" json:"name"`
	Region   string `yaml:"region" json:"region"`
	Identity string `yaml:"identity" json:"identity"`
	Key      string `yaml:"key" json:"key"`
	// KeyVersion pins a version; empty means "latest", picked up by the daily poll.
	KeyVersion string `yaml:"keyVersion,omitempty" json:"keyVersion,omitempty"`
}
