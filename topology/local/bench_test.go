package local_test

import (
	"context"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/local"
)

// BenchmarkLocalBringUp brings the default two-region topology up on real
// parts — six SoftHSM tokens, two REST endpoints, six proxies, two Azurite
// processes, every workload, replication and failover-group seeding settled
// — and reports the time to a usable environment (target: under 5 s). Down
// is not timed.
func BenchmarkLocalBringUp(b *testing.B) {
	if _, err := partition.FindModule(); err != nil {
		b.Skipf("SoftHSM not available: %v", err)
	}
	if _, err := local.FindAzurite(""); err != nil {
		b.Skipf("Azurite not available: %v", err)
	}
	p := &local.Provider{RequireSoftHSM: true, RequireAzurite: true}
	top := topology.Default()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		wall := clock.Wall{}
		start := wall.Now()
		env, err := p.Up(context.Background(), top, topology.UpOptions{Clock: clock.NewScaled(local.DefaultTimeScale)})
		el := wall.Now().Sub(start)
		total += el
		b.StopTimer()
		if env != nil {
			if derr := env.Down(context.Background()); derr != nil {
				b.Fatal(derr)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		if el > 5*time.Second {
			b.Errorf("bring-up took %v (target < 5 s)", el)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/up")
}
