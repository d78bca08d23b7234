package lab

import (
	"math"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab/history"
)

func TestMeasureFromHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	h := history.New()
	// One probe a minute for 60 minutes; failing from minute 20 to 29.
	for m := 0; m < 60; m++ {
		ok := m < 20 || m >= 30
		h.Add(history.Op{Target: "sql", Kind: "sql-query", Call: at(m), Return: at(m).Add(2 * time.Millisecond), OK: ok, Code: map[bool]string{false: "Inaccessible"}[ok]})
	}
	h.Event(history.Event{Time: at(15), Name: "f", Phase: history.PhaseInject})
	h.Event(history.Event{Time: at(45), Name: "f", Phase: history.PhaseRevert})
	h.State(history.StateChange{Time: at(20), Resource: "sql", From: "Online", To: "Inaccessible"})
	h.State(history.StateChange{Time: at(30), Resource: "sql", From: "Inaccessible", To: "Online"})
	h.LostWrite(history.Lost{Target: "sql", WriteID: "a", Acked: at(10)})
	h.LostWrite(history.Lost{Target: "sql", WriteID: "b", Acked: at(12)})
	m := newMeasure(h, t0, at(60))

	if got := m.availability("sql", PhaseBefore, ""); got != 1 {
		t.Errorf("before = %v", got)
	}
	if got := m.availability("sql", PhaseDuring, ""); math.Abs(got-20.0/30) > 1e-9 {
		t.Errorf("during = %v, want 20/30", got)
	}
	if got := m.availability("sql", PhaseAfter, ""); got != 1 {
		t.Errorf("after = %v", got)
	}
	if got := m.availability("nobody", PhaseAll, ""); !math.IsNaN(got) {
		t.Errorf("no data = %v, want NaN", got)
	}
	if got := m.downtime("sql"); got != 10*time.Minute {
		t.Errorf("downtime = %v", got)
	}
	if got := m.rto("sql"); got != 10*time.Minute {
		t.Errorf("rto = %v", got)
	}
	if got := m.detect("sql"); got != 5*time.Minute {
		t.Errorf("detect = %v", got)
	}
	if got := m.writesLost("sql"); got != 2 {
		t.Errorf("writes lost = %v", got)
	}
	if got := m.rpo("sql"); got != 2*time.Minute {
		t.Errorf("rpo = %v", got)
	}
	if d, ok := m.stateTime("sql", "Inaccessible"); !ok || d != 10*time.Minute {
		t.Errorf("state_time = %v %v", d, ok)
	}
	if d, _ := m.stateTime("sql", "Online"); d != 50*time.Minute {
		t.Errorf("state_time Online = %v", d)
	}
	if got := m.finalState("sql"); got != "Online" {
		t.Errorf("final = %q", got)
	}
	if d, ok := m.latency("sql", PhaseAll, "", 0.99); !ok || d != 2*time.Millisecond {
		t.Errorf("p99 = %v %v", d, ok)
	}

	checks := evaluate(m, []string{
		`availability("sql", "during") < 0.7`,
		`downtime("sql") <= duration("5m")`,
		`availability("nobody") == 1`,
		`writes_lost("sql") == 2 && rpo("sql") == duration("2m")`,
		`ever_in("sql", "Inaccessible") && final_state("sql") == "Online"`,
	})
	want := []Verdict{Pass, Fail, Inconclusive, Pass, Pass}
	for i, c := range checks {
		if c.Verdict != want[i] {
			t.Errorf("%s: %s (%v %s), want %s", c.Expr, c.Verdict, c.Measured, c.Detail, want[i])
		}
	}
	if len(checks[0].Measured) != 1 || checks[0].Measured[0] != `availability("sql", "during") = 0.666667` {
		t.Errorf("measured %v", checks[0].Measured)
	}
	if Overall(checks) != Fail || Overall(checks[2:3]) != Inconclusive || Overall(checks[3:]) != Pass {
		t.Error("overall verdict")
	}
}

// A target still failing at the end has an unrecovered outage up to the end.
func TestOutageUntilTheEnd(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := history.New()
	h.Add(history.Op{Target: "x", Call: t0, OK: true})
	h.Add(history.Op{Target: "x", Call: t0.Add(time.Hour)})
	m := newMeasure(h, t0, t0.Add(3*time.Hour))
	o := m.outages("x")
	if len(o) != 1 || o[0].Recovered || o[0].Duration() != 2*time.Hour {
		t.Fatalf("outages %+v", o)
	}
}
