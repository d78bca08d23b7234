package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/lab/clock"
)

const fuzzer = "fuzzer"

// fuzzTarget is one activated HSM (a key "k" RSA, "a" AES) behind a
// handler, and a token of a principal holding Crypto User, Crypto Officer
// and Administrator, so that requests reach every handler.
func fuzzTarget(t testing.TB) (http.Handler, string) {
	t.Helper()
	h := newHSM(t, clock.Wall{}, nil)
	activate(t, h)
	for i, role := range []string{rbac.CryptoUserRoleID, rbac.CryptoOfficerRoleID, rbac.AdministratorRoleID} {
		if _, err := h.CreateRoleAssignment(context.Background(), mhsm.Caller{Principal: admin},
			rbac.Assignment{Name: "fuzz-" + string(rune('a'+i)), Principal: fuzzer, RoleDefinitionID: role, Scope: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	c := mhsm.Caller{Principal: fuzzer}
	if _, _, err := h.CreateKey(context.Background(), c, "k", mhsm.KeyOptions{Type: mhsm.KeyTypeRSA}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.CreateKey(context.Background(), c, "a", mhsm.KeyOptions{Type: mhsm.KeyTypeOct}); err != nil {
		t.Fatal(err)
	}
	iss, err := server.NewTokenIssuer(server.IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Issue(fuzzer)
	if err != nil {
		t.Fatal(err)
	}
	return server.New(h, server.Options{Region: chennai, Tokens: iss, DisableLatency: true, MaxBody: 64 << 10}), tok
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, "OPTIONS", "BREW"}

// FuzzHandler sends arbitrary methods, paths, queries and bodies:
// malformed JSON, bad base64, huge bodies, odd paths. The handler must
// never panic and never answer 500 (or any 5xx but 501 and 503).
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		m          byte
		path, q    string
		body       []byte
		authorized bool
	}{
		{1, "/keys/k/wrapkey", "api-version=2025-07-01", []byte(`{"alg":"RSA-OAEP-256","value":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}`), true},
		{1, "/keys/k/unwrapkey", "api-version=2025-07-01", []byte(`{"alg":"RSA-OAEP-256","value":"!!"}`), true},
		{1, "/keys/a/encrypt", "api-version=7.4", []byte(`{"alg":"A256GCM","value":"AQID","aad":"AQ"}`), true},
		{1, "/keys/a/decrypt", "api-version=7.4", []byte(`{"alg":"A256GCM","value":"AQID","iv":"AQ","tag":"AQ"}`), true},
		{1, "/keys/a/wrapkey", "api-version=7.4", []byte(`{"alg":"A256KW","value":"AQ"}`), true},
		{1, "/keys/a/unwrapkey", "api-version=7.4", []byte(`{"alg":"A128KW","value":"AQIDBAUGBwgJ"}`), true},
		{1, "/keys/n/create", "api-version=2025-07-01", []byte(`{"kty":"oct-HSM","key_size":128,"key_ops":["encrypt"],"attributes":{"exp":1,"nbf":2}}`), true},
		{1, "/keys/n/create", "api-version=2025-07-01", []byte(`{"kty":"RSA","key_size":-1}`), true},
		{2, "/keys/imp", "api-version=2025-07-01", []byte(`{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"AQ","q":"AQ"}}`), true},
		{2, "/keys/imp", "api-version=2025-07-01", []byte(`{"key":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"}}`), true},
		{3, "/keys/k/", "api-version=2025-07-01", []byte(`{"attributes":{"enabled":false,"exp":99999999999999}}`), true},
		{2, "/keys/k/rotationpolicy", "api-version=2025-07-01", []byte(`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P99999Y99999M"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"PT"}}`), true},
		{1, "/keys/k/rotate", "api-version=2025-07-01", nil, true},
		{1, "/keys/k/backup", "api-version=2025-07-01", nil, true},
		{1, "/keys/restore", "api-version=2025-07-01", []byte(`{"value":"eyJmb3JtYXQiOjF9"}`), true},
		{4, "/keys/k", "api-version=2025-07-01", nil, true},
		{0, "/deletedkeys", "api-version=2025-07-01&maxresults=1&$skiptoken=1", nil, true},
		{1, "/deletedkeys/k/recover", "api-version=2025-07-01", nil, true},
		{4, "/deletedkeys/k", "api-version=2025-07-01", nil, true},
		{0, "/keys", "api-version=2025-07-01&maxresults=99", nil, true},
		{0, "/keys/k/versions", "api-version=2025-07-01", nil, true},
		{2, "//providers/Microsoft.Authorization/roleAssignments/x", "api-version=7.4", []byte(`{"properties":{"roleDefinitionId":"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b","principalId":"p"}}`), true},
		{0, "/keys/k/providers/Microsoft.Authorization/roleAssignments", "api-version=7.4&$filter=atScope()%20and%20principalId%20eq%20'p'", nil, true},
		{2, "/providers/Microsoft.Authorization/roleDefinitions/r", "api-version=7.4", []byte(`{"properties":{"roleName":"r","permissions":[{"dataActions":["*"]}]}}`), true},
		{4, "/providers/Microsoft.Authorization/roleDefinitions/r", "api-version=7.4", nil, true},
		{1, "/securitydomain/download", "api-version=7.4", []byte(`{"certificates":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"x5c":["AAAA"]}],"required":2}`), true},
		{1, "/securitydomain/upload", "api-version=7.4", []byte(`{"value":"AQID"}`), true},
		{0, "/securitydomain/upload", "api-version=7.4", nil, true},
		{1, "/hsmlab/oauth2/v2.0/token", "", []byte("client_id=x&scope=%zz"), false},
		{1, "/keys/k/wrapkey", "api-version=2025-07-01", bytes.Repeat([]byte("["), 70<<10), true},
		{1, "/keys/k/wrapkey", "api-version=2025-07-01", []byte(`{"alg":"RSA-OAEP-256","value":"AQ"}`), false},
		{0, "/../../etc/passwd", "api-version=x", nil, true},
		{0, "/keys/%00/%ff", "", nil, true},
	}
	for _, s := range seeds {
		f.Add(s.m, s.path, s.q, s.body, s.authorized)
	}
	h, tok := fuzzTarget(f)
	f.Fuzz(func(t *testing.T, m byte, path, query string, body []byte, authorized bool) {
		r := httptest.NewRequest(http.MethodGet, "https://127.0.0.1/", bytes.NewReader(body))
		r.Method = fuzzMethods[int(m)%len(fuzzMethods)]
		r.URL.Path, r.URL.RawQuery = path, query
		if !strings.HasPrefix(r.URL.Path, "/") {
			r.URL.Path = "/" + r.URL.Path
		}
		if authorized {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusInternalServerError || w.Code >= 500 && w.Code != 501 && w.Code != 503 || w.Code < 100 {
			t.Fatalf("%s %s?%s: status %d: %s", r.Method, r.URL.Path, query, w.Code, w.Body.String())
		}
		if w.Code >= 400 && w.Code != 405 && !strings.Contains(r.URL.Path, "oauth2") && !bytes.HasPrefix(w.Body.Bytes(), []byte(`{"error":{"code":"`)) {
			t.Fatalf("%s %s: error %d is not in Key Vault's shape: %s", r.Method, r.URL.Path, w.Code, w.Body.String())
		}
	})
}
