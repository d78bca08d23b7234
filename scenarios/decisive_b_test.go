package scenarios_test

import (
	"slices"
	"time"

	"github.com/hsmlab/hsmlab/lab"
	"github.com/hsmlab/hsmlab/topology"
)

// The decisive changes of the workload, rotation, misconfiguration and
// security-domain scenarios.
func init() {
	// A 30-minute disable ends inside the one-hour I/O grace period: the VMs never notice.
	decisive["disk-key-disabled"] = withStep("disk-key-disabled", func(st *lab.Step) { st.Hold = topology.Duration(30 * time.Minute) })
	// A 4-hour key cache outlives the 2-hour revocation: no request ever fails.
	decisive["storage-key-revoked"] = override("behaviour.storage.keyCacheTTL", "4h")
	// 25 hours after the rotation the daily poll has moved the accounts to the new version.
	decisive["storage-rotation-old-version-disabled-early"] = withStep("old-version-disabled", func(st *lab.Step) { st.At = topology.Duration(26 * time.Hour) })
	// With the old version still enabled, the replica that was not re-enabled boots too.
	decisive["key-rotation-with-asr"] = withoutStep("old-version-disabled")
	// With des-pune pre-created, the ASR failover brings the domain controllers up in Pune.
	decisive["missing-des-in-pune"] = withoutStep("no-des-in-pune")
	// One officer's key is below the quorum of 2: the security domain cannot be recovered.
	decisive["security-domain-recovery"] = withStep("restore", func(st *lab.Step) { st.Value.(*lab.RestoreFromSecurityDomain).Officers = 1 })
}

// withStep changes the timeline entry called name.
func withStep(name string, change func(*lab.Step)) func(*lab.Scenario) {
	return func(s *lab.Scenario) {
		i := slices.IndexFunc(s.Timeline, func(st lab.Step) bool { return st.Name == name })
		if i < 0 {
			panic("no timeline entry " + name + " in " + s.Name)
		}
		change(&s.Timeline[i])
	}
}

// withoutStep removes the timeline entry called name.
func withoutStep(name string) func(*lab.Scenario) {
	return func(s *lab.Scenario) {
		n := len(s.Timeline)
		s.Timeline = slices.DeleteFunc(s.Timeline, func(st lab.Step) bool { return st.Name == name })
		if len(s.Timeline) == n {
			panic("no timeline entry " + name + " in " + s.Name)
		}
	}
}
