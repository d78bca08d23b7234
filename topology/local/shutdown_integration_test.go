package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const shortScenario = `
name: local-shutdown
question: Does the local provider leave anything behind?
duration: 30m
probes:
  - {type: hsm-unwrap, target: southindia, every: 30s}
  - {type: blob-read, target: contosostchennai, every: 1m}
  - {type: sql-write, target: contoso-fog, every: 1m}
timeline:
  - {type: link-latency, name: slow-pe, at: 10m, hold: 5m, link: pe-hsm-chennai, latency: 5ms}
expect:
  - availability("southindia") == 1.0
`

// TestLocalIntegrationCleanShutdown runs the provider to success, to a
// failed bring-up and to an interrupted run (Ctrl-C: the context is
// cancelled), and checks each time that no listening socket, child process
// (Azurite) or temporary directory (the SoftHSM token directory among them)
// is left.
func TestLocalIntegrationCleanShutdown(t *testing.T) {
	p := requireReal(t)
	base := t.TempDir()
	tmp := filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp) // every temporary directory of the provider lands here
	sc, err := lab.ParseScenario("local-shutdown.yaml", []byte(shortScenario))
	if err != nil {
		t.Fatal(err)
	}
	data := func(t *testing.T) string {
		d, err := os.MkdirTemp(base, "data")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("success", func(t *testing.T) {
		before := snapshot(t, tmp)
		var during *leftovers
		run, err := lab.Execute(ctx, sc, lab.Options{Provider: p, Clock: clock.NewScaled(600), DataDir: data(t),
			Progress: func(pr lab.Progress) {
				if pr.Stage == "traffic" && during == nil {
					s := snapshot(t, tmp)
					during = &s
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		// The check sees what a running environment holds: the endpoints'
		// and proxies' listeners, two Azurite processes, the SoftHSM and
		// provider directories.
		if during == nil || len(during.listeners) < len(before.listeners)+8 || len(during.children) < len(before.children)+2 || len(during.tmp) < len(before.tmp)+2 {
			t.Fatalf("snapshot while up does not show the environment: %+v (before: %+v)", during, before)
		}
		t.Logf("while up: %d own listeners, children %v, temporary %v", len(during.listeners), during.children, during.tmp)
		if run.Verdict != lab.Pass {
			t.Fatalf("verdict %s\n%s", run.Verdict, summary(run))
		}
		checkNoLeftovers(t, before, tmp)
	})

	t.Run("failed-bring-up", func(t *testing.T) {
		before := snapshot(t, tmp)
		// SQL Server that refuses: bring-up fails after the HSM, its
		// tokens, the endpoints, the proxies and Azurite are up.
		bad := *p
		bad.SQLServerDSN = "sqlserver://nobody:nothing@127.0.0.1:1?database=none&dial+timeout=2"
		_, err := lab.Execute(ctx, sc, lab.Options{Provider: &bad, Clock: clock.NewScaled(600), DataDir: data(t)})
		if err == nil {
			t.Fatal("bring-up against a refusing SQL Server succeeded")
		}
		t.Logf("bring-up failed as it should: %v", err)
		checkNoLeftovers(t, before, tmp)
	})

	t.Run("interrupted", func(t *testing.T) {
		before := snapshot(t, tmp)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		long := *sc
		long.Duration = 24 * 60 * 60 * 1e9 // a day: far longer than the test waits
		progressed := make(chan struct{}, 1)
		_, err := lab.Execute(cctx, &long, lab.Options{Provider: p, Clock: clock.NewScaled(600), DataDir: data(t),
			Progress: func(pr lab.Progress) {
				if pr.Stage == "traffic" && pr.Elapsed > 20*time.Minute {
					select {
					case progressed <- struct{}{}:
						cancel() // Ctrl-C
					default:
					}
				}
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run returned %v", err)
		}
		checkNoLeftovers(t, before, tmp)
	})
}
