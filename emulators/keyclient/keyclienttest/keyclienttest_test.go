package keyclienttest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/lab/clock"
)

func TestFakeStore(t *testing.T) {
	ctx := context.Background()
	vc := clock.NewVirtual(clock.Epoch)
	s := keyclienttest.NewStore(vc)
	v1 := s.MustCreateKey("k")
	c := s.Client("sql")
	dek := bytes.Repeat([]byte{7}, 32)
	w1, err := c.WrapKey(ctx, "k", "", keyclient.RSAOAEP256, dek)
	if err != nil || w1.KeyVersion != v1 {
		t.Fatalf("wrap: %v %q", err, w1.KeyVersion)
	}
	v2 := s.MustRotate("k")
	if v2 == v1 || s.CurrentVersion("k") != v2 {
		t.Fatal("rotate did not add a current version")
	}
	w2, _ := c.WrapKey(ctx, "k", "", keyclient.RSAOAEP256, dek)
	if w2.KeyVersion != v2 {
		t.Fatalf("wrap after rotate used %q", w2.KeyVersion)
	}
	if _, err := c.UnwrapKey(ctx, "k", keyclient.Wrapped{KeyVersion: v2, Alg: keyclient.RSAOAEP256, Value: w1.Value}); keyclient.Class(err) != keyclient.ErrInvalid {
		t.Fatalf("unwrap with the wrong version: %v", err)
	}
	expect := func(name string, err error, class error, code string) {
		t.Helper()
		if keyclient.Class(err) != class || keyclient.Code(err) != code {
			t.Fatalf("%s: %v, want class %v code %q", name, err, class, code)
		}
	}
	unwrap := func(w keyclient.Wrapped) error {
		got, err := c.UnwrapKey(ctx, "k", w)
		if err == nil && !bytes.Equal(got, dek) {
			t.Fatal("unwrap returned other bytes")
		}
		return err
	}
	expect("ok", unwrap(w1), nil, "")
	s.SetEnabled("k", v1, false)
	expect("disabled", unwrap(w1), keyclient.ErrDenied, keyclienttest.CodeKeyDisabled)
	expect("other version", unwrap(w2), nil, "")
	s.SetEnabled("k", v1, true)
	s.SetExpires("k", v1, vc.Now().Add(time.Hour))
	vc.Advance(2 * time.Hour)
	expect("expired unwrap", unwrap(w1), nil, "")
	_, err = c.WrapKey(ctx, "k", v1, keyclient.RSAOAEP256, dek)
	expect("expired wrap", err, keyclient.ErrDenied, keyclienttest.CodeKeyExpired)
	k, err := c.GetKey(ctx, "k", v1)
	if err != nil || k.Expires.IsZero() || !k.Enabled || k.Public == nil {
		t.Fatalf("get: %+v %v", k, err)
	}
	s.Revoke("sql", "k")
	expect("revoked", unwrap(w1), keyclient.ErrDenied, keyclienttest.CodeForbidden)
	if _, err := s.Client("storage").GetKey(ctx, "k", ""); err != nil {
		t.Fatalf("other principal refused: %v", err)
	}
	s.Grant("sql", "k")
	c.SetUnreachable(true)
	expect("cut", unwrap(w1), keyclient.ErrUnreachable, keyclienttest.CodeUnreachable)
	c.SetUnreachable(false)
	s.SetThrottled(true)
	expect("throttled", unwrap(w1), keyclient.ErrThrottled, keyclienttest.CodeThrottled)
	s.SetThrottled(false)
	s.Delete("k")
	expect("deleted", unwrap(w1), keyclient.ErrDenied, keyclienttest.CodeKeyNotFound)
	s.Recover("k")
	expect("recovered", unwrap(w1), nil, "")
	s.Purge("k")
	expect("purged", unwrap(w1), keyclient.ErrDenied, keyclienttest.CodeKeyNotFound)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.GetKey(cctx, "k", "")
	expect("cancelled", err, keyclient.ErrUnreachable, "Timeout")
	if s.Calls("sql", "unwrapKey") == 0 {
		t.Fatal("calls not counted")
	}
}
