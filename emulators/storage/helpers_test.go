package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const (
	cmk       = "Contoso-STORAGE-CMK"
	principal = "storage-mi"
)

// env is one account under test with its fake key store and virtual clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	vc    *clock.Virtual
	keys  *keyclienttest.Store
	kc    *keyclienttest.Client
	reg   *envelope.Registry
	v1    string
	acct  *storage.Account
	be    storage.Backend
	mu    sync.Mutex
	trail []storage.StateChange
}

// newBackend returns a fresh backend for a test; dirs lists directories for
// the plaintext-DEK check.
// reg is the test's DEK registry, for backends that check for plaintext
// DEKs themselves.
type newBackend func(t *testing.T, reg *envelope.Registry) (be storage.Backend, dirs []string)

func dirBackend(t *testing.T, _ *envelope.Registry) (storage.Backend, []string) {
	dir := t.TempDir()
	be, err := storage.NewDirBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	return be, []string{dir}
}

func newEnv(t *testing.T, nb newBackend, mod func(*storage.Config)) *env {
	t.Helper()
	vc := clock.NewVirtual(clock.Epoch)
	e := &env{t: t, ctx: context.Background(), vc: vc, keys: keyclienttest.NewStore(vc), reg: envelope.NewRegistry()}
	e.kc = e.keys.Client(principal)
	e.v1 = e.keys.MustCreateKey(cmk)
	be, dirs := nb(t, e.reg)
	e.be = be
	envelopetest.Guard(t, e.reg, dirs...)
	cfg := storage.Config{Name: "contosostg", KeyName: cmk, Keys: e.kc, Backend: be}
	if mod != nil {
		mod(&cfg)
	}
	e.acct = e.open(cfg)
	return e
}

func (e *env) open(cfg storage.Config) *storage.Account {
	e.t.Helper()
	a, err := storage.New(e.ctx, cfg,
		storage.WithClock(e.vc), storage.WithRegistry(e.reg),
		storage.WithObserver(func(c storage.StateChange) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.trail = append(e.trail, c)
		}))
	if err != nil {
		e.t.Fatalf("new account: %v", err)
	}
	e.t.Cleanup(func() { a.Close() })
	return a
}

// at runs the clock to offset from the epoch.
func (e *env) at(d time.Duration) { e.vc.RunUntil(clock.Epoch.Add(d)) }

func (e *env) put(name, val string) error {
	return e.acct.Put(e.ctx, "data", name, []byte(val))
}

func (e *env) get(name string) (string, error) {
	b, err := e.acct.Get(e.ctx, "data", name)
	return string(b), err
}

// expectOK checks that a read returns want and a write works.
func (e *env) expectOK(when string, name, want string) {
	e.t.Helper()
	got, err := e.get(name)
	if err != nil || got != want {
		e.t.Fatalf("%s: get %s = %q, %v; want %q", when, name, got, err, want)
	}
	if err := e.put("probe", when); err != nil {
		e.t.Fatalf("%s: put: %v", when, err)
	}
}

// expectForbidden checks that reads and writes fail with 403 and code.
func (e *env) expectForbidden(when, name, code string) {
	e.t.Helper()
	_, err := e.get(name)
	checkForbidden(e.t, when+": get", err, code)
	checkForbidden(e.t, when+": put", e.put("probe", when), code)
}

func checkForbidden(t *testing.T, what string, err error, code string) {
	t.Helper()
	var se *storage.Error
	if !errors.Is(err, storage.ErrForbidden) || !errors.As(err, &se) || se.Status != 403 || se.Code != code {
		t.Fatalf("%s: %v; want 403 %s", what, err, code)
	}
}

// states returns the trail of state changes as "From>To@offset" strings
// (events with From == To are left out).
func (e *env) states() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, c := range e.trail {
		if c.From != c.To {
			s = append(s, fmt.Sprintf("%s>%s@%v", c.From, c.To, c.At.Sub(clock.Epoch)))
		}
	}
	return strings.Join(s, " ")
}

func (e *env) events() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, c := range e.trail {
		s = append(s, fmt.Sprintf("%v %s>%s %s", c.At.Sub(clock.Epoch), c.From, c.To, c.Reason))
	}
	return strings.Join(s, "\n")
}
