package local

import (
	"context"
	"crypto/rsa"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Lab PINs of the SoftHSM tokens (lab equipment, never secrets).
const (
	tokenSOPin   = "5678"
	tokenUserPin = "1234"
)

// softHSM is the process's SoftHSM installation: SoftHSM reads its
// configuration once per process (in C_Initialize), so every local
// environment of the process shares one configuration, one token directory
// and one module; each environment initialises its own tokens in it. The
// last environment to go down closes the module and removes the directory.
type softHSM struct {
	dir  string
	soft *partition.SoftHSM
	mod  *partition.Module
	refs int
}

var (
	softMu  sync.Mutex
	softCur *softHSM
	envSeq  atomic.Int64
)

// acquireSoftHSM returns the process's SoftHSM, creating it (a private
// configuration and token directory under a new temporary directory) on
// first use.
func acquireSoftHSM() (*softHSM, error) {
	softMu.Lock()
	defer softMu.Unlock()
	if softCur != nil {
		softCur.refs++
		return softCur, nil
	}
	dir, err := os.MkdirTemp("", "hsmlab-softhsm-")
	if err != nil {
		return nil, err
	}
	s, err := partition.NewSoftHSM(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	mod, err := partition.OpenModule(s.ModulePath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	softCur = &softHSM{dir: dir, soft: s, mod: mod, refs: 1}
	return softCur, nil
}

// release drops a reference; the last one closes the module (after every
// partition opened on it is closed) and removes the token directory.
func (s *softHSM) release() error {
	softMu.Lock()
	defer softMu.Unlock()
	s.refs--
	if s.refs > 0 {
		return nil
	}
	softCur = nil
	err := s.mod.Close()
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// newToken initialises a fresh token for one partition and opens it.
func (s *softHSM) newToken(label, name string) (partition.Partition, error) {
	if err := s.mod.InitToken(label, tokenSOPin, tokenUserPin); err != nil {
		return nil, err
	}
	return partition.NewPKCS11(s.mod, name, label, tokenUserPin)
}

// token is one partition of the local environment with its availability
// switch. Losing the partition (the rack's power) takes the token offline:
// its Health and every operation fail as a powered-off token's would. The
// emulator's core decides when a lost partition is back (restored, or
// healed): it then re-syncs the partition's keys before it reports it
// Healthy, so the management calls of that re-sync — the only calls the
// core makes to a partition it holds lost — bring the token back online
// first. A crypto call already in flight when the partition was lost fails.
type token struct {
	partition.Partition
	hs      partition.HealthSetter
	offline atomic.Bool
	label   string // SoftHSM token label; "" for a pure-Go partition
}

func newTokenWrapper(p partition.Partition, label string) *token {
	t := &token{Partition: p, label: label}
	t.hs, _ = p.(partition.HealthSetter)
	return t
}

// setOffline takes the token offline or brings it back.
func (t *token) setOffline(off bool) {
	if t.offline.Swap(off) == off {
		return
	}
	if t.hs != nil {
		t.hs.SetHealthy(!off)
	}
}

// manage is called by every management call: the core only makes them to a
// partition it considers healthy.
func (t *token) manage() { t.setOffline(false) }

func (t *token) InstallDomainKey(ctx context.Context, key []byte) error {
	t.manage()
	return t.Partition.InstallDomainKey(ctx, key)
}

func (t *token) Generate(ctx context.Context, handle string, spec partition.KeySpec) (partition.Material, error) {
	t.manage()
	return t.Partition.Generate(ctx, handle, spec)
}

func (t *token) Import(ctx context.Context, handle string, spec partition.KeySpec, wrapped []byte) (*rsa.PublicKey, error) {
	t.manage()
	return t.Partition.Import(ctx, handle, spec, wrapped)
}

func (t *token) Has(ctx context.Context, handle string) (bool, error) {
	t.manage()
	return t.Partition.Has(ctx, handle)
}

func (t *token) Delete(ctx context.Context, handle string) error {
	t.manage()
	return t.Partition.Delete(ctx, handle)
}

// partitions makes the HSM's partitions: SoftHSM tokens when SoftHSM is
// installed, else pure-Go partitions (the fallback is announced).
type partitions struct {
	soft   *softHSM // nil: pure-Go partitions
	seq    int64
	mu     sync.Mutex
	n      int
	tokens map[string]*token // "<region>/<partition>"
}

func newPartitions(require bool) (*partitions, error, error) {
	ps := &partitions{seq: envSeq.Add(1), tokens: map[string]*token{}}
	s, err := acquireSoftHSM()
	if err != nil {
		if require {
			return nil, nil, fmt.Errorf("softhsm required: %w", err)
		}
		return ps, err, nil // fallback: pure-Go partitions
	}
	ps.soft = s
	return ps, nil, nil
}

// New is mhsm.Config.NewPartition.
func (ps *partitions) New(region string, pc mhsm.PartitionConfig) (partition.Partition, error) {
	name := region + "/" + pc.Name
	var (
		p     partition.Partition
		label string
		err   error
	)
	if ps.soft != nil {
		ps.mu.Lock()
		ps.n++
		label = fmt.Sprintf("hl%d-%d-%s", ps.seq, ps.n, pc.Name)
		ps.mu.Unlock()
		if len(label) > 32 {
			label = label[:32]
		}
		if p, err = ps.soft.newToken(label, name); err != nil {
			return nil, fmt.Errorf("softhsm token %s: %w", label, err)
		}
	} else {
		p = partition.NewMemory(name)
	}
	t := newTokenWrapper(p, label)
	ps.mu.Lock()
	ps.tokens[name] = t
	ps.mu.Unlock()
	return t, nil
}

// token returns the partition "<region>/<name>".
func (ps *partitions) token(name string) *token {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.tokens[name]
}

// release gives the SoftHSM reference back; call it after the HSM (and
// with it every token) is closed.
func (ps *partitions) release() error {
	if ps == nil || ps.soft == nil {
		return nil
	}
	s := ps.soft
	ps.soft = nil
	return s.release()
}

// SoftHSM reports whether the partitions are SoftHSM tokens.
func (ps *partitions) SoftHSM() bool { return ps != nil && ps.soft != nil }
