//go:build cgo

package partition

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// DomainKeyLabel is the CKA_LABEL (and CKA_ID) of the domain key object in
// a PKCS#11 partition's token. No key handle may take this value.
const DomainKeyLabel = "hsmlab/domain-key"

// kcvProbe is the fixed key wrapped under a domain key to compare it with
// another without reading it: AES key wrap with padding is deterministic, so
// C_WrapKey of the probe under the token's domain key equals WrapPad(key,
// probe) exactly when the token holds key.
var kcvProbe = sha256.Sum256([]byte("hsmlab partition domain key check value"))

// Shared mechanisms. Mechanisms without pointer parameters may be used by
// several goroutines at once; GCM parameters may not and are made per call.
var (
	mechKWP        = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	mechKW         = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}
	mechRSAGen     = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
	mechAESGen     = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
	mechOAEPSHA1   = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
	mechRSARaw     = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}
	mechRSAPKCS1v5 = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
)

// p11Partition is a partition backed by one PKCS#11 token.
type p11Partition struct {
	name  string
	label string
	core  *moduleCore
	ctx   *pkcs11.Ctx
	slot  uint
	pool  *sessionPool
	// anchor is a session held open for the partition's life so the token
	// stays logged in while pooled sessions come and go.
	anchor pkcs11.SessionHandle

	down atomic.Bool

	// opMu is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and then sees every session idle.
	opMu   sync.RWMutex
	closed bool // guarded by opMu

	installMu sync.Mutex   // serialises InstallDomainKey
	mu        sync.RWMutex // guards the fields below
	domain    pkcs11.ObjectHandle
	hasDomain bool
	keys      map[string]*p11Key
	pending   map[string]bool // handles being generated or imported
}

var (
	_ Partition    = (*p11Partition)(nil)
	_ HealthSetter = (*p11Partition)(nil)
)

type p11Key struct {
	spec KeySpec
	obj  pkcs11.ObjectHandle // private key (RSA) or secret key (oct) object
	meta pkcs11.ObjectHandle // oct: the size record (see metaApplication); 0 if none
	pub  *rsa.PublicKey      // RSA
}

// metaApplication is the CKA_APPLICATION of the token data objects that
// record the size of oct keys. SoftHSM leaves CKA_VALUE_LEN at 0 on keys
// made by C_UnwrapKey (and refuses it in the unwrap template), so the size
// of an imported AES key is kept in a CKO_DATA object labelled by the key's
// handle, holding the size in bytes as one byte.
const metaApplication = "hsmlab/partition/key-size"

// NewPKCS11 opens the partition backed by the initialised token labelled
// tokenLabel in mod, logging in with the user pin. The partition takes its
// own reference on mod. One partition per token per process: opening a
// token twice is an error.
//
// The token belongs to the partition: keys are token objects (CKA_TOKEN)
// labelled and CKA_ID'd by their handle, and survive Close; opening the
// token again finds them, and finds the domain key by DomainKeyLabel.
//
// How the design's rules map to PKCS#11:
//   - At rest every key object is CKA_SENSITIVE and not CKA_EXTRACTABLE.
//     Generate creates the key extractable, wraps it at once under the
//     domain key with CKM_AES_KEY_WRAP_PAD (that is Material.Wrapped), then
//     sets CKA_EXTRACTABLE to false, which PKCS#11 forbids undoing. Import
//     unwraps with CKM_AES_KEY_WRAP_PAD into a non-extractable object. Key
//     objects left extractable by an interrupted Generate are destroyed when
//     the token is opened.
//   - SoftHSM cannot report the size of an AES key made by C_UnwrapKey
//     (CKA_VALUE_LEN reads 0 and may not be templated), so Import checks the
//     size from the wrapped length and records it in a token CKO_DATA object
//     (CKA_APPLICATION "hsmlab/partition/key-size", labelled by handle).
//   - The domain key is a token AES-256 object, not extractable, with
//     CKA_WRAP and CKA_UNWRAP. InstallDomainKey compares keys by a check
//     value: C_WrapKey of a fixed probe key under the token's domain key
//     against WrapPad of the probe in Go. No copy of the domain key is kept
//     outside the token.
//   - RSA-OAEP and RSA1_5 decrypt in the token (CKM_RSA_PKCS_OAEP with SHA-1,
//     CKM_RSA_PKCS). SoftHSM's OAEP does SHA-1 only, so RSA-OAEP-256 decrypts
//     as raw RSA in the token (CKM_RSA_X_509) followed by DecodeOAEP in Go:
//     the private key never leaves the token, but the padding check runs in
//     the host. Wrap and Encrypt with RSA keys use the public key in Go: they
//     involve no secret.
//   - AxxxKW: SoftHSM wraps only key objects with CKM_AES_KEY_WRAP, so Wrap
//     loads the plaintext as a temporary session secret key and C_WrapKey's
//     it, and Unwrap unwraps into a temporary session key (not sensitive,
//     extractable) and reads CKA_VALUE; the temporary object is destroyed
//     before returning.
//   - AxxxGCM uses CKM_AES_GCM in the token with an IV drawn from
//     crypto/rand in Go.
//
// Health calls C_GetTokenInfo. The returned Partition also implements
// HealthSetter. Sessions are pooled (up to 4 per CPU, at least 8); all
// methods are safe for concurrent use.
func NewPKCS11(mod *Module, name, tokenLabel, pin string) (Partition, error) {
	if err := mod.check(); err != nil {
		return nil, fmt.Errorf("open partition %s: %w", name, err)
	}
	core := mod.core
	modulesMu.Lock()
	if core.tokens[tokenLabel] {
		modulesMu.Unlock()
		return nil, fmt.Errorf("open partition %s: token %q already open in this process", name, tokenLabel)
	}
	if err := core.acquireLocked(); err != nil {
		modulesMu.Unlock()
		return nil, fmt.Errorf("open partition %s: %w", name, err)
	}
	core.tokens[tokenLabel] = true
	modulesMu.Unlock()

	p, err := openP11(core, name, tokenLabel, pin)
	if err != nil {
		core.release(tokenLabel)
		return nil, fmt.Errorf("open partition %s: %w", name, err)
	}
	return p, nil
}

func openP11(core *moduleCore, name, label, pin string) (*p11Partition, error) {
	slot, err := core.findSlot(label)
	if err != nil {
		return nil, err
	}
	anchor, err := openSession(core.ctx, slot, pin)
	if err != nil {
		return nil, fmt.Errorf("token %q: login: %w", label, err)
	}
	max := 4 * runtime.GOMAXPROCS(0)
	if max < 8 {
		max = 8
	}
	p := &p11Partition{
		name:    name,
		label:   label,
		core:    core,
		ctx:     core.ctx,
		slot:    slot,
		pool:    newSessionPool(core.ctx, slot, pin, max),
		anchor:  anchor,
		keys:    map[string]*p11Key{},
		pending: map[string]bool{},
	}
	if err := p.load(); err != nil {
		p.pool.closeIdle()
		core.ctx.CloseSession(anchor)
		return nil, fmt.Errorf("token %q: load objects: %w", label, err)
	}
	return p, nil
}

// load finds the domain key and the key objects already in the token.
func (p *p11Partition) load() error {
	sh, err := p.pool.get(context.Background())
	if err != nil {
		return err
	}
	err = p.loadWith(sh)
	p.pool.put(sh, err)
	return err
}

// loadWith reads the token's objects. Key objects that an interrupted
// Generate left extractable, imported oct keys whose size record is missing
// (an interrupted Import or Delete), and size records without a key are
// destroyed: no caller ever received them as a working key.
func (p *p11Partition) loadWith(sh pkcs11.SessionHandle) error {
	metaObjs, err := p.findObjects(sh, pkcs11.CKO_DATA, pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, metaApplication))
	if err != nil {
		return err
	}
	type sizeRecord struct {
		obj   pkcs11.ObjectHandle
		bytes int
	}
	sizes := map[string]sizeRecord{}
	for _, obj := range metaObjs {
		attrs, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil),
		})
		if err != nil {
			return err
		}
		label := string(attrs[0].Value)
		if _, dup := sizes[label]; dup || len(attrs[1].Value) != 1 {
			if err := p.ctx.DestroyObject(sh, obj); err != nil {
				return err
			}
			continue
		}
		sizes[label] = sizeRecord{obj: obj, bytes: int(attrs[1].Value[0])}
	}
	secret, err := p.findObjects(sh, pkcs11.CKO_SECRET_KEY)
	if err != nil {
		return err
	}
	for _, obj := range secret {
		attrs, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		})
		if err != nil {
			return err
		}
		label := string(attrs[0].Value)
		if attrUint(attrs[1]) != pkcs11.CKK_AES {
			continue
		}
		if label == DomainKeyLabel {
			p.domain, p.hasDomain = obj, true
			continue
		}
		k := &p11Key{spec: KeySpec{Type: Oct, Bits: 8 * int(attrUint(attrs[2]))}, obj: obj}
		if rec, ok := sizes[label]; ok {
			k.spec.Bits, k.meta = 8*rec.bytes, rec.obj
			delete(sizes, label)
		}
		if attrBool(attrs[3]) || checkSpec(k.spec) != nil || p.keys[label] != nil {
			if err := p.destroyKey(sh, k); err != nil {
				return err
			}
			continue
		}
		p.keys[label] = k
	}
	for _, rec := range sizes {
		if err := p.ctx.DestroyObject(sh, rec.obj); err != nil {
			return err
		}
	}
	private, err := p.findObjects(sh, pkcs11.CKO_PRIVATE_KEY)
	if err != nil {
		return err
	}
	for _, obj := range private {
		attrs, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		})
		if err != nil {
			return err
		}
		if attrUint(attrs[1]) != pkcs11.CKK_RSA {
			continue
		}
		label := string(attrs[0].Value)
		if attrBool(attrs[2]) || p.keys[label] != nil {
			if err := p.ctx.DestroyObject(sh, obj); err != nil {
				return err
			}
			continue
		}
		pub, err := p.rsaPublic(sh, obj)
		if err != nil {
			return err
		}
		p.keys[label] = &p11Key{spec: KeySpec{Type: RSA, Bits: pub.N.BitLen()}, obj: obj, pub: pub}
	}
	return nil
}

// destroyKey destroys a key object and its size record, the record first:
// a key left without its record is removed when the token is next opened.
func (p *p11Partition) destroyKey(sh pkcs11.SessionHandle, k *p11Key) error {
	if k.meta != 0 {
		if err := p.ctx.DestroyObject(sh, k.meta); err != nil {
			return err
		}
	}
	return p.ctx.DestroyObject(sh, k.obj)
}

// findObjects returns the token objects of class matching extra.
func (p *p11Partition) findObjects(sh pkcs11.SessionHandle, class uint, extra ...*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	t := append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	}, extra...)
	if err := p.ctx.FindObjectsInit(sh, t); err != nil {
		return nil, err
	}
	var all []pkcs11.ObjectHandle
	for {
		objs, _, err := p.ctx.FindObjects(sh, 64)
		if err != nil {
			p.ctx.FindObjectsFinal(sh)
			return nil, err
		}
		if len(objs) == 0 {
			break
		}
		all = append(all, objs...)
	}
	return all, p.ctx.FindObjectsFinal(sh)
}

// rsaPublic reads the public half of an RSA private key object (modulus
// and public exponent are never sensitive).
func (p *p11Partition) rsaPublic(sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attrs, err := p.ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, err
	}
	e := new(big.Int).SetBytes(attrs[1].Value)
	if !e.IsInt64() || e.Int64() > 1<<31-1 || e.Int64() < 3 {
		return nil, fmt.Errorf("rsa public exponent %v out of range", e)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())}, nil
}

func attrUint(a *pkcs11.Attribute) uint {
	var v uint64
	// CK_ULONG in host byte order: little-endian on every platform we build for.
	for i := len(a.Value) - 1; i >= 0; i-- {
		v = v<<8 | uint64(a.Value[i])
	}
	return uint(v)
}

func attrBool(a *pkcs11.Attribute) bool { return len(a.Value) > 0 && a.Value[0] != 0 }

// Name returns the name given to NewPKCS11.
func (p *p11Partition) Name() string { return p.name }

// SetHealthy marks the partition up or down for fault injection; see
// HealthSetter. The token itself is untouched.
func (p *p11Partition) SetHealthy(up bool) { p.down.Store(!up) }

// begin starts an operation: it fails with ErrUnavailable when the
// partition is closed or marked down. Every successful begin is paired with
// end.
func (p *p11Partition) begin() error {
	p.opMu.RLock()
	if p.closed {
		p.opMu.RUnlock()
		return fmt.Errorf("partition %s closed: %w", p.name, ErrUnavailable)
	}
	if p.down.Load() {
		p.opMu.RUnlock()
		return fmt.Errorf("partition %s down: %w", p.name, ErrUnavailable)
	}
	return nil
}

func (p *p11Partition) end() { p.opMu.RUnlock() }

// withSession runs fn on a pooled session.
func (p *p11Partition) withSession(ctx context.Context, fn func(sh pkcs11.SessionHandle) error) error {
	sh, err := p.pool.get(ctx)
	if err != nil {
		var p11err pkcs11.Error
		if errors.As(err, &p11err) {
			return fmt.Errorf("session: %v: %w", err, ErrUnavailable)
		}
		return err
	}
	err = fn(sh)
	p.pool.put(sh, err)
	return err
}

// Health reports nil when the token answers C_GetTokenInfo.
func (p *p11Partition) Health(ctx context.Context) error {
	if err := p.begin(); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer p.end()
	if _, err := p.ctx.GetTokenInfo(p.slot); err != nil {
		return fmt.Errorf("health: token %q: %v: %w", p.label, err, ErrUnavailable)
	}
	return nil
}

// Close closes the partition's sessions and releases its module reference,
// after operations in flight finish. Keys stay in the token. Later calls
// return ErrUnavailable. Close is idempotent.
func (p *p11Partition) Close() error {
	p.opMu.Lock()
	if p.closed {
		p.opMu.Unlock()
		return nil
	}
	p.closed = true
	p.opMu.Unlock()
	p.pool.closeIdle()
	p.ctx.CloseSession(p.anchor)
	return p.core.release(p.label)
}

// infraCodes are PKCS#11 return values that mean the token or the library
// cannot serve, rather than that the request was bad.
var infraCodes = map[pkcs11.Error]bool{
	pkcs11.CKR_HOST_MEMORY:                  true,
	pkcs11.CKR_SLOT_ID_INVALID:              true,
	pkcs11.CKR_DEVICE_ERROR:                 true,
	pkcs11.CKR_DEVICE_MEMORY:                true,
	pkcs11.CKR_DEVICE_REMOVED:               true,
	pkcs11.CKR_SESSION_CLOSED:               true,
	pkcs11.CKR_SESSION_HANDLE_INVALID:       true,
	pkcs11.CKR_SESSION_COUNT:                true,
	pkcs11.CKR_TOKEN_NOT_PRESENT:            true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:         true,
	pkcs11.CKR_USER_NOT_LOGGED_IN:           true,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:     true,
	pkcs11.CKR_CANT_LOCK:                    true,
	pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED: true,
}

// mapErr classifies an error from the token: infrastructure failures wrap
// ErrUnavailable, a vanished key object wraps ErrNoKey, and any other
// PKCS#11 error wraps otherwise (ErrDecrypt for decryptions, ErrBadMaterial
// for imports; nil leaves it unclassified).
func mapErr(err error, otherwise error) error {
	var p11err pkcs11.Error
	if !errors.As(err, &p11err) {
		return err
	}
	// Both errors stay in the chain: the session pool looks for the
	// pkcs11.Error to decide whether a session may be reused.
	switch {
	case infraCodes[p11err]:
		return fmt.Errorf("%w: %w", err, ErrUnavailable)
	case p11err == pkcs11.CKR_KEY_HANDLE_INVALID || p11err == pkcs11.CKR_OBJECT_HANDLE_INVALID:
		return fmt.Errorf("%w: %w", err, ErrNoKey)
	case otherwise != nil:
		return fmt.Errorf("%w: %w", err, otherwise)
	}
	return err
}

// InstallDomainKey installs the domain key as a token object; see
// Partition and NewPKCS11. A key of another length returns ErrBadInput.
func (p *p11Partition) InstallDomainKey(ctx context.Context, key []byte) error {
	if err := p.begin(); err != nil {
		return fmt.Errorf("install domain key: %w", err)
	}
	defer p.end()
	if len(key) != DomainKeySize {
		return fmt.Errorf("install domain key: key is %d bytes, want %d: %w", len(key), DomainKeySize, ErrBadInput)
	}
	want, err := WrapPad(key, kcvProbe[:])
	if err != nil {
		return fmt.Errorf("install domain key: %w", err)
	}
	p.installMu.Lock()
	defer p.installMu.Unlock()
	p.mu.RLock()
	dom, has := p.domain, p.hasDomain
	p.mu.RUnlock()
	err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		if !has {
			obj, err := p.ctx.CreateObject(sh, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
				pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, DomainKeyLabel),
				pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(DomainKeyLabel)),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE, key),
			})
			if err != nil {
				return mapErr(err, nil)
			}
			dom = obj
		}
		got, err := p.checkValue(sh, dom)
		if err != nil {
			if !has {
				p.ctx.DestroyObject(sh, dom)
			}
			return mapErr(err, nil)
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			if !has {
				p.ctx.DestroyObject(sh, dom)
				return errors.New("token domain key check value differs from the key just stored")
			}
			return ErrDomainMismatch
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("install domain key: %w", err)
	}
	if !has {
		p.mu.Lock()
		p.domain, p.hasDomain = dom, true
		p.mu.Unlock()
	}
	return nil
}

// checkValue wraps kcvProbe under the domain key object dom.
func (p *p11Partition) checkValue(sh pkcs11.SessionHandle, dom pkcs11.ObjectHandle) ([]byte, error) {
	probe, err := p.ctx.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, kcvProbe[:]),
	})
	if err != nil {
		return nil, err
	}
	defer p.ctx.DestroyObject(sh, probe)
	return p.ctx.WrapKey(sh, mechKWP, dom, probe)
}

// reserve claims handle for a Generate or Import in progress and returns the
// domain key object.
func (p *p11Partition) reserve(handle string) (pkcs11.ObjectHandle, error) {
	if err := checkHandle(handle); err != nil {
		return 0, err
	}
	if handle == DomainKeyLabel {
		return 0, fmt.Errorf("handle %q is reserved: %w", handle, ErrBadInput)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.hasDomain {
		return 0, ErrNotActivated
	}
	if p.keys[handle] != nil || p.pending[handle] {
		return 0, ErrKeyExists
	}
	p.pending[handle] = true
	return p.domain, nil
}

// commit ends a reservation, recording k if it is not nil.
func (p *p11Partition) commit(handle string, k *p11Key) {
	p.mu.Lock()
	delete(p.pending, handle)
	if k != nil {
		p.keys[handle] = k
	}
	p.mu.Unlock()
}

// keyAttrs are the attributes every key object gets, apart from
// CKA_EXTRACTABLE.
func keyAttrs(handle string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, handle),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(handle)),
	}
}

func rsaUsage() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
	}
}

func aesUsage() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
	}
}

// Generate creates a key in the token; see Partition and NewPKCS11.
func (p *p11Partition) Generate(ctx context.Context, handle string, spec KeySpec) (Material, error) {
	if err := p.begin(); err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	defer p.end()
	if err := ctx.Err(); err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	if err := checkSpec(spec); err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	dom, err := p.reserve(handle)
	if err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, err)
	}
	var k *p11Key
	var wrapped []byte
	err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		k, wrapped, err = p.generate(sh, dom, handle, spec)
		return err
	})
	p.commit(handle, k)
	if err != nil {
		return Material{}, fmt.Errorf("generate %s: %w", handle, mapErr(err, nil))
	}
	return Material{Spec: spec, Public: copyPublic(k.pub), Wrapped: wrapped}, nil
}

func (p *p11Partition) generate(sh pkcs11.SessionHandle, dom pkcs11.ObjectHandle, handle string, spec KeySpec) (*p11Key, []byte, error) {
	k := &p11Key{spec: spec}
	extractable := pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)
	switch spec.Type {
	case RSA:
		pubT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.Bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}
		privT := append(append(keyAttrs(handle), extractable), rsaUsage()...)
		pubObj, privObj, err := p.ctx.GenerateKeyPair(sh, mechRSAGen, pubT, privT)
		if err != nil {
			return nil, nil, err
		}
		p.ctx.DestroyObject(sh, pubObj) // a session object; the private key carries the public half
		k.obj = privObj
		if k.pub, err = p.rsaPublic(sh, privObj); err != nil {
			p.ctx.DestroyObject(sh, privObj)
			return nil, nil, err
		}
	case Oct:
		t := append(append(keyAttrs(handle),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, spec.Bits/8),
			extractable), aesUsage()...)
		obj, err := p.ctx.GenerateKey(sh, mechAESGen, t)
		if err != nil {
			return nil, nil, err
		}
		k.obj = obj
	}
	wrapped, err := p.ctx.WrapKey(sh, mechKWP, dom, k.obj)
	if err == nil {
		err = p.ctx.SetAttributeValue(sh, k.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false)})
	}
	if err != nil {
		p.ctx.DestroyObject(sh, k.obj)
		return nil, nil, err
	}
	return k, wrapped, nil
}

// Import unwraps material into a non-extractable token object; see
// Partition. Material that does not unwrap under the domain key, or that
// does not match spec, returns ErrBadMaterial.
func (p *p11Partition) Import(ctx context.Context, handle string, spec KeySpec, wrapped []byte) (*rsa.PublicKey, error) {
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	defer p.end()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	if err := checkSpec(spec); err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	dom, err := p.reserve(handle)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		p.commit(handle, nil)
		return nil, fmt.Errorf("import %s: wrapped material is %d bytes: %w", handle, len(wrapped), ErrBadMaterial)
	}
	var k *p11Key
	err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		k, err = p.importKey(sh, dom, handle, spec, wrapped)
		return err
	})
	p.commit(handle, k)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", handle, err)
	}
	return copyPublic(k.pub), nil
}

func (p *p11Partition) importKey(sh pkcs11.SessionHandle, dom pkcs11.ObjectHandle, handle string, spec KeySpec, wrapped []byte) (*p11Key, error) {
	t := append(keyAttrs(handle), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false))
	switch spec.Type {
	case RSA:
		t = append(append(t,
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA)), rsaUsage()...)
	case Oct:
		// The token cannot report the size of an unwrapped AES key, so
		// check it on the wrapping: RFC 5649 of n bytes, n a multiple of 8,
		// is n+8 bytes, and the wrapping's length indicator is authenticated.
		if len(wrapped) != spec.Bits/8+8 {
			return nil, fmt.Errorf("wrapped material is %d bytes, want %d for oct %d: %w", len(wrapped), spec.Bits/8+8, spec.Bits, ErrBadMaterial)
		}
		t = append(append(t,
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES)), aesUsage()...)
	}
	obj, err := p.ctx.UnwrapKey(sh, mechKWP, dom, wrapped, t)
	if err != nil {
		return nil, mapErr(err, ErrBadMaterial)
	}
	k := &p11Key{spec: spec, obj: obj}
	if spec.Type == RSA {
		k.pub, err = p.rsaPublic(sh, obj)
		if err != nil {
			p.ctx.DestroyObject(sh, obj)
			return nil, mapErr(err, ErrBadMaterial)
		}
		if bits := k.pub.N.BitLen(); bits != spec.Bits {
			p.ctx.DestroyObject(sh, obj)
			return nil, fmt.Errorf("material is RSA %d, spec says %d: %w", bits, spec.Bits, ErrBadMaterial)
		}
		return k, nil
	}
	k.meta, err = p.ctx.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, metaApplication),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, handle),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte{byte(spec.Bits / 8)}),
	})
	if err != nil {
		p.ctx.DestroyObject(sh, obj)
		return nil, mapErr(err, nil)
	}
	return k, nil
}

func copyPublic(pub *rsa.PublicKey) *rsa.PublicKey {
	if pub == nil {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).Set(pub.N), E: pub.E}
}

// Delete destroys the key object; see Partition.
func (p *p11Partition) Delete(ctx context.Context, handle string) error {
	if err := p.begin(); err != nil {
		return fmt.Errorf("delete %s: %w", handle, err)
	}
	defer p.end()
	p.mu.Lock()
	k := p.keys[handle]
	delete(p.keys, handle)
	p.mu.Unlock()
	if k == nil {
		return nil
	}
	err := p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		return p.destroyKey(sh, k)
	})
	if err != nil {
		err = mapErr(err, nil)
		if errors.Is(err, ErrNoKey) {
			return nil // already gone from the token
		}
		p.mu.Lock()
		if p.keys[handle] == nil {
			p.keys[handle] = k // still in the token: keep serving it
		}
		p.mu.Unlock()
		return fmt.Errorf("delete %s: %w", handle, err)
	}
	return nil
}

// Has reports whether the partition holds a key under handle.
func (p *p11Partition) Has(ctx context.Context, handle string) (bool, error) {
	if err := p.begin(); err != nil {
		return false, fmt.Errorf("has %s: %w", handle, err)
	}
	defer p.end()
	p.mu.RLock()
	k := p.keys[handle]
	p.mu.RUnlock()
	return k != nil, nil
}

// lookup returns the key under handle after the context and algorithm
// checks. The caller holds begin.
func (p *p11Partition) lookup(ctx context.Context, handle string, op opClass, alg Alg) (*p11Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	k := p.keys[handle]
	p.mu.RUnlock()
	if k == nil {
		return nil, ErrNoKey
	}
	if err := checkAlg(op, k.spec, alg); err != nil {
		return nil, err
	}
	return k, nil
}

// Wrap wraps plaintext; see Partition and NewPKCS11.
func (p *p11Partition) Wrap(ctx context.Context, handle string, alg Alg, plaintext []byte) ([]byte, error) {
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("wrap %s: %w", handle, err)
	}
	defer p.end()
	k, err := p.lookup(ctx, handle, opWrap, alg)
	if err != nil {
		return nil, fmt.Errorf("wrap %s: %w", handle, err)
	}
	var out []byte
	if k.pub != nil {
		out, err = rsaEncrypt(k.pub, alg, plaintext)
	} else if err = checkKWPlaintext(plaintext); err == nil {
		err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
			var err error
			out, err = p.kwWrap(sh, k.obj, plaintext)
			return err
		})
		err = mapErr(err, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("wrap %s: %w", handle, err)
	}
	return out, nil
}

// kwWrap wraps raw bytes with CKM_AES_KEY_WRAP through a temporary session
// key object.
func (p *p11Partition) kwWrap(sh pkcs11.SessionHandle, kek pkcs11.ObjectHandle, plaintext []byte) ([]byte, error) {
	tmp, err := p.ctx.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, plaintext),
	})
	if err != nil {
		return nil, err
	}
	defer p.ctx.DestroyObject(sh, tmp)
	return p.ctx.WrapKey(sh, mechKW, kek, tmp)
}

// kwUnwrap reverses kwWrap through a temporary session key object.
func (p *p11Partition) kwUnwrap(sh pkcs11.SessionHandle, kek pkcs11.ObjectHandle, ciphertext []byte) ([]byte, error) {
	tmp, err := p.ctx.UnwrapKey(sh, mechKW, kek, ciphertext, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
	})
	if err != nil {
		return nil, mapErr(err, ErrDecrypt)
	}
	defer p.ctx.DestroyObject(sh, tmp)
	attrs, err := p.ctx.GetAttributeValue(sh, tmp, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, mapErr(err, nil)
	}
	return attrs[0].Value, nil
}

// Unwrap reverses Wrap in the token; see Partition and NewPKCS11.
func (p *p11Partition) Unwrap(ctx context.Context, handle string, alg Alg, ciphertext []byte) ([]byte, error) {
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("unwrap %s: %w", handle, err)
	}
	defer p.end()
	k, err := p.lookup(ctx, handle, opWrap, alg)
	if err != nil {
		return nil, fmt.Errorf("unwrap %s: %w", handle, err)
	}
	var out []byte
	if k.pub != nil {
		out, err = p.rsaDecrypt(ctx, k, alg, ciphertext)
	} else if err = checkKWCiphertext(ciphertext); err == nil {
		err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
			var err error
			out, err = p.kwUnwrap(sh, k.obj, ciphertext)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("unwrap %s: %w", handle, err)
	}
	return out, nil
}

// rsaDecrypt decrypts in the token; see NewPKCS11 for RSA-OAEP-256.
func (p *p11Partition) rsaDecrypt(ctx context.Context, k *p11Key, alg Alg, ct []byte) ([]byte, error) {
	size := k.pub.Size()
	if err := checkRSACiphertext(size, ct); err != nil {
		return nil, err
	}
	var mech []*pkcs11.Mechanism
	switch alg {
	case RSAOAEP:
		mech = mechOAEPSHA1
	case RSAOAEP256:
		mech = mechRSARaw
	case RSA15:
		mech = mechRSAPKCS1v5
	default:
		return nil, fmt.Errorf("%s: %w", alg, ErrUnsupportedAlg)
	}
	var out []byte
	err := p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		if err := p.ctx.DecryptInit(sh, mech, k.obj); err != nil {
			return err
		}
		var err error
		out, err = p.ctx.Decrypt(sh, ct)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", alg, mapErr(err, ErrDecrypt))
	}
	if alg == RSAOAEP256 {
		em := out
		out, err = DecodeOAEP(crypto.SHA256, size, em, nil)
		clear(em)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", alg, err)
		}
	}
	return out, nil
}

// Encrypt encrypts; see Partition and NewPKCS11.
func (p *p11Partition) Encrypt(ctx context.Context, handle string, alg Alg, plaintext, aad []byte) (Sealed, error) {
	if err := p.begin(); err != nil {
		return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
	}
	defer p.end()
	k, err := p.lookup(ctx, handle, opCrypt, alg)
	if err != nil {
		return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
	}
	if k.pub != nil {
		ct, err := rsaEncrypt(k.pub, alg, plaintext)
		if err != nil {
			return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
		}
		return Sealed{Ciphertext: ct}, nil
	}
	iv := make([]byte, gcmIVSize)
	if _, err := rand.Read(iv); err != nil {
		return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, err)
	}
	var out []byte
	err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		params := pkcs11.NewGCMParams(iv, aad, 8*gcmTagSize)
		defer params.Free()
		if err := p.ctx.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k.obj); err != nil {
			return err
		}
		var err error
		out, err = p.ctx.Encrypt(sh, plaintext)
		return err
	})
	if err != nil {
		return Sealed{}, fmt.Errorf("encrypt %s: %w", handle, mapErr(err, nil))
	}
	if len(out) != len(plaintext)+gcmTagSize {
		return Sealed{}, fmt.Errorf("encrypt %s: token returned %d bytes for %d: %w", handle, len(out), len(plaintext), ErrUnavailable)
	}
	n := len(plaintext)
	return Sealed{Ciphertext: out[:n:n], IV: iv, Tag: out[n:]}, nil
}

// Decrypt reverses Encrypt in the token; see Partition.
func (p *p11Partition) Decrypt(ctx context.Context, handle string, alg Alg, s Sealed, aad []byte) ([]byte, error) {
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, err)
	}
	defer p.end()
	k, err := p.lookup(ctx, handle, opCrypt, alg)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, err)
	}
	if k.pub != nil {
		out, err := p.rsaDecrypt(ctx, k, alg, s.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("decrypt %s: %w", handle, err)
		}
		return out, nil
	}
	if err := checkGCM(s); err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, err)
	}
	in := make([]byte, 0, len(s.Ciphertext)+gcmTagSize)
	in = append(append(in, s.Ciphertext...), s.Tag...)
	var out []byte
	err = p.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		params := pkcs11.NewGCMParams(s.IV, aad, 8*gcmTagSize)
		defer params.Free()
		if err := p.ctx.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k.obj); err != nil {
			return err
		}
		var err error
		out, err = p.ctx.Decrypt(sh, in)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", handle, mapErr(err, ErrDecrypt))
	}
	return out, nil
}
