package mhsm

import (
	"context"
	"fmt"
	"slices"
)

func (pl *Pool) isDown() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.down
}

// SetRegionDown takes a region's pool out of service (a region outage: no
// request reaches it, replication to and from it is held) or brings it back.
// Bringing it back releases held replication. Idempotent.
func (h *HSM) SetRegionDown(region string, down bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.replicas[region]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchRegion, region)
	}
	r.pool.mu.Lock()
	r.pool.down = down
	r.pool.mu.Unlock()
	h.noteHealth(r)
	if !down {
		h.flushPending(r)
	}
	return nil
}

// FailPartitions marks partitions of a region's pool as lost (a partition
// failure or the rack losing power). Each heals after
// Config.PartitionHealTime (if set) provided the key material can be synced
// back from a healthy partition of the same pool or from another healthy
// pool; otherwise it stays lost until RestorePartitions (facts §1: the
// security domain is needed only when all instances are lost at once).
// names empty means n partitions chosen in pool order, skipping lost ones.
func (h *HSM) FailPartitions(region string, n int, names ...string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.replicas[region]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchRegion, region)
	}
	pl := r.pool
	pl.mu.Lock()
	var hit []*member
	if len(names) > 0 {
		for _, name := range names {
			m, err := pl.member(name)
			if err != nil {
				pl.mu.Unlock()
				return nil, err
			}
			hit = append(hit, m)
		}
	} else {
		for _, m := range pl.members {
			if len(hit) < n && !m.lost {
				hit = append(hit, m)
			}
		}
		if len(hit) < n {
			pl.mu.Unlock()
			return nil, fmt.Errorf("%w: %s has %d healthy partitions, cannot fail %d", ErrBadParameter, region, len(hit), n)
		}
	}
	now := h.clk.Now()
	var failed []string
	for _, m := range hit {
		if m.lost {
			continue
		}
		m.lost, m.lostAt = true, now
		failed = append(failed, m.cfg.Name)
		h.change(region+"/"+m.cfg.Name, "hsm-partition", StateHealthy, StateLost, "partition lost")
		if h.cfg.PartitionHealTime > 0 {
			name := m.cfg.Name
			m.heal = h.clk.AfterFunc(h.cfg.PartitionHealTime, func() { h.heal(region, name) })
		}
	}
	pl.mu.Unlock()
	h.noteHealth(r)
	return failed, nil
}

// heal is confidential service healing: a lost partition comes back when its
// keys can be synced from somewhere.
func (h *HSM) heal(region, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.replicas[region]
	if !ok {
		return
	}
	source := r.pool.Healthy()
	for reg, other := range h.replicas {
		if reg != region && other.pool.Healthy() {
			source = true
		}
	}
	if !source {
		return // all instances lost and no other pool: security-domain recovery needed
	}
	_ = h.restoreLocked(r, []string{name}, "healed by confidential service healing")
}

// RestorePartitions brings lost partitions back (the rack's power returns).
// A restored partition first catches up on every key version it missed.
// names empty restores all lost partitions of the region.
func (h *HSM) RestorePartitions(region string, names ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.replicas[region]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchRegion, region)
	}
	return h.restoreLocked(r, names, "restored")
}

func (h *HSM) restoreLocked(r *replica, names []string, reason string) error {
	ctx := context.Background()
	pl := r.pool
	pl.mu.Lock()
	var back []*member
	for _, m := range pl.members {
		if m.lost && (len(names) == 0 || slices.Contains(names, m.cfg.Name)) {
			m.lost, m.lostAt = false, timeZero
			if m.heal != nil {
				m.heal.Stop()
				m.heal = nil
			}
			back = append(back, m)
		}
	}
	pl.mu.Unlock()
	var firstErr error
	for _, m := range back {
		if err := h.resync(ctx, r, m); err != nil && firstErr == nil {
			firstErr = err
		}
		h.change(r.region+"/"+m.cfg.Name, "hsm-partition", StateLost, StateHealthy, reason)
	}
	h.noteHealth(r)
	return firstErr
}

// resync brings one partition up to date with its replica: domain key,
// every live key version, and no purged ones.
func (h *HSM) resync(ctx context.Context, r *replica, m *member) error {
	if h.domain != nil {
		if err := m.p.InstallDomainKey(ctx, h.domain.Key()); err != nil {
			return fmt.Errorf("resync %s: %w", m.cfg.Name, err)
		}
	}
	for name, rec := range r.keys {
		for _, v := range rec.versions {
			hd := handle(name, v.pub.Version)
			if ok, _ := m.p.Has(ctx, hd); ok {
				continue
			}
			if _, err := m.p.Import(ctx, hd, v.spec, v.wrapped); err != nil {
				return fmt.Errorf("resync %s: %w", m.cfg.Name, err)
			}
		}
	}
	return nil
}

// RemoveRegion removes the extended region (az keyvault region remove): its
// pool is purged at once — no soft delete (facts §2) — and replication to it
// stops. The primary cannot be removed.
func (h *HSM) RemoveRegion(region string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if region == h.primary {
		return fmt.Errorf("%w: %s is the primary region; only the extended region can be removed", ErrBadParameter, region)
	}
	r, ok := h.replicas[region]
	if !ok || region != h.extended {
		return fmt.Errorf("%w: %s is not an extended region of %s", ErrNoSuchRegion, region, h.cfg.Name)
	}
	ctx := context.Background()
	for name, rec := range r.keys {
		for _, v := range rec.versions {
			h.deleteMaterial(ctx, r, handle(name, v.pub.Version))
		}
	}
	r.pool.close()
	delete(h.replicas, region)
	h.extended = ""
	h.change(region, "hsm-pool", StateServing, StatePurged, "extended region removed")
	return nil
}

// AddRegion extends the HSM to a region (az keyvault region add). Refused
// for a second extended region (facts §2: "a single additional region only")
// and, unless Config.AllowUnsupportedExtendedRegion, for regions on
// CannotExtendRegions. The new pool receives the security domain at once and
// the keys and role assignments after the replication lag.
func (h *HSM) AddRegion(rc RegionConfig) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.extended != "" {
		return fmt.Errorf("%w: %s already has an extended region (%s); extension is supported to a single additional region only", ErrRegionRefused, h.cfg.Name, h.extended)
	}
	if _, ok := h.replicas[rc.Name]; ok {
		return fmt.Errorf("%w: %s already has a pool in %s", ErrConflict, h.cfg.Name, rc.Name)
	}
	if !CanExtendTo(rc.Name) && !h.cfg.AllowUnsupportedExtendedRegion {
		return fmt.Errorf("%w: %s is on Microsoft's list of regions that cannot be extended regions at this time", ErrRegionRefused, rc.Name)
	}
	cfg := h.cfg
	cfg.Extended = &rc
	rc = *cfg.withDefaults().Extended
	r, err := h.addReplica(rc)
	if err != nil {
		return err
	}
	h.extended = rc.Name
	if h.domain != nil {
		if err := r.pool.each(func(m *member) error { return m.p.InstallDomainKey(context.Background(), h.domain.Key()) }); err != nil {
			return fmt.Errorf("add region: %w", err)
		}
	}
	src := h.replicas[h.primary]
	for _, rec := range src.keys {
		h.replicate(src, rec.clone())
	}
	src.rbacSeq = h.nextSeq()
	h.replicateRBAC(src)
	return nil
}
