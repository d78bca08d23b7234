package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/hsmlab/hsmlab/emulators/des"
	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/topology"
)

// Emulated disk images are scaled down: a topology's disk sizes are not
// materialised; every disk is diskBlocks × diskBlockSize bytes of encrypted
// blocks, enough to exercise boot and I/O through the DES.
const (
	diskBlocks    = 16
	diskBlockSize = 4096
)

// Names of the rows and blobs the probes read.
const (
	probeRow       = "hsmlab-probe"
	probeContainer = "hsmlab-probe"
	probeBlob      = "health"
)

// workloads are the workload emulators of a sim environment.
type workloads struct {
	reg    *envelope.Registry
	sql    map[string]*sqlInstance
	groups map[string]*sqlmi.FailoverGroup
	inFOG  map[string]string // instance → group
	st     map[string]*storageAccount
	des    map[string]*des.DES
	vms    map[string]*vmState

	mu     sync.Mutex
	writes map[string]int
}

type sqlInstance struct {
	inst   *sqlmi.Instance
	region string
}

type storageAccount struct {
	acct   *storage.Account
	region string
}

// vmState follows a VM across an ASR failover: name stays, region and VM change.
type vmState struct {
	vm     *des.VM
	region string
	repl   *des.Replication
}

func (e *env) upWorkloads(ctx context.Context, dataDir string) error {
	t := e.t
	w := &workloads{reg: envelope.NewRegistry(), sql: map[string]*sqlInstance{}, groups: map[string]*sqlmi.FailoverGroup{},
		inFOG: map[string]string{}, st: map[string]*storageAccount{}, des: map[string]*des.DES{}, vms: map[string]*vmState{}, writes: map[string]int{}}
	e.wl = w
	if dataDir == "" {
		d, err := os.MkdirTemp("", "hsmlab-sim-")
		if err != nil {
			return err
		}
		e.tmpDir = d
		dataDir = d
	}
	e.dataDir = dataDir
	b := t.Behaviour
	for _, s := range t.Workloads.SQLManagedInstances {
		store, err := sqlmi.NewDirStore(filepath.Join(dataDir, "sql", s.Name))
		if err != nil {
			return fmt.Errorf("sql %s: %w", s.Name, err)
		}
		name := s.Name
		inst, err := sqlmi.New(ctx, sqlmi.Config{
			Name: s.Name, Region: s.Region, KeyName: s.Key, AutoRotate: s.AutoRotation,
			TimeToInaccessible: b.SQL.TimeToInaccessible.D(), AutoHealWindow: b.SQL.AutoHealWindow.D(), AutoHealWithin: b.SQL.AutoHealWithin.D(),
			ProtectorCheckInterval: b.SQL.ProtectorCheckInterval.D(), NetworkErrorBuffer: b.SQL.NetworkErrorBuffer.D(),
			AutoRotatePickup: b.SQL.AutoRotatePickup.D(), RevalidationTime: b.SQL.RevalidationTime.D(),
			Keys: e.KeyClient(s.Identity, s.Region), Store: store, Clock: e.clk, Registry: w.reg,
			OnStateChange: func(c sqlmi.StateChange) { e.state(c.Resource, "sqlmi", string(c.From), string(c.To), c.Reason) },
		})
		if err != nil {
			return fmt.Errorf("sql %s: %w", name, err)
		}
		w.sql[s.Name] = &sqlInstance{inst: inst, region: s.Region}
	}
	for _, g := range t.Workloads.FailoverGroups {
		fg, err := sqlmi.NewFailoverGroup(ctx, sqlmi.GroupConfig{Name: g.Name, Primary: w.sql[g.Primary].inst, Secondary: w.sql[g.Secondary].inst,
			ReplicationLag: g.ReplicationLag.D(), AutoFailoverGrace: g.GracePeriod.D(), Clock: e.clk,
			OnStateChange: func(c sqlmi.StateChange) {
				e.state(c.Resource, "failover-group", string(c.From), string(c.To), c.Reason)
			}})
		if err != nil {
			return fmt.Errorf("failover group %s: %w", g.Name, err)
		}
		w.groups[g.Name] = fg
		w.inFOG[g.Primary], w.inFOG[g.Secondary] = g.Name, g.Name
	}
	for name, s := range w.sql {
		if g, ok := w.inFOG[name]; ok && w.groups[g].Primary() != s.inst {
			continue
		}
		if err := s.inst.Write(ctx, probeRow, []byte("health")); err != nil {
			return fmt.Errorf("sql %s: seed row: %w", name, err)
		}
	}
	for _, s := range t.Workloads.StorageAccounts {
		be, err := storage.NewDirBackend(filepath.Join(dataDir, "storage", s.Name))
		if err != nil {
			return fmt.Errorf("storage %s: %w", s.Name, err)
		}
		acct, err := storage.New(ctx, storage.Config{Name: s.Name, KeyName: s.Key, KeyVersion: s.KeyVersion,
			KeyVersionPoll: b.Storage.KeyVersionPoll.D(), KeyCacheTTL: b.Storage.KeyCacheTTL.D(),
			Keys: e.KeyClient(s.Identity, s.Region), Backend: be, Clock: e.clk, Registry: w.reg,
			OnStateChange: func(c storage.StateChange) { e.state(c.Resource, "storage", string(c.From), string(c.To), c.Reason) }})
		if err != nil {
			return fmt.Errorf("storage %s: %w", s.Name, err)
		}
		if err := acct.Put(ctx, probeContainer, probeBlob, []byte("health")); err != nil {
			return fmt.Errorf("storage %s: seed blob: %w", s.Name, err)
		}
		w.st[s.Name] = &storageAccount{acct: acct, region: s.Region}
	}
	for _, d := range t.Workloads.DiskEncryptionSets {
		ds, err := des.New(ctx, des.Config{Name: d.Name, Region: d.Region, KeyName: d.Key, AutoRotate: d.AutoRotation,
			IOFailAfterKeyLoss: b.Disks.IOFailAfterKeyLoss.D(), AutoRotatePickup: b.Disks.AutoRotatePickup.D(),
			ExpiredKeyStopsVMs: b.Disks.ExpiredKeyStopsVMs, Keys: e.KeyClient(d.Identity, d.Region), Clock: e.clk, Registry: w.reg,
			OnStateChange: func(c des.StateChange) { e.state(c.Resource, "des", string(c.From), string(c.To), c.Reason) }})
		if err != nil {
			return fmt.Errorf("des %s: %w", d.Name, err)
		}
		w.des[d.Name] = ds
	}
	vmObs := func(c des.StateChange) { e.state(c.Resource, "vm", string(c.From), string(c.To), c.Reason) }
	for _, v := range t.Workloads.VirtualMachines {
		for _, r := range []string{v.Region, asrTarget(v)} {
			if r != "" {
				if err := os.MkdirAll(filepath.Join(dataDir, "disks", r), 0o755); err != nil {
					return err
				}
			}
		}
		var disks []*des.Disk
		for _, d := range v.Disks {
			dk, err := w.des[v.DES].CreateDisk(ctx, d.Name, filepath.Join(dataDir, "disks", v.Region, d.Name+".img"), diskBlocks, diskBlockSize)
			if err != nil {
				return fmt.Errorf("vm %s disk %s: %w", v.Name, d.Name, err)
			}
			disks = append(disks, dk)
		}
		vm, err := des.NewVM(des.VMConfig{Name: v.Name, Region: v.Region, Disks: disks, Clock: e.clk, OnStateChange: vmObs})
		if err != nil {
			return fmt.Errorf("vm %s: %w", v.Name, err)
		}
		if err := vm.Boot(ctx); err != nil {
			return fmt.Errorf("vm %s: boot: %w", v.Name, err)
		}
		vs := &vmState{vm: vm, region: v.Region}
		if t.OpenQuestions.ASR && v.ASR != nil {
			var target *des.DES
			if v.ASR.TargetDES != "" {
				target = w.des[v.ASR.TargetDES]
			}
			repl, err := des.EnableReplication(ctx, des.ReplicationConfig{Name: v.Name, VM: vm, TargetRegion: v.ASR.TargetRegion,
				TargetDir: filepath.Join(dataDir, "disks", v.ASR.TargetRegion), TargetDES: target, OnStateChange: vmObs})
			if err != nil {
				return fmt.Errorf("vm %s: asr: %w", v.Name, err)
			}
			vs.repl = repl
		}
		w.vms[v.Name] = vs
	}
	return nil
}

// closeWorkloads stops every workload's timers.
func (e *env) closeWorkloads() {
	w := e.wl
	if w == nil {
		return
	}
	for _, g := range w.groups {
		_ = g.Close()
	}
	for _, s := range w.sql {
		_ = s.inst.Close()
	}
	for _, s := range w.st {
		_ = s.acct.Close()
	}
	for _, d := range w.des {
		_ = d.Close()
	}
}

// setRegionWorkloads marks a region's workloads down or up.
func (e *env) setRegionWorkloads(region string, down bool) {
	if e.wl == nil {
		return
	}
	for _, s := range e.wl.sql {
		if s.region == region {
			s.inst.SetOutage(down)
		}
	}
}

// PlaintextDEKs scans the run's data directory for any plaintext DEK of the
// run (raw, hex or base64) and describes each finding.
func (e *env) PlaintextDEKs() ([]string, error) {
	if e.wl == nil || e.dataDir == "" {
		return nil, nil
	}
	fs, err := envelope.ScanDir(e.dataDir, e.wl.reg)
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s at offset %d (%s)", f.Path, f.Offset, f.Encoding))
	}
	return out, err
}

func (e *env) nextWrite(target string) string {
	e.wl.mu.Lock()
	defer e.wl.mu.Unlock()
	e.wl.writes[target]++
	return fmt.Sprintf("w-%06d", e.wl.writes[target])
}

// sqlTarget resolves a sql probe target: an instance (reads go to it) or a
// failover group (its read-write listener: the current primary).
func (e *env) sqlTarget(target string, write bool) (*sqlmi.Instance, string, error) {
	if g, ok := e.wl.groups[target]; ok {
		p := g.Primary()
		for _, s := range e.wl.sql {
			if s.inst == p {
				return p, s.region, nil
			}
		}
	}
	s, ok := e.wl.sql[target]
	if !ok {
		return nil, "", fmt.Errorf("no SQL instance or failover group %q", target)
	}
	if g, ok := e.wl.inFOG[target]; ok && write {
		// Writes go through the group's read-write listener.
		return e.sqlTarget(g, true)
	}
	return s.inst, s.region, nil
}

func codeOf(err error) string {
	if c := keyclient.Code(err); c != "" {
		return c
	}
	for _, c := range []struct {
		err  error
		code string
	}{
		{sqlmi.ErrInaccessible, "Inaccessible"}, {sqlmi.ErrUnavailable, "Unavailable"}, {sqlmi.ErrNotPrimary, "NotPrimary"},
		{sqlmi.ErrFailoverInProgress, "FailoverInProgress"}, {storage.ErrForbidden, "Forbidden"}, {storage.ErrServerBusy, "ServerBusy"},
		{des.ErrIOFailed, "IOFailed"}, {des.ErrNotRunning, "NotRunning"}, {des.ErrBootFailed, "BootFailed"},
		{des.ErrNoTargetDES, "NoTargetDES"},
	} {
		if errors.Is(err, c.err) {
			var se *storage.Error
			if errors.As(err, &se) && se.Code != "" {
				return se.Code
			}
			return c.code
		}
	}
	return "Error"
}

func (e *env) probeWorkload(ctx context.Context, p topology.ProbeSpec) topology.ProbeResult {
	res := topology.ProbeResult{}
	fail := func(err error) topology.ProbeResult {
		res.Code, res.Err = codeOf(err), err.Error()
		return res
	}
	down := func(region string) bool {
		res.Region = region
		if e.regionDown(region) {
			res.Code, res.Err = CodeRegionDown, region+" is down"
			return true
		}
		return false
	}
	switch p.Type {
	case topology.ProbeSQLQuery, topology.ProbeSQLWrite:
		write := p.Type == topology.ProbeSQLWrite
		inst, region, err := e.sqlTarget(p.Target, write)
		if err != nil {
			return fail(err)
		}
		if down(region) {
			return res
		}
		if write {
			id := e.nextWrite(p.Target)
			if err := inst.Write(ctx, id, []byte(id)); err != nil {
				return fail(err)
			}
			res.WriteID = id
		} else if _, err := inst.Query(ctx, probeRow); err != nil && !errors.Is(err, sqlmi.ErrNotFound) {
			return fail(err)
		}
	case topology.ProbeBlobRead, topology.ProbeBlobWrite:
		s, ok := e.wl.st[p.Target]
		if !ok {
			return fail(fmt.Errorf("no storage account %q", p.Target))
		}
		if down(s.region) {
			return res
		}
		if p.Type == topology.ProbeBlobWrite {
			id := e.nextWrite(p.Target)
			if err := s.acct.Put(ctx, probeContainer, id, []byte(id)); err != nil {
				return fail(err)
			}
			res.WriteID = id
		} else if _, err := s.acct.Get(ctx, probeContainer, probeBlob); err != nil {
			return fail(err)
		}
	case topology.ProbeDiskIO, topology.ProbeVMBoot:
		v, ok := e.wl.vms[p.Target]
		if !ok {
			return fail(fmt.Errorf("no VM %q", p.Target))
		}
		if down(v.region) {
			return res
		}
		if p.Type == topology.ProbeVMBoot {
			if v.vm.State() != des.Running {
				if err := v.vm.Boot(ctx); err != nil {
					return fail(err)
				}
			}
		} else {
			disk := v.vm.Disks()[0].Name()
			b, err := v.vm.ReadBlock(ctx, disk, 0)
			if err != nil {
				return fail(err)
			}
			if err := v.vm.WriteBlock(ctx, disk, 0, b); err != nil {
				return fail(err)
			}
		}
	default:
		return fail(fmt.Errorf("unknown probe %s", p.Type))
	}
	res.OK = true
	return res
}

// LostWrites returns the acknowledged writes missing from the target's
// current primary copy.
func (e *env) LostWrites(ctx context.Context, target string, acked []string) ([]string, error) {
	if e.wl == nil {
		return nil, fmt.Errorf("sim: no workloads")
	}
	var lost []string
	if _, ok := e.wl.st[target]; ok {
		s := e.wl.st[target]
		names, err := s.acct.List(ctx, probeContainer)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		for _, id := range acked {
			if !have[id] {
				lost = append(lost, id)
			}
		}
		return lost, nil
	}
	inst, _, err := e.sqlTarget(target, true)
	if err != nil {
		return nil, err
	}
	for _, id := range acked {
		if _, err := inst.Query(ctx, id); errors.Is(err, sqlmi.ErrNotFound) {
			lost = append(lost, id)
		} else if err != nil {
			return nil, fmt.Errorf("verify write %s on %s: %w", id, target, err)
		}
	}
	return lost, nil
}

func asrTarget(v topology.VirtualMachine) string {
	if v.ASR == nil {
		return ""
	}
	return v.ASR.TargetRegion
}

// Workloads returns the runbook controls.
func (e *env) Workloads() topology.WorkloadControl { return e }

// SQLFailover fails a failover group over.
func (e *env) SQLFailover(ctx context.Context, group string, planned bool) error {
	g, ok := e.wl.groups[group]
	if !ok {
		return fmt.Errorf("no failover group %q", group)
	}
	_, err := g.Failover(planned)
	return err
}

// SQLRevalidate revalidates an instance's protector.
func (e *env) SQLRevalidate(ctx context.Context, instance string) error {
	s, ok := e.wl.sql[instance]
	if !ok {
		return fmt.Errorf("no SQL instance %q", instance)
	}
	return s.inst.Revalidate(ctx)
}

// ASRFailover boots the VM's replica in its target region; the VM's probes
// follow it there.
func (e *env) ASRFailover(ctx context.Context, vm string) error {
	v, ok := e.wl.vms[vm]
	if !ok {
		return fmt.Errorf("no VM %q", vm)
	}
	if v.repl == nil {
		return fmt.Errorf("VM %s is not replicated by ASR (openQuestions.asr or its asr block)", vm)
	}
	nvm, err := v.repl.Failover(ctx)
	if nvm != nil {
		v.vm, v.region = nvm, asrTarget(e.topoVM(vm))
	}
	return err
}

// ASRReenableReplication re-creates the VM's replica.
func (e *env) ASRReenableReplication(ctx context.Context, vm string) error {
	v, ok := e.wl.vms[vm]
	if !ok || v.repl == nil {
		return fmt.Errorf("VM %q has no ASR replication", vm)
	}
	tv := e.topoVM(vm)
	var target *des.DES
	if tv.ASR != nil && tv.ASR.TargetDES != "" {
		target = e.wl.des[tv.ASR.TargetDES]
	}
	return v.repl.ReenableReplication(ctx, target)
}

func (e *env) topoVM(name string) topology.VirtualMachine {
	for _, v := range e.t.Workloads.VirtualMachines {
		if v.Name == name {
			return v
		}
	}
	return topology.VirtualMachine{}
}
