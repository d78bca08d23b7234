package sim

import (
	"context"
	"fmt"

	"github.com/hsmlab/hsmlab/topology"
)

// The sim implements topology.KeyVersionControl.
var _ topology.KeyVersionControl = (*env)(nil)

// SetKeyVersion points a workload at a key version now: a SQL managed
// instance re-wraps its DEK (manual protector rotation), a storage account
// re-wraps its account key and pins the version, a DES re-wraps its disks'
// DEKs. version "" is the key's current version as the workload's own key
// client sees it (its region's route). A workload whose region is down
// cannot be changed.
func (e *env) SetKeyVersion(ctx context.Context, workload, version string) error {
	if e.wl == nil {
		return fmt.Errorf("sim: set key version: no workloads")
	}
	if s, ok := e.wl.sql[workload]; ok {
		if e.regionDown(s.region) {
			return fmt.Errorf("sim: set key version of %s: %s is down", workload, s.region)
		}
		return s.inst.RotateProtector(ctx, version)
	}
	if s, ok := e.wl.st[workload]; ok {
		if e.regionDown(s.region) {
			return fmt.Errorf("sim: set key version of %s: %s is down", workload, s.region)
		}
		if version == "" {
			for _, a := range e.t.Workloads.StorageAccounts {
				if a.Name == workload {
					k, err := e.KeyClient(a.Identity, a.Region).GetKey(ctx, a.Key, "")
					if err != nil {
						return fmt.Errorf("sim: set key version of %s: %w", workload, err)
					}
					version = k.Version
				}
			}
		}
		return s.acct.SetKeyVersion(ctx, version)
	}
	if d, ok := e.wl.des[workload]; ok {
		if e.regionDown(d.Region()) {
			return fmt.Errorf("sim: set key version of %s: %s is down", workload, d.Region())
		}
		return d.SetKeyVersion(ctx, version)
	}
	return fmt.Errorf("sim: set key version: no SQL managed instance, storage account or DES %q", workload)
}
