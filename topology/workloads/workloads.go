// Package workloads brings up a topology's workload emulators — SQL managed
// instances with their failover groups, storage accounts, Disk Encryption
// Sets with their VMs and ASR replicas — for any provider, and answers the
// workload probes and runbook actions on them. A provider hands it the key
// client each service identity uses (the in-process emulator, or azkeys
// over the network) and, optionally, the data paths (SQL Server, Azurite);
// otherwise the embedded ones under the run's data directory are used.
//
// It imports the emulators, lab/clock and topology; never lab.
package workloads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/hsmlab/hsmlab/emulators/des"
	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
)

// Emulated disk images are scaled down: a topology's disk sizes are not
// materialised; every disk is DiskBlocks × DiskBlockSize bytes of encrypted
// blocks, enough to exercise boot and I/O through the DES.
const (
	DiskBlocks    = 16
	DiskBlockSize = 4096
)

// Names of the rows and blobs the probes read.
const (
	ProbeRow       = "hsmlab-probe"
	ProbeContainer = "hsmlab-probe"
	ProbeBlob      = "health"
)

// CodeRegionDown is the probe error code for a workload whose region is out.
const CodeRegionDown = "RegionDown"

// Config wires a Set.
type Config struct {
	Topology *topology.Topology
	Clock    clock.Clock
	// DataDir holds the embedded data paths and the disk images. Required.
	DataDir string
	// Keys returns the key client of a service identity in its region. Required.
	Keys func(principal, region string) keyclient.Client
	// SQLStore opens an instance's data path; nil uses an embedded
	// sqlmi.DirStore under DataDir/sql/<instance>. A store that is an
	// io.Closer is closed by Close.
	SQLStore func(ctx context.Context, instance string) (sqlmi.Store, error)
	// StorageBackend opens an account's data path; nil uses an embedded
	// storage.DirBackend under DataDir/storage/<account>.
	StorageBackend func(ctx context.Context, account, region string) (storage.Backend, error)
	// OnState receives every state change (resource, kind, from, to, reason).
	OnState func(resource, kind, from, to, reason string)
	// RegionDown reports whether a region is out: probes of its workloads
	// then fail with CodeRegionDown. Nil: no region is ever down.
	RegionDown func(region string) bool
}

// Set is a topology's running workloads. Its methods are safe for
// concurrent use.
type Set struct {
	cfg     Config
	reg     *envelope.Registry
	sql     map[string]*sqlInstance
	groups  map[string]*sqlmi.FailoverGroup
	inFOG   map[string]string // instance → group
	st      map[string]*storageAccount
	des     map[string]*des.DES
	vms     map[string]*vmState
	closers []io.Closer

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
	mu     sync.Mutex
	vm     *des.VM
	region string
	repl   *des.Replication
}

func (v *vmState) get() (*des.VM, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.vm, v.region
}

// New brings every workload of the topology up: SQL instances (each seeds
// its probe row through its failover group's primary), failover groups,
// storage accounts (each with its probe blob), DESs, VMs (booted) and their
// ASR replicas. On error it returns what was started, which the caller must
// Close.
func New(ctx context.Context, cfg Config) (*Set, error) {
	if cfg.Topology == nil || cfg.Clock == nil || cfg.Keys == nil || cfg.DataDir == "" {
		return nil, errors.New("workloads: Topology, Clock, Keys and DataDir are required")
	}
	if cfg.OnState == nil {
		cfg.OnState = func(string, string, string, string, string) {}
	}
	if cfg.RegionDown == nil {
		cfg.RegionDown = func(string) bool { return false }
	}
	w := &Set{cfg: cfg, reg: envelope.NewRegistry(), sql: map[string]*sqlInstance{}, groups: map[string]*sqlmi.FailoverGroup{},
		inFOG: map[string]string{}, st: map[string]*storageAccount{}, des: map[string]*des.DES{}, vms: map[string]*vmState{}, writes: map[string]int{}}
	return w, w.up(ctx)
}

func (w *Set) up(ctx context.Context) error {
	t, dataDir, clk, state := w.cfg.Topology, w.cfg.DataDir, w.cfg.Clock, w.cfg.OnState
	b := t.Behaviour
	for _, s := range t.Workloads.SQLManagedInstances {
		store, err := w.sqlStore(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("sql %s: %w", s.Name, err)
		}
		inst, err := sqlmi.New(ctx, sqlmi.Config{
			Name: s.Name, Region: s.Region, KeyName: s.Key, AutoRotate: s.AutoRotation,
			TimeToInaccessible: b.SQL.TimeToInaccessible.D(), AutoHealWindow: b.SQL.AutoHealWindow.D(), AutoHealWithin: b.SQL.AutoHealWithin.D(),
			ProtectorCheckInterval: b.SQL.ProtectorCheckInterval.D(), NetworkErrorBuffer: b.SQL.NetworkErrorBuffer.D(),
			AutoRotatePickup: b.SQL.AutoRotatePickup.D(), RevalidationTime: b.SQL.RevalidationTime.D(),
			Keys: w.cfg.Keys(s.Identity, s.Region), Store: store, Clock: clk, Registry: w.reg,
			OnStateChange: func(c sqlmi.StateChange) { state(c.Resource, "sqlmi", string(c.From), string(c.To), c.Reason) },
		})
		if err != nil {
			return fmt.Errorf("sql %s: %w", s.Name, err)
		}
		w.sql[s.Name] = &sqlInstance{inst: inst, region: s.Region}
	}
	for _, g := range t.Workloads.FailoverGroups {
		fg, err := sqlmi.NewFailoverGroup(ctx, sqlmi.GroupConfig{Name: g.Name, Primary: w.sql[g.Primary].inst, Secondary: w.sql[g.Secondary].inst,
			ReplicationLag: g.ReplicationLag.D(), AutoFailoverGrace: g.GracePeriod.D(), Clock: clk,
			OnStateChange: func(c sqlmi.StateChange) {
				state(c.Resource, "failover-group", string(c.From), string(c.To), c.Reason)
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
		if err := s.inst.Write(ctx, ProbeRow, []byte("health")); err != nil {
			return fmt.Errorf("sql %s: seed row: %w", name, err)
		}
	}
	for _, s := range t.Workloads.StorageAccounts {
		be, err := w.storageBackend(ctx, s.Name, s.Region)
		if err != nil {
			return fmt.Errorf("storage %s: %w", s.Name, err)
		}
		acct, err := storage.New(ctx, storage.Config{Name: s.Name, KeyName: s.Key, KeyVersion: s.KeyVersion,
			KeyVersionPoll: b.Storage.KeyVersionPoll.D(), KeyCacheTTL: b.Storage.KeyCacheTTL.D(),
			Keys: w.cfg.Keys(s.Identity, s.Region), Backend: be, Clock: clk, Registry: w.reg,
			OnStateChange: func(c storage.StateChange) { state(c.Resource, "storage", string(c.From), string(c.To), c.Reason) }})
		if err != nil {
			return fmt.Errorf("storage %s: %w", s.Name, err)
		}
		w.st[s.Name] = &storageAccount{acct: acct, region: s.Region}
		if err := acct.Put(ctx, ProbeContainer, ProbeBlob, []byte("health")); err != nil {
			return fmt.Errorf("storage %s: seed blob: %w", s.Name, err)
		}
	}
	for _, d := range t.Workloads.DiskEncryptionSets {
		ds, err := des.New(ctx, des.Config{Name: d.Name, Region: d.Region, KeyName: d.Key, AutoRotate: d.AutoRotation,
			IOFailAfterKeyLoss: b.Disks.IOFailAfterKeyLoss.D(), AutoRotatePickup: b.Disks.AutoRotatePickup.D(),
			ExpiredKeyStopsVMs: b.Disks.ExpiredKeyStopsVMs, Keys: w.cfg.Keys(d.Identity, d.Region), Clock: clk, Registry: w.reg,
			OnStateChange: func(c des.StateChange) { state(c.Resource, "des", string(c.From), string(c.To), c.Reason) }})
		if err != nil {
			return fmt.Errorf("des %s: %w", d.Name, err)
		}
		w.des[d.Name] = ds
	}
	vmObs := func(c des.StateChange) { state(c.Resource, "vm", string(c.From), string(c.To), c.Reason) }
	for _, v := range t.Workloads.VirtualMachines {
		for _, r := range []string{v.Region, asrTarget(v)} {
			if r != "" {
				if err := os.MkdirAll(filepath.Join(dataDir, "disks", r), 0o755); err != nil {
					return err
				}
			}
		}
		ds, ok := w.des[v.DES]
		if !ok {
			return fmt.Errorf("vm %s: no DES %q", v.Name, v.DES)
		}
		var disks []*des.Disk
		for _, d := range v.Disks {
			dk, err := ds.CreateDisk(ctx, d.Name, filepath.Join(dataDir, "disks", v.Region, d.Name+".img"), DiskBlocks, DiskBlockSize)
			if err != nil {
				return fmt.Errorf("vm %s disk %s: %w", v.Name, d.Name, err)
			}
			disks = append(disks, dk)
		}
		vm, err := des.NewVM(des.VMConfig{Name: v.Name, Region: v.Region, Disks: disks, Clock: clk, OnStateChange: vmObs})
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

func (w *Set) sqlStore(ctx context.Context, name string) (sqlmi.Store, error) {
	var (
		st  sqlmi.Store
		err error
	)
	if w.cfg.SQLStore != nil {
		st, err = w.cfg.SQLStore(ctx, name)
	} else {
		st, err = sqlmi.NewDirStore(filepath.Join(w.cfg.DataDir, "sql", name))
	}
	if c, ok := st.(io.Closer); ok && err == nil {
		w.closers = append(w.closers, c)
	}
	return st, err
}

func (w *Set) storageBackend(ctx context.Context, name, region string) (storage.Backend, error) {
	if w.cfg.StorageBackend != nil {
		return w.cfg.StorageBackend(ctx, name, region)
	}
	return storage.NewDirBackend(filepath.Join(w.cfg.DataDir, "storage", name))
}

// Settled reports whether every failover group has replicated what it
// holds (nothing pending): a provider on a wall clock waits for it after
// bring-up.
func (w *Set) Settled() bool {
	for _, g := range w.groups {
		if g.Pending() > 0 {
			return false
		}
	}
	return true
}

// Close stops every workload's timers and closes the data paths it opened.
// Idempotent.
func (w *Set) Close() {
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
	w.mu.Lock()
	cl := w.closers
	w.closers = nil
	w.mu.Unlock()
	for _, c := range cl {
		_ = c.Close()
	}
}

// SetRegionDown marks a region's workloads down or up.
func (w *Set) SetRegionDown(region string, down bool) {
	for _, s := range w.sql {
		if s.region == region {
			s.inst.SetOutage(down)
		}
	}
}

// PlaintextDEKs scans the data directory for any plaintext DEK of the run
// (raw, hex or base64) and describes each finding.
func (w *Set) PlaintextDEKs() ([]string, error) {
	fs, err := envelope.ScanDir(w.cfg.DataDir, w.reg)
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s at offset %d (%s)", f.Path, f.Offset, f.Encoding))
	}
	return out, err
}

func (w *Set) nextWrite(target string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes[target]++
	return fmt.Sprintf("w-%06d", w.writes[target])
}

// sqlTarget resolves a sql probe target: an instance (reads go to it) or a
// failover group (its read-write listener: the current primary).
func (w *Set) sqlTarget(target string, write bool) (*sqlmi.Instance, string, error) {
	if g, ok := w.groups[target]; ok {
		p := g.Primary()
		for _, s := range w.sql {
			if s.inst == p {
				return p, s.region, nil
			}
		}
	}
	s, ok := w.sql[target]
	if !ok {
		return nil, "", fmt.Errorf("no SQL instance or failover group %q", target)
	}
	if g, ok := w.inFOG[target]; ok && write {
		// Writes go through the group's read-write listener.
		return w.sqlTarget(g, true)
	}
	return s.inst, s.region, nil
}

// CodeOf returns the probe error code of a workload error.
func CodeOf(err error) string {
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

// Probe performs one workload probe (every kind but hsm-unwrap).
func (w *Set) Probe(ctx context.Context, p topology.ProbeSpec) topology.ProbeResult {
	res := topology.ProbeResult{}
	fail := func(err error) topology.ProbeResult {
		res.Code, res.Err = CodeOf(err), err.Error()
		return res
	}
	down := func(region string) bool {
		res.Region = region
		if w.cfg.RegionDown(region) {
			res.Code, res.Err = CodeRegionDown, region+" is down"
			return true
		}
		return false
	}
	switch p.Type {
	case topology.ProbeSQLQuery, topology.ProbeSQLWrite:
		write := p.Type == topology.ProbeSQLWrite
		inst, region, err := w.sqlTarget(p.Target, write)
		if err != nil {
			return fail(err)
		}
		if down(region) {
			return res
		}
		if write {
			id := w.nextWrite(p.Target)
			if err := inst.Write(ctx, id, []byte(id)); err != nil {
				return fail(err)
			}
			res.WriteID = id
		} else if _, err := inst.Query(ctx, ProbeRow); err != nil && !errors.Is(err, sqlmi.ErrNotFound) {
			return fail(err)
		}
	case topology.ProbeBlobRead, topology.ProbeBlobWrite:
		s, ok := w.st[p.Target]
		if !ok {
			return fail(fmt.Errorf("no storage account %q", p.Target))
		}
		if down(s.region) {
			return res
		}
		if p.Type == topology.ProbeBlobWrite {
			id := w.nextWrite(p.Target)
			if err := s.acct.Put(ctx, ProbeContainer, id, []byte(id)); err != nil {
				return fail(err)
			}
			res.WriteID = id
		} else if _, err := s.acct.Get(ctx, ProbeContainer, ProbeBlob); err != nil {
			return fail(err)
		}
	case topology.ProbeDiskIO, topology.ProbeVMBoot:
		v, ok := w.vms[p.Target]
		if !ok {
			return fail(fmt.Errorf("no VM %q", p.Target))
		}
		vm, region := v.get()
		if down(region) {
			return res
		}
		if p.Type == topology.ProbeVMBoot {
			if vm.State() != des.Running {
				if err := vm.Boot(ctx); err != nil {
					return fail(err)
				}
			}
		} else {
			disk := vm.Disks()[0].Name()
			b, err := vm.ReadBlock(ctx, disk, 0)
			if err != nil {
				return fail(err)
			}
			if err := vm.WriteBlock(ctx, disk, 0, b); err != nil {
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
func (w *Set) LostWrites(ctx context.Context, target string, acked []string) ([]string, error) {
	var lost []string
	if s, ok := w.st[target]; ok {
		names, err := s.acct.List(ctx, ProbeContainer)
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
	inst, _, err := w.sqlTarget(target, true)
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

var _ topology.WorkloadControl = (*Set)(nil)

// SQLFailover fails a failover group over.
func (w *Set) SQLFailover(ctx context.Context, group string, planned bool) error {
	g, ok := w.groups[group]
	if !ok {
		return fmt.Errorf("no failover group %q", group)
	}
	_, err := g.Failover(planned)
	return err
}

// SQLRevalidate revalidates an instance's protector.
func (w *Set) SQLRevalidate(ctx context.Context, instance string) error {
	s, ok := w.sql[instance]
	if !ok {
		return fmt.Errorf("no SQL instance %q", instance)
	}
	return s.inst.Revalidate(ctx)
}

// ASRFailover boots the VM's replica in its target region; the VM's probes
// follow it there.
func (w *Set) ASRFailover(ctx context.Context, vm string) error {
	v, ok := w.vms[vm]
	if !ok {
		return fmt.Errorf("no VM %q", vm)
	}
	if v.repl == nil {
		return fmt.Errorf("VM %s is not replicated by ASR (openQuestions.asr or its asr block)", vm)
	}
	nvm, err := v.repl.Failover(ctx)
	if nvm != nil {
		v.mu.Lock()
		v.vm, v.region = nvm, asrTarget(w.topoVM(vm))
		v.mu.Unlock()
	}
	return err
}

// ASRReenableReplication re-creates the VM's replica.
func (w *Set) ASRReenableReplication(ctx context.Context, vm string) error {
	v, ok := w.vms[vm]
	if !ok || v.repl == nil {
		return fmt.Errorf("VM %q has no ASR replication", vm)
	}
	tv := w.topoVM(vm)
	var target *des.DES
	if tv.ASR != nil && tv.ASR.TargetDES != "" {
		target = w.des[tv.ASR.TargetDES]
	}
	return v.repl.ReenableReplication(ctx, target)
}

func (w *Set) topoVM(name string) topology.VirtualMachine {
	for _, v := range w.cfg.Topology.Workloads.VirtualMachines {
		if v.Name == name {
			return v
		}
	}
	return topology.VirtualMachine{}
}

// ProbeIdentity picks the principal and key an hsm-unwrap probe from a
// region acts with: the scenario's choice, else the identity of the first
// workload of that region (SQL MI, storage account, DES) and its key; the
// lab's operator and the topology's first key when the region has none.
func ProbeIdentity(t *topology.Topology, region, as, key string) (string, string) {
	type wl struct{ region, id, key string }
	var all []wl
	for _, s := range t.Workloads.SQLManagedInstances {
		all = append(all, wl{s.Region, s.Identity, s.Key})
	}
	for _, s := range t.Workloads.StorageAccounts {
		all = append(all, wl{s.Region, s.Identity, s.Key})
	}
	for _, d := range t.Workloads.DiskEncryptionSets {
		all = append(all, wl{d.Region, d.Identity, d.Key})
	}
	for _, w := range all {
		if w.region != region || (key != "" && w.key != key) || (as != "" && w.id != as) {
			continue
		}
		if as == "" {
			as = w.id
		}
		if key == "" {
			key = w.key
		}
		break
	}
	if as == "" {
		as = topology.OperatorPrincipal
	}
	if key == "" && len(t.HSM.Keys) > 0 {
		key = t.HSM.Keys[0].Name
	}
	return as, key
}

// SetKeyVersion points a workload at a version of its key now (see
// topology.KeyVersionControl): a SQL managed instance rotates its TDE
// protector, a storage account re-wraps its account key and pins the
// version, a DES re-wraps its disks' DEKs. version "" is the key's current
// version as the workload's own key client sees it. A workload whose region
// is down cannot be changed.
func (w *Set) SetKeyVersion(ctx context.Context, workload, version string) error {
	down := func(region string) error {
		if w.cfg.RegionDown(region) {
			return fmt.Errorf("set key version of %s: %s is down", workload, region)
		}
		return nil
	}
	if s, ok := w.sql[workload]; ok {
		if err := down(s.region); err != nil {
			return err
		}
		return s.inst.RotateProtector(ctx, version)
	}
	if s, ok := w.st[workload]; ok {
		if err := down(s.region); err != nil {
			return err
		}
		if version == "" {
			for _, a := range w.cfg.Topology.Workloads.StorageAccounts {
				if a.Name == workload {
					k, err := w.cfg.Keys(a.Identity, a.Region).GetKey(ctx, a.Key, "")
					if err != nil {
						return fmt.Errorf("set key version of %s: %w", workload, err)
					}
					version = k.Version
				}
			}
		}
		return s.acct.SetKeyVersion(ctx, version)
	}
	if d, ok := w.des[workload]; ok {
		if err := down(d.Region()); err != nil {
			return err
		}
		return d.SetKeyVersion(ctx, version)
	}
	return fmt.Errorf("set key version: no SQL managed instance, storage account or DES %q", workload)
}
