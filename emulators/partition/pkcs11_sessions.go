//go:build cgo

package partition

import (
	"context"
	"errors"

	"github.com/miekg/pkcs11"
)

// sessionPool hands out logged-in PKCS#11 sessions of one token, one per
// goroutine at a time: sessions are not safe for concurrent use. Sessions
// are opened lazily up to max; a session whose operation failed with a
// PKCS#11 error is closed rather than reused, so no half-finished operation
// leaks into the next caller.
type sessionPool struct {
	ctx  *pkcs11.Ctx
	slot uint
	pin  string
	idle chan pkcs11.SessionHandle // capacity max
	sem  chan struct{}             // one token per open session, capacity max
}

func newSessionPool(ctx *pkcs11.Ctx, slot uint, pin string, max int) *sessionPool {
	return &sessionPool{
		ctx:  ctx,
		slot: slot,
		pin:  pin,
		idle: make(chan pkcs11.SessionHandle, max),
		sem:  make(chan struct{}, max),
	}
}

// get returns an idle session, opens a new one if fewer than max are open,
// or waits for one to be returned or for ctx to end.
func (sp *sessionPool) get(ctx context.Context) (pkcs11.SessionHandle, error) {
	select {
	case sh := <-sp.idle:
		return sh, nil
	default:
	}
	select {
	case sh := <-sp.idle:
		return sh, nil
	case sp.sem <- struct{}{}:
		sh, err := openSession(sp.ctx, sp.slot, sp.pin)
		if err != nil {
			<-sp.sem
			return 0, err
		}
		return sh, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// put returns a session after use: to the pool if err is not a PKCS#11
// error, otherwise the session is closed.
func (sp *sessionPool) put(sh pkcs11.SessionHandle, err error) {
	var p11err pkcs11.Error
	if err != nil && errors.As(err, &p11err) {
		sp.ctx.CloseSession(sh)
		<-sp.sem
		return
	}
	sp.idle <- sh // never blocks: at most max sessions exist
}

// closeIdle closes every idle session. The caller guarantees that no
// session is checked out.
func (sp *sessionPool) closeIdle() {
	for {
		select {
		case sh := <-sp.idle:
			sp.ctx.CloseSession(sh)
			<-sp.sem
		default:
			return
		}
	}
}

// openSession opens a read/write session on slot and logs the user in. Login
// state is per token and application, so CKR_USER_ALREADY_LOGGED_IN is fine.
func openSession(ctx *pkcs11.Ctx, slot uint, pin string) (pkcs11.SessionHandle, error) {
	sh, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, err
	}
	if err := ctx.Login(sh, pkcs11.CKU_USER, pin); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		ctx.CloseSession(sh)
		return 0, err
	}
	return sh, nil
}
