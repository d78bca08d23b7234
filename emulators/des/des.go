package des

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Defaults (facts §9). Same names and values as topology.DiskBehaviour.
const (
	// DefaultIOFailAfterKeyLoss: disk I/O "generally" fails one hour after
	// the key is disabled or deleted; then VMs shut down (DISK).
	DefaultIOFailAfterKeyLoss = time.Hour
	// DefaultAutoRotatePickup: disks move to a new version "within one hour".
	DefaultAutoRotatePickup = time.Hour
	// DefaultKeyCheckInterval: how often the DES re-checks its key.
	// UNDOCUMENTED: an assumption.
	DefaultKeyCheckInterval = 5 * time.Minute
	// DefaultExpiredKeyStopsVMs: the doc says expired keys shut VMs down; a
	// user report (azure-docs#121652) says they do not. Default: the report.
	DefaultExpiredKeyStopsVMs = false
)

// Sentinel errors.
var (
	// ErrBootFailed: a VM could not unwrap every disk's DEK.
	ErrBootFailed = errors.New("vm boot failed")
	// ErrIOFailed: disk I/O on a VM the platform shut down after key loss.
	ErrIOFailed = errors.New("disk i/o failed: encryption key unusable")
	// ErrNotRunning: disk I/O on a VM that is not running.
	ErrNotRunning = errors.New("vm not running")
	// ErrKeyExpired: the key is expired and ExpiredKeyStopsVMs is set.
	ErrKeyExpired = errors.New("key expired")
	// ErrKeyDisabled: the key version is disabled (GetKey answered enabled=false).
	ErrKeyDisabled = errors.New("key disabled")
	// ErrNoTargetDES: ASR failover into a region with no DES pre-created.
	ErrNoTargetDES = errors.New("no disk encryption set in the target region")
	// ErrNoSuchDisk: a VM has no disk by that name.
	ErrNoSuchDisk = errors.New("no such disk")
	// ErrBlockRange: a block index or size outside the disk.
	ErrBlockRange = errors.New("block out of range")
	// ErrCorrupt: a block or header failed authentication or parsing.
	ErrCorrupt = errors.New("disk image corrupt")
	// ErrClosed: the DES or replication was closed.
	ErrClosed = errors.New("closed")
)

// State is the state of a DES, a VM or a replication.
type State string

// DES states.
const (
	Healthy     State = "Healthy"
	KeyLost     State = "KeyLost"
	DisksFailed State = "DisksFailed"
)

// VM states.
const (
	Stopped            State = "Stopped"
	Running            State = "Running"
	ShutDownByPlatform State = "ShutDownByPlatform"
)

// Replication states.
const (
	Protected   State = "Protected"
	Unprotected State = "Unprotected"
	FailedOver  State = "FailedOver"
)

// StateChange reports a transition, or with From == To an event that keeps
// the state (key version picked up, replica re-created).
type StateChange struct {
	Resource string // DES, VM or replication name
	From, To State
	At       time.Time
	Reason   string
}

// Config configures a DES. Zero durations take the defaults.
type Config struct {
	// Name and Region identify the DES (a regional resource).
	Name, Region string
	// KeyName is the customer-managed key.
	KeyName string
	// KeyVersion fixes a version; "" takes the latest at creation.
	KeyVersion string
	// AutoRotate (rotationToLatestKeyVersionEnabled) moves the DES and its
	// disks to a new key version within AutoRotatePickup.
	AutoRotate bool

	IOFailAfterKeyLoss time.Duration // DefaultIOFailAfterKeyLoss
	AutoRotatePickup   time.Duration // DefaultAutoRotatePickup
	KeyCheckInterval   time.Duration // DefaultKeyCheckInterval (UNDOCUMENTED)
	// ExpiredKeyStopsVMs: see DefaultExpiredKeyStopsVMs.
	ExpiredKeyStopsVMs bool

	// Keys reaches the key store as the DES's own identity. Required.
	Keys keyclient.Client
	// Clock tells time; default clock.Wall{}.
	Clock clock.Clock
	// Registry, if set, remembers every DEK for the plaintext-DEK check.
	Registry *envelope.Registry
	// OnStateChange, if set, receives the DES's changes; VMs and
	// replications built on it report through it too unless they have
	// their own.
	OnStateChange func(StateChange)
}

// Option changes a Config before validation.
type Option func(*Config)

// WithClock sets the clock.
func WithClock(c clock.Clock) Option { return func(cfg *Config) { cfg.Clock = c } }

// WithObserver sets OnStateChange.
func WithObserver(f func(StateChange)) Option { return func(cfg *Config) { cfg.OnStateChange = f } }

// WithRegistry sets the DEK registry.
func WithRegistry(r *envelope.Registry) Option { return func(cfg *Config) { cfg.Registry = r } }

func (c *Config) setDefaults() {
	if c.IOFailAfterKeyLoss == 0 {
		c.IOFailAfterKeyLoss = DefaultIOFailAfterKeyLoss
	}
	if c.AutoRotatePickup == 0 {
		c.AutoRotatePickup = DefaultAutoRotatePickup
	}
	if c.KeyCheckInterval == 0 {
		c.KeyCheckInterval = DefaultKeyCheckInterval
	}
	if c.Clock == nil {
		c.Clock = clock.Wall{}
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("des config: Name is required")
	case c.KeyName == "":
		return errors.New("des config: KeyName is required")
	case c.Keys == nil:
		return errors.New("des config: Keys is required")
	case c.IOFailAfterKeyLoss <= 0 || c.AutoRotatePickup <= 0 || c.KeyCheckInterval <= 0:
		return errors.New("des config: durations must be positive")
	}
	return nil
}

// DES is a Disk Encryption Set. Its methods are safe for concurrent use.
type DES struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	version  string
	state    State
	lastOK   time.Time
	disks    []*Disk
	vms      map[*VM]bool // running VMs with a disk here
	checkT   clock.Timer
	rotT     clock.Timer
	failT    clock.Timer
	closed   bool
	pending  []StateChange
	notifyMu sync.Mutex
}

// New creates a DES. Like Azure, it checks that its identity can read the
// key (and resolves the latest version when none is fixed); then it starts
// the periodic key check and, with AutoRotate, the rotation poll.
func New(ctx context.Context, cfg Config, opts ...Option) (*DES, error) {
	cfg.setDefaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k, err := cfg.Keys.GetKey(ctx, cfg.KeyName, cfg.KeyVersion)
	if err != nil {
		return nil, fmt.Errorf("create des %s: %w", cfg.Name, err)
	}
	d := &DES{cfg: cfg, version: k.Version, state: Healthy, lastOK: cfg.Clock.Now(), vms: map[*VM]bool{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.mu.Lock()
	d.scheduleCheckLocked()
	if cfg.AutoRotate {
		d.scheduleRotateLocked()
	}
	d.mu.Unlock()
	return d, nil
}

// Name returns the DES name.
func (d *DES) Name() string { return d.cfg.Name }

// Region returns the DES region.
func (d *DES) Region() string { return d.cfg.Region }

// KeyVersion returns the key version the DES points at now.
func (d *DES) KeyVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// State returns the DES state.
func (d *DES) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// Close stops the DES's timers. Idempotent.
func (d *DES) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		d.cancel()
		for _, t := range []clock.Timer{d.checkT, d.rotT, d.failT} {
			if t != nil {
				t.Stop()
			}
		}
	}
	return nil
}

// SetKeyVersion points the DES at version now ("" = the latest) and
// re-wraps every attached disk's DEK with it (the manual key update of a
// DES without auto-rotation). Disks it cannot re-wrap keep their version;
// the first such error is returned.
func (d *DES) SetKeyVersion(ctx context.Context, version string) error {
	k, err := d.cfg.Keys.GetKey(ctx, d.cfg.KeyName, version)
	if err != nil {
		return fmt.Errorf("des %s: set key version: %w", d.cfg.Name, err)
	}
	if err := d.moveTo(ctx, k.Version, "manual key update"); err != nil {
		return fmt.Errorf("des %s: set key version: %w", d.cfg.Name, err)
	}
	return nil
}

// moveTo re-wraps the attached disks with version and records it.
func (d *DES) moveTo(ctx context.Context, version, how string) error {
	d.mu.Lock()
	disks := append([]*Disk(nil), d.disks...)
	old := d.version
	d.version = version
	d.mu.Unlock()
	var first error
	moved := 0
	for _, dk := range disks {
		if err := dk.rewrap(ctx, d, version); err != nil {
			if first == nil {
				first = fmt.Errorf("disk %s: %w", dk.Name(), err)
			}
			continue
		}
		moved++
	}
	msg := fmt.Sprintf("%s: key version %s -> %s, %d of %d disks re-wrapped", how, old, version, moved, len(disks))
	if first != nil {
		msg += "; first failure: " + first.Error()
	}
	d.event(msg)
	return first
}

// attach registers a disk with the DES (rotation, key checks).
func (d *DES) attach(dk *Disk) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.disks {
		if x == dk {
			return
		}
	}
	d.disks = append(d.disks, dk)
}

// usable checks the key version for use: GetKey must succeed, the version
// be enabled and (with ExpiredKeyStopsVMs) not expired.
func (d *DES) usable(ctx context.Context, version string) error {
	k, err := d.cfg.Keys.GetKey(ctx, d.cfg.KeyName, version)
	switch {
	case err != nil:
		return err
	case !k.Enabled:
		return fmt.Errorf("%s/%s: %w", d.cfg.KeyName, k.Version, ErrKeyDisabled)
	case d.cfg.ExpiredKeyStopsVMs && !k.Expires.IsZero() && !d.cfg.Clock.Now().Before(k.Expires):
		return fmt.Errorf("%s/%s: %w", d.cfg.KeyName, k.Version, ErrKeyExpired)
	}
	return nil
}

// unwrapFor unwraps a disk's DEK for a boot: the key version must be
// usable, then the DES's identity unwraps.
func (d *DES) unwrapFor(ctx context.Context, w envelope.WrappedDEK) (*envelope.DEK, error) {
	if err := d.usable(ctx, w.KeyVersion); err != nil {
		return nil, err
	}
	return envelope.Unwrap(ctx, d.cfg.Keys, w, d.cfg.Registry)
}

func (d *DES) register(vm *VM, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on {
		d.vms[vm] = true
	} else {
		delete(d.vms, vm)
	}
}

// --- key check ---------------------------------------------------------------

func (d *DES) scheduleCheckLocked() {
	d.checkT = d.cfg.Clock.AfterFunc(d.cfg.KeyCheckInterval, d.check)
}

func (d *DES) check() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	v := d.version
	d.mu.Unlock()
	err := d.usable(d.ctx, v)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.scheduleCheckLocked()
	switch c := keyclient.Class(err); {
	case err == nil:
		d.lastOK = d.cfg.Clock.Now()
		if d.failT != nil {
			d.failT.Stop()
			d.failT = nil
		}
		d.setStateLocked(Healthy, "key usable")
	case c == keyclient.ErrUnreachable || c == keyclient.ErrThrottled:
		// No information.
	default:
		if d.state == Healthy {
			d.setStateLocked(KeyLost, "key unusable: "+reason(err))
			left := d.lastOK.Add(d.cfg.IOFailAfterKeyLoss).Sub(d.cfg.Clock.Now())
			d.failT = d.cfg.Clock.AfterFunc(left, d.disksFail)
		}
	}
	d.unlockNotify()
}

// disksFail: the key stayed unusable for IOFailAfterKeyLoss.
func (d *DES) disksFail() {
	d.mu.Lock()
	if d.closed || d.state != KeyLost {
		d.unlockNotify()
		return
	}
	d.failT = nil
	d.setStateLocked(DisksFailed, "key unusable for the I/O grace period: disk I/O fails")
	vms := make([]*VM, 0, len(d.vms))
	for vm := range d.vms {
		vms = append(vms, vm)
	}
	d.unlockNotify()
	for _, vm := range sortVMs(vms) {
		vm.platformShutdown("disk encryption set " + d.cfg.Name + ": key unusable, disk I/O failed")
	}
}

func reason(err error) string {
	if c := keyclient.Code(err); c != "" {
		return c
	}
	return err.Error()
}

// --- auto-rotation -------------------------------------------------------------

func (d *DES) scheduleRotateLocked() {
	d.rotT = d.cfg.Clock.AfterFunc(d.cfg.AutoRotatePickup, func() {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return
		}
		cur := d.version
		d.mu.Unlock()
		if k, err := d.cfg.Keys.GetKey(d.ctx, d.cfg.KeyName, ""); err == nil && k.Version != cur {
			_ = d.moveTo(d.ctx, k.Version, "automatic rotation")
		}
		d.mu.Lock()
		if !d.closed {
			d.scheduleRotateLocked()
		}
		d.mu.Unlock()
	})
}

// --- notifications ---------------------------------------------------------------

func (d *DES) setStateLocked(to State, why string) {
	if to == d.state {
		return
	}
	d.pending = append(d.pending, StateChange{Resource: d.cfg.Name, From: d.state, To: to, At: d.cfg.Clock.Now(), Reason: why})
	d.state = to
}

func (d *DES) event(why string) {
	d.mu.Lock()
	d.pending = append(d.pending, StateChange{Resource: d.cfg.Name, From: d.state, To: d.state, At: d.cfg.Clock.Now(), Reason: why})
	d.unlockNotify()
}

func (d *DES) unlockNotify() {
	evs := d.pending
	d.pending = nil
	d.notifyMu.Lock()
	d.mu.Unlock()
	defer d.notifyMu.Unlock()
	if d.cfg.OnStateChange == nil {
		return
	}
	for _, e := range evs {
		d.cfg.OnStateChange(e)
	}
}
