package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hsmlab/hsmlab/topology"
)

func init() {
	Register(TypeInfo{Type: "sql-failover", Kind: KindAction, New: func() any { return &SQLFailover{Mode: "forced"} },
		Summary: "Fail a SQL failover group over to its secondary: planned (waits for replication, no data loss) or forced (immediate; unreplicated writes are lost)",
		Facts:   "azure-facts.md §8 (TDE: geo-replication / failover groups)"})
	Register(TypeInfo{Type: "sql-revalidate", Kind: KindAction, New: func() any { return &SQLRevalidate{} },
		Summary: "Revalidate an Inaccessible SQL instance's TDE protector (the only way back after the 30-minute auto-heal window)",
		Facts:   "azure-facts.md §8 (TDE: after 30 min, manual re-validation)"})
	Register(TypeInfo{Type: "asr-failover", Kind: KindAction, New: func() any { return &ASRFailover{} },
		Summary: "Fail VMs over with Azure Site Recovery: boot their replicas in the target region through the DES pre-created there",
		Facts:   "azure-facts.md §9 (ASR: pre-create the DES in the target region)"})
	Register(TypeInfo{Type: "asr-reenable-replication", Kind: KindAction, New: func() any { return &ASRReenable{} },
		Summary: "Disable and re-enable ASR replication of VMs so their replicas pick up the current key version (needed after a key rotation)",
		Facts:   "azure-facts.md §9 (ASR FAQ); seed section 10 (ASR warning)"})
}

// SQLFailover fails a failover group over.
type SQLFailover struct {
	Group string `yaml:"group,omitempty" doc:"failover group (default: the topology's only one)"`
	Mode  string `yaml:"mode" doc:"planned or forced"`
}

// Validate checks the group and mode.
func (a *SQLFailover) Validate(t *topology.Topology) error {
	var names []string
	for _, g := range t.Workloads.FailoverGroups {
		names = append(names, g.Name)
	}
	if a.Group == "" && len(names) == 1 {
		a.Group = names[0]
	}
	if !slices.Contains(names, a.Group) {
		return fmt.Errorf("sql-failover: no failover group %q (groups: %s)", a.Group, strings.Join(names, ", "))
	}
	if a.Mode != "planned" && a.Mode != "forced" {
		return fmt.Errorf("sql-failover: mode %q is not planned or forced", a.Mode)
	}
	return nil
}

// Describe names the group and mode.
func (a *SQLFailover) Describe() string { return a.Mode + " failover of " + a.Group }

// Do fails the group over.
func (a *SQLFailover) Do(ctx context.Context, env topology.Env) error {
	return env.Workloads().SQLFailover(ctx, a.Group, a.Mode == "planned")
}

// SQLRevalidate revalidates SQL instances.
type SQLRevalidate struct {
	Instances []string `yaml:"instances,omitempty" doc:"SQL instances to revalidate (default: all)"`
}

// Validate resolves the default.
func (a *SQLRevalidate) Validate(t *topology.Topology) error {
	var names []string
	for _, s := range t.Workloads.SQLManagedInstances {
		names = append(names, s.Name)
	}
	if len(a.Instances) == 0 {
		a.Instances = names
	}
	for _, n := range a.Instances {
		if !slices.Contains(names, n) {
			return fmt.Errorf("sql-revalidate: no SQL instance %q", n)
		}
	}
	return nil
}

// Describe names the instances.
func (a *SQLRevalidate) Describe() string { return "revalidate " + strings.Join(a.Instances, ", ") }

// Do revalidates each instance; instances that do not need it are skipped.
func (a *SQLRevalidate) Do(ctx context.Context, env topology.Env) error {
	var errs []string
	for _, n := range a.Instances {
		if err := env.Workloads().SQLRevalidate(ctx, n); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// ASRFailover fails VMs over.
type ASRFailover struct {
	VMs []string `yaml:"vms,omitempty" doc:"VMs to fail over (default: every replicated VM)"`
}

func replicatedVMs(t *topology.Topology) []string {
	var out []string
	for _, v := range t.Workloads.VirtualMachines {
		if v.ASR != nil {
			out = append(out, v.Name)
		}
	}
	return out
}

// Validate resolves the default and checks ASR is in use.
func (a *ASRFailover) Validate(t *topology.Topology) error {
	if !t.OpenQuestions.ASR {
		return fmt.Errorf("asr-failover: the topology does not use ASR (openQuestions.asr: false)")
	}
	all := replicatedVMs(t)
	if len(a.VMs) == 0 {
		a.VMs = all
	}
	for _, v := range a.VMs {
		if !slices.Contains(all, v) {
			return fmt.Errorf("asr-failover: VM %q is not replicated (replicated: %s)", v, strings.Join(all, ", "))
		}
	}
	return nil
}

// Describe names the VMs.
func (a *ASRFailover) Describe() string { return "ASR failover of " + strings.Join(a.VMs, ", ") }

// Do fails each VM over; failures are reported together.
func (a *ASRFailover) Do(ctx context.Context, env topology.Env) error {
	var errs []string
	for _, v := range a.VMs {
		if err := env.Workloads().ASRFailover(ctx, v); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// ASRReenable re-enables replication.
type ASRReenable struct {
	VMs []string `yaml:"vms,omitempty" doc:"VMs (default: every replicated VM)"`
}

// Validate resolves the default.
func (a *ASRReenable) Validate(t *topology.Topology) error {
	f := ASRFailover{VMs: a.VMs}
	if err := f.Validate(t); err != nil {
		return fmt.Errorf("asr-reenable-replication: %s", strings.TrimPrefix(err.Error(), "asr-failover: "))
	}
	a.VMs = f.VMs
	return nil
}

// Describe names the VMs.
func (a *ASRReenable) Describe() string {
	return "re-enable ASR replication of " + strings.Join(a.VMs, ", ")
}

// Do re-enables replication of each VM.
func (a *ASRReenable) Do(ctx context.Context, env topology.Env) error {
	var errs []string
	for _, v := range a.VMs {
		if err := env.Workloads().ASRReenableReplication(ctx, v); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
