package des_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/des"
	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const cmk = "Contoso-DISK-CMK"

type env struct {
	t    *testing.T
	ctx  context.Context
	vc   *clock.Virtual
	keys *keyclienttest.Store
	reg  *envelope.Registry
	v1   string
	dir  string

	mu    sync.Mutex
	trail []des.StateChange
}

func newEnv(t *testing.T) *env {
	vc := clock.NewVirtual(clock.Epoch)
	e := &env{t: t, ctx: context.Background(), vc: vc, keys: keyclienttest.NewStore(vc), reg: envelope.NewRegistry(), dir: t.TempDir()}
	e.v1 = e.keys.MustCreateKey(cmk)
	envelopetest.Guard(t, e.reg, e.dir)
	return e
}

func (e *env) observe(c des.StateChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.trail = append(e.trail, c)
}

// newDES creates a DES whose identity is "des-"+name.
func (e *env) newDES(name, region string, mod func(*des.Config)) *des.DES {
	e.t.Helper()
	cfg := des.Config{Name: name, Region: region, KeyName: cmk, Keys: e.keys.Client("des-" + name)}
	if mod != nil {
		mod(&cfg)
	}
	d, err := des.New(e.ctx, cfg, des.WithClock(e.vc), des.WithRegistry(e.reg), des.WithObserver(e.observe))
	if err != nil {
		e.t.Fatalf("new des %s: %v", name, err)
	}
	e.t.Cleanup(func() { d.Close() })
	return d
}

// newVM creates a VM with an OS and a data disk (16 blocks of 512 bytes)
// on d, boots it and writes a recognisable block to each disk.
func (e *env) newVM(name string, d *des.DES) *des.VM {
	e.t.Helper()
	var disks []*des.Disk
	for _, dn := range []string{"os", "data"} {
		dk, err := d.CreateDisk(e.ctx, dn, filepath.Join(e.dir, name+"-"+dn+".img"), 16, 512)
		if err != nil {
			e.t.Fatal(err)
		}
		disks = append(disks, dk)
	}
	vm, err := des.NewVM(des.VMConfig{Name: name, Region: d.Region(), Disks: disks})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := vm.Boot(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	for _, dn := range []string{"os", "data"} {
		if err := vm.WriteBlock(e.ctx, dn, 3, block(dn+"-3")); err != nil {
			e.t.Fatal(err)
		}
	}
	return vm
}

// block returns a 512-byte block starting with s.
func block(s string) []byte {
	b := make([]byte, 512)
	copy(b, s)
	return b
}

func (e *env) at(d time.Duration) { e.vc.RunUntil(clock.Epoch.Add(d)) }

func (e *env) now() time.Duration { return e.vc.Now().Sub(clock.Epoch) }

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

func (e *env) dump() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, c := range e.trail {
		s = append(s, fmt.Sprintf("%v %s %s>%s: %s", c.At.Sub(clock.Epoch), c.Resource, c.From, c.To, c.Reason))
	}
	return strings.Join(s, "\n")
}

// ioWorks checks that block 3 of both disks reads back.
func ioWorks(t *testing.T, ctx context.Context, vm *des.VM, when string) {
	t.Helper()
	if s := vm.State(); s != des.Running {
		t.Fatalf("%s: %s is %s, want Running", when, vm.Name(), s)
	}
	for _, dn := range []string{"os", "data"} {
		b, err := vm.ReadBlock(ctx, dn, 3)
		if err != nil || !bytes.Equal(b, block(dn+"-3")) {
			t.Fatalf("%s: read %s/%s: %q %v", when, vm.Name(), dn, bytes.TrimRight(b, "\x00"), err)
		}
	}
}

// ioFails checks that I/O fails with want and the VM is in state s.
func ioFails(t *testing.T, ctx context.Context, vm *des.VM, when string, s des.State, want error) {
	t.Helper()
	if got := vm.State(); got != s {
		t.Fatalf("%s: %s is %s, want %s", when, vm.Name(), got, s)
	}
	if _, err := vm.ReadBlock(ctx, "os", 3); !errors.Is(err, want) {
		t.Fatalf("%s: read: %v, want %v", when, err, want)
	}
	if err := vm.WriteBlock(ctx, "data", 1, block("x")); !errors.Is(err, want) {
		t.Fatalf("%s: write: %v, want %v", when, err, want)
	}
}
