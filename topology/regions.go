package topology

import (
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
)

// CannotExtendRegions are the Azure regions (ARM names) that Microsoft lists
// as ones that "cannot be extended regions at this time" for Managed HSM
// multi-region replication: US East, US South Central, West US 2,
// Switzerland North, West Europe, Central India, Canada Central, Canada East,
// Japan West, Qatar Central, Poland Central and US West Central. Both
// stored versions of the doc agree (azure-facts.md finding 1 and §2: MRR
// 2025-06-19, MRR-old 2024-02-07). Lint reports an extended pool in one of
// them as an error. The list is the emulator's (mhsm.CannotExtendRegions),
// which refuses such a region unless the topology overrides it. Callers must
// not modify the slice.
var CannotExtendRegions = mhsm.CannotExtendRegions

// FormerlyCannotExtendRegions are on the 2024 cannot-be-extended list
// (MRR-old 2024-02-07: US Central) but no longer on the 2025 one
// (azure-facts.md §2). Lint warns about an extended pool in one of them:
// the 2025 doc suggests it is now allowed, which is worth checking before
// relying on it. Callers must not modify the slice.
var FormerlyCannotExtendRegions = mhsm.CannotExtend2024

// CannotExtend reports whether region (an ARM region name, compared
// case-insensitively) is one Microsoft says cannot be an extended region
// today, i.e. is in CannotExtendRegions.
func CannotExtend(region string) bool { return inFold(CannotExtendRegions, region) }

// FormerlyCannotExtend reports whether region is in
// FormerlyCannotExtendRegions (case-insensitively).
func FormerlyCannotExtend(region string) bool { return inFold(FormerlyCannotExtendRegions, region) }

func inFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
