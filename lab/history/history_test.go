package history_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab/history"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := history.New()
	h.Add(history.Op{Probe: "p", Kind: "hsm-unwrap", Target: "southindia", Call: t0.Add(2 * time.Second), Return: t0.Add(2*time.Second + 3*time.Millisecond), OK: true, Pool: "southindia", Partition: "p1"})
	h.Add(history.Op{Probe: "p", Kind: "hsm-unwrap", Target: "southindia", Call: t0.Add(time.Second), Return: t0.Add(time.Second), Code: "Unreachable"})
	h.State(history.StateChange{Time: t0, Resource: "sqlmi-chennai", From: "Online", To: "Inaccessible"})
	h.Event(history.Event{Time: t0, Name: "outage", Type: "region-outage", Phase: history.PhaseInject})
	h.LostWrite(history.Lost{Target: "sqlmi-chennai", WriteID: "w1", Acked: t0})
	var buf bytes.Buffer
	if err := h.Save(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := history.Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ops := g.Ops()
	if len(ops) != 2 || ops[0].Code != "Unreachable" || ops[1].Latency() != 3*time.Millisecond {
		t.Fatalf("ops %+v", ops)
	}
	if len(g.States()) != 1 || len(g.Events()) != 1 || len(g.LostWrites()) != 1 {
		t.Fatal("records lost in the round trip")
	}
	var again bytes.Buffer
	if err := g.Save(&again); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	_ = h.Save(&first)
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Fatal("save → load → save is not byte-identical")
	}
	if _, err := history.Load(bytes.NewBufferString("{}\n")); err == nil {
		t.Fatal("an empty record loaded")
	}
}
