package sqlmi_test

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
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const cmk = "Contoso-SQLMI-CMK"

// env is a fake key store, a virtual clock and a recorder of every state
// change, shared by the instances of one test.
type env struct {
	t    *testing.T
	ctx  context.Context
	vc   *clock.Virtual
	keys *keyclienttest.Store
	reg  *envelope.Registry
	v1   string

	mu    sync.Mutex
	trail []sqlmi.StateChange
}

func newEnv(t *testing.T) *env {
	vc := clock.NewVirtual(clock.Epoch)
	e := &env{t: t, ctx: context.Background(), vc: vc, keys: keyclienttest.NewStore(vc), reg: envelope.NewRegistry()}
	e.v1 = e.keys.MustCreateKey(cmk)
	return e
}

func (e *env) observe(c sqlmi.StateChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.trail = append(e.trail, c)
}

// instance opens an instance named name (principal "mi-"+name) on an
// embedded store in a fresh directory guarded by the plaintext-DEK check.
func (e *env) instance(name string, mod func(*sqlmi.Config)) *sqlmi.Instance {
	e.t.Helper()
	st, _ := e.dirStore()
	return e.open(name, st, mod)
}

// dirStore returns an embedded store in a fresh directory guarded by the
// plaintext-DEK check, and the directory.
func (e *env) dirStore() (*sqlmi.DirStore, string) {
	e.t.Helper()
	dir := e.t.TempDir()
	envelopetest.Guard(e.t, e.reg, dir)
	st, err := sqlmi.NewDirStore(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	return st, dir
}

func (e *env) open(name string, st sqlmi.Store, mod func(*sqlmi.Config)) *sqlmi.Instance {
	e.t.Helper()
	cfg := sqlmi.Config{Name: name, KeyName: cmk, Keys: e.keys.Client("mi-" + name), Store: st}
	if mod != nil {
		mod(&cfg)
	}
	m, err := sqlmi.New(e.ctx, cfg, sqlmi.WithClock(e.vc), sqlmi.WithRegistry(e.reg), sqlmi.WithObserver(e.observe))
	if err != nil {
		e.t.Fatalf("new instance %s: %v", name, err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

func (e *env) at(d time.Duration) { e.vc.RunUntil(clock.Epoch.Add(d)) }

func (e *env) now() time.Duration { return e.vc.Now().Sub(clock.Epoch) }

// states returns resource's transitions as "From>To@offset".
func (e *env) states(resource string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, c := range e.trail {
		if c.Resource == resource && c.From != c.To {
			s = append(s, fmt.Sprintf("%s>%s@%v", c.From, c.To, c.At.Sub(clock.Epoch)))
		}
	}
	return strings.Join(s, " ")
}

func (e *env) events(resource string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, c := range e.trail {
		if c.Resource == resource {
			s = append(s, fmt.Sprintf("%v %s>%s: %s", c.At.Sub(clock.Epoch), c.From, c.To, c.Reason))
		}
	}
	return s
}

func (e *env) dump() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, c := range e.trail {
		s = append(s, fmt.Sprintf("%v %s %s>%s: %s", c.At.Sub(clock.Epoch), c.Resource, c.From, c.To, c.Reason))
	}
	return strings.Join(s, "\n")
}

// probe checks what a query sees in the instance's state.
func probe(t *testing.T, ctx context.Context, m *sqlmi.Instance, when string, want sqlmi.State) {
	t.Helper()
	if got := m.State(); got != want {
		t.Fatalf("%s: %s is %s, want %s", when, m.Name(), got, want)
	}
	_, err := m.Query(ctx, "probe-key")
	switch want {
	case sqlmi.Online:
		if err != nil && !errors.Is(err, sqlmi.ErrNotFound) {
			t.Fatalf("%s: query on an Online instance: %v", when, err)
		}
	case sqlmi.Unavailable:
		if !errors.Is(err, sqlmi.ErrUnavailable) || errors.Is(err, sqlmi.ErrInaccessible) {
			t.Fatalf("%s: query: %v, want ErrUnavailable", when, err)
		}
	default:
		if !errors.Is(err, sqlmi.ErrInaccessible) {
			t.Fatalf("%s: query: %v, want ErrInaccessible", when, err)
		}
	}
}

func mustWrite(t *testing.T, ctx context.Context, m *sqlmi.Instance, k, v string) {
	t.Helper()
	if err := m.Write(ctx, k, []byte(v)); err != nil {
		t.Fatalf("write %s=%s on %s: %v", k, v, m.Name(), err)
	}
}

func mustRead(t *testing.T, ctx context.Context, m *sqlmi.Instance, k, want string) {
	t.Helper()
	got, err := m.Query(ctx, k)
	if err != nil || string(got) != want {
		t.Fatalf("query %s on %s = %q, %v; want %q", k, m.Name(), got, err, want)
	}
}
