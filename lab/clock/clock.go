// Package clock is hsmlab's time seam: every component of the lab and the
// emulators tells time and schedules work through a Clock, so that the same
// code runs under the simulator's virtual clock and under the wall clock.
//
// This package is a leaf: it imports nothing of the project. It is the only
// place in emulators/ and lab/ allowed to read the wall clock.
package clock

import (
	"time"
)

// Clock tells the time and runs functions later.
//
// Implementations must run a function scheduled with AfterFunc no earlier than
// d after the call, and must allow the function to call back into the Clock
// (schedule more work, read Now).
type Clock interface {
	// Now returns the current time of this clock.
	Now() time.Time
	// AfterFunc runs f once, d after now (d <= 0 means as soon as possible).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the function from running. It reports whether the call
	// stopped it; false means it already ran or was already stopped.
	Stop() bool
}

// Since returns the time elapsed since t on clock c.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }
