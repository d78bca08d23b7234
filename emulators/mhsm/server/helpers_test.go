package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const (
	chennai = "southindia"
	pune    = "centralindia"
	admin   = "hsm-admin"
	keyMgr  = "key-manager"
	officer = "governance"
	sqlMI   = "sqlmi-mi"
	desMI   = "des-mi"
	auditor = "auditor"
	sqlKey  = "sql-cmk"
)

var (
	officerOnce sync.Once
	officerKeys []*rsa.PrivateKey
)

// officers returns three 2048-bit officer keys, generated once per test binary.
func officers(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	officerOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			officerKeys = append(officerKeys, k)
		}
	})
	return officerKeys
}

func officerPubs(t testing.TB) []secdomain.Officer {
	var out []secdomain.Officer
	for i, k := range officers(t) {
		out = append(out, secdomain.Officer{Name: string(rune('a' + i)), Public: &k.PublicKey})
	}
	return out
}

// env is an HSM served over HTTPS on 127.0.0.1 for one region.
type env struct {
	h        *mhsm.HSM
	iss      *server.TokenIssuer
	srv      *httptest.Server
	url      string
	certPEM  []byte
	hc       *http.Client
	requests atomic.Int64 // requests the server saw
	handler  http.Handler
}

type envOpts struct {
	cfg      func(*mhsm.Config)
	srv      func(*server.Options)
	activate bool
	clk      clock.Clock
	latency  bool // keep the latency model on (off by default: tests run fast)
}

func newHSM(t testing.TB, clk clock.Clock, mutate func(*mhsm.Config)) *mhsm.HSM {
	t.Helper()
	cfg := mhsm.Config{
		Name:           "Contoso-PROD-HSM",
		Primary:        mhsm.RegionConfig{Name: chennai},
		Administrators: []string{admin},
		Clock:          clk,
		Rand:           mrand.New(mrand.NewPCG(7, 7)),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := mhsm.New(cfg)
	if err != nil {
		t.Fatalf("new hsm: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// activate downloads the security domain in-process and assigns the test
// principals' roles.
func activate(t testing.TB, h *mhsm.HSM) *secdomain.Blob {
	t.Helper()
	ctx := context.Background()
	blob, err := h.DownloadSecurityDomain(ctx, mhsm.Caller{Principal: admin}, officerPubs(t), 2)
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	for _, a := range []rbac.Assignment{
		{Name: "a-keymgr", Principal: keyMgr, RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"},
		{Name: "a-officer", Principal: officer, RoleDefinitionID: rbac.CryptoOfficerRoleID, Scope: "/"},
		{Name: "a-sqlmi", Principal: sqlMI, RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: rbac.KeyScope(sqlKey)},
		{Name: "a-auditor", Principal: auditor, RoleDefinitionID: rbac.CryptoAuditorRoleID, Scope: "/"},
	} {
		if _, err := h.CreateRoleAssignment(ctx, mhsm.Caller{Principal: admin}, a); err != nil {
			t.Fatalf("assign %s: %v", a.Name, err)
		}
	}
	return blob
}

// newEnv serves a fresh, activated HSM (wall clock unless o.clk is set).
func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	clk := o.clk
	if clk == nil {
		clk = clock.Wall{}
	}
	h := newHSM(t, clk, o.cfg)
	if o.activate {
		activate(t, h)
	}
	return serve(t, h, clk, func(so *server.Options) {
		so.DisableLatency = !o.latency
		if o.srv != nil {
			o.srv(so)
		}
	})
}

// serve puts h behind an HTTPS test server on 127.0.0.1 with a
// certificate from server.SelfSignedCert.
func serve(t testing.TB, h *mhsm.HSM, clk clock.Clock, mutate func(*server.Options)) *env {
	t.Helper()
	iss, err := server.NewTokenIssuer(server.IssuerOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	opts := server.Options{Region: chennai, Tokens: iss, Clock: clk}
	if mutate != nil {
		mutate(&opts)
	}
	e := &env{h: h, iss: opts.Tokens}
	e.handler = server.New(h, opts)
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		e.handler.ServeHTTP(w, r)
	}))
	cert, certPEM, err := server.SelfSignedCert([]string{"127.0.0.1"}, clock.Wall{}.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.url, e.certPEM = e.srv.URL, certPEM
	if e.hc, err = server.TrustingClient(certPEM); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.hc.CloseIdleConnections)
	return e
}

// client returns an azkeys client acting as principal, with retries off so
// tests see every status as the server sent it.
func (e *env) client(t testing.TB, principal string, mutate ...func(*azkeys.ClientOptions)) *azkeys.Client {
	t.Helper()
	o := &azkeys.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: e.hc, Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableChallengeResourceVerification: true,
	}
	for _, m := range mutate {
		m(o)
	}
	c, err := azkeys.NewClient(e.url, server.NewCredential(e.iss, principal), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// token mints a token for principal.
func (e *env) token(t testing.TB, principal string) string {
	t.Helper()
	tok, _, err := e.iss.Issue(principal)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a raw request as principal ("" = no token) and returns the
// status, headers and body.
func (e *env) do(t testing.TB, principal, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	if !strings.Contains(path, "api-version=") && !strings.Contains(path, "/oauth2/") {
		if strings.Contains(path, "?") {
			path += "&api-version=" + server.APIVersion
		} else {
			path += "?api-version=" + server.APIVersion
		}
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if principal != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(t, principal))
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// kvError is a decoded Key Vault error body.
type kvError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

func decodeErr(t testing.TB, body []byte) kvError {
	t.Helper()
	var e kvError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not Key Vault's shape: %v: %s", err, body)
	}
	return e
}

// wantResponseError checks that err is an *azcore.ResponseError with the
// status, the top-level code and (if inner is not "") the inner code.
func wantResponseError(t testing.TB, err error, status int, code, inner string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not an *azcore.ResponseError", err, err)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %d %s, want %d %s: %v", re.StatusCode, re.ErrorCode, status, code, err)
	}
	if inner == "" {
		return
	}
	body, rerr := io.ReadAll(re.RawResponse.Body)
	if rerr != nil {
		t.Fatal(rerr)
	}
	e := decodeErr(t, body)
	if e.Error.InnerError == nil || e.Error.InnerError.Code != inner {
		t.Fatalf("innererror %+v, want %s: %s", e.Error.InnerError, inner, body)
	}
}

func ptr[T any](v T) *T { return &v }

func dek() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

var ctx = context.Background()
