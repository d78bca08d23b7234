package azkeysclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/keyclient/azkeysclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const (
	admin  = "hsm-admin"
	keyMgr = "key-manager"
	sqlMI  = "sqlmi-mi"
	other  = "someone-else"
	key    = "sql-cmk"
)

var ctx = context.Background()

type lab struct {
	h   *mhsm.HSM
	clk *clock.Virtual
	iss *server.TokenIssuer
	srv *httptest.Server
	hc  *http.Client
}

// newLab serves an activated HSM (virtual clock, latency model off) with a
// 2048-bit key and the SQL MI identity's role on it, over HTTPS on 127.0.0.1.
func newLab(t *testing.T) *lab {
	t.Helper()
	clk := clock.NewVirtual(time.Time{})
	tp := mhsm.DefaultThroughput()
	r := tp[partition.KeySpec{Type: partition.RSA, Bits: 2048}]
	r.Unwrap = 0.5 // slow enough that a burst throttles
	tp[partition.KeySpec{Type: partition.RSA, Bits: 2048}] = r
	h, err := mhsm.New(mhsm.Config{Name: "hsm", Primary: mhsm.RegionConfig{Name: "southindia"}, Administrators: []string{admin},
		Clock: clk, Rand: mrand.New(mrand.NewPCG(1, 1)), MaxQueue: time.Second, Throughput: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	var offs []secdomain.Officer
	for i := range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, secdomain.Officer{Name: string(rune('a' + i)), Public: &k.PublicKey})
	}
	a := mhsm.Caller{Principal: admin}
	if _, err := h.DownloadSecurityDomain(ctx, a, offs, 2); err != nil {
		t.Fatal(err)
	}
	for _, as := range []rbac.Assignment{
		{Name: "km", Principal: keyMgr, RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"},
		{Name: "sql", Principal: sqlMI, RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: rbac.KeyScope(key)},
	} {
		if _, err := h.CreateRoleAssignment(ctx, a, as); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := h.CreateKey(ctx, mhsm.Caller{Principal: keyMgr}, key, mhsm.KeyOptions{Type: mhsm.KeyTypeRSA, Size: 2048}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	iss, err := server.NewTokenIssuer(server.IssuerOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(server.New(h, server.Options{Region: "southindia", Tokens: iss, Clock: clk, DisableLatency: true}))
	cert, pemData, err := server.SelfSignedCert([]string{"127.0.0.1"}, clock.Wall{}.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	hc, err := server.TrustingClient(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return &lab{h: h, clk: clk, iss: iss, srv: srv, hc: hc}
}

func (l *lab) client(t *testing.T, principal string) *azkeysclient.Client {
	t.Helper()
	c, err := azkeysclient.New(l.srv.URL, server.NewCredential(l.iss, principal), &azkeys.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: l.hc, Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantClass(t *testing.T, err, class error, code string) {
	t.Helper()
	if keyclient.Class(err) != class {
		t.Fatalf("error %v: class %v, want %v", err, keyclient.Class(err), class)
	}
	if code != "" && keyclient.Code(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, keyclient.Code(err), code)
	}
}

func TestRoundTripAndClasses(t *testing.T) {
	l := newLab(t)
	c := l.client(t, sqlMI)
	k, err := c.GetKey(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != key || len(k.Version) != 32 || k.Type != "RSA-HSM" || !k.Enabled || k.Public == nil || k.Public.N.BitLen() != 2048 {
		t.Fatalf("key %+v", k)
	}
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	w, err := c.WrapKey(ctx, key, "", keyclient.RSAOAEP256, dek)
	if err != nil || w.KeyVersion != k.Version || w.Alg != keyclient.RSAOAEP256 {
		t.Fatalf("wrap: %v %+v", err, w)
	}
	got, err := c.UnwrapKey(ctx, key, w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap: %v", err)
	}

	// Invalid: a corrupted wrapped key (400).
	bad := w
	bad.Value = bytes.Clone(w.Value)
	bad.Value[0] ^= 0xff
	_, err = c.UnwrapKey(ctx, key, bad)
	wantClass(t, err, keyclient.ErrInvalid, "BadParameter")

	// Denied: no role (403 ForbiddenByRbac), missing key (404), disabled key (403 KeyDisabled).
	_, err = l.client(t, other).UnwrapKey(ctx, key, w)
	wantClass(t, err, keyclient.ErrDenied, "ForbiddenByRbac")
	_, err = l.client(t, keyMgr).GetKey(ctx, "missing", "")
	wantClass(t, err, keyclient.ErrDenied, "KeyNotFound")
	off := false
	if _, err := l.h.UpdateKey(ctx, mhsm.Caller{Principal: keyMgr}, key, "", mhsm.KeyOptions{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UnwrapKey(ctx, key, w)
	wantClass(t, err, keyclient.ErrDenied, "KeyDisabled")
	on := true
	if _, err := l.h.UpdateKey(ctx, mhsm.Caller{Principal: keyMgr}, key, "", mhsm.KeyOptions{Enabled: &on}); err != nil {
		t.Fatal(err)
	}

	// Throttled: a burst beyond the partitions' queue bound (429).
	var throttled error
	for range 12 {
		if _, err := c.UnwrapKey(ctx, key, w); err != nil {
			throttled = err
			break
		}
	}
	wantClass(t, throttled, keyclient.ErrThrottled, "Throttled")
	l.clk.Advance(time.Minute)

	// Unreachable: region down (503), then the endpoint gone.
	if err := l.h.SetRegionDown("southindia", true); err != nil {
		t.Fatal(err)
	}
	_, err = c.UnwrapKey(ctx, key, w)
	wantClass(t, err, keyclient.ErrUnreachable, "ServiceUnavailable")
	l.srv.Close()
	_, err = c.GetKey(ctx, key, "")
	wantClass(t, err, keyclient.ErrUnreachable, "")
	var ke *keyclient.Error
	if !errors.As(err, &ke) || ke.Op != "getKey" || ke.Key != key {
		t.Fatalf("error %+v", ke)
	}
}

// TestTimeoutIsUnreachable: a key store that does not answer in time.
func TestTimeoutIsUnreachable(t *testing.T) {
	l := newLab(t)
	hang := make(chan struct{})
	slow := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	slow.TLS = l.srv.TLS
	slow.StartTLS()
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) }) // runs before slow.Close
	c, err := azkeysclient.New(slow.URL, server.NewCredential(l.iss, sqlMI), &azkeys.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: l.hc, Retry: policy.RetryOptions{MaxRetries: -1}}, DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = c.GetKey(tctx, key, "")
	wantClass(t, err, keyclient.ErrUnreachable, "")
}
