package clock

import "time"

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
type Scaled struct {
	Factor float64   // modelled seconds per wall second; values below 1 are treated as 1
	Origin time.Time // wall time at which modelled time starts
	base   time.Time
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

// Now returns the modelled time.
func (s *Scaled) Now() time.Time {
	el := time.Since(s.Origin)
	return s.base.Add(time.Duration(float64(el) * s.Factor))
}

// AfterFunc runs f after d of modelled time.
func (s *Scaled) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(time.Duration(float64(d)/s.Factor), f)
}
