package local_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/results"
	"github.com/hsmlab/hsmlab/topology/local"
)

// requireReal skips an integration test unless the integration tier asked
// for it (make test-integration sets HSMLAB_REQUIRE_SOFTHSM=1 and
// HSMLAB_REQUIRE_AZURITE=1), and fails it there when SoftHSM or Azurite is
// missing. It returns a provider that refuses the fallbacks.
func requireReal(tb testing.TB) *local.Provider {
	tb.Helper()
	if os.Getenv("HSMLAB_REQUIRE_SOFTHSM") != "1" || os.Getenv("HSMLAB_REQUIRE_AZURITE") != "1" {
		tb.Skip("integration tier only: needs SoftHSM and Azurite; run with make test-integration (HSMLAB_REQUIRE_SOFTHSM=1 HSMLAB_REQUIRE_AZURITE=1)")
	}
	if _, err := partition.FindModule(); err != nil {
		tb.Fatalf("SoftHSM required (HSMLAB_REQUIRE_SOFTHSM=1): %v; install it with scripts/install-softhsm.sh", err)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		tb.Fatalf("SoftHSM required (HSMLAB_REQUIRE_SOFTHSM=1): softhsm2-util: %v", err)
	}
	if _, err := local.FindAzurite(""); err != nil {
		tb.Fatalf("Azurite required (HSMLAB_REQUIRE_AZURITE=1): %v", err)
	}
	return &local.Provider{RequireSoftHSM: true, RequireAzurite: true}
}

func summary(run *lab.Run) string {
	var b bytes.Buffer
	results.FromRun(run).WriteSummary(&b)
	return b.String()
}

var ctx = context.Background()
