package des

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope"
)

// ReplicationConfig configures the replication of a VM to another region
// (Azure Site Recovery).
type ReplicationConfig struct {
	// Name labels the replication (and the replica image files).
	Name string
	// VM is the source VM. Required.
	VM *VM
	// TargetRegion is the region of the replica.
	TargetRegion string
	// TargetDir holds the replica disk images. Required.
	TargetDir string
	// TargetDES is the DES pre-created in the target region; nil models the
	// missing prerequisite (replica disks cannot be created, failover fails
	// with ErrNoTargetDES).
	TargetDES *DES
	// OnStateChange defaults to the source VM's observer.
	OnStateChange func(StateChange)
}

type replica struct {
	src  *Disk
	disk *Disk
	dek  *envelope.DEK // ASR's handle on the replica while protected
}

// Replication keeps replica disks of a VM in another region: created when
// replication is enabled (wrapped by the target DES's key version of that
// moment, which they keep through key rotations until ReenableReplication),
// then updated with every block the source VM writes. Methods are safe for
// concurrent use.
type Replication struct {
	cfg ReplicationConfig

	mu       sync.Mutex
	state    State
	replicas []*replica
	pending  []StateChange
	notifyMu sync.Mutex
}

// EnableReplication starts replicating cfg.VM. The source disks' data is
// read with the running VM's DEKs, or unwrapped through their DES when the
// VM is stopped. Without a target DES the replication exists but is
// Unprotected.
func EnableReplication(ctx context.Context, cfg ReplicationConfig) (*Replication, error) {
	if cfg.Name == "" || cfg.VM == nil || cfg.TargetDir == "" {
		return nil, errors.New("replication config: Name, VM and TargetDir are required")
	}
	if cfg.OnStateChange == nil {
		cfg.OnStateChange = cfg.VM.cfg.OnStateChange
	}
	if err := os.MkdirAll(cfg.TargetDir, 0o755); err != nil {
		return nil, fmt.Errorf("enable replication %s: %w", cfg.Name, err)
	}
	r := &Replication{cfg: cfg, state: Unprotected}
	if err := r.protect(ctx, "replication enabled"); err != nil && !errors.Is(err, ErrNoTargetDES) {
		return nil, fmt.Errorf("enable replication %s: %w", cfg.Name, err)
	}
	cfg.VM.setReplication(r)
	return r, nil
}

// State returns Protected, Unprotected or FailedOver.
func (r *Replication) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// ReplicaKeyVersions returns, per source disk name, the key version that
// wraps the replica's DEK.
func (r *Replication) ReplicaKeyVersions() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, rp := range r.replicas {
		out[rp.src.Name()] = rp.disk.KeyVersion()
	}
	return out
}

// ReenableReplication disables and re-enables replication: the replica
// disks are created again from the source, wrapped by the target DES's
// current key version. target, if not nil, becomes the target DES (the
// DES created in the target region after the fact).
func (r *Replication) ReenableReplication(ctx context.Context, target *DES) error {
	r.mu.Lock()
	if r.state == FailedOver {
		r.mu.Unlock()
		return fmt.Errorf("re-enable replication %s: already failed over", r.cfg.Name)
	}
	if target != nil {
		r.cfg.TargetDES = target
	}
	r.dropReplicasLocked(true)
	r.setStateLocked(Unprotected, "replication disabled for re-enable")
	r.unlockNotify()
	if err := r.protect(ctx, "replication re-enabled"); err != nil {
		return fmt.Errorf("re-enable replication %s: %w", r.cfg.Name, err)
	}
	return nil
}

// protect creates the replica disks under the target DES.
func (r *Replication) protect(ctx context.Context, why string) error {
	r.mu.Lock()
	t := r.cfg.TargetDES
	r.mu.Unlock()
	if t == nil {
		r.event("no disk encryption set in the target region: replica disks not created")
		return ErrNoTargetDES
	}
	var reps []*replica
	fail := func(err error) error {
		for _, rp := range reps {
			rp.dek.Zero()
			os.Remove(rp.disk.path)
		}
		return err
	}
	for _, src := range r.cfg.VM.cfg.Disks {
		path := filepath.Join(r.cfg.TargetDir, r.cfg.Name+"-"+src.Name()+".img")
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail(err)
		}
		rdk, rdek, err := newDisk(ctx, t, src.Name(), path, src.Blocks(), src.BlockSize())
		if err != nil {
			return fail(fmt.Errorf("replica of %s: %w", src.Name(), err))
		}
		reps = append(reps, &replica{src: src, disk: rdk, dek: rdek})
		if err := copyDisk(ctx, src, rdk, rdek); err != nil {
			return fail(fmt.Errorf("replica of %s: %w", src.Name(), err))
		}
	}
	r.mu.Lock()
	r.replicas = reps
	r.setStateLocked(Protected, why)
	versions := ""
	for _, rp := range reps {
		versions += " " + rp.src.Name() + "=" + rp.disk.KeyVersion()
	}
	r.pending = append(r.pending, StateChange{Resource: r.cfg.Name, From: r.state, To: r.state, At: r.now(), Reason: why + ": replica key versions" + versions})
	r.unlockNotify()
	return nil
}

// copyDisk copies every written block of src into the replica.
func copyDisk(ctx context.Context, src, dst *Disk, dstDEK *envelope.DEK) error {
	src.mu.RLock()
	dek := src.dek
	src.mu.RUnlock()
	if dek == nil { // the source VM is not running: unwrap through its DES
		var err error
		if dek, err = envelope.Unwrap(ctx, src.DES().cfg.Keys, src.wrapped(), src.DES().cfg.Registry); err != nil {
			return err
		}
		defer dek.Zero()
	}
	for i := 0; i < src.Blocks(); i++ {
		b, err := src.readWith(dek, i)
		if err != nil {
			return err
		}
		if allZero(b) {
			continue
		}
		if err := dst.writeWith(dstDEK, i, b); err != nil {
			return err
		}
	}
	return nil
}

// mirror applies a block written on the source VM to its replica.
func (r *Replication) mirror(src *Disk, i int, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != Protected {
		return
	}
	for _, rp := range r.replicas {
		if rp.src == src {
			if err := rp.disk.writeWith(rp.dek, i, data); err != nil {
				r.pending = append(r.pending, StateChange{Resource: r.cfg.Name, From: r.state, To: r.state, At: r.now(), Reason: "replication write failed: " + err.Error()})
			}
		}
	}
}

// Failover brings the VM up in the target region from its replica disks:
// they are attached to the target DES and a VM named "<source>@<region>"
// boots from them. Without a target DES it fails with ErrNoTargetDES and
// changes nothing; a boot failure (the replica's key version disabled, say)
// returns the VM, stopped, with an error wrapping ErrBootFailed —
// replication has ended either way.
func (r *Replication) Failover(ctx context.Context) (*VM, error) {
	r.mu.Lock()
	t := r.cfg.TargetDES
	switch {
	case r.state == FailedOver:
		r.mu.Unlock()
		return nil, fmt.Errorf("asr failover %s: already failed over", r.cfg.Name)
	case t == nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("asr failover %s to %s: %w", r.cfg.Name, r.cfg.TargetRegion, ErrNoTargetDES)
	case len(r.replicas) == 0:
		r.mu.Unlock()
		return nil, fmt.Errorf("asr failover %s: no replica disks", r.cfg.Name)
	}
	disks := make([]*Disk, 0, len(r.replicas))
	for _, rp := range r.replicas {
		disks = append(disks, rp.disk)
	}
	r.dropReplicasLocked(false)
	r.setStateLocked(FailedOver, "failover to "+r.cfg.TargetRegion)
	r.unlockNotify()
	r.cfg.VM.setReplication(nil)
	for _, dk := range disks {
		t.attach(dk)
	}
	vm, err := NewVM(VMConfig{Name: r.cfg.VM.Name() + "@" + r.cfg.TargetRegion, Region: r.cfg.TargetRegion, Disks: disks,
		Clock: r.cfg.VM.cfg.Clock, OnStateChange: r.cfg.OnStateChange})
	if err != nil {
		return nil, fmt.Errorf("asr failover %s: %w", r.cfg.Name, err)
	}
	if err := vm.Boot(ctx); err != nil {
		return vm, fmt.Errorf("asr failover %s: %w", r.cfg.Name, err)
	}
	return vm, nil
}

// dropReplicasLocked zeroes ASR's replica DEKs (and with remove deletes
// the replica images).
func (r *Replication) dropReplicasLocked(remove bool) {
	for _, rp := range r.replicas {
		rp.dek.Zero()
		if remove {
			os.Remove(rp.disk.path)
		}
	}
	r.replicas = nil
}

func (r *Replication) now() time.Time { return r.cfg.VM.cfg.Clock.Now() }

func (r *Replication) setStateLocked(to State, why string) {
	if to == r.state {
		return
	}
	r.pending = append(r.pending, StateChange{Resource: r.cfg.Name, From: r.state, To: to, At: r.now(), Reason: why})
	r.state = to
}

func (r *Replication) event(why string) {
	r.mu.Lock()
	r.pending = append(r.pending, StateChange{Resource: r.cfg.Name, From: r.state, To: r.state, At: r.now(), Reason: why})
	r.unlockNotify()
}

func (r *Replication) unlockNotify() {
	evs := r.pending
	r.pending = nil
	r.notifyMu.Lock()
	r.mu.Unlock()
	defer r.notifyMu.Unlock()
	if r.cfg.OnStateChange == nil {
		return
	}
	for _, e := range evs {
		r.cfg.OnStateChange(e)
	}
}
