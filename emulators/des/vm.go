package des

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// VMConfig configures a VM.
type VMConfig struct {
	Name, Region string
	// Disks are the VM's disks (OS disk first). At least one.
	Disks []*Disk
	// Clock defaults to the first disk's DES clock.
	Clock clock.Clock
	// OnStateChange defaults to the first disk's DES observer.
	OnStateChange func(StateChange)
}

// VM is a virtual machine whose disks are encrypted through DESes. It
// starts Stopped. Methods are safe for concurrent use.
type VM struct {
	cfg VMConfig

	mu       sync.Mutex
	state    State
	repl     *Replication
	pending  []StateChange
	notifyMu sync.Mutex
}

// NewVM returns a stopped VM over cfg.Disks.
func NewVM(cfg VMConfig) (*VM, error) {
	if cfg.Name == "" || len(cfg.Disks) == 0 {
		return nil, errors.New("vm config: Name and at least one disk are required")
	}
	seen := map[string]bool{}
	for _, dk := range cfg.Disks {
		if dk == nil || seen[dk.Name()] {
			return nil, errors.New("vm config: disks must be distinct and named uniquely")
		}
		seen[dk.Name()] = true
	}
	first := cfg.Disks[0].DES()
	if cfg.Clock == nil {
		cfg.Clock = first.cfg.Clock
	}
	if cfg.OnStateChange == nil {
		cfg.OnStateChange = first.cfg.OnStateChange
	}
	return &VM{cfg: cfg, state: Stopped}, nil
}

// Name returns the VM name.
func (vm *VM) Name() string { return vm.cfg.Name }

// Disks returns the VM's disks.
func (vm *VM) Disks() []*Disk { return slices.Clone(vm.cfg.Disks) }

// State returns the VM state.
func (vm *VM) State() State {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.state
}

func (vm *VM) desSet() []*DES {
	var out []*DES
	for _, dk := range vm.cfg.Disks {
		if d := dk.DES(); !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Boot starts the VM: each disk's DES checks its key version (enabled; not
// expired when ExpiredKeyStopsVMs) and unwraps the disk's DEK. If any disk
// fails, nothing is kept and the error wraps ErrBootFailed and the cause
// (keyclient class kept). Booting a running VM is a no-op.
func (vm *VM) Boot(ctx context.Context) error {
	vm.mu.Lock()
	if vm.state == Running {
		vm.mu.Unlock()
		return nil
	}
	vm.mu.Unlock()
	deks := make([]*envelope.DEK, 0, len(vm.cfg.Disks))
	zero := func() {
		for _, k := range deks {
			k.Zero()
		}
	}
	for _, dk := range vm.cfg.Disks {
		k, err := dk.DES().unwrapFor(ctx, dk.wrapped())
		if err != nil {
			zero()
			return fmt.Errorf("boot %s: disk %s: %w: %w", vm.cfg.Name, dk.Name(), ErrBootFailed, err)
		}
		deks = append(deks, k)
	}
	vm.mu.Lock()
	if vm.state == Running {
		vm.mu.Unlock()
		zero()
		return nil
	}
	for i, dk := range vm.cfg.Disks {
		dk.setDEK(deks[i])
	}
	vm.setStateLocked(Running, "booted")
	vm.unlockNotify()
	for _, d := range vm.desSet() {
		d.register(vm, true)
	}
	return nil
}

// Shutdown stops (deallocates) the VM and drops its DEKs. Idempotent.
func (vm *VM) Shutdown() error {
	vm.stopWith(Stopped, "shut down by the user")
	return nil
}

// platformShutdown is the platform stopping the VM after a DES's key
// stayed unusable.
func (vm *VM) platformShutdown(why string) {
	vm.stopWith(ShutDownByPlatform, why)
}

func (vm *VM) stopWith(to State, why string) {
	vm.mu.Lock()
	if vm.state == to || (to == ShutDownByPlatform && vm.state != Running) {
		vm.mu.Unlock()
		return
	}
	for _, dk := range vm.cfg.Disks {
		dk.setDEK(nil)
	}
	vm.setStateLocked(to, why)
	vm.unlockNotify()
	for _, d := range vm.desSet() {
		d.register(vm, false)
	}
}

func (vm *VM) disk(name string) (*Disk, error) {
	for _, dk := range vm.cfg.Disks {
		if dk.Name() == name {
			return dk, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", name, ErrNoSuchDisk)
}

func (vm *VM) ioErrLocked() error {
	switch vm.state {
	case Running:
		return nil
	case ShutDownByPlatform:
		return ErrIOFailed
	}
	return ErrNotRunning
}

func (vm *VM) ioErr(err error) error {
	if errors.Is(err, ErrNotRunning) || errors.Is(err, envelope.ErrZeroed) {
		vm.mu.Lock()
		defer vm.mu.Unlock()
		if e := vm.ioErrLocked(); e != nil {
			return e
		}
	}
	return err
}

// ReadBlock reads block i of the named disk. It needs the VM Running:
// after the platform shut it down for key loss it fails with ErrIOFailed,
// when stopped with ErrNotRunning.
func (vm *VM) ReadBlock(_ context.Context, disk string, i int) ([]byte, error) {
	dk, err := vm.disk(disk)
	if err == nil {
		vm.mu.Lock()
		err = vm.ioErrLocked()
		vm.mu.Unlock()
	}
	if err == nil {
		var b []byte
		if b, err = dk.readBlock(i); err == nil {
			return b, nil
		}
		err = vm.ioErr(err)
	}
	return nil, fmt.Errorf("read %s/%s block %d: %w", vm.cfg.Name, disk, i, err)
}

// WriteBlock writes block i (exactly BlockSize bytes) of the named disk,
// and mirrors it to the replica when replication is on. Errors as ReadBlock.
func (vm *VM) WriteBlock(_ context.Context, disk string, i int, data []byte) error {
	dk, err := vm.disk(disk)
	var repl *Replication
	if err == nil {
		vm.mu.Lock()
		err = vm.ioErrLocked()
		repl = vm.repl
		vm.mu.Unlock()
	}
	if err == nil {
		if err = dk.writeBlock(i, data); err == nil {
			if repl != nil {
				repl.mirror(dk, i, data)
			}
			return nil
		}
		err = vm.ioErr(err)
	}
	return fmt.Errorf("write %s/%s block %d: %w", vm.cfg.Name, disk, i, err)
}

func (vm *VM) setReplication(r *Replication) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.repl = r
}

func (vm *VM) setStateLocked(to State, why string) {
	if to == vm.state {
		return
	}
	vm.pending = append(vm.pending, StateChange{Resource: vm.cfg.Name, From: vm.state, To: to, At: vm.cfg.Clock.Now(), Reason: why})
	vm.state = to
}

func (vm *VM) unlockNotify() {
	evs := vm.pending
	vm.pending = nil
	vm.notifyMu.Lock()
	vm.mu.Unlock()
	defer vm.notifyMu.Unlock()
	if vm.cfg.OnStateChange == nil {
		return
	}
	for _, e := range evs {
		vm.cfg.OnStateChange(e)
	}
}

// sortVMs orders VMs by name so that shutdowns happen in a reproducible order.
func sortVMs(vms []*VM) []*VM {
	slices.SortFunc(vms, func(a, b *VM) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return vms
}
