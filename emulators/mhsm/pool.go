package mhsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// op is a class of operation for the capacity model.
type op int

const (
	opUnwrap op = iota
	opWrap
	opEncrypt
	opDecrypt
	opGet
	opCreate
	opAdmin
)

func (r Rates) of(o op) float64 {
	switch o {
	case opUnwrap:
		return r.Unwrap
	case opWrap:
		return r.Wrap
	case opEncrypt:
		return r.Encrypt
	case opDecrypt:
		return r.Decrypt
	case opCreate:
		return r.Create
	case opAdmin:
		return r.Admin
	}
	return r.Get
}

// PartitionState is the health of one partition as the pool sees it.
type PartitionState struct {
	Name      string
	Placement string
	Healthy   bool
	// LostAt is when the partition was lost (zero when healthy).
	LostAt time.Time
}

// member is one partition of a pool.
type member struct {
	cfg       PartitionConfig
	p         partition.Partition
	lost      bool
	lostAt    time.Time
	heal      clock.Timer
	busyUntil time.Time // capacity model: when its queue drains
}

// Pool is the set of three partitions that serves one region. Requests are
// balanced over the healthy partitions that hold the key (least queued
// first); the pool serves while at least one partition is healthy. Each
// partition serves operations at its documented rate (Config.Throughput), so
// a burst above capacity waits in the partition's queue — saturation shows up
// as latency, never as invented errors (unless Config.MaxQueue is set).
type Pool struct {
	region string
	clk    clock.Clock
	tput   Throughput
	maxQ   time.Duration

	mu      sync.Mutex
	members []*member
	down    bool // region outage
}

// Served says where and how an operation was served.
type Served struct {
	Region    string        // pool region
	Partition string        // partition name
	Queue     time.Duration // time waiting for the partition
	Service   time.Duration // modelled service time at the partition's rate
}

// Latency is the HSM-side part of the operation's latency.
func (s Served) Latency() time.Duration { return s.Queue + s.Service }

func newPool(region string, cfg Config, parts []PartitionConfig) (*Pool, error) {
	pl := &Pool{region: region, clk: cfg.Clock, tput: cfg.Throughput, maxQ: cfg.MaxQueue}
	for _, pc := range parts {
		p, err := cfg.NewPartition(region, pc)
		if err != nil {
			pl.close()
			return nil, fmt.Errorf("partition %s/%s: %w", region, pc.Name, err)
		}
		pl.members = append(pl.members, &member{cfg: pc, p: p})
	}
	return pl, nil
}

func (pl *Pool) close() {
	for _, m := range pl.members {
		if m.heal != nil {
			m.heal.Stop()
		}
		_ = m.p.Close()
	}
}

// Region returns the pool's region.
func (pl *Pool) Region() string { return pl.region }

// Partitions returns the state of each partition.
func (pl *Pool) Partitions() []PartitionState {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	out := make([]PartitionState, len(pl.members))
	for i, m := range pl.members {
		out[i] = PartitionState{Name: m.cfg.Name, Placement: m.cfg.Placement, Healthy: !m.lost, LostAt: m.lostAt}
	}
	return out
}

// Healthy reports whether the pool can serve: its region is up and at least
// one partition is healthy.
func (pl *Pool) Healthy() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.healthyLocked()
}

func (pl *Pool) healthyLocked() bool {
	if pl.down {
		return false
	}
	for _, m := range pl.members {
		if !m.lost {
			return true
		}
	}
	return false
}

func (pl *Pool) member(name string) (*member, error) {
	for _, m := range pl.members {
		if m.cfg.Name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: partition %q in %s", ErrBadParameter, name, pl.region)
}

// reserve picks the least-queued healthy partition that has handle, books
// one operation of class o on it, and returns it with the modelled queueing
// and service time.
func (pl *Pool) reserve(ctx context.Context, handle string, spec partition.KeySpec, o op) (*member, Served, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.down {
		return nil, Served{}, fmt.Errorf("%w: region %s is down", ErrUnavailable, pl.region)
	}
	now := pl.clk.Now()
	var best *member
	for _, m := range pl.members {
		if m.lost {
			continue
		}
		if handle != "" {
			if ok, err := m.p.Has(ctx, handle); err != nil || !ok {
				continue
			}
		}
		if best == nil || m.busyUntil.Before(best.busyUntil) {
			best = m
		}
	}
	if best == nil {
		return nil, Served{}, fmt.Errorf("%w: no healthy partition in %s holds the key", ErrUnavailable, pl.region)
	}
	rate := pl.tput[spec].of(o)
	var svc time.Duration
	if rate > 0 {
		svc = time.Duration(float64(time.Second) / rate)
	}
	start := now
	if best.busyUntil.After(start) {
		start = best.busyUntil
	}
	queue := start.Sub(now)
	if pl.maxQ > 0 && queue > pl.maxQ {
		return nil, Served{}, &ThrottledError{Partition: best.cfg.Name, Backlog: queue, MaxQueue: pl.maxQ}
	}
	best.busyUntil = start.Add(svc)
	return best, Served{Region: pl.region, Partition: best.cfg.Name, Queue: queue, Service: svc}, nil
}

// each runs f on every partition that is not lost (management: install,
// import, delete); a lost partition catches up when it comes back (see
// HSM.resync). Errors are joined.
func (pl *Pool) each(f func(m *member) error) error {
	pl.mu.Lock()
	var members []*member
	for _, m := range pl.members {
		if !m.lost {
			members = append(members, m)
		}
	}
	pl.mu.Unlock()
	var errs []error
	for _, m := range members {
		if err := f(m); err != nil {
			errs = append(errs, fmt.Errorf("partition %s/%s: %w", pl.region, m.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}
