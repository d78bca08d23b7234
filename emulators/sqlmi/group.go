package sqlmi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/lab/clock"
)

// Failover-group states (reported through GroupConfig.OnStateChange).
const (
	// GroupLinked: replication runs from the primary to the secondary.
	GroupLinked State = "Linked"
	// GroupFailingOver: a planned failover waits for the secondary to catch up.
	GroupFailingOver State = "FailingOver"
	// GroupUnlinked: the link is gone (an auto-heal window passed on a
	// member, or Close); both instances are standalone.
	GroupUnlinked State = "Unlinked"
)

// GroupConfig configures a failover group.
type GroupConfig struct {
	// Name labels the group's state changes.
	Name string
	// Primary and Secondary are the two instances (normally in two regions).
	// Neither may already be in a group. Required.
	Primary, Secondary *Instance
	// ReplicationLag is how long an acknowledged write takes to reach the
	// secondary; see DefaultReplicationLag (an assumption).
	ReplicationLag time.Duration
	// AutoFailoverGrace, when positive, fails over automatically (forced,
	// with data loss) once the primary has been Unavailable that long with
	// the secondary Online. Zero (default) means manual failover only.
	// Azure's automatic policy only reacts to outages, so an Inaccessible
	// (key-denied) primary does not trigger it.
	AutoFailoverGrace time.Duration
	// Clock tells time; default clock.Wall{}.
	Clock clock.Clock
	// OnStateChange, if set, receives the group's changes and events.
	OnStateChange func(StateChange)
}

// FailoverReport describes one failover. For a planned failover Completed
// stays zero until the secondary has caught up.
type FailoverReport struct {
	Planned    bool
	Automatic  bool // triggered by AutoFailoverGrace
	Requested  time.Time
	Completed  time.Time
	NewPrimary string
	// LostWrites counts acknowledged writes that had not reached the new
	// primary (forced failover only); LostKeys are their keys in order.
	LostWrites int
	LostKeys   []string
	// FirstLost and LastLost are the acknowledgement times of the oldest
	// and newest lost writes; DataLossWindow is Requested - FirstLost (the
	// RPO the failover achieved), zero when nothing was lost.
	FirstLost, LastLost time.Time
	DataLossWindow      time.Duration
}

// FailoverGroup links a primary and a secondary instance: writes
// acknowledged by the primary reach the secondary ReplicationLag later, in
// order, while the link is up, the primary is not down and the secondary is
// Online (otherwise they wait). Its methods are safe for concurrent use.
type FailoverGroup struct {
	cfg    GroupConfig
	ctx    context.Context
	cancel context.CancelFunc

	deliverMu sync.Mutex // serialises delivery and failover

	mu        sync.Mutex
	primary   *Instance
	secondary *Instance
	queue     []repl
	seq       uint64
	linked    bool
	linkUp    bool
	planned   *FailoverReport
	reports   []FailoverReport
	autoT     clock.Timer
	closed    bool
	state     State
	pending   []StateChange
	notifyMu  sync.Mutex
}

type repl struct {
	seq    uint64
	key    string
	value  []byte
	resync bool // re-send the new primary's current value (after a forced failover)
	ack    time.Time
	due    time.Time
}

// NewFailoverGroup links cfg.Primary and cfg.Secondary, seeding the
// secondary with the primary's rows (both must be Online).
func NewFailoverGroup(ctx context.Context, cfg GroupConfig) (*FailoverGroup, error) {
	if cfg.ReplicationLag == 0 {
		cfg.ReplicationLag = DefaultReplicationLag
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Wall{}
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("failover group config: Name is required")
	case cfg.Primary == nil || cfg.Secondary == nil || cfg.Primary == cfg.Secondary:
		return nil, errors.New("failover group config: two distinct instances are required")
	case cfg.ReplicationLag < 0 || cfg.AutoFailoverGrace < 0:
		return nil, errors.New("failover group config: durations must not be negative")
	}
	g := &FailoverGroup{cfg: cfg, primary: cfg.Primary, secondary: cfg.Secondary, linked: true, linkUp: true, state: GroupLinked}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if err := cfg.Primary.joinGroup(g, Primary); err != nil {
		return nil, fmt.Errorf("failover group %s: %w", cfg.Name, err)
	}
	if err := cfg.Secondary.joinGroup(g, Secondary); err != nil {
		cfg.Primary.leaveGroup("group creation failed")
		return nil, fmt.Errorf("failover group %s: %w", cfg.Name, err)
	}
	if err := g.seed(ctx); err != nil {
		cfg.Primary.leaveGroup("group creation failed")
		cfg.Secondary.leaveGroup("group creation failed")
		return nil, fmt.Errorf("failover group %s: seed: %w", cfg.Name, err)
	}
	return g, nil
}

func (g *FailoverGroup) seed(ctx context.Context) error {
	keys, err := g.primary.cfg.Store.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		v, err := g.primary.readRow(ctx, k)
		if err != nil {
			return err
		}
		if err := g.secondary.apply(ctx, k, v, false); err != nil {
			return err
		}
	}
	return nil
}

// Primary returns the current primary.
func (g *FailoverGroup) Primary() *Instance {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.primary
}

// Secondary returns the current secondary.
func (g *FailoverGroup) Secondary() *Instance {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.secondary
}

// Linked reports whether the group still exists.
func (g *FailoverGroup) Linked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.linked
}

// State returns the group's state.
func (g *FailoverGroup) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Pending returns how many acknowledged writes have not reached the
// secondary yet (the data a forced failover now would lose).
func (g *FailoverGroup) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.queue {
		if !r.resync {
			n++
		}
	}
	return n
}

// Reports returns every failover so far (copies), oldest first.
func (g *FailoverGroup) Reports() []FailoverReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]FailoverReport, len(g.reports))
	copy(out, g.reports)
	if g.planned != nil {
		out = append(out, *g.planned)
	}
	return out
}

// LostWrites sums the writes lost by all failovers so far.
func (g *FailoverGroup) LostWrites() int {
	n := 0
	for _, r := range g.Reports() {
		n += r.LostWrites
	}
	return n
}

// SetLink cuts (false) or restores (true) the replication link between the
// regions; writes wait while it is cut.
func (g *FailoverGroup) SetLink(up bool) {
	g.mu.Lock()
	g.linkUp = up
	g.eventLocked(map[bool]string{true: "replication link up", false: "replication link cut"}[up])
	g.unlockNotify()
	if up {
		g.deliver()
	}
}

// Close stops the group's timers and unlinks the instances. Idempotent.
func (g *FailoverGroup) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.cancel()
	g.mu.Unlock()
	g.unlink("failover group closed")
	return nil
}

// Failover makes the secondary the primary. A planned failover (needs both
// instances Online, the link up) stops writes on the primary
// (ErrFailoverInProgress), waits for the secondary to catch up and then
// swaps roles, losing nothing; the returned report has Completed set once
// done (see Reports). A forced failover swaps roles at once: every write
// not yet replicated is lost and counted; when the old primary is back it
// becomes the secondary and its lost rows are overwritten from the new
// primary.
func (g *FailoverGroup) Failover(planned bool) (FailoverReport, error) {
	return g.failover(planned, false)
}

func (g *FailoverGroup) failover(planned, automatic bool) (FailoverReport, error) {
	g.deliverMu.Lock()
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	prim, sec := g.primary, g.secondary
	var err error
	switch {
	case !g.linked:
		err = ErrNotLinked
	case g.planned != nil && planned:
		err = ErrFailoverInProgress
	}
	if err != nil {
		g.mu.Unlock()
		g.deliverMu.Unlock()
		return FailoverReport{}, fmt.Errorf("failover %s: %w", g.cfg.Name, err)
	}
	if planned {
		g.mu.Unlock()
		ready := g.linkIsUp() && prim.State() == Online && sec.State() == Online
		g.mu.Lock()
		if !ready {
			g.mu.Unlock()
			g.deliverMu.Unlock()
			return FailoverReport{}, fmt.Errorf("failover %s: %w", g.cfg.Name, ErrNotReady)
		}
		g.planned = &FailoverReport{Planned: true, Requested: now, NewPrimary: sec.Name()}
		g.setStateLocked(GroupFailingOver, "planned failover to "+sec.Name()+": waiting for the secondary to catch up")
		rep := *g.planned
		g.unlockNotify()
		g.deliverMu.Unlock()
		g.deliver()
		if done := g.lastReport(); done.Planned && done.Requested.Equal(rep.Requested) && !done.Completed.IsZero() {
			return done, nil
		}
		return rep, nil
	}

	rep := FailoverReport{Automatic: automatic, Requested: now, Completed: now, NewPrimary: sec.Name()}
	var resync []repl
	seen := map[string]bool{}
	for _, r := range g.queue {
		if r.resync {
			continue
		}
		if rep.LostWrites == 0 {
			rep.FirstLost = r.ack
		}
		rep.LostWrites++
		rep.LostKeys = append(rep.LostKeys, r.key)
		rep.LastLost = r.ack
		if !seen[r.key] {
			seen[r.key] = true
			g.seq++
			resync = append(resync, repl{seq: g.seq, key: r.key, resync: true, ack: now, due: now})
		}
	}
	if rep.LostWrites > 0 {
		rep.DataLossWindow = now.Sub(rep.FirstLost)
	}
	g.queue = resync
	g.primary, g.secondary = sec, prim
	g.planned = nil
	stop(g.autoT)
	g.autoT = nil
	g.reports = append(g.reports, rep)
	how := "forced failover"
	if automatic {
		how = "automatic forced failover"
	}
	g.setStateLocked(GroupLinked, how)
	g.eventLocked(fmt.Sprintf("%s: %s is primary, %d acknowledged writes lost", how, sec.Name(), rep.LostWrites))
	g.unlockNotify()
	sec.setRole(Primary, how)
	prim.setRole(Secondary, how)
	g.deliverMu.Unlock()
	g.deliver()
	return rep, nil
}

func (g *FailoverGroup) lastReport() FailoverReport {
	r := g.Reports()
	if len(r) == 0 {
		return FailoverReport{}
	}
	return r[len(r)-1]
}

func (g *FailoverGroup) linkIsUp() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.linkUp
}

// replicate queues a write acknowledged by from at ack.
func (g *FailoverGroup) replicate(from *Instance, key string, value []byte, ack time.Time) {
	g.mu.Lock()
	if !g.linked || from != g.primary {
		g.mu.Unlock()
		return
	}
	g.seq++
	g.queue = append(g.queue, repl{seq: g.seq, key: key, value: append([]byte(nil), value...), ack: ack, due: ack.Add(g.cfg.ReplicationLag)})
	g.mu.Unlock()
	g.cfg.Clock.AfterFunc(g.cfg.ReplicationLag, g.deliver)
}

// failingOverFrom reports whether m is a primary that must refuse writes
// because a planned failover is catching up.
func (g *FailoverGroup) failingOverFrom(m *Instance) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.planned != nil && g.primary == m
}

// deliver applies every due write to the secondary, in order, stopping at
// the first that cannot be applied (it is retried when the secondary comes
// back, the primary comes back, or the link is restored).
func (g *FailoverGroup) deliver() {
	g.deliverMu.Lock()
	defer g.deliverMu.Unlock()
	for {
		now := g.cfg.Clock.Now()
		g.mu.Lock()
		if g.closed || !g.linked || !g.linkUp || len(g.queue) == 0 || g.queue[0].due.After(now) {
			g.mu.Unlock()
			break
		}
		r, prim, sec := g.queue[0], g.primary, g.secondary
		g.mu.Unlock()
		if prim.isDown() {
			break // the log cannot leave a primary that is down
		}
		value, del := r.value, false
		if r.resync {
			v, err := prim.readRow(g.ctx, r.key)
			switch {
			case errors.Is(err, ErrNotFound):
				del = true
			case err != nil:
				return
			}
			value = v
		}
		if err := sec.apply(g.ctx, r.key, value, del); err != nil {
			break
		}
		g.mu.Lock()
		if len(g.queue) > 0 && g.queue[0].seq == r.seq {
			g.queue = g.queue[1:]
		}
		g.mu.Unlock()
	}
	g.completePlanned()
}

// completePlanned swaps roles once a planned failover has caught up.
func (g *FailoverGroup) completePlanned() {
	g.mu.Lock()
	if g.planned == nil || len(g.queue) > 0 {
		g.mu.Unlock()
		return
	}
	rep := *g.planned
	rep.Completed = g.cfg.Clock.Now()
	g.planned = nil
	prim, sec := g.primary, g.secondary
	g.primary, g.secondary = sec, prim
	g.reports = append(g.reports, rep)
	g.setStateLocked(GroupLinked, "planned failover complete: "+sec.Name()+" is primary, no data lost")
	g.unlockNotify()
	sec.setRole(Primary, "planned failover")
	prim.setRole(Secondary, "planned failover")
}

// instanceChanged is called by a member after its state changed.
func (g *FailoverGroup) instanceChanged(m *Instance) {
	st := m.State()
	g.mu.Lock()
	if g.closed || !g.linked {
		g.mu.Unlock()
		return
	}
	if m == g.primary && g.cfg.AutoFailoverGrace > 0 {
		switch {
		case st == Unavailable && g.autoT == nil:
			g.autoT = g.cfg.Clock.AfterFunc(g.cfg.AutoFailoverGrace, func() { g.autoFailover(m) })
		case st != Unavailable && g.autoT != nil:
			stop(g.autoT)
			g.autoT = nil
		}
	}
	g.mu.Unlock()
	g.deliver() // a member came back: waiting writes may move now
}

func (g *FailoverGroup) autoFailover(prim *Instance) {
	g.mu.Lock()
	g.autoT = nil
	ok := g.linked && !g.closed && g.primary == prim
	sec := g.secondary
	g.mu.Unlock()
	if ok && prim.State() == Unavailable && sec.State() == Online {
		_, _ = g.failover(false, true)
	}
}

// unlink drops the group: replication stops and both instances become
// standalone.
func (g *FailoverGroup) unlink(reason string) {
	g.deliverMu.Lock()
	g.mu.Lock()
	if !g.linked {
		g.mu.Unlock()
		g.deliverMu.Unlock()
		return
	}
	g.linked = false
	g.queue = nil
	g.planned = nil
	stop(g.autoT)
	g.autoT = nil
	prim, sec := g.primary, g.secondary
	g.setStateLocked(GroupUnlinked, reason)
	g.unlockNotify()
	g.deliverMu.Unlock()
	prim.leaveGroup(reason)
	sec.leaveGroup(reason)
}

func (g *FailoverGroup) setStateLocked(to State, reason string) {
	if to == g.state {
		return
	}
	g.pending = append(g.pending, StateChange{Resource: g.cfg.Name, From: g.state, To: to, At: g.cfg.Clock.Now(), Reason: reason})
	g.state = to
}

func (g *FailoverGroup) eventLocked(reason string) {
	g.pending = append(g.pending, StateChange{Resource: g.cfg.Name, From: g.state, To: g.state, At: g.cfg.Clock.Now(), Reason: reason})
}

func (g *FailoverGroup) unlockNotify() {
	evs := g.pending
	g.pending = nil
	g.notifyMu.Lock()
	g.mu.Unlock()
	defer g.notifyMu.Unlock()
	if g.cfg.OnStateChange == nil {
		return
	}
	for _, e := range evs {
		g.cfg.OnStateChange(e)
	}
}
