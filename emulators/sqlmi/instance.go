package sqlmi

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

// Sentinel errors.
var (
	// ErrInaccessible: the database is Inaccessible (or Healing or
	// Revalidating back from it): the TDE protector was denied.
	ErrInaccessible = errors.New("database inaccessible")
	// ErrUnavailable: the instance is unavailable (key store unreachable,
	// or an outage), not Inaccessible.
	ErrUnavailable = errors.New("instance unavailable")
	// ErrNotPrimary: a write reached a geo-secondary.
	ErrNotPrimary = errors.New("instance is not the primary")
	// ErrFailoverInProgress: a planned failover is waiting for the secondary
	// to catch up; writes are refused until it completes.
	ErrFailoverInProgress = errors.New("failover in progress")
	// ErrNotFound: no row with that key.
	ErrNotFound = errors.New("row not found")
	// ErrNotInaccessible: Revalidate on a database that does not need it.
	ErrNotInaccessible = errors.New("database is not inaccessible")
	// ErrNotLinked: the failover group's link is gone (or was never there).
	ErrNotLinked = errors.New("failover group not linked")
	// ErrNotReady: a planned failover needs both instances Online and the
	// replication link up.
	ErrNotReady = errors.New("failover group not ready for a planned failover")
	// ErrInGroup: the instance already belongs to a failover group.
	ErrInGroup = errors.New("instance already in a failover group")
	// ErrCorrupt: a stored row failed authentication with the DEK.
	ErrCorrupt = errors.New("row failed authentication")
	// ErrClosed: the instance or group was closed.
	ErrClosed = errors.New("closed")
)

// State is an instance's (or, for the Group* values, a failover group's) state.
type State string

// Instance states (see the package documentation for the transitions).
const (
	Online       State = "Online"
	Unavailable  State = "Unavailable"
	Inaccessible State = "Inaccessible"
	Healing      State = "Healing"
	Revalidating State = "Revalidating"
)

// Role is an instance's place in a failover group.
type Role string

// Roles.
const (
	Standalone Role = "Standalone"
	Primary    Role = "Primary"
	Secondary  Role = "Secondary"
)

// StateChange reports a transition, or with From == To an event that keeps
// the state (protector rotated, role changed, failover-group link lost).
type StateChange struct {
	Resource string // instance or failover-group name
	From, To State
	At       time.Time
	Reason   string
}

// Status is a snapshot of an instance.
type Status struct {
	State             State
	Role              Role
	KeyVersion        string    // protector version that wraps the DEK
	NeedsRevalidation bool      // the auto-heal window passed: only Revalidate helps
	LastKeyOK         time.Time // last successful protector check
	Down              bool      // SetOutage(true) in force
}

// Instance is one SQL Managed Instance (its databases share one DEK and
// one protector). Its methods are safe for concurrent use.
type Instance struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc

	writeMu sync.Mutex // orders writes, so replication sees acknowledgement order

	mu                sync.Mutex
	wrapped           envelope.WrappedDEK
	dek               *envelope.DEK // nil while Inaccessible
	tde               State         // the TDE state machine
	down              bool
	state             State // published: Unavailable while down, else tde
	role              Role
	group             *FailoverGroup
	lastOK            time.Time
	denied            bool      // a denied episode is running
	episodeStart      time.Time // t_ok of the denied episode
	needsRevalidation bool
	closed            bool
	checkT, rotT      clock.Timer
	inaccT, windowT   clock.Timer
	healT, bufferT    clock.Timer
	revalT            clock.Timer
	pending           []StateChange

	notifyMu sync.Mutex
}

// New opens the instance on its store: it unwraps the stored DEK, or the
// first time creates one (random) and wraps it with the protector. It then
// starts the periodic protector check (and, with AutoRotate, the rotation
// poll). On error nothing keeps running.
func New(ctx context.Context, cfg Config, opts ...Option) (*Instance, error) {
	cfg.setDefaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, ok, err := cfg.Store.LoadDEK(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Name, err)
	}
	var d *envelope.DEK
	if ok {
		d, err = envelope.Unwrap(ctx, cfg.Keys, w, cfg.Registry)
	} else if d, err = envelope.NewDEK(cfg.Registry); err == nil {
		w, err = envelope.Wrap(ctx, cfg.Keys, cfg.KeyName, cfg.KeyVersion, d)
		if err == nil {
			err = cfg.Store.SaveDEK(ctx, w)
		}
		if err != nil {
			d.Zero()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Name, err)
	}
	m := &Instance{cfg: cfg, wrapped: w, dek: d, tde: Online, state: Online, role: Standalone, lastOK: cfg.Clock.Now()}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.mu.Lock()
	m.scheduleCheckLocked()
	if cfg.AutoRotate {
		m.scheduleRotateLocked()
	}
	m.mu.Unlock()
	return m, nil
}

// Name returns the instance name.
func (m *Instance) Name() string { return m.cfg.Name }

// Close stops every timer and drops the DEK. It does not close the store.
// Idempotent.
func (m *Instance) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.cancel()
	for _, t := range []clock.Timer{m.checkT, m.rotT, m.inaccT, m.windowT, m.healT, m.bufferT, m.revalT} {
		stop(t)
	}
	m.dropDEKLocked()
	return nil
}

func stop(t clock.Timer) {
	if t != nil {
		t.Stop()
	}
}

// Status returns a snapshot.
func (m *Instance) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{State: m.state, Role: m.role, KeyVersion: m.wrapped.KeyVersion,
		NeedsRevalidation: m.needsRevalidation, LastKeyOK: m.lastOK, Down: m.down}
}

// State returns the published state.
func (m *Instance) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

func rowAAD(key string) []byte { return []byte("sqlmi/row/" + key) }

// stateErrLocked is the error a request meets in the current state.
func (m *Instance) stateErrLocked() error {
	switch {
	case m.closed:
		return ErrClosed
	case m.state == Unavailable:
		return ErrUnavailable
	case m.state != Online:
		return ErrInaccessible
	}
	return nil
}

// Query returns the value stored under key. It needs the instance Online
// (any role: geo-secondaries are readable); otherwise ErrInaccessible or
// ErrUnavailable. A missing key is ErrNotFound.
func (m *Instance) Query(ctx context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	if err := m.stateErrLocked(); err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("query %s: %w", m.cfg.Name, err)
	}
	d := m.dek
	m.mu.Unlock()
	v, err := m.read(ctx, d, key)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", m.cfg.Name, err)
	}
	return v, nil
}

func (m *Instance) read(ctx context.Context, d *envelope.DEK, key string) ([]byte, error) {
	sealed, ok, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	v, err := d.Open(sealed, rowAAD(key))
	if errors.Is(err, envelope.ErrZeroed) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return nil, m.stateErrLocked()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return v, nil
}

// Write stores value under key and acknowledges it; in a failover group the
// write is then replicated asynchronously. It needs the instance Online and
// Primary or Standalone: a secondary refuses with ErrNotPrimary, a primary
// in a planned failover with ErrFailoverInProgress.
func (m *Instance) Write(ctx context.Context, key string, value []byte) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	err := m.stateErrLocked()
	if err == nil && m.role == Secondary {
		err = ErrNotPrimary
	}
	d, g := m.dek, m.group
	m.mu.Unlock()
	if err == nil && g != nil && g.failingOverFrom(m) {
		err = ErrFailoverInProgress
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", m.cfg.Name, err)
	}
	if err := m.store(ctx, d, key, value); err != nil {
		return fmt.Errorf("write %s: %w", m.cfg.Name, err)
	}
	if g != nil {
		g.replicate(m, key, value, m.cfg.Clock.Now())
	}
	return nil
}

func (m *Instance) store(ctx context.Context, d *envelope.DEK, key string, value []byte) error {
	sealed, err := d.Seal(value, rowAAD(key))
	if errors.Is(err, envelope.ErrZeroed) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.stateErrLocked()
	}
	if err != nil {
		return err
	}
	return m.cfg.Store.Put(ctx, key, sealed)
}

// apply is replication into this instance (a secondary): it needs the
// instance Online; del removes the row.
func (m *Instance) apply(ctx context.Context, key string, value []byte, del bool) error {
	m.mu.Lock()
	err := m.stateErrLocked()
	d := m.dek
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if del {
		return m.cfg.Store.Delete(ctx, key)
	}
	return m.store(ctx, d, key, value)
}

// readRow reads a row for replication (resync), whatever the role.
func (m *Instance) readRow(ctx context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	err := m.stateErrLocked()
	d := m.dek
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return m.read(ctx, d, key)
}

func (m *Instance) isDown() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// SetOutage marks the instance's infrastructure down (region outage,
// instance failure) or back. While down it is Unavailable whatever its TDE
// state; the TDE state machine keeps running underneath.
func (m *Instance) SetOutage(down bool) {
	m.mu.Lock()
	m.down = down
	reason := "outage ended"
	if down {
		reason = "outage"
	}
	m.publishLocked(reason)
	m.unlockNotify()
}

// Revalidate is the manual revalidation of the TDE protector (the portal's
// "revalidate key"), the only way back once the auto-heal window passed.
// It unwraps the DEK now: on failure it returns the key-store error (class
// kept) and nothing changes; on success the database is Revalidating and
// comes Online RevalidationTime later. It fails with ErrNotInaccessible
// unless the database is Inaccessible or Healing.
func (m *Instance) Revalidate(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("revalidate %s: %w", m.cfg.Name, ErrClosed)
	}
	if m.tde != Inaccessible && m.tde != Healing {
		m.mu.Unlock()
		return fmt.Errorf("revalidate %s (%s): %w", m.cfg.Name, m.tde, ErrNotInaccessible)
	}
	w := m.wrapped
	m.mu.Unlock()
	d, err := envelope.Unwrap(ctx, m.cfg.Keys, w, m.cfg.Registry)
	if err != nil {
		return fmt.Errorf("revalidate %s: %w", m.cfg.Name, err)
	}
	m.mu.Lock()
	if m.closed || (m.tde != Inaccessible && m.tde != Healing) {
		m.mu.Unlock()
		d.Zero()
		return nil
	}
	m.keepDEKLocked(d)
	m.lastOK = m.cfg.Clock.Now()
	m.endEpisodeLocked()
	stop(m.healT)
	m.tde = Revalidating
	m.publishLocked("manual revalidation started")
	m.revalT = m.cfg.Clock.AfterFunc(m.cfg.RevalidationTime, func() {
		m.mu.Lock()
		if m.tde == Revalidating && !m.closed {
			m.tde = Online
			m.needsRevalidation = false
			m.publishLocked("manual revalidation complete")
		}
		m.unlockNotify()
	})
	m.unlockNotify()
	return nil
}

// RotateProtector re-wraps the DEK with version ("" = the key's current
// version) now: the manual rotation, online, no data re-encrypted. It
// needs the DEK in memory (the database Online, Unavailable or Healing).
func (m *Instance) RotateProtector(ctx context.Context, version string) error {
	if err := m.rewrap(ctx, version, "manual"); err != nil {
		return fmt.Errorf("rotate protector %s: %w", m.cfg.Name, err)
	}
	return nil
}

func (m *Instance) rewrap(ctx context.Context, version, how string) error {
	m.mu.Lock()
	d, old := m.dek, m.wrapped.KeyVersion
	m.mu.Unlock()
	if d == nil {
		return ErrInaccessible
	}
	w, err := envelope.Wrap(ctx, m.cfg.Keys, m.cfg.KeyName, version, d)
	if err == nil {
		err = m.cfg.Store.SaveDEK(ctx, w)
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.wrapped = w
	m.eventLocked(fmt.Sprintf("protector rotated (%s) from version %s to %s", how, old, w.KeyVersion))
	m.unlockNotify()
	return nil
}

// --- the protector check -------------------------------------------------

func (m *Instance) scheduleCheckLocked() {
	m.checkT = m.cfg.Clock.AfterFunc(m.cfg.ProtectorCheckInterval, m.check)
}

func (m *Instance) check() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	w := m.wrapped
	m.mu.Unlock()
	d, err := envelope.Unwrap(m.ctx, m.cfg.Keys, w, m.cfg.Registry)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		d.Zero()
		return
	}
	m.applyCheckLocked(d, err)
	m.scheduleCheckLocked()
	m.unlockNotify()
}

func (m *Instance) applyCheckLocked(d *envelope.DEK, err error) {
	now := m.cfg.Clock.Now()
	class := keyclient.Class(err)
	switch {
	case err == nil:
		m.lastOK = now
		stop(m.bufferT)
		m.keepDEKLocked(d)
		switch m.tde {
		case Online:
			if m.denied { // denied briefly, back before Inaccessible
				m.endEpisodeLocked()
			}
		case Unavailable:
			m.endEpisodeLocked()
			m.tde = Online
			m.publishLocked("key store reachable again")
		case Inaccessible:
			if m.needsRevalidation {
				return // only Revalidate helps now
			}
			stop(m.windowT)
			m.tde = Healing
			m.publishLocked("key access restored within the auto-heal window")
			m.healT = m.cfg.Clock.AfterFunc(upTo(m.cfg.Rand, m.cfg.AutoHealWithin), m.healed)
		}
	case class == keyclient.ErrThrottled:
		// Transient: no information.
	case class == keyclient.ErrUnreachable:
		if m.tde == Online {
			m.tde = Unavailable
			m.publishLocked("key store unreachable (" + code(err) + ")")
			left := m.lastOK.Add(m.cfg.NetworkErrorBuffer).Sub(now)
			m.bufferT = m.cfg.Clock.AfterFunc(left, m.bufferExpired)
		}
	default: // denied (or a wrapped DEK the key store calls invalid)
		stop(m.bufferT)
		switch m.tde {
		case Online, Unavailable:
			if !m.denied {
				m.startEpisodeLocked(m.lastOK, "protector denied ("+code(err)+")")
			}
		case Healing:
			stop(m.healT)
			m.tde = Inaccessible
			m.dropDEKLocked()
			m.publishLocked("protector denied again while healing (" + code(err) + ")")
			m.armWindowLocked()
		}
	}
}

// startEpisodeLocked starts a denied episode whose access was last known
// good at since: Inaccessible at since+TimeToInaccessible (not before now),
// and the auto-heal window ends at since+AutoHealWindow.
func (m *Instance) startEpisodeLocked(since time.Time, reason string) {
	now := m.cfg.Clock.Now()
	m.denied = true
	m.episodeStart = since
	left := since.Add(m.cfg.TimeToInaccessible).Sub(now)
	if left < 0 {
		left = 0
	}
	if m.cfg.Rand != nil && left > 0 {
		left = upTo(m.cfg.Rand, left)
	}
	m.inaccT = m.cfg.Clock.AfterFunc(left, func() {
		m.mu.Lock()
		if m.denied && (m.tde == Online || m.tde == Unavailable) && !m.closed {
			m.tde = Inaccessible
			m.dropDEKLocked()
			m.publishLocked(reason)
		}
		m.unlockNotify()
	})
	m.armWindowLocked()
}

func (m *Instance) armWindowLocked() {
	stop(m.windowT)
	left := m.episodeStart.Add(m.cfg.AutoHealWindow).Sub(m.cfg.Clock.Now())
	m.windowT = m.cfg.Clock.AfterFunc(left, m.windowPassed)
}

func (m *Instance) endEpisodeLocked() {
	m.denied = false
	m.episodeStart = time.Time{}
	stop(m.inaccT)
	stop(m.windowT)
}

// windowPassed: the auto-heal window ended with access still denied.
func (m *Instance) windowPassed() {
	m.mu.Lock()
	if m.closed || !m.denied || m.tde == Healing || m.tde == Revalidating || m.needsRevalidation {
		m.unlockNotify()
		return
	}
	if m.tde != Inaccessible { // TimeToInaccessible longer than the window
		m.tde = Inaccessible
		m.dropDEKLocked()
	}
	m.needsRevalidation = true
	m.publishLocked("auto-heal window passed")
	m.eventLocked("auto-heal window passed: manual revalidation required; failover group configuration lost")
	g := m.group
	m.unlockNotify()
	if g != nil {
		g.unlink(m.cfg.Name + ": auto-heal window passed, failover group configuration lost")
	}
}

// bufferExpired: the key store has been unreachable for NetworkErrorBuffer.
func (m *Instance) bufferExpired() {
	m.mu.Lock()
	if m.closed || m.tde != Unavailable {
		m.unlockNotify()
		return
	}
	now := m.cfg.Clock.Now()
	m.tde = Inaccessible
	m.dropDEKLocked()
	m.publishLocked("key store unreachable for the network error buffer")
	m.denied = true
	m.episodeStart = now
	m.armWindowLocked()
	m.unlockNotify()
}

func (m *Instance) healed() {
	m.mu.Lock()
	if m.tde == Healing && !m.closed {
		m.endEpisodeLocked()
		m.tde = Online
		m.publishLocked("auto-healed")
	}
	m.unlockNotify()
}

// keepDEKLocked keeps d as the in-memory DEK (or zeroes it when one is
// already held).
func (m *Instance) keepDEKLocked(d *envelope.DEK) {
	if m.dek == nil {
		m.dek = d
	} else if d != m.dek {
		d.Zero()
	}
}

func (m *Instance) dropDEKLocked() {
	m.dek.Zero()
	m.dek = nil
}

// --- auto-rotation -----------------------------------------------------------

func (m *Instance) scheduleRotateLocked() {
	m.rotT = m.cfg.Clock.AfterFunc(m.cfg.AutoRotatePickup, func() {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		cur := m.wrapped.KeyVersion
		m.mu.Unlock()
		if k, err := m.cfg.Keys.GetKey(m.ctx, m.cfg.KeyName, ""); err == nil && k.Version != "" && k.Version != cur {
			if err := m.rewrap(m.ctx, k.Version, "automatic"); err != nil && !errors.Is(err, ErrInaccessible) {
				m.event("automatic protector rotation to " + k.Version + " failed: " + code(err))
			}
		}
		m.mu.Lock()
		if !m.closed {
			m.scheduleRotateLocked()
		}
		m.mu.Unlock()
	})
}

// --- roles and notifications ----------------------------------------------

func (m *Instance) setRole(r Role, reason string) {
	m.mu.Lock()
	if m.role != r {
		m.eventLocked(fmt.Sprintf("role %s -> %s (%s)", m.role, r, reason))
		m.role = r
	}
	m.unlockNotify()
}

func (m *Instance) joinGroup(g *FailoverGroup, r Role) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.group != nil && m.group != g {
		return fmt.Errorf("%s: %w", m.cfg.Name, ErrInGroup)
	}
	m.group = g
	m.role = r
	return nil
}

func (m *Instance) leaveGroup(reason string) {
	m.mu.Lock()
	m.group = nil
	if m.role != Standalone {
		m.eventLocked(fmt.Sprintf("role %s -> %s (%s)", m.role, Standalone, reason))
		m.role = Standalone
	}
	m.unlockNotify()
}

func code(err error) string {
	if c := keyclient.Code(err); c != "" {
		return c
	}
	if c := keyclient.Class(err); c != nil {
		return c.Error()
	}
	return err.Error()
}

// publishLocked recomputes the published state and records a change.
func (m *Instance) publishLocked(reason string) {
	to := m.tde
	if m.down {
		to = Unavailable
	}
	if to == m.state {
		return
	}
	m.pending = append(m.pending, StateChange{Resource: m.cfg.Name, From: m.state, To: to, At: m.cfg.Clock.Now(), Reason: reason})
	m.state = to
}

func (m *Instance) eventLocked(reason string) {
	m.pending = append(m.pending, StateChange{Resource: m.cfg.Name, From: m.state, To: m.state, At: m.cfg.Clock.Now(), Reason: reason})
}

func (m *Instance) event(reason string) {
	m.mu.Lock()
	m.eventLocked(reason)
	m.unlockNotify()
}

// unlockNotify releases m.mu, then delivers pending changes in order to the
// observer and tells the failover group about state changes.
func (m *Instance) unlockNotify() {
	evs := m.pending
	m.pending = nil
	g := m.group
	m.notifyMu.Lock()
	m.mu.Unlock()
	changed := false
	for _, e := range evs {
		if m.cfg.OnStateChange != nil {
			m.cfg.OnStateChange(e)
		}
		changed = changed || e.From != e.To
	}
	m.notifyMu.Unlock()
	if changed && g != nil {
		g.instanceChanged(m)
	}
}
