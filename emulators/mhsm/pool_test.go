package mhsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

func TestPartitionLossAndHealing(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "k")
	l.clk.Advance(7 * time.Minute)
	w, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "k", "", partition.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	unwrap := func() (mhsm.Result, error) {
		return l.h.UnwrapKey(ctx, as(keyMgr, chennai), "k", w.Version, partition.RSAOAEP256, w.Value)
	}
	failed, err := l.h.FailPartitions(chennai, 2)
	if err != nil || len(failed) != 2 {
		t.Fatalf("fail 2: %v %v", failed, err)
	}
	for range 6 { // every request lands on the one healthy partition
		r, err := unwrap()
		if err != nil {
			t.Fatalf("two partitions lost: %v", err)
		}
		if r.Served.Region != chennai || r.Served.Partition != "p3" {
			t.Fatalf("served by %s/%s", r.Served.Region, r.Served.Partition)
		}
	}
	// Losing the third takes the pool out; after the DNS TTL Pune serves.
	if _, err := l.h.FailPartitions(chennai, 0, "p3"); err != nil {
		t.Fatal(err)
	}
	if _, err := unwrap(); !errors.Is(err, mhsm.ErrUnavailable) {
		t.Fatalf("pool lost, inside the TTL: %v", err)
	}
	l.clk.Advance(5 * time.Second)
	if r, err := unwrap(); err != nil || r.Served.Region != pune {
		t.Fatalf("pool lost, after the TTL: %s %v", r.Served.Region, err)
	}
	// Healing: after the heal time, with Pune to sync from, Chennai is back.
	l.clk.Advance(30 * time.Minute)
	for _, p := range mustPool(t, l, chennai).Partitions() {
		if !p.Healthy {
			t.Fatalf("partition %s not healed after 30 minutes", p.Name)
		}
	}
	l.clk.Advance(5 * time.Second)
	if r, err := unwrap(); err != nil || r.Served.Region != chennai {
		t.Fatalf("after healing: %s %v", r.Served.Region, err)
	}
}

// A single-region HSM that loses all three partitions at once does not heal
// by itself: that is the case the security domain exists for (facts §1).
func TestAllPartitionsLostWithoutAnotherRegion(t *testing.T) {
	l := newLab(t, func(c *mhsm.Config) { c.Extended = nil })
	l.createRSA(t, "k")
	if _, err := l.h.FailPartitions(chennai, 3); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(2 * time.Hour)
	for _, p := range mustPool(t, l, chennai).Partitions() {
		if p.Healthy {
			t.Fatalf("partition %s healed with no source of key material", p.Name)
		}
	}
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, ""), "k", ""); !errors.Is(err, mhsm.ErrUnavailable) {
		t.Fatalf("get with every partition lost: %v", err)
	}
	// Power comes back (the fault is reverted): the partitions kept their keys.
	if err := l.h.RestorePartitions(chennai); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(5 * time.Second)
	if _, _, err := l.h.GetKey(ctx, as(keyMgr, ""), "k", ""); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}

// A partition that was down while a key was created catches up when it is
// restored, so it can serve the new key.
func TestRestoredPartitionResyncs(t *testing.T) {
	l := newLab(t, func(c *mhsm.Config) { c.PartitionHealTime = 0 })
	if _, err := l.h.FailPartitions(chennai, 0, "p1"); err != nil {
		t.Fatal(err)
	}
	l.createRSA(t, "k")
	if _, err := l.h.FailPartitions(chennai, 0, "p2", "p3"); err != nil {
		t.Fatal(err)
	}
	if err := l.h.RestorePartitions(chennai, "p1"); err != nil {
		t.Fatal(err)
	}
	r, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "k", "", partition.RSAOAEP256, dek())
	if err != nil || r.Served.Partition != "p1" {
		t.Fatalf("restored partition: %s %v", r.Served.Partition, err)
	}
}

// Capacity: a burst of unwraps arriving at one instant queues at the
// partitions' documented rate (RSA-2048 unwrap 1100/s each, facts §3a);
// saturation is latency, not errors.
func TestCapacityQueueing(t *testing.T) {
	l := newLab(t)
	l.createRSA(t, "k")
	l.clk.Advance(7 * time.Minute)
	w, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "k", "", partition.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(time.Second) // drain the wrap
	svc := time.Second / 1100
	burst := func(n int) time.Duration {
		var last time.Duration
		for range n {
			r, err := l.h.UnwrapKey(ctx, as(keyMgr, chennai), "k", w.Version, partition.RSAOAEP256, w.Value)
			if err != nil {
				t.Fatal(err)
			}
			if r.Served.Service != svc {
				t.Fatalf("service time %v, want %v", r.Served.Service, svc)
			}
			last = r.Served.Queue
		}
		return last
	}
	// 300 requests over 3 partitions: the last waits behind 99 others on its partition.
	if q := burst(300); q != 99*svc {
		t.Fatalf("three partitions: last request queued %v, want %v", q, 99*svc)
	}
	l.clk.Advance(time.Second)
	if _, err := l.h.FailPartitions(chennai, 2); err != nil {
		t.Fatal(err)
	}
	if q := burst(300); q != 299*svc {
		t.Fatalf("one partition: last request queued %v, want %v", q, 299*svc)
	}
}

func TestMaxQueueThrottles(t *testing.T) {
	l := newLab(t, func(c *mhsm.Config) { c.MaxQueue = 10 * time.Millisecond })
	l.createRSA(t, "k")
	l.clk.Advance(7 * time.Minute)
	w, err := l.h.WrapKey(ctx, as(keyMgr, chennai), "k", "", partition.RSAOAEP256, dek())
	if err != nil {
		t.Fatal(err)
	}
	var throttled int
	for range 60 {
		_, err := l.h.UnwrapKey(ctx, as(keyMgr, chennai), "k", w.Version, partition.RSAOAEP256, w.Value)
		if errors.Is(err, mhsm.ErrThrottled) {
			throttled++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if throttled == 0 {
		t.Fatal("no request throttled beyond the queue bound")
	}
	if code, status := mhsm.Code(mhsm.ErrThrottled); code != "Throttled" || status != 429 {
		t.Fatalf("code %s %d", code, status)
	}
}

func mustPool(t *testing.T, l *lab, region string) *mhsm.Pool {
	t.Helper()
	p, err := l.h.Pool(region)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
