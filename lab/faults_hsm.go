package lab

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
)

func init() {
	Register(TypeInfo{Type: "rack-power-loss", Kind: KindFault, New: func() any { return &RackPowerLoss{} },
		Summary: "A rack (or availability zone) loses power: every partition of the region's pool placed on it is lost; the pool serves while one partition is healthy",
		Facts:   "azure-facts.md §1 (TECH: each instance in a different rack; one rack's PDU cannot take out all instances)"})
	Register(TypeInfo{Type: "key-purge-attempt", Kind: KindFault, New: func() any { return &KeyPurgeAttempt{} },
		Summary: "Soft-delete a key (unless already deleted), then try to purge it as the operator: refused under purge protection (outcome \"refused\"; Revert recovers the key), carried out without it (outcome \"purged\"; irreversible)",
		Facts:   "azure-facts.md §5 (SOFT: purge protection; Crypto Officer purges and recovers)"})
	Register(TypeInfo{Type: "role-assignment-removal", Kind: KindFault, New: func() any { return &RoleAssignmentRemoval{} },
		Summary: "Remove a principal's role assignments (all, or one role or scope); Revert re-creates them",
		Facts:   "azure-facts.md §6 (local RBAC), §2 (role assignments replicate with the lag)"})
	Register(TypeInfo{Type: "replication-lag-window", Kind: KindFault, New: func() any {
		return &ReplicationLagWindow{FailAfter: topology.Duration(2 * time.Minute), Scope: LagScopeRegion}
	},
		Summary: "Rotate a key in the primary region, then fail the primary failAfter later — inside the replication lag — so the new version is missing in the extended region for the outage; Revert brings the primary back",
		Facts:   "azure-facts.md §2 (MRR: writes reach the extended region after up to 6 minutes; REL-DRAFT: \"data not yet replicated ... may be lost\")"})
	Register(TypeInfo{Type: "hsm-saturation", Kind: KindFault, New: func() any { return &HSMSaturation{} },
		Summary: "Extra unwrap load on a region's pool: a burst at once (optionally a failover storm, one unwrap per SQL database) and/or a sustained rate for the hold; shows up as queueing latency, not errors",
		Facts:   "azure-facts.md §3a (SCALE: per-partition throughput), §3c (no throttling of crypto operations), §8 (a failover triggers one key operation per database)"})
}

// topoKey returns a key of the topology that the emulator can hold (EC keys
// are not emulated).
func topoKey(t *topology.Topology, typ, name string) (topology.Key, error) {
	var names []string
	for _, k := range t.HSM.Keys {
		if k.Name == name {
			if k.Type == "EC-HSM" {
				return k, fmt.Errorf("%s: %s is an EC key; EC keys are not emulated", typ, name)
			}
			return k, nil
		}
		names = append(names, k.Name)
	}
	return topology.Key{}, fmt.Errorf("%s: no key %q (keys: %s)", typ, name, strings.Join(names, ", "))
}

// topoPrincipal checks that a principal is the lab's operator or one of the
// topology's principals.
func topoPrincipal(t *topology.Topology, typ, name string) error {
	if name == topology.OperatorPrincipal || slices.ContainsFunc(t.Principals, func(p topology.Principal) bool { return p.Name == name }) {
		return nil
	}
	var names []string
	for _, p := range t.Principals {
		names = append(names, p.Name)
	}
	return fmt.Errorf("%s: %q is not a principal of the topology (principals: %s)", typ, name, strings.Join(names, ", "))
}

// poolOf returns the topology's pool in region.
func poolOf(t *topology.Topology, typ, region string) (topology.Pool, error) {
	var regions []string
	for _, p := range t.HSM.Pools {
		if p.Region == region {
			return p, nil
		}
		regions = append(regions, p.Region)
	}
	return topology.Pool{}, fmt.Errorf("%s: region %q has no HSM pool (pools: %s)", typ, region, strings.Join(regions, ", "))
}

// RackPowerLoss takes out every partition of a region's pool that is placed
// on one rack (regions without availability zones) or in one zone. With the
// seed's placement — one partition per rack — that is one partition, and the
// pool keeps serving at two partitions' capacity; a topology that puts two
// partitions on one rack loses both.
type RackPowerLoss struct {
	Region string `yaml:"region" doc:"region whose pool loses the rack or zone" required:"true"`
	Rack   string `yaml:"rack,omitempty" doc:"the rack that loses power (hsm.pools[].partitions[].rack)"`
	Zone   string `yaml:"zone,omitempty" doc:"the availability zone that loses power, instead of a rack (hsm.pools[].partitions[].zone)"`

	partitions []string // placed on the rack or zone (Validate)
	failed     []string
}

// Validate checks that exactly one of rack and zone is set and that some
// partition of the region's pool is placed there.
func (f *RackPowerLoss) Validate(t *topology.Topology) error {
	p, err := poolOf(t, "rack-power-loss", f.Region)
	if err != nil {
		return err
	}
	if (f.Rack == "") == (f.Zone == "") {
		return errors.New("rack-power-loss: set rack or zone (one of them)")
	}
	f.partitions = nil
	var placements []string
	for _, part := range p.Partitions {
		if (f.Rack != "" && part.Rack == f.Rack) || (f.Zone != "" && part.Zone == f.Zone) {
			f.partitions = append(f.partitions, part.Name)
		}
		placements = append(placements, part.Name+" on "+part.Placement())
	}
	if len(f.partitions) == 0 {
		return fmt.Errorf("rack-power-loss: no partition of %s is on %s (placement: %s)", f.Region, f.placement(), strings.Join(placements, ", "))
	}
	return nil
}

func (f *RackPowerLoss) placement() string {
	if f.Zone != "" {
		return "zone " + f.Zone
	}
	return "rack " + f.Rack
}

// Describe names the rack and the partitions on it.
func (f *RackPowerLoss) Describe() string {
	return fmt.Sprintf("%s of %s loses power (%s)", f.placement(), f.Region, strings.Join(f.partitions, ", "))
}

// Inject loses the partitions on the rack or zone (those already lost stay
// lost and are not this fault's to restore).
func (f *RackPowerLoss) Inject(ctx context.Context, env topology.Env) error {
	failed, err := env.HSM().FailPartitions(f.Region, 0, f.partitions...)
	f.failed = failed
	return err
}

// Revert restores power: the partitions this fault lost come back (a no-op
// for those that healed meanwhile). Idempotent.
func (f *RackPowerLoss) Revert(ctx context.Context, env topology.Env) error {
	if len(f.failed) == 0 {
		return nil
	}
	err := env.HSM().RestorePartitions(f.Region, f.failed...)
	f.failed = nil
	return err
}

// Outcomes of key-purge-attempt.
const (
	PurgeRefused = "refused" // purge protection kept the key (recoverable)
	PurgeDone    = "purged"  // the key is gone for good
)

// keyPurger is the purge a KeyAdmin may offer (topology.KeyAdmin does not
// require it: no provider purges against real Azure).
type keyPurger interface {
	PurgeDeletedKey(ctx context.Context, c mhsm.Caller, name string) error
}

// KeyPurgeAttempt soft-deletes a key and then tries to purge it as the lab's
// operator (who holds Crypto Officer, the role that purges). The refusal
// under purge protection is the expected result, not an error: Inject
// returns nil and records Outcome "refused", and Revert recovers the key.
// Without purge protection the purge succeeds: Outcome "purged", the fault
// becomes Irreversible and Revert has nothing to bring back.
type KeyPurgeAttempt struct {
	Key string `yaml:"key" doc:"the key to delete and try to purge" required:"true"`

	deleted bool // this fault soft-deleted the key
	purged  bool
	outcome string
}

// Irreversible reports whether the purge went through. The engine asks
// right after Inject: a purged key is not reverted.
func (f *KeyPurgeAttempt) Irreversible() bool { return f.purged }

// Outcome is "refused" or "purged" after Inject ("" before).
func (f *KeyPurgeAttempt) Outcome() string { return f.outcome }

// Validate checks the key.
func (f *KeyPurgeAttempt) Validate(t *topology.Topology) error {
	_, err := topoKey(t, "key-purge-attempt", f.Key)
	return err
}

// Describe names the key.
func (f *KeyPurgeAttempt) Describe() string {
	return "soft-delete " + f.Key + ", then try to purge it"
}

// Inject soft-deletes the key unless it is already deleted, then attempts
// the purge. It returns an error only when the attempt could not be made
// (the provider cannot purge, the operator lacks a role, no such key).
func (f *KeyPurgeAttempt) Inject(ctx context.Context, env topology.Env) error {
	f.deleted, f.purged, f.outcome = false, false, ""
	admin, op := topology.AdminOf(env), env.Operator()
	purger, ok := admin.(keyPurger)
	if !ok {
		return fmt.Errorf("key-purge-attempt: purging a key: %w", ErrNotSupported)
	}
	switch _, err := admin.DeleteKey(ctx, op, f.Key); {
	case err == nil:
		f.deleted = true
	case errors.Is(err, mhsm.ErrConflict):
		// Already soft-deleted by someone else: attempt the purge anyway.
	default:
		return err
	}
	switch err := purger.PurgeDeletedKey(ctx, op, f.Key); {
	case err == nil:
		f.purged, f.outcome = true, PurgeDone
	case errors.Is(err, mhsm.ErrPurgeProtected):
		f.outcome = PurgeRefused
	default:
		return err
	}
	return nil
}

// Revert recovers the key when this fault soft-deleted it and the purge was
// refused; after a purge, or for a key deleted by someone else, it does
// nothing. Idempotent.
func (f *KeyPurgeAttempt) Revert(ctx context.Context, env topology.Env) error {
	if !f.deleted || f.purged {
		return nil
	}
	f.deleted = false
	if _, err := topology.AdminOf(env).RecoverDeletedKey(ctx, env.Operator(), f.Key); err != nil && !errors.Is(err, mhsm.ErrDeletedKeyNotFound) {
		return err
	}
	return nil
}

// RoleAssignmentRemoval removes a principal's role assignments — every one,
// or those of one role or at one scope — and re-creates them on Revert. It
// generalises key-revocation's role-removal to any principal (the
// key-management team, an administrator). Assignments are written to the
// primary and reach the extended region after the replication lag (§2).
type RoleAssignmentRemoval struct {
	Principal string `yaml:"principal" doc:"whose assignments to remove" required:"true"`
	Role      string `yaml:"role,omitempty" doc:"only assignments of this role (full or short name, or ID); default: every role"`
	Scope     string `yaml:"scope,omitempty" doc:"only assignments at exactly this scope (/, /keys or /keys/<key>); default: every scope"`

	roleID  string
	keys    []string // topology keys, for listing key-scope assignments
	removed []rbac.Assignment
}

// Validate checks the principal, role and scope.
func (f *RoleAssignmentRemoval) Validate(t *topology.Topology) error {
	if err := topoPrincipal(t, "role-assignment-removal", f.Principal); err != nil {
		return err
	}
	f.roleID = ""
	if f.Role != "" {
		r, ok := topology.LookupRole(f.Role)
		if !ok {
			return fmt.Errorf("role-assignment-removal: unknown role %q", f.Role)
		}
		f.roleID = r.ID
	}
	if f.Scope != "" {
		if _, err := rbac.ParseScope(f.Scope); err != nil {
			return fmt.Errorf("role-assignment-removal: %w", err)
		}
	}
	f.keys = nil
	for _, k := range t.HSM.Keys {
		f.keys = append(f.keys, k.Name)
	}
	return nil
}

// Describe names the principal and the filter.
func (f *RoleAssignmentRemoval) Describe() string {
	s := "remove role assignments of " + f.Principal
	if f.Role != "" {
		s += " (" + f.Role + ")"
	}
	if f.Scope != "" {
		s += " at " + f.Scope
	}
	return s
}

// Inject removes the matching assignments; finding none is an error.
func (f *RoleAssignmentRemoval) Inject(ctx context.Context, env topology.Env) error {
	f.removed = nil
	admin, op := topology.AdminOf(env), env.Operator()
	all, err := listAssignments(ctx, admin, op, f.keys)
	if err != nil {
		return err
	}
	for _, a := range all {
		if a.Principal != f.Principal || (f.roleID != "" && a.RoleDefinitionID != f.roleID) || (f.Scope != "" && string(a.Scope) != f.Scope) {
			continue
		}
		if _, err := admin.DeleteRoleAssignment(ctx, op, a.Scope, a.Name); err != nil {
			return err
		}
		f.removed = append(f.removed, a)
	}
	if len(f.removed) == 0 {
		return fmt.Errorf("role-assignment-removal: %s has no role assignment matching (role %q, scope %q)", f.Principal, f.Role, f.Scope)
	}
	return nil
}

// Revert re-creates the removed assignments (an assignment that exists
// again is left alone). Idempotent.
func (f *RoleAssignmentRemoval) Revert(ctx context.Context, env topology.Env) error {
	admin, op := topology.AdminOf(env), env.Operator()
	var errs []error
	for _, a := range f.removed {
		if _, err := admin.CreateRoleAssignment(ctx, op, a); err != nil && !errors.Is(err, rbac.ErrConflict) {
			errs = append(errs, err)
		}
	}
	f.removed = nil
	return errors.Join(errs...)
}

// assignmentLister is the full listing a KeyAdmin may offer.
type assignmentLister interface {
	ListAllRoleAssignments(ctx context.Context, c mhsm.Caller) ([]rbac.Assignment, error)
}

// listAssignments returns every role assignment, sorted by scope then name:
// the KeyAdmin's full listing when it has one, else the union of the
// listings at "/" and at every key's scope.
func listAssignments(ctx context.Context, admin topology.KeyAdmin, op mhsm.Caller, keys []string) ([]rbac.Assignment, error) {
	if l, ok := admin.(assignmentLister); ok {
		return l.ListAllRoleAssignments(ctx, op)
	}
	seen := map[string]bool{}
	var out []rbac.Assignment
	for _, scope := range append([]rbac.Scope{rbac.ScopeHSM}, keyScopes(keys)...) {
		as, err := admin.ListRoleAssignments(ctx, op, scope)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if id := string(a.Scope) + "|" + a.Name; !seen[id] {
				seen[id] = true
				out = append(out, a)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func keyScopes(keys []string) []rbac.Scope {
	out := make([]rbac.Scope, len(keys))
	for i, k := range keys {
		out[i] = rbac.KeyScope(k)
	}
	return out
}

// Scopes of replication-lag-window's outage.
const (
	LagScopeRegion = "region" // the whole primary region (HSM pool, private endpoint, DNS, workloads)
	LagScopeHSM    = "hsm"    // only the primary's HSM pool: its workloads stay up, served by the other pool
)

// ReplicationLagWindow is a write to the primary that the extended region
// has not received when the primary fails: the key is rotated in the
// primary (a new version, replicated after behaviour.hsm.replicationLag),
// and FailAfter later the primary goes down until Revert. With FailAfter
// inside the lag the new version is missing in the extended region for the
// whole outage (replication from a region that is down is held, §2); with
// FailAfter beyond it the version has arrived and the window is closed.
//
// Scope "region" takes the whole primary region out (its workloads too, so
// nothing there can use the version); "hsm" fails only the primary's pool,
// and the primary's workloads — which may already use the new version — are
// served by the extended pool, which does not have it.
type ReplicationLagWindow struct {
	Key       string            `yaml:"key" doc:"the key rotated in the primary" required:"true"`
	FailAfter topology.Duration `yaml:"failAfter" doc:"how long after the rotation the primary fails (inside behaviour.hsm.replicationLag for the window to be open)"`
	Scope     string            `yaml:"scope" doc:"region (the whole primary region goes down) or hsm (only its HSM pool; its workloads are routed to the extended pool)"`

	primary string
	lag     time.Duration

	mu       sync.Mutex
	timer    clock.Timer
	down     bool
	reverted bool
	version  string
	errs     []error
}

// Validate checks the key, the delay and the scope, and resolves the primary.
func (f *ReplicationLagWindow) Validate(t *topology.Topology) error {
	if _, err := topoKey(t, "replication-lag-window", f.Key); err != nil {
		return err
	}
	if f.FailAfter <= 0 {
		return errors.New("replication-lag-window: failAfter must be positive")
	}
	if f.Scope != LagScopeRegion && f.Scope != LagScopeHSM {
		return fmt.Errorf("replication-lag-window: scope %q is not region or hsm", f.Scope)
	}
	if len(t.HSM.Pools) < 2 {
		return errors.New("replication-lag-window: the topology has no extended region to lag behind")
	}
	f.primary, f.lag = t.OpenQuestions.PrimaryRegion, t.Behaviour.HSM.ReplicationLag.D()
	return nil
}

// Describe names the key, the delay and what fails.
func (f *ReplicationLagWindow) Describe() string {
	what := f.primary
	if f.Scope == LagScopeHSM {
		what += "'s HSM pool"
	}
	return fmt.Sprintf("rotate %s in %s, then %s fails %v later (replication lag %v)", f.Key, f.primary, what, f.FailAfter, f.lag)
}

// Outcome names the version the extended region is missing.
func (f *ReplicationLagWindow) Outcome() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.version == "" {
		return ""
	}
	return "new version " + f.version
}

// Inject rotates the key as the operator and schedules the primary's
// failure FailAfter later on the environment's clock.
func (f *ReplicationLagWindow) Inject(ctx context.Context, env topology.Env) error {
	f.mu.Lock()
	f.down, f.reverted, f.version, f.errs, f.timer = false, false, "", nil, nil
	f.mu.Unlock()
	kv, _, err := topology.AdminOf(env).RotateKey(ctx, env.Operator(), f.Key)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = kv.Version
	f.timer = env.Clock().AfterFunc(f.FailAfter.D(), func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.reverted {
			return
		}
		if err := f.setDown(env, true); err != nil {
			f.errs = append(f.errs, fmt.Errorf("replication-lag-window: %s down: %w", f.primary, err))
			return
		}
		f.down = true
	})
	return nil
}

func (f *ReplicationLagWindow) setDown(env topology.Env, down bool) error {
	if f.Scope == LagScopeHSM {
		return env.HSM().SetRegionDown(f.primary, down)
	}
	return env.SetRegionDown(f.primary, down)
}

// Revert cancels a failure not yet started, or brings the primary back; it
// returns any error the scheduled failure met. The rotation stays.
// Idempotent.
func (f *ReplicationLagWindow) Revert(ctx context.Context, env topology.Env) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reverted = true
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	errs := f.errs
	f.errs = nil
	if f.down {
		if err := f.setDown(env, false); err != nil {
			errs = append(errs, err)
		}
		f.down = false
	}
	return errors.Join(errs...)
}

// HSMSaturation puts extra unwrap load on a region's pool, as the lab's
// operator calling from that region, on the run's clock: Burst unwraps at
// once when injected (plus, with Storm, one per database of every SQL
// managed instance — a failover storm, facts §8), then Rate unwraps a
// second until Revert. The sustained load arrives as a Poisson process
// (independent clients: random gaps averaging 1/Rate, drawn from a source
// seeded by the fault's parameters, so a run is reproducible); evenly spaced
// arrivals would never queue below capacity, and would alias with the
// probes' schedule. The pool books every unwrap on its partitions' capacity
// (facts §3a), so saturation shows up as queueing latency for every other
// caller of the pool — the hsm-unwrap probes — and not as errors: Managed
// HSM does not throttle crypto operations (facts §3c).
type HSMSaturation struct {
	Region string  `yaml:"region" doc:"region whose pool takes the load (the load is routed like that region's clients)" required:"true"`
	Rate   float64 `yaml:"rate,omitempty" doc:"sustained extra unwraps per second, until the fault is reverted"`
	Burst  int     `yaml:"burst,omitempty" doc:"unwraps issued at once when the fault starts"`
	Storm  bool    `yaml:"storm,omitempty" doc:"add a failover storm to the burst: one unwrap per database of every SQL managed instance (workloads.sqlManagedInstances[].databases)"`
	Key    string  `yaml:"key,omitempty" doc:"key to unwrap with (default: the first SQL managed instance's key, else the first RSA key)"`
	Alg    string  `yaml:"alg,omitempty" doc:"unwrap algorithm: RSA-OAEP-256 (default for RSA keys), RSA-OAEP, RSA1_5, or A128KW/A192KW/A256KW (default for oct keys)"`

	burst int // Burst plus the storm (Validate)

	mu       sync.Mutex
	timer    clock.Timer
	stopped  bool
	issued   int
	failures int
	firstErr error
}

// Validate checks the region, load, key and algorithm, and sizes the burst.
func (f *HSMSaturation) Validate(t *topology.Topology) error {
	if _, err := poolOf(t, "hsm-saturation", f.Region); err != nil {
		return err
	}
	if f.Rate < 0 || f.Burst < 0 {
		return errors.New("hsm-saturation: rate and burst must not be negative")
	}
	f.burst = f.Burst
	if f.Storm {
		for _, s := range t.Workloads.SQLManagedInstances {
			f.burst += s.Databases
		}
	}
	if f.Rate == 0 && f.burst == 0 {
		return errors.New("hsm-saturation: set rate, burst or storm")
	}
	if f.Key == "" {
		if len(t.Workloads.SQLManagedInstances) > 0 {
			f.Key = t.Workloads.SQLManagedInstances[0].Key
		} else {
			for _, k := range t.HSM.Keys {
				if k.Type == "RSA-HSM" || k.Type == "RSA" {
					f.Key = k.Name
					break
				}
			}
		}
	}
	k, err := topoKey(t, "hsm-saturation", f.Key)
	if err != nil {
		return err
	}
	oct := k.Type == "oct-HSM" || k.Type == "oct"
	if f.Alg == "" {
		f.Alg = string(partition.RSAOAEP256)
		if oct {
			size := k.Size
			if size == 0 {
				size = 256
			}
			f.Alg = fmt.Sprintf("A%dKW", size)
		}
	}
	rsaAlgs := []string{string(partition.RSAOAEP256), string(partition.RSAOAEP), string(partition.RSA15)}
	octAlgs := []string{string(partition.A128KW), string(partition.A192KW), string(partition.A256KW)}
	if (!oct && !slices.Contains(rsaAlgs, f.Alg)) || (oct && !slices.Contains(octAlgs, f.Alg)) {
		return fmt.Errorf("hsm-saturation: alg %s does not unwrap with %s key %s", f.Alg, k.Type, f.Key)
	}
	return nil
}

// Describe names the load.
func (f *HSMSaturation) Describe() string {
	var parts []string
	if f.burst > 0 {
		b := fmt.Sprintf("a burst of %d unwraps", f.burst)
		if f.Storm {
			b += " (failover storm: one per SQL database)"
		}
		parts = append(parts, b)
	}
	if f.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%g unwraps/s", f.Rate))
	}
	return fmt.Sprintf("%s on %s's pool with %s", strings.Join(parts, " then "), f.Region, f.Key)
}

// Outcome reports failed unwraps (none expected: saturation is latency).
func (f *HSMSaturation) Outcome() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d unwraps failed (first: %v)", f.failures, f.issued, f.firstErr)
}

// Inject wraps one DEK, issues the burst and starts the sustained load.
// Unwraps that fail (the pool is down, say) are counted in Outcome, not
// returned: the fault's load is the point, not its answers.
func (f *HSMSaturation) Inject(ctx context.Context, env topology.Env) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped, f.issued, f.failures, f.firstErr, f.timer = false, 0, 0, nil, nil
	h := env.HSM()
	c := mhsm.Caller{Principal: env.Operator().Principal, Region: f.Region}
	dek := make([]byte, 32)
	for i := range dek {
		dek[i] = byte(i)
	}
	alg := partition.Alg(f.Alg)
	w, err := h.WrapKey(ctx, c, f.Key, "", alg, dek)
	if err != nil {
		return fmt.Errorf("hsm-saturation: wrap the load's DEK: %w", err)
	}
	unwrap := func(n int) {
		for range n {
			f.issued++
			if _, err := h.UnwrapKey(ctx, c, f.Key, w.Version, alg, w.Value); err != nil {
				f.failures++
				if f.firstErr == nil {
					f.firstErr = err
				}
			}
		}
	}
	unwrap(f.burst)
	if f.Rate > 0 {
		clk, rnd := env.Clock(), f.arrivals()
		gap := func() time.Duration { return time.Duration(rnd.ExpFloat64() / f.Rate * float64(time.Second)) }
		var arrive func()
		arrive = func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.stopped {
				return
			}
			unwrap(1)
			f.timer = clk.AfterFunc(gap(), arrive)
		}
		f.timer = clk.AfterFunc(gap(), arrive)
	}
	return nil
}

// arrivals is the random source of the sustained load's gaps, seeded by the
// fault's parameters.
func (f *HSMSaturation) arrivals() *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s|%s|%g|%d", f.Region, f.Key, f.Alg, f.Rate, f.burst)
	return rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
}

// Revert stops the sustained load (queued work still drains at the pool's
// rate). Idempotent.
func (f *HSMSaturation) Revert(ctx context.Context, env topology.Env) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	return nil
}
