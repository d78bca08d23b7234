package mhsm

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Caller is who makes a request and from where: the principal RBAC
// authorizes, and the region whose DNS resolution picks the pool (empty: the
// primary region).
type Caller struct {
	Principal string
	Region    string
}

// replica is one region's copy of the HSM: its pool, its keys and its RBAC.
// Writes reach a replica other than the one written after the replication
// lag.
type replica struct {
	region  string
	pool    *Pool
	keys    map[string]*record
	rbac    *rbac.Store
	rbacSeq uint64

	// Traffic Manager's view: health changes become visible to clients only
	// after the DNS TTL.
	healthy   bool
	prev      bool
	changedAt time.Time

	pending []func() // replication held while this region or the source is down
}

// HSM is one Managed HSM. All methods are safe for concurrent use.
type HSM struct {
	cfg Config
	clk clock.Clock

	mu       sync.RWMutex
	primary  string
	extended string // "" when none
	replicas map[string]*replica
	domain   *secdomain.Domain
	transfer *rsa.PrivateKey // exchange key for a security-domain upload
	seq      uint64
	timers   map[string]clock.Timer // rotation and purge timers by purpose/key
	closed   bool
}

// New creates a Managed HSM in the provisioned, not yet activated state:
// every data-plane operation except the security-domain download (and the
// transfer-key/upload pair for a restore) returns ErrNotActivated
// (facts §4). On error the partially built HSM is closed.
func New(cfg Config) (*HSM, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new hsm: %w", err)
	}
	h := &HSM{cfg: cfg, clk: cfg.Clock, primary: cfg.Primary.Name, replicas: map[string]*replica{}, timers: map[string]clock.Timer{}}
	if _, err := h.addReplica(cfg.Primary); err != nil {
		h.Close()
		return nil, err
	}
	if cfg.Extended != nil {
		if _, err := h.addReplica(*cfg.Extended); err != nil {
			h.Close()
			return nil, err
		}
		h.extended = cfg.Extended.Name
	}
	for _, admin := range cfg.Administrators {
		a := rbac.Assignment{Name: "admin-" + admin, Principal: admin, RoleDefinitionID: rbac.AdministratorRoleID, Scope: rbac.ScopeHSM}
		for _, r := range h.replicas {
			if err := r.rbac.Assign(a); err != nil {
				h.Close()
				return nil, fmt.Errorf("new hsm: administrator %s: %w", admin, err)
			}
		}
	}
	return h, nil
}

func (h *HSM) addReplica(rc RegionConfig) (*replica, error) {
	pl, err := newPool(rc.Name, h.cfg, rc.Partitions)
	if err != nil {
		return nil, fmt.Errorf("new hsm: %w", err)
	}
	r := &replica{region: rc.Name, pool: pl, keys: map[string]*record{}, rbac: rbac.NewStore(h.cfg.RBAC), healthy: true, prev: true}
	h.replicas[rc.Name] = r
	return r, nil
}

// Close releases every partition and stops the HSM's timers.
func (h *HSM) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, t := range h.timers {
		t.Stop()
	}
	for _, r := range h.replicas {
		r.pool.close()
	}
}

// Name returns the HSM's name.
func (h *HSM) Name() string { return h.cfg.Name }

// URL returns the HSM's data-plane URL (the base of every kid).
func (h *HSM) URL() string { return h.cfg.URL }

// Config returns the configuration with defaults applied.
func (h *HSM) Config() Config { return h.cfg }

// Activated reports whether the security domain has been downloaded (or
// uploaded into a restored HSM).
func (h *HSM) Activated() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.domain != nil
}

// Regions returns the pool regions, primary first.
func (h *HSM) Regions() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.regionsLocked()
}

func (h *HSM) regionsLocked() []string {
	out := []string{h.primary}
	if h.extended != "" {
		out = append(out, h.extended)
	}
	return out
}

// PrimaryRegion returns the primary region.
func (h *HSM) PrimaryRegion() string { return h.primary }

// Pool returns the pool of a region.
func (h *HSM) Pool(region string) (*Pool, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, ok := h.replicas[region]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchRegion, region)
	}
	return r.pool, nil
}

// nearness orders the pool regions for a client.
func (h *HSM) nearness(client string) []string {
	pools := h.regionsLocked()
	if h.cfg.Nearness != nil {
		return h.cfg.Nearness(client, pools)
	}
	if client == "" || !slices.Contains(pools, client) {
		return pools
	}
	out := []string{client}
	for _, p := range pools {
		if p != client {
			out = append(out, p)
		}
	}
	return out
}

// visible reports whether clients resolving DNS now see the replica as
// healthy: a health change becomes visible one TTL after it happened.
func (r *replica) visible(now time.Time, ttl time.Duration) bool {
	if now.Sub(r.changedAt) < ttl {
		return r.prev
	}
	return r.healthy
}

// noteHealth records a change of the pool's health for DNS routing.
func (h *HSM) noteHealth(r *replica) {
	now := h.clk.Now()
	hv := r.pool.Healthy()
	if hv == r.healthy {
		return
	}
	r.prev = r.visible(now, h.cfg.DNSTTL)
	r.healthy = hv
	r.changedAt = now
	from, to := StateServing, StateDown
	if hv {
		from, to = to, from
	}
	h.change(r.region, "hsm-pool", from, to, "")
}

// change reports a state change through Config.OnChange.
func (h *HSM) change(resource, kind, from, to, reason string) {
	if h.cfg.OnChange != nil {
		h.cfg.OnChange(Change{Resource: resource, Kind: kind, From: from, To: to, Reason: reason})
	}
}

// route picks the replica that serves a read or crypto request from the
// client's region: the nearest pool that DNS shows as healthy. A pool DNS
// still shows but that is down makes the request fail with ErrUnavailable
// (the DNS-TTL failover window).
func (h *HSM) route(client string) (*replica, error) {
	now := h.clk.Now()
	for _, name := range h.nearness(client) {
		r := h.replicas[name]
		if r.visible(now, h.cfg.DNSTTL) {
			if !r.pool.Healthy() {
				return nil, fmt.Errorf("%w: DNS still resolves to %s, which is down", ErrUnavailable, name)
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: every pool is down", ErrUnavailable)
}

// writeTarget returns the replica that takes writes: the primary, or — when
// the primary is down and writes are allowed then (the 2025 doc) — the
// extended region.
func (h *HSM) writeTarget() (*replica, error) {
	p := h.replicas[h.primary]
	if p.pool.Healthy() {
		return p, nil
	}
	if h.extended == "" {
		return nil, fmt.Errorf("%w: the primary region %s is down", ErrUnavailable, h.primary)
	}
	if h.cfg.PrimaryDownWritesDenied {
		return nil, fmt.Errorf("%w (primary %s down; primaryDownWrites=denied, the 2024 doc's reading)", ErrWriteUnavailable, h.primary)
	}
	e := h.replicas[h.extended]
	if !e.pool.Healthy() {
		return nil, fmt.Errorf("%w: both regions are down", ErrUnavailable)
	}
	return e, nil
}

// checkActive returns ErrNotActivated until the security domain exists.
func (h *HSM) checkActive() error {
	if h.closed {
		return fmt.Errorf("%w: the HSM is closed", ErrUnavailable)
	}
	if h.domain == nil {
		return ErrNotActivated
	}
	return nil
}

// authorize checks the caller against a replica's RBAC.
func authorize(r *replica, c Caller, action rbac.DataAction, target rbac.Scope) error {
	if err := r.rbac.Authorize(c.Principal, action, target); err != nil {
		return err
	}
	return nil
}

// replicate ships a record snapshot from one replica to every other after
// the replication lag.
func (h *HSM) replicate(from *replica, snap *record) {
	for name, to := range h.replicas {
		if name == from.region {
			continue
		}
		src, dst, s := from.region, to.region, snap.clone()
		h.clk.AfterFunc(h.cfg.ReplicationLag, func() { h.deliver(src, dst, func(r *replica) { h.applyRecord(r, s) }) })
	}
}

// replicateRBAC ships the RBAC store of a replica to the others.
func (h *HSM) replicateRBAC(from *replica) {
	for name, to := range h.replicas {
		if name == from.region {
			continue
		}
		src, dst, store, seq := from.region, to.region, from.rbac.Clone(), from.rbacSeq
		h.clk.AfterFunc(h.cfg.ReplicationLag, func() {
			h.deliver(src, dst, func(r *replica) {
				if seq > r.rbacSeq {
					r.rbac, r.rbacSeq = store, seq
				}
			})
		})
	}
}

// deliver applies a replicated write, or holds it while the source or the
// destination region is down (asynchronous replication resumes when both are
// up; data not yet replicated when a region is lost for good is lost).
func (h *HSM) deliver(src, dst string, apply func(*replica)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	to, ok := h.replicas[dst]
	if !ok || h.closed {
		return // the destination was removed: its pool was purged
	}
	from, ok := h.replicas[src]
	if !ok {
		return
	}
	if from.pool.isDown() {
		from.pending = append(from.pending, func() { h.deliverLocked(to, apply) })
		return
	}
	h.deliverLocked(to, apply)
}

func (h *HSM) deliverLocked(to *replica, apply func(*replica)) {
	if _, ok := h.replicas[to.region]; !ok {
		return
	}
	if to.pool.isDown() {
		to.pending = append(to.pending, func() { h.deliverLocked(to, apply) })
		return
	}
	apply(to)
}

// applyRecord installs a replicated record snapshot in a replica, importing
// new key material into its pool and deleting purged material.
func (h *HSM) applyRecord(r *replica, snap *record) {
	cur := r.keys[snap.name]
	if cur != nil && cur.seq >= snap.seq {
		return
	}
	ctx := context.Background()
	if snap.purged {
		if cur != nil {
			for _, v := range cur.versions {
				h.deleteMaterial(ctx, r, handle(cur.name, v.pub.Version))
			}
		}
		delete(r.keys, snap.name)
		return
	}
	for _, v := range snap.versions {
		if cur == nil || cur.version(v.pub.Version) == nil {
			_ = h.importMaterial(ctx, r, snap.name, v)
		}
	}
	r.keys[snap.name] = snap
}

// importMaterial loads one version's wrapped material into every available
// partition of the replica's pool.
func (h *HSM) importMaterial(ctx context.Context, r *replica, name string, v *version) error {
	hd := handle(name, v.pub.Version)
	return r.pool.each(func(m *member) error {
		if ok, _ := m.p.Has(ctx, hd); ok {
			return nil
		}
		_, err := m.p.Import(ctx, hd, v.spec, v.wrapped)
		return err
	})
}

func (h *HSM) deleteMaterial(ctx context.Context, r *replica, hd string) {
	_ = r.pool.each(func(m *member) error { return m.p.Delete(ctx, hd) })
}

// flushPending releases replication held for a region that is back.
func (h *HSM) flushPending(r *replica) {
	for _, other := range h.replicas {
		if other.pool.isDown() {
			continue
		}
		p := other.pending
		other.pending = nil
		for _, f := range p {
			f()
		}
	}
	_ = r
}

// nextSeq returns a new write sequence number.
func (h *HSM) nextSeq() uint64 {
	h.seq++
	return h.seq
}

// newVersionID returns a 32-hex-character version ID from the injected
// random source (reproducible under a seed).
func (h *HSM) newVersionID() string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 32)
	for i := range b {
		b[i] = hexd[h.cfg.Rand.IntN(16)]
	}
	return string(b)
}

func (h *HSM) kid(name, ver string) string { return h.cfg.URL + "/keys/" + name + "/" + ver }

// errKeyNotFound builds the not-found error the service returns.
func errKeyNotFound(name, ver string) error {
	if ver != "" {
		return fmt.Errorf("%w: key %s version %s", ErrKeyNotFound, name, ver)
	}
	return fmt.Errorf("%w: key %s", ErrKeyNotFound, name)
}

// live returns the non-deleted record of name in r.
func live(r *replica, name string) (*record, error) {
	rec := r.keys[name]
	if rec == nil || rec.deleted != nil || rec.purged {
		return nil, errKeyNotFound(name, "")
	}
	return rec, nil
}

var timeZero time.Time

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
