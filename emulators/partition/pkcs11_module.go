//go:build cgo

package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// Module is a PKCS#11 module (a shared library such as libsofthsm2.so)
// loaded and initialised once per process. A module library can be
// initialised only once per process, and finalising it tears down every
// user, so all partitions share one Module per library path.
//
// OpenModule returns a reference; the library is initialised (C_Initialize)
// when the first reference is opened and finalised (C_Finalize) when the last
// reference — Modules and the partitions opened on them — is closed. The
// library itself stays loaded for the life of the process. For SoftHSM, set
// SOFTHSM2_CONF (NewSoftHSM does) before the first OpenModule: the
// configuration is read during C_Initialize.
type Module struct {
	core   *moduleCore
	closed atomic.Bool
}

// moduleCore is the per-library state shared by every Module reference and
// partition of one path.
type moduleCore struct {
	path string
	ctx  *pkcs11.Ctx

	// Guarded by modulesMu.
	refs   int
	tokens map[string]bool // labels of tokens a partition has open

	initMu sync.Mutex // serialises InitToken
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*moduleCore{} // by resolved library path; never removed
)

// OpenModule loads (once per process) and initialises the PKCS#11 library
// at path and returns a reference to it. It returns an error, never a nil
// Module with a nil error, when the file is missing or cannot be loaded as a
// PKCS#11 module. Close the Module when done; partitions hold their own
// reference.
func OpenModule(path string) (*Module, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open module: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("open module: %w", err)
	}
	modulesMu.Lock()
	defer modulesMu.Unlock()
	core := modules[resolved]
	if core == nil {
		ctx := pkcs11.New(resolved)
		if ctx == nil {
			return nil, fmt.Errorf("open module %s: dlopen failed or not a PKCS#11 module", path)
		}
		core = &moduleCore{path: resolved, ctx: ctx, tokens: map[string]bool{}}
		modules[resolved] = core
	}
	if err := core.acquireLocked(); err != nil {
		return nil, err
	}
	return &Module{core: core}, nil
}

// acquireLocked takes a reference, initialising the library on the first.
// modulesMu must be held.
func (c *moduleCore) acquireLocked() error {
	if c.refs == 0 {
		if err := c.ctx.Initialize(); err != nil {
			if errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
				return fmt.Errorf("open module %s: initialised by other code in this process: %w", c.path, err)
			}
			return fmt.Errorf("open module %s: initialize: %w", c.path, err)
		}
	}
	c.refs++
	return nil
}

// release drops a reference (and the token label, if any), finalising the
// library with the last one.
func (c *moduleCore) release(token string) error {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if token != "" {
		delete(c.tokens, token)
	}
	c.refs--
	if c.refs > 0 {
		return nil
	}
	c.refs = 0
	if err := c.ctx.Finalize(); err != nil {
		return fmt.Errorf("close module %s: finalize: %w", c.path, err)
	}
	return nil
}

// Path returns the resolved path of the module library.
func (m *Module) Path() string { return m.core.path }

// Close releases this reference. The library is finalised once every
// Module reference and every partition opened on it are closed. Close is
// idempotent.
func (m *Module) Close() error {
	if m == nil || !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	return m.core.release("")
}

func (m *Module) check() error {
	if m == nil || m.closed.Load() {
		return errors.New("module is nil or closed")
	}
	return nil
}

// TokenLabels returns the labels of the initialised tokens the module sees.
// SoftHSM reads its token directory during C_Initialize: a token created by
// softhsm2-util while the module is initialised appears only after every
// reference is closed and the module is opened again; use InitToken instead.
func (m *Module) TokenLabels() ([]string, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("token labels: %w", err)
	}
	slots, err := m.core.ctx.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("token labels: %w", err)
	}
	var labels []string
	for _, s := range slots {
		ti, err := m.core.ctx.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		labels = append(labels, ti.Label)
	}
	return labels, nil
}

// InitToken initialises a new token in the module's first free
// (uninitialised) slot, with the security officer PIN soPin and the user
// PIN pin, from inside the process. SoftHSM always offers one free slot and
// adds another after each initialisation. label must be 1 to 32 bytes and
// not already in use (ErrBadInput otherwise).
func (m *Module) InitToken(label, soPin, pin string) error {
	if err := m.check(); err != nil {
		return fmt.Errorf("init token %q: %w", label, err)
	}
	if label == "" || len(label) > 32 {
		return fmt.Errorf("init token %q: label must be 1 to 32 bytes: %w", label, ErrBadInput)
	}
	c := m.core
	c.initMu.Lock()
	defer c.initMu.Unlock()
	if _, err := c.findSlot(label); err == nil {
		return fmt.Errorf("init token %q: label already in use: %w", label, ErrBadInput)
	}
	slots, err := c.ctx.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("init token %q: %w", label, err)
	}
	for _, s := range slots {
		ti, err := c.ctx.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			continue
		}
		if err := c.ctx.InitToken(s, soPin, label); err != nil {
			return fmt.Errorf("init token %q: %w", label, err)
		}
		sh, err := c.ctx.OpenSession(s, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fmt.Errorf("init token %q: open session: %w", label, err)
		}
		defer c.ctx.CloseSession(sh)
		if err := c.ctx.Login(sh, pkcs11.CKU_SO, soPin); err != nil {
			return fmt.Errorf("init token %q: so login: %w", label, err)
		}
		defer c.ctx.Logout(sh)
		if err := c.ctx.InitPIN(sh, pin); err != nil {
			return fmt.Errorf("init token %q: init pin: %w", label, err)
		}
		return nil
	}
	return fmt.Errorf("init token %q: no free slot in module %s", label, c.path)
}

// findSlot returns the slot of the initialised token labelled label.
func (c *moduleCore) findSlot(label string) (uint, error) {
	slots, err := c.ctx.GetSlotList(true)
	if err != nil {
		return 0, err
	}
	for _, s := range slots {
		ti, err := c.ctx.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if ti.Label == label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("no initialised token labelled %q in module %s", label, c.path)
}
