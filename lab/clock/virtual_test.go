package clock_test

import (
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab/clock"
)

func TestVirtualOrder(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	var got []string
	rec := func(s string) func() { return func() { got = append(got, s+"@"+clock.Since(v, clock.Epoch).String()) } }
	v.AfterFunc(2*time.Second, rec("b"))
	v.AfterFunc(1*time.Second, rec("a"))
	v.AfterFunc(2*time.Second, rec("c")) // same time as b: scheduled later, runs later
	v.AfterFunc(1*time.Second, func() {
		v.AfterFunc(500*time.Millisecond, rec("nested"))
	})
	stopped := v.AfterFunc(time.Second, rec("stopped"))
	if !stopped.Stop() {
		t.Fatal("Stop on a pending timer reported false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop reported true")
	}
	v.RunUntil(clock.Epoch.Add(3 * time.Second))
	want := []string{"a@1s", "nested@1.5s", "b@2s", "c@2s"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if d := clock.Since(v, clock.Epoch); d != 3*time.Second {
		t.Fatalf("now = %v after RunUntil, want 3s", d)
	}
}

func TestVirtualStepAndAdvance(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	if v.Step() {
		t.Fatal("Step on an empty queue reported true")
	}
	ran := 0
	v.AfterFunc(time.Hour, func() { ran++ })
	if next, ok := v.Next(); !ok || !next.Equal(clock.Epoch.Add(time.Hour)) {
		t.Fatalf("Next = %v %v", next, ok)
	}
	v.Advance(59 * time.Minute)
	if ran != 0 || v.Pending() != 1 {
		t.Fatalf("ran early: ran=%d pending=%d", ran, v.Pending())
	}
	if !v.Step() || ran != 1 {
		t.Fatal("Step did not run the due function")
	}
	if got := clock.Since(v, clock.Epoch); got != time.Hour {
		t.Fatalf("Step moved time to %v, want 1h", got)
	}
	v.RunUntil(clock.Epoch) // backwards: no-op
	if got := clock.Since(v, clock.Epoch); got != time.Hour {
		t.Fatalf("time went backwards to %v", got)
	}
}

func TestScaled(t *testing.T) {
	s := clock.NewScaled(1000)
	done := make(chan struct{})
	start := time.Now()
	s.AfterFunc(10*time.Second, func() { close(done) }) // 10 ms of wall time
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("scaled timer did not fire")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("scaled 10s timer took %v of wall time", el)
	}
	if clock.Since(s, s.Origin) < 10*time.Second {
		t.Fatal("scaled Now did not advance at the factor")
	}
}

func TestScaledSkip(t *testing.T) {
	s := clock.NewScaled(1)
	fired := make(chan time.Duration, 2)
	s.AfterFunc(time.Hour, func() { fired <- clock.Since(s, s.Origin) })
	stopped := s.AfterFunc(2*time.Hour, func() { t.Error("stopped timer fired") })
	stopped.Stop()
	before := s.Now()
	s.Skip(time.Hour + time.Second)
	if d := s.Now().Sub(before); d < time.Hour {
		t.Fatalf("Skip moved Now by %v", d)
	}
	select {
	case at := <-fired:
		if at < time.Hour {
			t.Fatalf("timer fired at %v of modelled time", at)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer due within the skip did not fire")
	}
	if got := s.Wall(10 * time.Minute); got != 10*time.Minute {
		t.Fatalf("Wall at factor 1 = %v", got)
	}
}
