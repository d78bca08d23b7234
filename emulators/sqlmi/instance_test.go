package sqlmi_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
)

// step acts at a time offset and/or expects a state there.
type step struct {
	at   time.Duration
	do   func(e *env, m *sqlmi.Instance)
	want sqlmi.State // "" = no check
}

func expect(at time.Duration, s sqlmi.State) step { return step{at: at, want: s} }
func act(at time.Duration, f func(e *env, m *sqlmi.Instance)) step {
	return step{at: at, do: f}
}

func revokeRole(e *env, m *sqlmi.Instance)  { e.keys.Revoke("mi-"+m.Name(), cmk) }
func restoreRole(e *env, m *sqlmi.Instance) { e.keys.Grant("mi-"+m.Name(), cmk) }
func cut(e *env, m *sqlmi.Instance)         { e.keys.Client("mi-" + m.Name()).SetUnreachable(true) }
func reconnect(e *env, m *sqlmi.Instance)   { e.keys.Client("mi-" + m.Name()).SetUnreachable(false) }
func revalidate(e *env, m *sqlmi.Instance) {
	if err := m.Revalidate(e.ctx); err != nil {
		e.t.Fatalf("revalidate: %v", err)
	}
}

// TestInstanceTransitions is the TDE state machine under the virtual clock
// with the documented defaults (check every 5 min; access last known good
// at t=0, so Inaccessible at 10 min and the auto-heal window ends at 30 min).
func TestInstanceTransitions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		steps     []step
		states    string
		revNeeded bool
	}{
		{
			name: "role removed, restored at 20m: auto-heal",
			steps: []step{
				act(0, revokeRole), expect(9*time.Minute, sqlmi.Online), expect(10*time.Minute, sqlmi.Inaccessible),
				act(20*time.Minute, restoreRole), expect(24*time.Minute, sqlmi.Inaccessible),
				expect(25*time.Minute, sqlmi.Healing), expect(84*time.Minute, sqlmi.Healing),
				expect(85*time.Minute, sqlmi.Online),
			},
			states: "Online>Inaccessible@10m0s Inaccessible>Healing@25m0s Healing>Online@1h25m0s",
		},
		{
			name: "role removed, restored at 45m: manual revalidation",
			steps: []step{
				act(0, revokeRole), expect(10*time.Minute, sqlmi.Inaccessible),
				act(45*time.Minute, restoreRole), expect(3*time.Hour, sqlmi.Inaccessible),
				act(3*time.Hour, revalidate), expect(3*time.Hour, sqlmi.Revalidating),
				expect(3*time.Hour+29*time.Minute, sqlmi.Revalidating),
				expect(3*time.Hour+30*time.Minute, sqlmi.Online), expect(10*time.Hour, sqlmi.Online),
			},
			states: "Online>Inaccessible@10m0s Inaccessible>Revalidating@3h0m0s Revalidating>Online@3h30m0s",
		},
		{
			name: "network cut 23h: Unavailable, never Inaccessible",
			steps: []step{
				act(0, cut), expect(4*time.Minute, sqlmi.Online), expect(5*time.Minute, sqlmi.Unavailable),
				expect(23*time.Hour, sqlmi.Unavailable), act(23*time.Hour, reconnect),
				expect(23*time.Hour+5*time.Minute, sqlmi.Online),
			},
			states: "Online>Unavailable@5m0s Unavailable>Online@23h5m0s",
		},
		{
			name: "network cut past the 24h buffer: Inaccessible, then auto-heal",
			steps: []step{
				act(0, cut), expect(5*time.Minute, sqlmi.Unavailable), expect(23*time.Hour+59*time.Minute, sqlmi.Unavailable),
				expect(24*time.Hour, sqlmi.Inaccessible), act(24*time.Hour+10*time.Minute, reconnect),
				expect(24*time.Hour+15*time.Minute, sqlmi.Healing), expect(25*time.Hour+15*time.Minute, sqlmi.Online),
			},
			states: "Online>Unavailable@5m0s Unavailable>Inaccessible@24h0m0s Inaccessible>Healing@24h15m0s Healing>Online@25h15m0s",
		},
		{
			name: "denied for 3 minutes between checks: nothing happens",
			steps: []step{
				act(time.Minute, revokeRole), act(4*time.Minute, restoreRole), expect(2*time.Hour, sqlmi.Online),
			},
			states: "",
		},
		{
			name: "denied, then network cut: still Inaccessible (the denial was seen)",
			steps: []step{
				act(0, revokeRole), expect(5*time.Minute, sqlmi.Online), act(6*time.Minute, cut),
				expect(10*time.Minute, sqlmi.Inaccessible), expect(20*time.Hour, sqlmi.Inaccessible),
			},
			states:    "Online>Inaccessible@10m0s",
			revNeeded: true,
		},
		{
			name: "access lost again while healing: back to Inaccessible, window from the first loss",
			steps: []step{
				act(0, revokeRole), act(20*time.Minute, restoreRole), expect(25*time.Minute, sqlmi.Healing),
				act(26*time.Minute, revokeRole), expect(30*time.Minute, sqlmi.Inaccessible),
				act(40*time.Minute, restoreRole), expect(5*time.Hour, sqlmi.Inaccessible),
			},
			states:    "Online>Inaccessible@10m0s Inaccessible>Healing@25m0s Healing>Inaccessible@30m0s",
			revNeeded: true,
		},
		{
			name: "outage masks the TDE state",
			steps: []step{
				act(10*time.Minute, func(e *env, m *sqlmi.Instance) { m.SetOutage(true) }), expect(10*time.Minute, sqlmi.Unavailable),
				act(20*time.Minute, func(e *env, m *sqlmi.Instance) { m.SetOutage(false) }), expect(20*time.Minute, sqlmi.Online),
			},
			states: "Online>Unavailable@10m0s Unavailable>Online@20m0s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.instance("chennai", nil)
			mustWrite(t, e.ctx, m, "k", "v")
			for _, s := range tc.steps {
				e.at(s.at)
				if s.do != nil {
					s.do(e, m)
				}
				if s.want != "" {
					probe(t, e.ctx, m, s.at.String(), s.want)
				}
			}
			if got := e.states("chennai"); got != tc.states {
				t.Fatalf("states\n got %q\nwant %q\n%s", got, tc.states, e.dump())
			}
			if got := m.Status().NeedsRevalidation; got != tc.revNeeded {
				t.Fatalf("NeedsRevalidation = %v, want %v", got, tc.revNeeded)
			}
			if m.State() == sqlmi.Online {
				mustRead(t, e.ctx, m, "k", "v")
			}
		})
	}
}

// TestDenialKinds: disabling or deleting the key acts like removing the role.
func TestDenialKinds(t *testing.T) {
	for _, tc := range []struct {
		name            string
		revoke, restore func(e *env)
		code            string
	}{
		{"disable", func(e *env) { e.keys.SetEnabled(cmk, e.v1, false) }, func(e *env) { e.keys.SetEnabled(cmk, e.v1, true) }, "KeyDisabled"},
		{"delete", func(e *env) { e.keys.Delete(cmk) }, func(e *env) { e.keys.Recover(cmk) }, "KeyNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.instance("chennai", nil)
			tc.revoke(e)
			e.at(10 * time.Minute)
			probe(t, e.ctx, m, "10m", sqlmi.Inaccessible)
			if err := m.Revalidate(e.ctx); keyclient.Code(err) != tc.code || keyclient.Class(err) != keyclient.ErrDenied {
				t.Fatalf("revalidate while denied: %v", err)
			}
			tc.restore(e)
			e.at(85 * time.Minute)
			probe(t, e.ctx, m, "85m", sqlmi.Online)
		})
	}
}

// TestJitteredDelays: with a *rand.Rand the delays stay inside the
// documented bounds and a seed reproduces the same timeline.
func TestJitteredDelays(t *testing.T) {
	run := func(seed uint64) string {
		e := newEnv(t)
		m := e.instance("chennai", func(c *sqlmi.Config) { c.Rand = rand.New(rand.NewPCG(seed, 1)) })
		e.at(time.Minute)
		revokeRole(e, m)
		e.at(5 * time.Minute)
		probe(t, e.ctx, m, "5m", sqlmi.Online) // detected, not yet Inaccessible
		e.at(10 * time.Minute)                 // loss at 1m, last OK at 0: Inaccessible by 10m
		probe(t, e.ctx, m, "10m", sqlmi.Inaccessible)
		restoreRole(e, m)
		e.at(15 * time.Minute) // detected: Healing, Online within the hour
		probe(t, e.ctx, m, "15m", sqlmi.Healing)
		e.at(75 * time.Minute)
		probe(t, e.ctx, m, "75m", sqlmi.Online)
		return e.states("chennai")
	}
	a, b := run(7), run(7)
	if a != b {
		t.Fatalf("same seed, different timelines:\n%s\n%s", a, b)
	}
	t.Log(a)
}

// TestAutoRotation: with auto-rotation on, a new version becomes the
// protector within 60 minutes by re-wrapping the DEK (rows are not
// re-encrypted); disabling the old version afterwards is harmless. Without
// it the old version stays the protector.
func TestAutoRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rotateAt time.Duration
	}{
		{"rotated early in a poll period", 10 * time.Minute},
		{"rotated just after a poll", time.Hour + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			st, _ := e.dirStore()
			m := e.open("chennai", st, func(c *sqlmi.Config) { c.AutoRotate = true })
			mustWrite(t, e.ctx, m, "k", "v")
			sealedBefore, _, _ := st.Get(e.ctx, "k")
			e.at(tc.rotateAt)
			v2 := e.keys.MustRotate(cmk)
			var picked time.Duration
			for step := time.Minute; step <= 2*time.Hour; step += time.Minute {
				e.at(tc.rotateAt + step)
				if m.Status().KeyVersion == v2 {
					picked = step
					break
				}
			}
			if picked == 0 || picked > 60*time.Minute {
				t.Fatalf("new version picked up after %v, want within 60m", picked)
			}
			w, _, _ := st.LoadDEK(e.ctx)
			if w.KeyVersion != v2 {
				t.Fatalf("stored DEK wrapped by %s, want %s", w.KeyVersion, v2)
			}
			if sealedAfter, _, _ := st.Get(e.ctx, "k"); !bytes.Equal(sealedBefore, sealedAfter) {
				t.Fatal("rotation re-encrypted the rows")
			}
			e.keys.SetEnabled(cmk, e.v1, false)
			e.at(e.now() + 2*time.Hour)
			probe(t, e.ctx, m, "old version disabled", sqlmi.Online)
			mustRead(t, e.ctx, m, "k", "v")
		})
	}
	t.Run("auto-rotation off", func(t *testing.T) {
		e := newEnv(t)
		m := e.instance("chennai", nil)
		e.keys.MustRotate(cmk)
		e.at(3 * time.Hour)
		if v := m.Status().KeyVersion; v != e.v1 {
			t.Fatalf("protector moved to %s without auto-rotation", v)
		}
		e.keys.SetEnabled(cmk, e.v1, false)
		e.at(4 * time.Hour)
		probe(t, e.ctx, m, "old version disabled", sqlmi.Inaccessible)
	})
}

func TestManualRotationAndErrors(t *testing.T) {
	e := newEnv(t)
	m := e.instance("chennai", nil)
	if err := m.Revalidate(e.ctx); !errors.Is(err, sqlmi.ErrNotInaccessible) {
		t.Fatalf("revalidate while Online: %v", err)
	}
	v2 := e.keys.MustRotate(cmk)
	if err := m.RotateProtector(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if m.Status().KeyVersion != v2 {
		t.Fatal("manual rotation did not take the current version")
	}
	if _, err := m.Query(e.ctx, "nope"); !errors.Is(err, sqlmi.ErrNotFound) {
		t.Fatalf("missing row: %v", err)
	}
	m.Close()
	if err := m.Write(e.ctx, "k", nil); !errors.Is(err, sqlmi.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := sqlmi.New(e.ctx, sqlmi.Config{Name: "x"}); err == nil {
		t.Fatal("New without key or store succeeded")
	}
}

// TestReopen: rows and the wrapped DEK persist in the directory; a new
// instance on it unwraps the DEK and reads the rows.
func TestReopen(t *testing.T) {
	e := newEnv(t)
	st, dir := e.dirStore()
	m := e.open("chennai", st, nil)
	mustWrite(t, e.ctx, m, "a/b", "1")
	mustWrite(t, e.ctx, m, "c", "2")
	m.Close()
	st2, err := sqlmi.NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	m2 := e.open("chennai", st2, nil)
	mustRead(t, e.ctx, m2, "a/b", "1")
	mustRead(t, e.ctx, m2, "c", "2")
	keys, _ := st2.Keys(e.ctx)
	if len(keys) != 2 || keys[0] != "a/b" {
		t.Fatalf("keys %v", keys)
	}
}
