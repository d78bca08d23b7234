package clock

import (
	"sync"
	"time"
)

// Wall is the real clock. Its zero value is ready to use.
type Wall struct{}

// Now returns the wall-clock time.
func (Wall) Now() time.Time { return time.Now() }

// AfterFunc runs f in its own goroutine after d of wall time.
func (Wall) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Scaled is a wall clock whose durations are compressed by Factor: a timer of
// d fires after d/Factor of wall time, and Now advances Factor times faster
// than the wall clock from Origin. It lets real components run service timers
// (SQL's ten minutes to Inaccessible, say) in seconds; the factor is part of
// every result produced under it.
//
// Skip jumps modelled time forward at once (a provider settling its
// components before a run starts); timers due within the jump fire
// immediately, each in its own goroutine.
type Scaled struct {
	Factor float64   // modelled seconds per wall second; values below 1 are treated as 1
	Origin time.Time // wall time at which modelled time starts
	base   time.Time

	mu      sync.Mutex
	skipped time.Duration
	timers  map[*scaledTimer]struct{}
}

// NewScaled returns a clock that runs factor times faster than the wall clock,
// starting now.
func NewScaled(factor float64) *Scaled {
	if factor < 1 {
		factor = 1
	}
	now := time.Now()
	return &Scaled{Factor: factor, Origin: now, base: now}
}

func (s *Scaled) factor() float64 {
	if s.Factor < 1 {
		return 1
	}
	return s.Factor
}

// Now returns the modelled time.
func (s *Scaled) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Scaled) nowLocked() time.Time {
	el := time.Since(s.Origin)
	base := s.base
	if base.IsZero() {
		base = s.Origin
	}
	return base.Add(time.Duration(float64(el)*s.factor()) + s.skipped)
}

// Wall converts a modelled duration to the wall time it takes under s.
func (s *Scaled) Wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.factor())
}

// AfterFunc runs f after d of modelled time.
func (s *Scaled) AfterFunc(d time.Duration, f func()) Timer {
	if d < 0 {
		d = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timers == nil {
		s.timers = map[*scaledTimer]struct{}{}
	}
	t := &scaledTimer{s: s, due: s.nowLocked().Add(d), f: f}
	s.timers[t] = struct{}{}
	t.t = time.AfterFunc(s.Wall(d), t.fire)
	return t
}

// Skip moves modelled time forward by d at once. Pending timers keep their
// modelled due times: those due within the jump fire now, the others that
// much sooner in wall time.
func (s *Scaled) Skip(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skipped += d
	now := s.nowLocked()
	for t := range s.timers {
		if t.t.Stop() {
			t.t.Reset(max(0, s.Wall(t.due.Sub(now))))
		}
	}
}

type scaledTimer struct {
	s   *Scaled
	t   *time.Timer
	due time.Time
	f   func()
}

func (t *scaledTimer) fire() {
	t.s.mu.Lock()
	delete(t.s.timers, t)
	t.s.mu.Unlock()
	t.f()
}

// Stop prevents the function from running.
func (t *scaledTimer) Stop() bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	delete(t.s.timers, t)
	return t.t.Stop()
}
