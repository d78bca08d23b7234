package sqlmi_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/sqlmi"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const lag = 5 * time.Second

// fog builds chennai (primary) and pune (secondary) linked by a group.
func fog(t *testing.T, e *env, grace time.Duration) (*sqlmi.Instance, *sqlmi.Instance, *sqlmi.FailoverGroup) {
	t.Helper()
	chennai := e.instance("chennai", func(c *sqlmi.Config) { c.Region = "southindia" })
	pune := e.instance("pune", func(c *sqlmi.Config) { c.Region = "centralindia" })
	mustWrite(t, e.ctx, chennai, "seeded", "before the group")
	g, err := sqlmi.NewFailoverGroup(e.ctx, sqlmi.GroupConfig{
		Name: "fog", Primary: chennai, Secondary: pune, ReplicationLag: lag,
		AutoFailoverGrace: grace, Clock: e.vc, OnStateChange: e.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	mustRead(t, e.ctx, pune, "seeded", "before the group")
	return chennai, pune, g
}

// writeEverySecond writes k1..kn, key ki at i seconds after start.
func writeEverySecond(t *testing.T, e *env, m *sqlmi.Instance, start time.Duration, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		e.at(start + time.Duration(i)*time.Second)
		mustWrite(t, e.ctx, m, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
}

// TestFailoverDataLoss: 60 writes one second apart, replication lag 5 s,
// failover right after the last write. A forced failover loses exactly the
// writes still inside the lag (k56..k60); a planned one waits for the
// secondary and loses none.
func TestFailoverDataLoss(t *testing.T) {
	for _, tc := range []struct {
		planned  bool
		lost     int
		waitDone time.Duration
	}{
		{planned: false, lost: 5},
		{planned: true, lost: 0, waitDone: lag},
	} {
		t.Run(map[bool]string{true: "planned", false: "forced"}[tc.planned], func(t *testing.T) {
			e := newEnv(t)
			chennai, pune, g := fog(t, e, 0)
			writeEverySecond(t, e, chennai, 0, 60)
			if p := g.Pending(); p != 5 {
				t.Fatalf("pending before failover = %d, want 5", p)
			}
			rep, err := g.Failover(tc.planned)
			if err != nil {
				t.Fatal(err)
			}
			if tc.planned {
				if !rep.Completed.IsZero() {
					t.Fatal("planned failover completed before the secondary caught up")
				}
				if err := chennai.Write(e.ctx, "late", nil); !errors.Is(err, sqlmi.ErrFailoverInProgress) {
					t.Fatalf("write during a planned failover: %v", err)
				}
				if _, err := g.Failover(true); !errors.Is(err, sqlmi.ErrFailoverInProgress) {
					t.Fatalf("second planned failover: %v", err)
				}
				e.at(e.now() + tc.waitDone)
				rs := g.Reports()
				rep = rs[len(rs)-1]
				if rep.Completed.Sub(rep.Requested) != lag {
					t.Fatalf("planned failover took %v, want %v", rep.Completed.Sub(rep.Requested), lag)
				}
			}
			if rep.LostWrites != tc.lost || g.LostWrites() != tc.lost {
				t.Fatalf("lost %d writes (group total %d), want %d: %+v", rep.LostWrites, g.LostWrites(), tc.lost, rep)
			}
			if tc.lost > 0 {
				ep := clock.Epoch
				if rep.FirstLost != ep.Add(56*time.Second) || rep.LastLost != ep.Add(60*time.Second) ||
					rep.DataLossWindow != 4*time.Second || fmt.Sprint(rep.LostKeys) != "[k56 k57 k58 k59 k60]" {
					t.Fatalf("lost window wrong: %+v", rep)
				}
			}
			if g.Primary() != pune || pune.Status().Role != sqlmi.Primary || chennai.Status().Role != sqlmi.Secondary {
				t.Fatalf("roles: primary %s, pune %s, chennai %s", g.Primary().Name(), pune.Status().Role, chennai.Status().Role)
			}
			for i := 1; i <= 60; i++ {
				k := fmt.Sprintf("k%d", i)
				_, err := pune.Query(e.ctx, k)
				if lost := i > 60-tc.lost; lost != errors.Is(err, sqlmi.ErrNotFound) {
					t.Fatalf("%s on the new primary: %v (lost=%v)", k, err, lost)
				}
			}
			if err := chennai.Write(e.ctx, "x", nil); !errors.Is(err, sqlmi.ErrNotPrimary) {
				t.Fatalf("write on the old primary: %v", err)
			}
			// The old primary, now secondary, drops what was lost and follows the new one.
			mustWrite(t, e.ctx, pune, "after", "failover")
			e.at(e.now() + lag)
			mustRead(t, e.ctx, chennai, "after", "failover")
			if _, err := chennai.Query(e.ctx, "k58"); tc.lost > 0 && !errors.Is(err, sqlmi.ErrNotFound) {
				t.Fatalf("lost write still on the old primary: %v", err)
			}
			mustRead(t, e.ctx, chennai, "k55", "v55")
		})
	}
}

// TestAutomaticFailoverOnOutage: Chennai goes dark right after k60; the
// writes still in flight cannot leave it; after the grace period the group
// fails over to Pune by itself and reports them lost. When Chennai comes
// back it is the secondary and is resynchronised.
func TestAutomaticFailoverOnOutage(t *testing.T) {
	e := newEnv(t)
	chennai, pune, g := fog(t, e, time.Hour)
	writeEverySecond(t, e, chennai, 0, 60)
	chennai.SetOutage(true)
	e.at(60*time.Second + 59*time.Minute)
	if g.Primary() != chennai {
		t.Fatal("failed over before the grace period")
	}
	e.at(60*time.Second + time.Hour)
	if g.Primary() != pune {
		t.Fatalf("no automatic failover after the grace period\n%s", e.dump())
	}
	rep := g.Reports()[0]
	if !rep.Automatic || rep.LostWrites != 5 {
		t.Fatalf("report %+v", rep)
	}
	mustWrite(t, e.ctx, pune, "k58", "rewritten in pune")
	chennai.SetOutage(false)
	e.at(e.now() + time.Minute)
	mustRead(t, e.ctx, chennai, "k58", "rewritten in pune")
	if _, err := chennai.Query(e.ctx, "k59"); !errors.Is(err, sqlmi.ErrNotFound) {
		t.Fatalf("lost write k59 survived on the old primary: %v", err)
	}
}

// TestAutomaticFailoverNotForKeyLoss: an Inaccessible primary (key denied)
// does not trigger the automatic policy, which reacts to outages only.
func TestAutomaticFailoverNotForKeyLoss(t *testing.T) {
	e := newEnv(t)
	chennai, _, g := fog(t, e, 10*time.Minute)
	e.keys.Revoke("mi-chennai", cmk)
	e.at(25 * time.Minute)
	if g.Primary() != chennai || len(g.Reports()) != 0 {
		t.Fatal("key loss triggered an automatic failover")
	}
}

// TestKeyOutageAndFailoverLink: a 20-minute key outage on the primary heals
// and keeps the group; a 45-minute one needs revalidation and loses the
// failover-group link (both instances become standalone).
func TestKeyOutageAndFailoverLink(t *testing.T) {
	for _, tc := range []struct {
		restoreAt time.Duration
		linked    bool
		states    string
	}{
		{20 * time.Minute, true, ""},
		{45 * time.Minute, false, "Linked>Unlinked@30m0s"},
	} {
		t.Run(tc.restoreAt.String(), func(t *testing.T) {
			e := newEnv(t)
			chennai, pune, g := fog(t, e, 0)
			e.keys.Revoke("mi-chennai", cmk)
			e.at(tc.restoreAt)
			e.keys.Grant("mi-chennai", cmk)
			e.at(2 * time.Hour)
			if tc.linked {
				probe(t, e.ctx, chennai, "2h", sqlmi.Online)
			} else {
				probe(t, e.ctx, chennai, "2h", sqlmi.Inaccessible)
				if err := chennai.Revalidate(e.ctx); err != nil {
					t.Fatal(err)
				}
				e.at(3 * time.Hour)
				probe(t, e.ctx, chennai, "3h", sqlmi.Online)
			}
			if g.Linked() != tc.linked {
				t.Fatalf("linked = %v, want %v", g.Linked(), tc.linked)
			}
			if got := e.states("fog"); got != tc.states {
				t.Fatalf("group states %q, want %q", got, tc.states)
			}
			mustWrite(t, e.ctx, chennai, "after", "outage")
			e.at(e.now() + lag)
			if tc.linked {
				mustRead(t, e.ctx, pune, "after", "outage")
				return
			}
			if chennai.Status().Role != sqlmi.Standalone || pune.Status().Role != sqlmi.Standalone {
				t.Fatalf("roles after unlink: %s %s", chennai.Status().Role, pune.Status().Role)
			}
			if _, err := pune.Query(e.ctx, "after"); !errors.Is(err, sqlmi.ErrNotFound) {
				t.Fatalf("write replicated after the link was lost: %v", err)
			}
			if _, err := g.Failover(false); !errors.Is(err, sqlmi.ErrNotLinked) {
				t.Fatalf("failover without link: %v", err)
			}
		})
	}
}

// TestReplicationWaits: writes wait while the link is cut or the secondary
// is Inaccessible, and flow once it is back; a forced failover during the
// cut loses all of them.
func TestReplicationWaits(t *testing.T) {
	t.Run("link cut then restored", func(t *testing.T) {
		e := newEnv(t)
		chennai, pune, g := fog(t, e, 0)
		g.SetLink(false)
		writeEverySecond(t, e, chennai, 0, 10)
		e.at(time.Hour)
		if g.Pending() != 10 {
			t.Fatalf("pending %d, want 10", g.Pending())
		}
		if _, err := g.Failover(true); !errors.Is(err, sqlmi.ErrNotReady) {
			t.Fatalf("planned failover with the link cut: %v", err)
		}
		g.SetLink(true)
		mustRead(t, e.ctx, pune, "k10", "v10")
	})
	t.Run("forced during the cut", func(t *testing.T) {
		e := newEnv(t)
		chennai, _, g := fog(t, e, 0)
		g.SetLink(false)
		writeEverySecond(t, e, chennai, 0, 10)
		e.at(time.Hour)
		rep, err := g.Failover(false)
		if err != nil || rep.LostWrites != 10 || rep.DataLossWindow != time.Hour-time.Second {
			t.Fatalf("forced failover during the cut: %+v %v", rep, err)
		}
	})
	t.Run("secondary inaccessible", func(t *testing.T) {
		e := newEnv(t)
		chennai, pune, g := fog(t, e, 0)
		e.keys.Revoke("mi-pune", cmk)
		e.at(11 * time.Minute)
		mustWrite(t, e.ctx, chennai, "during", "pune key loss")
		e.at(20 * time.Minute)
		if g.Pending() != 1 {
			t.Fatalf("pending %d, want 1", g.Pending())
		}
		e.keys.Grant("mi-pune", cmk)
		e.at(2 * time.Hour)
		mustRead(t, e.ctx, pune, "during", "pune key loss")
		if g.Pending() != 0 {
			t.Fatal("queue not drained")
		}
	})
}

func TestGroupConfig(t *testing.T) {
	e := newEnv(t)
	a := e.instance("a", nil)
	b := e.instance("b", nil)
	if _, err := sqlmi.NewFailoverGroup(e.ctx, sqlmi.GroupConfig{Name: "g", Primary: a, Secondary: a, Clock: e.vc}); err == nil {
		t.Fatal("group of one instance")
	}
	if _, err := sqlmi.NewFailoverGroup(e.ctx, sqlmi.GroupConfig{Name: "g", Primary: a, Secondary: b, Clock: e.vc}); err != nil {
		t.Fatal(err)
	}
	c := e.instance("c", nil)
	if _, err := sqlmi.NewFailoverGroup(e.ctx, sqlmi.GroupConfig{Name: "g2", Primary: c, Secondary: b, Clock: e.vc}); !errors.Is(err, sqlmi.ErrInGroup) {
		t.Fatalf("instance in two groups: %v", err)
	}
	if c.Status().Role != sqlmi.Standalone {
		t.Fatal("failed group creation left a role behind")
	}
}
