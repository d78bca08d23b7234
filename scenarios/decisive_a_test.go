package scenarios_test

import (
	"bytes"
	"testing"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/results"
	"github.com/hsmlab/hsmlab/scenarios"
)

// Decisive changes of the fault-catalogue scenarios (part A): for each, one
// parameter change that must make it fail.
func init() {
	// A second partition on rack 1: the rack's power loss takes two
	// partitions, and one partition cannot carry 1500 unwraps/s.
	decisive["partition-loss-one"] = override("hsm.pools[0].partitions[1].rack", "rack-1")
	// Azure's default: without purge protection the purge goes through and
	// the protector is gone for good.
	decisive["purge-attempt"] = override("hsm.purgeProtection", false)
	// A 30-minute network-error buffer: the unreachable key store makes the
	// databases Inaccessible before the endpoint is back.
	decisive["private-endpoint-loss"] = override("behaviour.sql.networkErrorBuffer", "30m")
	// Tokens of the default 24 hours outlast the 3-hour outage: nothing fails.
	decisive["identity-outage"] = override("behaviour.identity.tokenLifetime", "24h")
	// 20 databases in Pune: a storm of 40 unwraps drains in about 12 ms, and
	// the p99 does not rise.
	decisive["hsm-saturation"] = override("workloads.sqlManagedInstances[1].databases", 20)
	// A 1-minute replication lag: the new version reaches Pune before
	// Chennai's pool fails, and Chennai's SQL MI never notices.
	decisive["replication-lag-window"] = override("behaviour.hsm.replicationLag", "1m")
	// The right role: with Crypto User given back, the rotation succeeds.
	decisive["role-confusion"] = func(sc *lab.Scenario) {
		for _, st := range sc.Timeline {
			if ra, ok := st.Value.(*lab.RestoreRoleAssignment); ok && st.Name == "crypto-officer-given" {
				ra.Role = "Managed HSM Crypto User"
			}
		}
	}
}

// The sustained load of hsm-saturation (random arrivals, seeded by the
// fault) and the token expiries of identity-outage are reproducible: the
// same seed gives a byte-identical result.json.
func TestPartASameSeedSameResult(t *testing.T) {
	for _, name := range []string{"partition-loss-one", "identity-outage"} {
		t.Run(name, func(t *testing.T) {
			sc, err := scenarios.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			var out [2]bytes.Buffer
			for i := range out {
				if err := results.FromRun(execute(t, sc, 7)).WriteJSON(&out[i]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
				t.Fatal("two runs with seed 7 gave different result.json")
			}
		})
	}
}
