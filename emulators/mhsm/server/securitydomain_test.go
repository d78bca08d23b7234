package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/lab/clock"
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkOf(pub *rsa.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

// certJWK wraps an officer key in a self-signed certificate, sent as x5c
// the way `az keyvault security-domain download --sd-wrapping-keys` does.
func certJWK(t *testing.T, k *rsa.PrivateKey) map[string]any {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "officer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"kty": "RSA", "kid": "cert-officer", "x5c": []string{base64.StdEncoding.EncodeToString(der)}}
}

// TestSecurityDomainOverHTTP activates an HSM by downloading its security
// domain over HTTP, then recovers a second, blank HSM by uploading it,
// and restores a key backup there.
func TestSecurityDomainOverHTTP(t *testing.T) {
	offs := officers(t)
	h1 := newHSM(t, clock.Wall{}, nil)
	e1 := serve(t, h1, clock.Wall{}, nil)

	// Data-plane operations are disabled until activation (facts §4).
	_, err := e1.client(t, keyMgr).CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
	wantResponseError(t, err, 403, "Forbidden", "HSMNotActivated")

	certs := []any{jwkOf(&offs[0].PublicKey, "officer-a"), jwkOf(&offs[1].PublicKey, "officer-b"), certJWK(t, offs[2])}
	for _, tc := range []struct {
		name      string
		principal string
		body      any
		status    int
	}{
		{"quorum of one", admin, map[string]any{"certificates": certs, "required": 1}, 400},
		{"two certificates", admin, map[string]any{"certificates": certs[:2], "required": 2}, 400},
		{"bad certificate", admin, map[string]any{"certificates": []any{map[string]any{"kty": "RSA", "n": "AQAB"}, certs[1], certs[2]}, "required": 2}, 400},
		{"not an administrator", keyMgr, map[string]any{"certificates": certs, "required": 2}, 403},
		{"malformed", admin, `{"certificates":[`, 400},
	} {
		if st, _, body := e1.do(t, tc.principal, http.MethodPost, "/securitydomain/download", tc.body); st != tc.status {
			t.Fatalf("%s: %d %s", tc.name, st, body)
		}
	}
	st, hdr, body := e1.do(t, admin, http.MethodPost, "/securitydomain/download", map[string]any{"certificates": certs, "required": 2})
	if st != 202 {
		t.Fatalf("download: %d %s", st, body)
	}
	if hdr.Get("Azure-AsyncOperation") == "" {
		t.Fatal("no Azure-AsyncOperation header")
	}
	blob, err := secdomain.ParseBlob([]byte(decode[struct{ Value string }](t, body).Value))
	if err != nil {
		t.Fatalf("the value is not a security domain: %v", err)
	}
	if blob.Quorum != 2 || len(blob.Officers) != 3 || blob.Officers[2].Name != "cert-officer" || blob.DomainID != h1.SecurityDomainID() {
		t.Fatalf("blob quorum %d officers %d", blob.Quorum, len(blob.Officers))
	}
	if st, _, body := e1.do(t, admin, http.MethodGet, "/securitydomain/download/pending", nil); st != 200 || decode[struct{ Status string }](t, body).Status != "Success" {
		t.Fatalf("pending: %d %s", st, body)
	}
	// An activated HSM has no transfer key.
	if st, _, _ := e1.do(t, admin, http.MethodGet, "/securitydomain/upload", nil); st != 409 {
		t.Fatalf("transfer key of an active HSM: %d", st)
	}

	// Use it: a key, a wrapped DEK, a backup.
	if _, err := h1.CreateRoleAssignment(ctx, mhsm.Caller{Principal: admin}, rbac.Assignment{Name: "km", Principal: keyMgr, RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"}); err != nil {
		t.Fatal(err)
	}
	km1 := e1.client(t, keyMgr)
	createRSA(t, km1, sqlKey)
	d := dek()
	w, err := km1.WrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := km1.BackupKey(ctx, sqlKey, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Recovery into a new, blank HSM: transfer key, upload, restore.
	h2 := newHSM(t, clock.Wall{}, nil)
	e2 := serve(t, h2, clock.Wall{}, nil)
	for _, path := range []string{"/securitydomain/upload", "/securitydomain/transferkey"} {
		if st, _, _ := e2.do(t, keyMgr, http.MethodGet, path, nil); st != 403 {
			t.Fatalf("transfer key as a non-administrator: %d", st)
		}
	}
	st, _, body = e2.do(t, admin, http.MethodGet, "/securitydomain/upload", nil)
	if st != 200 {
		t.Fatalf("transfer key: %d %s", st, body)
	}
	tk := decode[struct {
		KeyFormat   string `json:"key_format"`
		TransferKey struct {
			Kty string `json:"kty"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"transfer_key"`
	}](t, body)
	n, _ := base64.RawURLEncoding.DecodeString(tk.TransferKey.N)
	ex, _ := base64.RawURLEncoding.DecodeString(tk.TransferKey.E)
	if tk.KeyFormat != "jwk" || tk.TransferKey.Kty != "RSA" || len(n) < 256 {
		t.Fatalf("transfer key %+v", tk)
	}
	transfer := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(ex).Int64())}
	if _, err := secdomain.Recover(blob, offs[:1]); err == nil {
		t.Fatal("one officer recovered a quorum-2 domain")
	}
	dom, err := secdomain.Recover(blob, []*rsa.PrivateKey{offs[0], offs[2]})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secdomain.Seal(dom, transfer, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, body := e2.do(t, admin, http.MethodPost, "/securitydomain/upload", map[string]string{"value": "AQID"}); st != 400 {
		t.Fatalf("upload of garbage: %d %s", st, body)
	}
	st, _, body = e2.do(t, admin, http.MethodPost, "/securitydomain/upload", map[string]string{"value": b64u(sealed)})
	if st != 202 || decode[struct{ Status string }](t, body).Status != "Success" {
		t.Fatalf("upload: %d %s", st, body)
	}
	if st, _, body := e2.do(t, admin, http.MethodGet, "/securitydomain/upload/pending", nil); st != 200 || decode[struct{ Status string }](t, body).Status != "Success" {
		t.Fatalf("upload pending: %d %s", st, body)
	}
	if h2.SecurityDomainID() != h1.SecurityDomainID() {
		t.Fatal("the recovered HSM has another security domain")
	}
	if st, _, _ := e2.do(t, admin, http.MethodPost, "/securitydomain/upload", map[string]string{"value": b64u(sealed)}); st != 409 {
		t.Fatalf("second upload: %d", st)
	}
	if _, err := h2.CreateRoleAssignment(ctx, mhsm.Caller{Principal: admin}, rbac.Assignment{Name: "km", Principal: keyMgr, RoleDefinitionID: rbac.CryptoUserRoleID, Scope: "/keys"}); err != nil {
		t.Fatal(err)
	}
	km2 := e2.client(t, keyMgr)
	if _, err := km2.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil); err != nil {
		t.Fatalf("restore into the recovered HSM: %v", err)
	}
	u, err := km2.UnwrapKey(ctx, sqlKey, w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil)
	if err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("unwrap in the recovered HSM: %v", err)
	}
}
