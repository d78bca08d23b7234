package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/storage"
)

// testRotationThenDisable is facts §10 / azure-docs#92190: the key is
// rotated one minute after the account was set up (just after a daily
// poll); the previous version is then disabled 6 h later (before the next
// poll: the account breaks once its cached key expires, and stays broken
// after the poll, which cannot unwrap with the disabled version) or 25 h
// later (after the poll re-wrapped with the new version: nothing happens).
func testRotationThenDisable(t *testing.T, nb newBackend) {
	const rotateAt = time.Minute
	for _, tc := range []struct {
		name      string
		disableAt time.Duration
		broken    bool
		states    string
	}{
		{"6h", rotateAt + 6*time.Hour, true, "Available>KeyAccessDenied@7h0m0s"},
		{"25h", rotateAt + 25*time.Hour, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nb, nil)
			if err := e.put("a", "alpha"); err != nil {
				t.Fatal(err)
			}
			e.at(rotateAt)
			v2 := e.keys.MustRotate(cmk)
			e.at(tc.disableAt)
			if err := e.keys.SetEnabled(cmk, e.v1, false); err != nil {
				t.Fatal(err)
			}
			e.expectOK("right after disabling (cached key)", "a", "alpha")
			for _, at := range []time.Duration{26 * time.Hour, 30 * time.Hour, 72 * time.Hour} {
				e.at(at)
				if tc.broken {
					e.expectForbidden(at.String(), "a", storage.CodeKeyNotFound)
				} else {
					e.expectOK(at.String(), "a", "alpha")
				}
			}
			wantVersion := v2
			if tc.broken {
				wantVersion = e.v1
			}
			if st := e.acct.Status(); st.KeyVersion != wantVersion {
				t.Errorf("key version %s, want %s\n%s", st.KeyVersion, wantVersion, e.events())
			}
			if got := e.states(); got != tc.states {
				t.Errorf("states %q, want %q\n%s", got, tc.states, e.events())
			}
			// Re-enabling the old version repairs the account at the next request.
			e.keys.SetEnabled(cmk, e.v1, true)
			e.expectOK("re-enabled", "a", "alpha")
		})
	}
}

func TestRotationThenDisableOldVersion(t *testing.T) { testRotationThenDisable(t, dirBackend) }

// TestRevocationBitesAfterCacheTTL: access is revoked at 10 min; blob I/O
// keeps working on the cached key until it expires at 1 h, then fails with
// 403 KeyVaultEncryptionKeyNotFound; restoring access repairs the next request.
func TestRevocationBitesAfterCacheTTL(t *testing.T) {
	for _, tc := range []struct {
		name            string
		revoke, restore func(e *env)
	}{
		{"disable",
			func(e *env) { e.keys.SetEnabled(cmk, e.v1, false) },
			func(e *env) { e.keys.SetEnabled(cmk, e.v1, true) }},
		{"delete",
			func(e *env) { e.keys.Delete(cmk) },
			func(e *env) { e.keys.Recover(cmk) }},
		{"role removed",
			func(e *env) { e.keys.Revoke(principal, cmk) },
			func(e *env) { e.keys.Grant(principal, cmk) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dirBackend, nil)
			if err := e.put("a", "alpha"); err != nil {
				t.Fatal(err)
			}
			e.at(10 * time.Minute)
			tc.revoke(e)
			e.at(59 * time.Minute)
			e.expectOK("59m", "a", "alpha")
			e.at(61 * time.Minute)
			e.expectForbidden("61m", "a", storage.CodeKeyNotFound)
			_, err := e.get("a")
			if keyclient.Class(err) != keyclient.ErrDenied {
				t.Fatalf("403 lost the key-store class: %v", err)
			}
			if e.acct.State() != storage.KeyAccessDenied {
				t.Fatalf("state %s", e.acct.State())
			}
			e.at(3 * time.Hour)
			tc.restore(e)
			e.expectOK("restored", "a", "alpha")
			if got, want := e.states(), "Available>KeyAccessDenied@1h0m0s KeyAccessDenied>Available@3h0m0s"; got != want {
				t.Fatalf("states %q, want %q\n%s", got, want, e.events())
			}
		})
	}
}

// TestRestoredAccessSeenWithoutTraffic: the background revalidation moves
// the account back to Available at the next KeyCacheTTL tick.
func TestRestoredAccessSeenWithoutTraffic(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	e.keys.SetEnabled(cmk, e.v1, false)
	e.at(90 * time.Minute)
	e.keys.SetEnabled(cmk, e.v1, true)
	e.at(2 * time.Hour)
	if got, want := e.states(), "Available>KeyAccessDenied@1h0m0s KeyAccessDenied>Available@2h0m0s"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
}

// TestExpiredKeyKeepsWorking: an expired version still unwraps, so the
// account keeps working after its cache expires (facts §10, azure-docs#84096).
func TestExpiredKeyKeepsWorking(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	if err := e.put("a", "alpha"); err != nil {
		t.Fatal(err)
	}
	e.keys.SetExpires(cmk, e.v1, e.vc.Now().Add(time.Minute))
	for _, at := range []time.Duration{2 * time.Hour, 25 * time.Hour, 100 * time.Hour} {
		e.at(at)
		e.expectOK(at.String(), "a", "alpha")
	}
	if s := e.states(); s != "" {
		t.Fatalf("state changes with an expired key: %s", s)
	}
}

// TestKeyStoreUnreachable: a cut network bites after the cache like a
// revocation, but in its own state and code.
func TestKeyStoreUnreachable(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	if err := e.put("a", "alpha"); err != nil {
		t.Fatal(err)
	}
	e.kc.SetUnreachable(true)
	e.at(30 * time.Minute)
	e.expectOK("30m", "a", "alpha")
	e.at(61 * time.Minute)
	e.expectForbidden("61m", "a", storage.CodeVaultNotFound)
	if e.acct.State() != storage.KeyVaultUnreachable {
		t.Fatalf("state %s", e.acct.State())
	}
	e.kc.SetUnreachable(false)
	e.expectOK("back", "a", "alpha")
}

// TestThrottledIsTransient: a throttled unwrap is a 503 that changes nothing.
func TestThrottledIsTransient(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	e.keys.SetThrottled(true)
	e.at(61 * time.Minute)
	_, err := e.get("a")
	var se *storage.Error
	if !errors.Is(err, storage.ErrServerBusy) || !errors.As(err, &se) || se.Status != 503 {
		t.Fatalf("get while throttled: %v", err)
	}
	e.keys.SetThrottled(false)
	if _, err := e.get("a"); !errors.Is(err, storage.ErrBlobNotFound) {
		t.Fatalf("get after throttling: %v", err)
	}
	if s := e.states(); s != "" {
		t.Fatalf("throttling changed state: %s", s)
	}
}

// TestPinnedVersion: a pinned version ignores rotations; updating the
// version by hand before disabling the old one keeps the account working.
func TestPinnedVersion(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	v1 := e.v1
	e.acct.Close()
	e.acct = e.open(storage.Config{Name: "pinned", KeyName: cmk, KeyVersion: v1, Keys: e.kc, Backend: e.be})
	if err := e.put("a", "alpha"); err != nil {
		t.Fatal(err)
	}
	v2 := e.keys.MustRotate(cmk)
	e.at(49 * time.Hour)
	if st := e.acct.Status(); st.KeyVersion != v1 {
		t.Fatalf("pinned account moved to %s", st.KeyVersion)
	}
	if err := e.acct.SetKeyVersion(e.ctx, v2); err != nil {
		t.Fatal(err)
	}
	e.keys.SetEnabled(cmk, v1, false)
	e.at(100 * time.Hour)
	e.expectOK("100h", "a", "alpha")
	if st := e.acct.Status(); st.KeyVersion != v2 {
		t.Fatalf("version %s after SetKeyVersion", st.KeyVersion)
	}
}

// TestOpsWithoutKey: Delete and List do not need the key (facts §10: only
// the listed data operations fail).
func TestOpsWithoutKey(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	for _, n := range []string{"b/2", "a/1", "c"} {
		if err := e.put(n, n); err != nil {
			t.Fatal(err)
		}
	}
	e.keys.Revoke(principal, "")
	e.at(2 * time.Hour)
	e.expectForbidden("revoked", "a/1", storage.CodeKeyNotFound)
	if err := e.acct.Delete(e.ctx, "data", "c"); err != nil {
		t.Fatalf("delete without key: %v", err)
	}
	names, err := e.acct.List(e.ctx, "data")
	if err != nil || len(names) != 2 || names[0] != "a/1" || names[1] != "b/2" {
		t.Fatalf("list without key: %v %v", names, err)
	}
	if err := e.acct.Delete(e.ctx, "data", "c"); !errors.Is(err, storage.ErrBlobNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := e.acct.Put(e.ctx, "Bad_Container", "x", nil); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("bad container: %v", err)
	}
}

// TestReopenAndMetadata: the account record and blobs persist; a reopened
// account unwraps its key and reads old blobs; each blob carries the
// wrapped key and version in its metadata.
func TestReopenAndMetadata(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	if err := e.put("a", "alpha"); err != nil {
		t.Fatal(err)
	}
	_, meta, err := e.be.GetBlob(e.ctx, "data", "a")
	if err != nil {
		t.Fatal(err)
	}
	w, err := storage.WrappedFromMetadata(meta)
	if err != nil || w.KeyVersion != e.v1 || w.KeyName != cmk {
		t.Fatalf("metadata: %+v %v", w, err)
	}
	e.acct.Close()
	if _, err := e.get("a"); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	before := e.keys.Calls(principal, "unwrapKey")
	e.acct = e.open(storage.Config{Name: "contosostg", KeyName: cmk, Keys: e.kc, Backend: e.be})
	if e.keys.Calls(principal, "unwrapKey") != before+1 {
		t.Fatal("reopen did not unwrap the stored key")
	}
	e.expectOK("reopened", "a", "alpha")

	// An existing account whose key is refused still opens, denied.
	e.acct.Close()
	e.keys.SetEnabled(cmk, e.v1, false)
	e.acct = e.open(storage.Config{Name: "contosostg", KeyName: cmk, Keys: e.kc, Backend: e.be})
	if e.acct.State() != storage.KeyAccessDenied {
		t.Fatalf("reopened with a disabled key: %s", e.acct.State())
	}
	e.expectForbidden("reopened, disabled", "a", storage.CodeKeyNotFound)
}

func TestConfigValidate(t *testing.T) {
	e := newEnv(t, dirBackend, nil)
	for name, cfg := range map[string]storage.Config{
		"no name":    {KeyName: cmk, Keys: e.kc, Backend: e.be},
		"no key":     {Name: "x", Keys: e.kc, Backend: e.be},
		"no client":  {Name: "x", KeyName: cmk, Backend: e.be},
		"no backend": {Name: "x", KeyName: cmk, Keys: e.kc},
		"negative":   {Name: "x", KeyName: cmk, Keys: e.kc, Backend: e.be, KeyCacheTTL: -1},
	} {
		if _, err := storage.New(e.ctx, cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	// Creating a new account needs a usable key.
	e.keys.SetEnabled(cmk, "", false)
	if _, err := storage.New(e.ctx, storage.Config{Name: "fresh", KeyName: cmk, Keys: e.kc, Backend: e.be}); keyclient.Class(err) != keyclient.ErrDenied {
		t.Fatalf("new account with a disabled key: %v", err)
	}
}
