package topology

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Provider brings a topology to life: in-process under virtual time (sim),
// as real processes on loopback (local), in containers, or against Azure.
type Provider interface {
	// Name is the provider's name as results record it ("sim", "local", ...).
	Name() string
	// Up starts the topology. On error it returns what was started (or
	// nil), which the caller must Down.
	Up(ctx context.Context, t *Topology, o UpOptions) (Env, error)
}

// UpOptions are handed to a provider.
type UpOptions struct {
	// Clock drives every component (a *clock.Virtual in the sim).
	Clock clock.Clock
	// Rand is the run's seeded random source.
	Rand *rand.Rand
	// DataDir holds the workloads' data (encrypted) for the run.
	DataDir string
	// OnState receives every service state change.
	OnState func(StateChange)
}

// StateChange is a component changing state (SQL Online → Inaccessible, a
// pool going down, ...).
type StateChange struct {
	Time     time.Time
	Resource string
	Kind     string
	From, To string
	Reason   string
}

// Env is a running topology: what faults act on and probes observe.
type Env interface {
	Provider() string
	Topology() *Topology
	Clock() clock.Clock
	// HSM is the Managed HSM emulator.
	HSM() *mhsm.HSM
	// Operator is the principal faults and runbook actions act as; the
	// provider grants it Administrator, Crypto User and Crypto Officer.
	Operator() mhsm.Caller
	// Network controls the links between clients and the HSM.
	Network() Links
	// Workloads controls the workloads for runbook actions.
	Workloads() WorkloadControl
	// SetRegionDown takes a whole region out (HSM pool, private endpoint,
	// DNS and workloads) or brings it back.
	SetRegionDown(region string, down bool) error
	// Probe performs one observation.
	Probe(ctx context.Context, p ProbeSpec) ProbeResult
	// LostWrites returns which acknowledged writes (by ID) of a workload
	// are missing from its current primary copy.
	LostWrites(ctx context.Context, target string, acked []string) ([]string, error)
	// Down stops everything. It is idempotent.
	Down(ctx context.Context) error
}

// Probe kinds.
const (
	ProbeHSMUnwrap = "hsm-unwrap"
	ProbeSQLQuery  = "sql-query"
	ProbeSQLWrite  = "sql-write"
	ProbeBlobRead  = "blob-read"
	ProbeBlobWrite = "blob-write"
	ProbeVMBoot    = "vm-boot"
	ProbeDiskIO    = "disk-io"
)

// ProbeKinds lists every probe kind with what it targets.
var ProbeKinds = map[string]string{
	ProbeHSMUnwrap: "a region (unwrap a DEK from that region through its private endpoint)",
	ProbeSQLQuery:  "a SQL managed instance (read a row)",
	ProbeSQLWrite:  "a SQL managed instance (write a row; lost writes are counted)",
	ProbeBlobRead:  "a storage account (read a blob)",
	ProbeBlobWrite: "a storage account (write a blob)",
	ProbeVMBoot:    "a VM (boot it if it is not running)",
	ProbeDiskIO:    "a VM (read and write a disk block)",
}

// ProbeSpec is one probe as a scenario declares it.
type ProbeSpec struct {
	// Type is a probe kind.
	Type string `yaml:"type" json:"type"`
	// Target is the workload (or, for hsm-unwrap, the client region).
	Target string `yaml:"target" json:"target"`
	// Key and As are for hsm-unwrap: which key, as which principal
	// (defaults: a service identity of that region and its key).
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
	As  string `yaml:"as,omitempty" json:"as,omitempty"`
	// Every is the probe interval.
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
	// Seq numbers the probe's operations (set by the engine).
	Seq int64 `yaml:"-" json:"-"`
}

// ProbeResult is the outcome of one probe operation.
type ProbeResult struct {
	OK      bool
	Code    string // error code on failure
	Err     string
	Latency time.Duration
	// HSM details when an HSM operation was involved.
	Pool, Partition, KeyVersion string
	Region, Path                string
	// WriteID names an acknowledged write (sql-write, blob-write).
	WriteID string
}

// Links controls named network links. Link names are provider-defined; the sim's
// are "<regionA>~<regionB>" for inter-region paths and the private
// endpoints' names.
type Links interface {
	// Links lists the link names.
	Links() []string
	// SetLatency adds extra one-way latency to a link (0 removes it).
	SetLatency(link string, extra time.Duration) error
	// SetCut cuts a link or restores it.
	SetCut(link string, cut bool) error
}

// WorkloadControl is what runbook actions do to the workloads.
type WorkloadControl interface {
	// SQLFailover fails a failover group over: planned (no data loss, waits
	// for the secondary) or forced (immediate; unreplicated writes are lost).
	SQLFailover(ctx context.Context, group string, planned bool) error
	// SQLRevalidate revalidates an Inaccessible instance's TDE protector.
	SQLRevalidate(ctx context.Context, instance string) error
	// ASRFailover boots a VM's Site Recovery replica in its target region.
	ASRFailover(ctx context.Context, vm string) error
	// ASRReenableReplication re-creates a VM's replica with the current key version.
	ASRReenableReplication(ctx context.Context, vm string) error
}

// IdentityControl is Microsoft Entra ID as the workloads see it.
type IdentityControl interface {
	// SetIssuing stops (false) or resumes issuing new tokens; tokens already
	// issued stay valid for their lifetime (behaviour.identity.tokenLifetime).
	SetIssuing(on bool) error
}

// DNSControl overrides how a region's clients resolve the HSM.
type DNSControl interface {
	// Misroute makes clients in region resolve the HSM to pool region to
	// (ignoring Traffic Manager's health view); to "" restores normal
	// resolution.
	Misroute(region, to string) error
}

// DisasterRecovery is implemented by environments that can lose the whole
// HSM (every partition of every pool, for good) and rebuild it from the
// security domain (facts §4).
type DisasterRecovery interface {
	// LoseHSM loses every partition of every pool; nothing heals.
	LoseHSM(ctx context.Context) error
	// RestoreHSM creates a new HSM, uploads the security domain recovered
	// with the private keys of the first n officers, restores the last full
	// backup and points the workloads at it. Fewer than the quorum fails.
	RestoreHSM(ctx context.Context, n int) error
}

// PlaintextScanner is implemented by environments that can check the
// run's data directory for plaintext data-encryption keys: the lab runs it
// after every run, and a finding fails the run.
type PlaintextScanner interface {
	PlaintextDEKs() ([]string, error)
}

// ErrUnknownLink is returned for a link name the provider does not have.
var ErrUnknownLink = errors.New("unknown link")

// LinkName is the name of the inter-region path between two regions.
func LinkName(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "~" + b
}

// LinkNames lists the topology's links: every inter-region path, then every
// private endpoint.
func LinkNames(t *Topology) []string {
	var out []string
	for _, l := range t.Network.Links {
		out = append(out, LinkName(l.Between[0], l.Between[1]))
	}
	for _, pe := range t.Network.PrivateEndpoints {
		out = append(out, pe.Name)
	}
	return out
}

// StepChecker is implemented by providers that cannot perform every fault or
// action. The lab asks it about each timeline entry (its kind, registered
// type name and configured value) before anything comes up, and refuses the
// run with the returned reason.
type StepChecker interface {
	CheckStep(kind, typ string, value any) error
}

// Noter is implemented by environments with run-level remarks the result
// must carry (a fallback from a real component to an embedded one, the time
// scale of a wall-clock run, ...).
type Noter interface {
	Notes() []string
}

// KeyAdmin is the key and role management a fault performs as the lab's
// operator. *mhsm.HSM implements it directly (the sim); a provider whose
// faults must travel the way an operator's tooling would — over the Key
// Vault REST API — returns its own implementation from
// KeyAdministration.KeyAdmin. Errors wrap the same sentinels as the
// emulator's (mhsm.ErrDeletedKeyNotFound, rbac.ErrConflict, ...).
type KeyAdmin interface {
	ListVersions(ctx context.Context, c mhsm.Caller, name string) ([]mhsm.KeyVersion, error)
	UpdateKey(ctx context.Context, c mhsm.Caller, name, ver string, o mhsm.KeyOptions) (mhsm.KeyVersion, error)
	DeleteKey(ctx context.Context, c mhsm.Caller, name string) (mhsm.DeletedKey, error)
	RecoverDeletedKey(ctx context.Context, c mhsm.Caller, name string) (mhsm.KeyVersion, error)
	RotateKey(ctx context.Context, c mhsm.Caller, name string) (mhsm.KeyVersion, mhsm.Served, error)
	ListRoleAssignments(ctx context.Context, c mhsm.Caller, scope rbac.Scope) ([]rbac.Assignment, error)
	CreateRoleAssignment(ctx context.Context, c mhsm.Caller, a rbac.Assignment) (rbac.Assignment, error)
	DeleteRoleAssignment(ctx context.Context, c mhsm.Caller, scope rbac.Scope, name string) (rbac.Assignment, error)
}

var _ KeyAdmin = (*mhsm.HSM)(nil)

// KeyAdministration is implemented by environments whose key-management
// faults go through something other than the emulator's core (see KeyAdmin).
type KeyAdministration interface {
	KeyAdmin() KeyAdmin
}

// AdminOf returns the environment's KeyAdmin: its own when it has one, else
// the HSM emulator itself.
func AdminOf(env Env) KeyAdmin {
	if ka, ok := env.(KeyAdministration); ok {
		return ka.KeyAdmin()
	}
	return env.HSM()
}

// LinkShaper is implemented by Links on real sockets (toxiproxy) that can
// also reset connections and limit bandwidth.
type LinkShaper interface {
	// SetReset makes every connection over the link reset (TCP RST) as soon
	// as data flows, or stops doing so.
	SetReset(link string, on bool) error
	// SetBandwidth limits the link to kbps kilobytes per second in each
	// direction; 0 removes the limit.
	SetBandwidth(link string, kbps int) error
}

// DNSNowhere is the DNSControl.Misroute target that resolves the HSM's name
// to an address where nothing answers: every request from the region is
// unreachable.
const DNSNowhere = "nowhere"

// KeyVersionControl is implemented by environments whose workloads can be
// pointed at a key version by hand — step 2 of the seed's key rotation
// ("update services to use the new version"): a SQL instance's manual TDE
// protector rotation, a storage account's or a DES's key version.
type KeyVersionControl interface {
	// SetKeyVersion points a SQL managed instance, storage account or disk
	// encryption set at version of its key ("" = the key's current version
	// as the workload's own key store route sees it), re-wrapping its DEKs
	// now. The version is pinned: a storage account stops its daily poll.
	SetKeyVersion(ctx context.Context, workload, version string) error
}
