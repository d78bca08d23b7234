package sqlmi

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Defaults (facts §8). Same names and values as topology.SQLBehaviour.
const (
	// DefaultTimeToInaccessible: "in up to 10 minutes" (TDE).
	DefaultTimeToInaccessible = 10 * time.Minute
	// DefaultAutoHealWindow: access back within 30 minutes auto-heals (TDE).
	DefaultAutoHealWindow = 30 * time.Minute
	// DefaultAutoHealWithin: the auto-heal happens "within next hour" (TDE).
	DefaultAutoHealWithin = time.Hour
	// DefaultProtectorCheckInterval: how often the protector is re-checked.
	// UNDOCUMENTED ("a few calls per hour", SCALE): an assumption.
	DefaultProtectorCheckInterval = 5 * time.Minute
	// DefaultNetworkErrorBuffer: network errors become Inaccessible only
	// after 24 h (a later doc version; UNCONFIRMED today).
	DefaultNetworkErrorBuffer = 24 * time.Hour
	// DefaultAutoRotatePickup: a new version becomes the protector "within
	// 60 minutes" (TDE).
	DefaultAutoRotatePickup = time.Hour
	// DefaultRevalidationTime: manual revalidation takes "few min to hours"
	// (support blog, no SLA): an assumption.
	DefaultRevalidationTime = 30 * time.Minute
	// DefaultReplicationLag: how long an acknowledged write takes to reach
	// the geo-secondary. Not in the facts (asynchronous replication, usually
	// seconds): an assumption, a named parameter.
	DefaultReplicationLag = 5 * time.Second
)

// Config configures an Instance. Zero durations take the defaults.
type Config struct {
	// Name is the instance name (labels state changes).
	Name string
	// Region is informational (for example "southindia").
	Region string
	// KeyName is the TDE protector key.
	KeyName string
	// KeyVersion is the protector version used when the DEK is created; ""
	// means the key's current version.
	KeyVersion string
	// AutoRotate turns on automatic protector rotation (off by default, §8).
	AutoRotate bool

	TimeToInaccessible     time.Duration // DefaultTimeToInaccessible
	AutoHealWindow         time.Duration // DefaultAutoHealWindow
	AutoHealWithin         time.Duration // DefaultAutoHealWithin
	ProtectorCheckInterval time.Duration // DefaultProtectorCheckInterval (UNDOCUMENTED)
	NetworkErrorBuffer     time.Duration // DefaultNetworkErrorBuffer (UNCONFIRMED)
	AutoRotatePickup       time.Duration // DefaultAutoRotatePickup
	RevalidationTime       time.Duration // DefaultRevalidationTime

	// Keys reaches the key store as the instance's managed identity. Required.
	Keys keyclient.Client
	// Store is the data path. Required. The instance does not close it.
	Store Store
	// Clock tells time; default clock.Wall{}.
	Clock clock.Clock
	// Rand, if set, draws delays below their documented upper bounds;
	// nil means every delay takes its upper bound.
	Rand *rand.Rand
	// Registry, if set, remembers every DEK for the plaintext-DEK check.
	Registry *envelope.Registry
	// OnStateChange, if set, is called after every state change, outside
	// the instance's lock, in order.
	OnStateChange func(StateChange)
}

// Option changes a Config before validation.
type Option func(*Config)

// WithClock sets the clock.
func WithClock(c clock.Clock) Option { return func(cfg *Config) { cfg.Clock = c } }

// WithRand sets the source of delay jitter.
func WithRand(r *rand.Rand) Option { return func(cfg *Config) { cfg.Rand = r } }

// WithObserver sets OnStateChange.
func WithObserver(f func(StateChange)) Option { return func(cfg *Config) { cfg.OnStateChange = f } }

// WithRegistry sets the DEK registry.
func WithRegistry(r *envelope.Registry) Option { return func(cfg *Config) { cfg.Registry = r } }

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (c *Config) setDefaults() {
	setDur(&c.TimeToInaccessible, DefaultTimeToInaccessible)
	setDur(&c.AutoHealWindow, DefaultAutoHealWindow)
	setDur(&c.AutoHealWithin, DefaultAutoHealWithin)
	setDur(&c.ProtectorCheckInterval, DefaultProtectorCheckInterval)
	setDur(&c.NetworkErrorBuffer, DefaultNetworkErrorBuffer)
	setDur(&c.AutoRotatePickup, DefaultAutoRotatePickup)
	setDur(&c.RevalidationTime, DefaultRevalidationTime)
	if c.Clock == nil {
		c.Clock = clock.Wall{}
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("sqlmi config: Name is required")
	case c.KeyName == "":
		return errors.New("sqlmi config: KeyName is required")
	case c.Keys == nil:
		return errors.New("sqlmi config: Keys is required")
	case c.Store == nil:
		return errors.New("sqlmi config: Store is required")
	}
	for _, d := range []time.Duration{c.TimeToInaccessible, c.AutoHealWindow, c.AutoHealWithin,
		c.ProtectorCheckInterval, c.NetworkErrorBuffer, c.AutoRotatePickup, c.RevalidationTime} {
		if d <= 0 {
			return errors.New("sqlmi config: durations must be positive")
		}
	}
	return nil
}

// upTo returns max, or a uniform draw in (0, max] when r is set.
func upTo(r *rand.Rand, max time.Duration) time.Duration {
	if r == nil || max <= 0 {
		return max
	}
	return time.Duration(r.Int64N(int64(max))) + 1
}
