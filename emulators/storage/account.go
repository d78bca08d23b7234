package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Defaults (facts §10). Same names and values as topology.StorageBehaviour.
const (
	// DefaultKeyVersionPoll: storage checks for a new key version "only once
	// daily" (STG; azure-docs#92190).
	DefaultKeyVersionPoll = 24 * time.Hour
	// DefaultKeyCacheTTL: how long the unwrapped account key is used after
	// access is revoked. UNCONFIRMED (undocumented): an assumption.
	DefaultKeyCacheTTL = time.Hour
)

// Error codes carried by *Error (Azure Storage REST error codes).
const (
	// CodeKeyNotFound: the key store refused the unwrap (key disabled,
	// deleted, or the account's identity lost its role).
	CodeKeyNotFound = "KeyVaultEncryptionKeyNotFound"
	// CodeVaultNotFound: the key store could not be reached (UNCONFIRMED
	// mapping of a network failure).
	CodeVaultNotFound = "KeyVaultVaultNotFound"
	// CodeServerBusy: the key store throttled the unwrap.
	CodeServerBusy = "ServerBusy"
	// CodeBlobNotFound: no such blob.
	CodeBlobNotFound = "BlobNotFound"
)

// Sentinel errors.
var (
	// ErrForbidden: the request needs the account key and the account cannot
	// unwrap it (HTTP 403). The *Error carries the code and the key-store error.
	ErrForbidden = errors.New("403 forbidden")
	// ErrServerBusy: the key store throttled the unwrap (HTTP 503).
	ErrServerBusy = errors.New("503 server busy")
	// ErrBlobNotFound: the blob does not exist (HTTP 404).
	ErrBlobNotFound = errors.New("404 blob not found")
	// ErrInvalidName: a container or blob name Azure would refuse (HTTP 400).
	ErrInvalidName = errors.New("400 invalid resource name")
	// ErrCorrupt: a stored blob failed authentication with the account key.
	ErrCorrupt = errors.New("blob failed authentication")
	// ErrDataPath: the backend (directory, Azurite) failed; the key is not
	// the cause.
	ErrDataPath = errors.New("data path failed")
	// ErrClosed: the account was closed.
	ErrClosed = errors.New("account closed")
)

// dataPath marks a backend error with ErrDataPath, except the backend's own
// sentinels.
func dataPath(err error) error {
	if errors.Is(err, ErrBlobNotFound) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDataPath, err)
}

// Error is a failed request as the storage service reports it.
type Error struct {
	Status int    // HTTP status the service would send
	Code   string // storage error code
	Op     string // "GetBlob", "PutBlob"
	Err    error  // the sentinel and the cause
}

// Error returns "Op: status code: cause".
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s: %v", e.Op, e.Status, e.Code, e.Err)
}

// Unwrap exposes the sentinel and the cause (a keyclient error keeps its class).
func (e *Error) Unwrap() error { return e.Err }

// State is the account's encryption state.
type State string

// Account states.
const (
	// Available: the account key is usable (cached or unwrapped).
	Available State = "Available"
	// KeyAccessDenied: the key store refused the unwrap; blob I/O is 403.
	KeyAccessDenied State = "KeyAccessDenied"
	// KeyVaultUnreachable: the key store cannot be reached and the cached key
	// expired; blob I/O is 403 (KeyVaultVaultNotFound).
	KeyVaultUnreachable State = "KeyVaultUnreachable"
)

// StateChange reports a state transition, or with From == To an event that
// keeps the state (a new key version picked up).
type StateChange struct {
	Resource string // account name
	From, To State
	At       time.Time
	Reason   string
}

// Config configures an account. Zero durations take the defaults.
type Config struct {
	// Name is the account name (labels state changes and the account record).
	Name string
	// KeyName is the customer-managed key.
	KeyName string
	// KeyVersion pins a version; "" means automatic version updates (the
	// account polls for the newest version every KeyVersionPoll).
	KeyVersion string
	// KeyVersionPoll: see DefaultKeyVersionPoll (facts §10).
	KeyVersionPoll time.Duration
	// KeyCacheTTL: see DefaultKeyCacheTTL (facts §10, UNCONFIRMED).
	KeyCacheTTL time.Duration

	// Keys reaches the key store as the account's managed identity. Required.
	Keys keyclient.Client
	// Backend is the data path. Required.
	Backend Backend
	// Clock tells time; default clock.Wall{}.
	Clock clock.Clock
	// Registry, if set, remembers every DEK for the plaintext-DEK check.
	Registry *envelope.Registry
	// OnStateChange, if set, is called after every state change, outside
	// the account's lock, in order.
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
	if c.KeyVersionPoll == 0 {
		c.KeyVersionPoll = DefaultKeyVersionPoll
	}
	if c.KeyCacheTTL == 0 {
		c.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if c.Clock == nil {
		c.Clock = clock.Wall{}
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("storage config: Name is required")
	case c.KeyName == "":
		return errors.New("storage config: KeyName is required")
	case c.Keys == nil:
		return errors.New("storage config: Keys is required")
	case c.Backend == nil:
		return errors.New("storage config: Backend is required")
	case c.KeyVersionPoll < 0 || c.KeyCacheTTL < 0:
		return errors.New("storage config: durations must not be negative")
	}
	return nil
}

// Status is a snapshot of the account.
type Status struct {
	State      State
	KeyVersion string    // version that wraps the account key now
	CachedTill time.Time // end of the key cache (zero: nothing cached)
}

// Account is one storage account. Its methods are safe for concurrent use.
type Account struct {
	cfg    Config
	ctx    context.Context // for background work; cancelled by Close
	cancel context.CancelFunc

	mu         sync.Mutex
	state      State
	wrapped    envelope.WrappedDEK
	dek        *envelope.DEK // the cache; nil when dropped
	cacheUntil time.Time
	refreshT   clock.Timer
	pollT      clock.Timer
	closed     bool
	pending    []StateChange

	notifyMu sync.Mutex
}

// New opens the account named cfg.Name on the backend, creating its DEK
// (random, wrapped by the pinned or current key version) the first time,
// and starts the cache revalidation and, without a pinned version, the
// daily version poll. On error it returns nil and leaves nothing running.
func New(ctx context.Context, cfg Config, opts ...Option) (*Account, error) {
	cfg.setDefaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Account{cfg: cfg, state: Available}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	w, ok, err := cfg.Backend.LoadAccount(ctx, cfg.Name)
	if err != nil {
		a.cancel()
		return nil, fmt.Errorf("open account %s: %w", cfg.Name, dataPath(err))
	}
	var d *envelope.DEK
	if ok {
		// An existing account opens even when its key cannot be unwrapped
		// now: it starts in the state that error calls for.
		a.wrapped = w
		if d, _, err = a.revalidate(ctx); err != nil && errors.Is(err, ErrClosed) {
			a.cancel()
			return nil, fmt.Errorf("open account %s: %w", cfg.Name, err)
		}
	} else if d, w, err = a.create(ctx); err != nil {
		a.cancel()
		return nil, fmt.Errorf("create account %s: %w", cfg.Name, err)
	}
	now := cfg.Clock.Now()
	a.mu.Lock()
	a.wrapped = w
	if d != nil {
		a.dek, a.cacheUntil = d, now.Add(cfg.KeyCacheTTL)
	}
	a.scheduleRefreshLocked(cfg.KeyCacheTTL)
	if cfg.KeyVersion == "" {
		a.schedulePollLocked()
	}
	a.mu.Unlock()
	return a, nil
}

func (a *Account) create(ctx context.Context) (*envelope.DEK, envelope.WrappedDEK, error) {
	d, err := envelope.NewDEK(a.cfg.Registry)
	if err != nil {
		return nil, envelope.WrappedDEK{}, err
	}
	w, err := envelope.Wrap(ctx, a.cfg.Keys, a.cfg.KeyName, a.cfg.KeyVersion, d)
	if err == nil {
		err = a.cfg.Backend.SaveAccount(ctx, a.cfg.Name, w)
	}
	if err != nil {
		d.Zero()
		return nil, envelope.WrappedDEK{}, err
	}
	return d, w, nil
}

// Close stops the background work and drops the cached key. Idempotent.
func (a *Account) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.cancel()
	stop(a.refreshT)
	stop(a.pollT)
	a.dropCacheLocked()
	return nil
}

func stop(t clock.Timer) {
	if t != nil {
		t.Stop()
	}
}

// Status returns the account's state and key version.
func (a *Account) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{State: a.state, KeyVersion: a.wrapped.KeyVersion}
	if a.dek != nil {
		s.CachedTill = a.cacheUntil
	}
	return s
}

// State returns the account's state.
func (a *Account) State() State { return a.Status().State }

var containerName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)

func checkNames(container, name string) error {
	if !containerName.MatchString(container) {
		return fmt.Errorf("container %q: %w", container, ErrInvalidName)
	}
	if name == "" || len(name) > 1024 {
		return fmt.Errorf("blob name of %d bytes: %w", len(name), ErrInvalidName)
	}
	return nil
}

func (a *Account) aad(container, name string) []byte {
	return []byte("storage/" + a.cfg.Name + "/" + container + "/" + name)
}

// Put seals data with the account key and stores it as container/name, with
// the wrapped account key and its key version in the blob's metadata.
// Without a usable key it fails with ErrForbidden (*Error, 403).
func (a *Account) Put(ctx context.Context, container, name string, data []byte) error {
	if err := checkNames(container, name); err != nil {
		return fmt.Errorf("put blob: %w", err)
	}
	d, w, err := a.key(ctx, "PutBlob")
	if err != nil {
		return err
	}
	sealed, err := d.Seal(data, a.aad(container, name))
	if errors.Is(err, envelope.ErrZeroed) {
		return a.keyLostDuring("PutBlob")
	}
	if err != nil {
		return fmt.Errorf("put blob: %w", err)
	}
	if err := a.cfg.Backend.PutBlob(ctx, container, name, sealed, metadata(w)); err != nil {
		return fmt.Errorf("put blob %s/%s: %w", container, name, dataPath(err))
	}
	return nil
}

// Get reads and opens container/name. Without a usable key it fails with
// ErrForbidden (*Error, 403); a missing blob is ErrBlobNotFound.
func (a *Account) Get(ctx context.Context, container, name string) ([]byte, error) {
	if err := checkNames(container, name); err != nil {
		return nil, fmt.Errorf("get blob: %w", err)
	}
	d, _, err := a.key(ctx, "GetBlob")
	if err != nil {
		return nil, err
	}
	sealed, _, err := a.cfg.Backend.GetBlob(ctx, container, name)
	if err != nil {
		return nil, fmt.Errorf("get blob %s/%s: %w", container, name, dataPath(err))
	}
	pt, err := d.Open(sealed, a.aad(container, name))
	if errors.Is(err, envelope.ErrZeroed) {
		return nil, a.keyLostDuring("GetBlob")
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s/%s: %w: %w", container, name, ErrCorrupt, err)
	}
	return pt, nil
}

// Delete removes a blob. It does not need the account key.
func (a *Account) Delete(ctx context.Context, container, name string) error {
	if err := checkNames(container, name); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	if err := a.cfg.Backend.DeleteBlob(ctx, container, name); err != nil {
		return fmt.Errorf("delete blob %s/%s: %w", container, name, dataPath(err))
	}
	return nil
}

// List returns the blob names in a container, sorted. It does not need the
// account key.
func (a *Account) List(ctx context.Context, container string) ([]string, error) {
	if err := checkNames(container, "x"); err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	names, err := a.cfg.Backend.ListBlobs(ctx, container)
	if err != nil {
		return nil, fmt.Errorf("list blobs %s: %w", container, dataPath(err))
	}
	return names, nil
}

// SetKeyVersion re-points the account at a key version now (the customer
// updating the CMK settings): version "" switches to automatic updates
// (current version now, then the daily poll); otherwise the version is
// pinned and the poll stops. It needs the account key (cached or unwrapped).
func (a *Account) SetKeyVersion(ctx context.Context, version string) error {
	d, w, err := a.key(ctx, "SetKeyVersion")
	if err != nil {
		return err
	}
	nw, err := envelope.Wrap(ctx, a.cfg.Keys, a.cfg.KeyName, version, d)
	if err != nil {
		return fmt.Errorf("set key version: %w", err)
	}
	if err := a.cfg.Backend.SaveAccount(ctx, a.cfg.Name, nw); err != nil {
		return fmt.Errorf("set key version: %w", dataPath(err))
	}
	a.mu.Lock()
	if a.wrapped.KeyVersion == w.KeyVersion {
		a.wrapped = nw
	}
	a.cfg.KeyVersion = version
	stop(a.pollT)
	a.pollT = nil
	if version == "" && !a.closed {
		a.schedulePollLocked()
	}
	a.eventLocked("key version set to " + nw.KeyVersion)
	a.unlockNotify()
	return nil
}

// key returns the usable account key: the cache while it is valid,
// otherwise a fresh unwrap whose outcome sets the state.
func (a *Account) key(ctx context.Context, op string) (*envelope.DEK, envelope.WrappedDEK, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, envelope.WrappedDEK{}, fmt.Errorf("%s: %w", op, ErrClosed)
	}
	if a.dek != nil && a.cfg.Clock.Now().Before(a.cacheUntil) {
		d, w := a.dek, a.wrapped
		a.mu.Unlock()
		return d, w, nil
	}
	a.mu.Unlock()
	d, w, err := a.revalidate(ctx)
	if err != nil {
		return nil, w, requestError(op, err)
	}
	return d, w, nil
}

// revalidate unwraps the current wrapped key and applies the outcome: a
// success refills the cache (and makes the account Available), a failure
// drops the cache and moves to the state of the error class.
func (a *Account) revalidate(ctx context.Context) (*envelope.DEK, envelope.WrappedDEK, error) {
	a.mu.Lock()
	w := a.wrapped
	a.mu.Unlock()
	d, err := envelope.Unwrap(ctx, a.cfg.Keys, w, a.cfg.Registry)
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		d.Zero()
		return nil, w, ErrClosed
	}
	if err != nil {
		switch keyclient.Class(err) {
		case keyclient.ErrThrottled:
			// Transient: keep state and cache as they are.
		case keyclient.ErrUnreachable:
			a.dropCacheLocked()
			a.setStateLocked(KeyVaultUnreachable, "key store unreachable: "+keyclient.Code(err))
		default:
			a.dropCacheLocked()
			a.setStateLocked(KeyAccessDenied, "unwrap refused: "+codeOf(err))
		}
		a.unlockNotify()
		return nil, w, err
	}
	if a.dek != nil && a.dek.Equal(d) {
		d.Zero() // keep the object callers may hold
		d = a.dek
	} else {
		a.dek.Zero()
		a.dek = d
	}
	a.cacheUntil = a.cfg.Clock.Now().Add(a.cfg.KeyCacheTTL)
	a.setStateLocked(Available, "account key unwrapped")
	a.unlockNotify()
	return d, w, nil
}

func codeOf(err error) string {
	if c := keyclient.Code(err); c != "" {
		return c
	}
	return "unknown"
}

func requestError(op string, err error) error {
	switch {
	case errors.Is(err, ErrClosed):
		return fmt.Errorf("%s: %w", op, ErrClosed)
	case keyclient.Class(err) == keyclient.ErrThrottled:
		return &Error{Status: 503, Code: CodeServerBusy, Op: op, Err: fmt.Errorf("%w: %w", ErrServerBusy, err)}
	case keyclient.Class(err) == keyclient.ErrUnreachable:
		return &Error{Status: 403, Code: CodeVaultNotFound, Op: op, Err: fmt.Errorf("%w: %w", ErrForbidden, err)}
	}
	return &Error{Status: 403, Code: CodeKeyNotFound, Op: op, Err: fmt.Errorf("%w: %w", ErrForbidden, err)}
}

// keyLostDuring reports a request whose cached key was dropped under it.
func (a *Account) keyLostDuring(op string) error {
	code := CodeKeyNotFound
	if a.State() == KeyVaultUnreachable {
		code = CodeVaultNotFound
	}
	return &Error{Status: 403, Code: code, Op: op, Err: fmt.Errorf("%w: account key dropped during the request", ErrForbidden)}
}

func (a *Account) dropCacheLocked() {
	a.dek.Zero()
	a.dek = nil
	a.cacheUntil = time.Time{}
}

// scheduleRefreshLocked revalidates the key in the background after d, then
// every KeyCacheTTL, so that the state timeline follows the key store even
// without traffic.
func (a *Account) scheduleRefreshLocked(d time.Duration) {
	a.refreshT = a.cfg.Clock.AfterFunc(d, func() {
		if a.isClosed() {
			return
		}
		_, _, _ = a.revalidate(a.ctx)
		a.mu.Lock()
		if !a.closed {
			a.scheduleRefreshLocked(a.cfg.KeyCacheTTL)
		}
		a.mu.Unlock()
	})
}

func (a *Account) schedulePollLocked() {
	a.pollT = a.cfg.Clock.AfterFunc(a.cfg.KeyVersionPoll, func() {
		if a.isClosed() {
			return
		}
		a.poll(a.ctx)
		a.mu.Lock()
		if !a.closed && a.cfg.KeyVersion == "" {
			a.schedulePollLocked()
		}
		a.mu.Unlock()
	})
}

// poll is the daily version check: a newer current version re-wraps the
// account key (which needs the key: cached, or unwrapped with the version
// that wraps it now).
func (a *Account) poll(ctx context.Context) {
	k, err := a.cfg.Keys.GetKey(ctx, a.cfg.KeyName, "")
	if err != nil {
		return // no information; the next poll tries again
	}
	a.mu.Lock()
	w := a.wrapped
	d := a.dek
	if d != nil && !a.cfg.Clock.Now().Before(a.cacheUntil) {
		d = nil
	}
	a.mu.Unlock()
	if k.Version == w.KeyVersion {
		return
	}
	if d == nil {
		if d, _, err = a.revalidate(ctx); err != nil {
			a.event("version " + k.Version + " not picked up: cannot unwrap the account key: " + codeOf(err))
			return
		}
	}
	nw, err := envelope.Wrap(ctx, a.cfg.Keys, a.cfg.KeyName, k.Version, d)
	if err == nil {
		err = a.cfg.Backend.SaveAccount(ctx, a.cfg.Name, nw)
	}
	if err != nil {
		a.event("version " + k.Version + " not picked up: " + err.Error())
		return
	}
	a.mu.Lock()
	if a.wrapped.KeyVersion == w.KeyVersion {
		a.wrapped = nw
	}
	a.eventLocked("key version " + nw.KeyVersion + " picked up (was " + w.KeyVersion + ")")
	a.unlockNotify()
}

func (a *Account) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

func (a *Account) setStateLocked(to State, reason string) {
	if a.state == to {
		return
	}
	a.pending = append(a.pending, StateChange{Resource: a.cfg.Name, From: a.state, To: to, At: a.cfg.Clock.Now(), Reason: reason})
	a.state = to
}

func (a *Account) eventLocked(reason string) {
	a.pending = append(a.pending, StateChange{Resource: a.cfg.Name, From: a.state, To: a.state, At: a.cfg.Clock.Now(), Reason: reason})
}

func (a *Account) event(reason string) {
	a.mu.Lock()
	a.eventLocked(reason)
	a.unlockNotify()
}

// unlockNotify releases a.mu and delivers the pending state changes in order.
func (a *Account) unlockNotify() {
	evs := a.pending
	a.pending = nil
	a.notifyMu.Lock()
	a.mu.Unlock()
	defer a.notifyMu.Unlock()
	if a.cfg.OnStateChange == nil {
		return
	}
	for _, e := range evs {
		a.cfg.OnStateChange(e)
	}
}

// Blob metadata keys (Azure metadata names are case-insensitive and come
// back canonicalized from the service: look them up with metaGet).
const (
	MetaKeyName    = "hsmlabkeyname"
	MetaKeyVersion = "hsmlabkeyversion"
	MetaAlg        = "hsmlabalg"
	MetaWrappedDEK = "hsmlabwrappeddek"
)

func metadata(w envelope.WrappedDEK) map[string]string {
	return map[string]string{
		MetaKeyName:    w.KeyName,
		MetaKeyVersion: w.KeyVersion,
		MetaAlg:        string(w.Alg),
		MetaWrappedDEK: base64.StdEncoding.EncodeToString(w.Value),
	}
}

// WrappedFromMetadata reads the wrapped DEK a blob carries in its metadata,
// looking keys up case-insensitively.
func WrappedFromMetadata(meta map[string]string) (envelope.WrappedDEK, error) {
	v, err := base64.StdEncoding.DecodeString(metaGet(meta, MetaWrappedDEK))
	if err != nil {
		return envelope.WrappedDEK{}, fmt.Errorf("blob metadata: %w", err)
	}
	w := envelope.WrappedDEK{
		KeyName:    metaGet(meta, MetaKeyName),
		KeyVersion: metaGet(meta, MetaKeyVersion),
		Alg:        keyclient.Alg(metaGet(meta, MetaAlg)),
		Value:      v,
	}
	if w.KeyName == "" || w.KeyVersion == "" || len(v) == 0 {
		return w, errors.New("blob metadata: no wrapped key")
	}
	return w, nil
}

func metaGet(meta map[string]string, key string) string {
	if v, ok := meta[key]; ok {
		return v
	}
	for k, v := range meta {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}
