package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
)

func createRSA(t *testing.T, c *azkeys.Client, name string, ops ...azkeys.KeyOperation) azkeys.KeyBundle {
	t.Helper()
	p := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(2048))}
	for _, op := range ops {
		p.KeyOps = append(p.KeyOps, to.Ptr(op))
	}
	r, err := c.CreateKey(ctx, name, p, nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return r.KeyBundle
}

// TestKeyLifecycle drives every key operation through azkeys over HTTPS.
func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{activate: true, srv: func(o *server.Options) { o.PageSize = 2 }})
	km := e.client(t, keyMgr)

	// Create: RSA-HSM 2048, as the seed's CMKs.
	k := createRSA(t, km, sqlKey, azkeys.KeyOperationWrapKey, azkeys.KeyOperationUnwrapKey)
	if *k.Key.Kty != azkeys.KeyTypeRSAHSM || len(k.Key.N) != 256 || !bytes.Equal(k.Key.E, []byte{1, 0, 1}) {
		t.Fatalf("key %+v", k.Key)
	}
	if k.Key.KID.Name() != sqlKey || len(k.Key.KID.Version()) != 32 || !bytes.HasPrefix([]byte(*k.Key.KID), []byte(e.url+"/keys/")) {
		t.Fatalf("kid %s", *k.Key.KID)
	}
	if !*k.Attributes.Enabled || *k.Attributes.RecoveryLevel != mhsm.RecoverablePurgeable || *k.Attributes.RecoverableDays != 90 || k.Attributes.Created == nil {
		t.Fatalf("attributes %+v", k.Attributes)
	}
	ver := k.Key.KID.Version()

	// Get: current (trailing slash), by version.
	g, err := km.GetKey(ctx, sqlKey, "", nil)
	if err != nil || *g.Key.KID != *k.Key.KID {
		t.Fatalf("get current: %v %v", err, g.Key)
	}
	if g, err = km.GetKey(ctx, sqlKey, ver, nil); err != nil || *g.Key.KID != *k.Key.KID {
		t.Fatalf("get version: %v", err)
	}

	// Wrap / unwrap, with the current and the explicit version; the
	// public key really wraps (the workloads can wrap locally too).
	d := dek()
	w, err := km.WrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: d}, nil)
	if err != nil || w.KID.Version() != ver || len(w.Result) != 256 {
		t.Fatalf("wrap: %v %+v", err, w)
	}
	u, err := km.UnwrapKey(ctx, sqlKey, ver, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil)
	if err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("unwrap: %v", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k.Key.N), E: 65537}
	local, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, err = km.UnwrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: local}, nil); err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("unwrap of a locally wrapped DEK: %v", err)
	}

	// The service identity can use its key and nothing else.
	sq := e.client(t, sqlMI)
	if u, err = sq.UnwrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil); err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("sqlmi unwrap: %v", err)
	}

	// Encrypt / decrypt on a general-purpose RSA key, and AES on an oct key.
	createRSA(t, km, "general")
	enc, err := km.Encrypt(ctx, "general", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: []byte("hello")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := km.Decrypt(ctx, "general", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: enc.Result}, nil)
	if err != nil || string(dec.Result) != "hello" {
		t.Fatalf("decrypt: %v %q", err, dec.Result)
	}
	if _, err := km.CreateKey(ctx, "aes", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(int32(256))}, nil); err != nil {
		t.Fatal(err)
	}
	enc, err = km.Encrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("secret"), AdditionalAuthenticatedData: []byte("aad")}, nil)
	if err != nil || len(enc.IV) == 0 || len(enc.AuthenticationTag) == 0 {
		t.Fatalf("aes encrypt: %v %+v", err, enc)
	}
	dec, err = km.Decrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: enc.Result,
		IV: enc.IV, AuthenticationTag: enc.AuthenticationTag, AdditionalAuthenticatedData: []byte("aad")}, nil)
	if err != nil || string(dec.Result) != "secret" {
		t.Fatalf("aes decrypt: %v", err)
	}
	aw, err := km.WrapKey(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256KW), Value: d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, err = km.UnwrapKey(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256KW), Value: aw.Result}, nil); err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("A256KW unwrap: %v", err)
	}

	// Rotation needs a policy first (facts §7); then rotate makes a version.
	if _, err := km.RotateKey(ctx, sqlKey, nil); err == nil {
		t.Fatal("rotate without a policy succeeded")
	} else {
		wantResponseError(t, err, 400, "BadParameter", "")
	}
	pol, err := km.GetKeyRotationPolicy(ctx, sqlKey, nil)
	if err != nil || len(pol.LifetimeActions) != 0 {
		t.Fatalf("empty policy: %v %+v", err, pol)
	}
	np, err := km.UpdateKeyRotationPolicy(ctx, sqlKey, azkeys.KeyRotationPolicy{
		LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)},
			Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P90D")}}},
		Attributes: &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P2Y")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *np.Attributes.ExpiryTime != "P730D" || *np.LifetimeActions[0].Trigger.TimeAfterCreate != "P90D" || *np.ID != e.url+"/keys/"+sqlKey+"/rotationpolicy" {
		t.Fatalf("policy %+v %+v", np.Attributes, np.LifetimeActions[0].Trigger)
	}
	if pol, err = km.GetKeyRotationPolicy(ctx, sqlKey, nil); err != nil || len(pol.LifetimeActions) != 1 {
		t.Fatalf("get policy: %v", err)
	}
	rot, err := km.RotateKey(ctx, sqlKey, nil)
	if err != nil || rot.Key.KID.Version() == ver || rot.Attributes.Expires == nil {
		t.Fatalf("rotate: %v", err)
	}
	// The old version still unwraps what it wrapped.
	if u, err = km.UnwrapKey(ctx, sqlKey, ver, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil); err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("unwrap with the old version: %v", err)
	}

	// Versions and keys, paged two at a time (PageSize 2 → nextLink).
	var versions []string
	for pg := km.NewListKeyPropertiesVersionsPager(sqlKey, nil); pg.More(); {
		p, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Value {
			versions = append(versions, v.KID.Version())
		}
	}
	if !slices.Equal(versions, []string{ver, rot.Key.KID.Version()}) {
		t.Fatalf("versions %v", versions)
	}
	var names []string
	pages := 0
	for pg := km.NewListKeyPropertiesPager(nil); pg.More(); pages++ {
		p, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Value {
			names = append(names, v.KID.Name())
			if v.KID.Version() != "" {
				t.Fatalf("list item kid has a version: %s", *v.KID)
			}
		}
	}
	if !slices.Equal(names, []string{"aes", "general", sqlKey}) || pages != 2 {
		t.Fatalf("keys %v in %d pages", names, pages)
	}

	// Update: disable, tag, and back.
	up, err := km.UpdateKey(ctx, "general", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)},
		Tags: map[string]*string{"owner": to.Ptr("platform")}}, nil)
	if err != nil || *up.Attributes.Enabled || *up.Tags["owner"] != "platform" {
		t.Fatalf("update: %v %+v", err, up.Attributes)
	}
	if _, err := km.Encrypt(ctx, "general", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: []byte("x")}, nil); err == nil {
		t.Fatal("encrypt with a disabled key")
	} else {
		wantResponseError(t, err, 403, "Forbidden", "KeyDisabled")
	}

	// Backup, delete, list/get deleted, recover; delete again, purge, restore.
	bk, err := km.BackupKey(ctx, sqlKey, nil)
	if err != nil || len(bk.Value) == 0 {
		t.Fatalf("backup: %v", err)
	}
	del, err := km.DeleteKey(ctx, sqlKey, nil)
	if err != nil || *del.RecoveryID != e.url+"/deletedkeys/"+sqlKey || del.ScheduledPurgeDate == nil {
		t.Fatalf("delete: %v %+v", err, del)
	}
	if _, err := km.GetKey(ctx, sqlKey, "", nil); err == nil {
		t.Fatal("get of a deleted key")
	} else {
		wantResponseError(t, err, 404, "KeyNotFound", "")
	}
	of := e.client(t, officer)
	gd, err := of.GetDeletedKey(ctx, sqlKey, nil)
	if err != nil || gd.Key.KID.Name() != sqlKey {
		t.Fatalf("get deleted: %v", err)
	}
	var deleted []string
	for pg := of.NewListDeletedKeyPropertiesPager(nil); pg.More(); {
		p, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Value {
			deleted = append(deleted, v.KID.Name())
		}
	}
	if !slices.Equal(deleted, []string{sqlKey}) {
		t.Fatalf("deleted keys %v", deleted)
	}
	if _, err := of.RecoverDeletedKey(ctx, sqlKey, nil); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if _, err := km.GetKey(ctx, sqlKey, "", nil); err != nil {
		t.Fatalf("get after recover: %v", err)
	}
	if _, err := km.DeleteKey(ctx, sqlKey, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := of.PurgeDeletedKey(ctx, sqlKey, nil); err != nil {
		t.Fatalf("purge: %v", err)
	}
	rs, err := km.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil)
	if err != nil || rs.Key.KID.Version() != rot.Key.KID.Version() {
		t.Fatalf("restore: %v", err)
	}
	if u, err = km.UnwrapKey(ctx, sqlKey, ver, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil); err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("unwrap after restore: %v", err)
	}
}

// TestImportKey imports an RSA and an AES key as JWKs.
func TestImportKey(t *testing.T) {
	e := newEnv(t, envOpts{activate: true})
	km := e.client(t, keyMgr)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e64 := big.NewInt(int64(priv.E)).Bytes()
	jwk := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: priv.N.Bytes(), E: e64, D: priv.D.Bytes(),
		P: priv.Primes[0].Bytes(), Q: priv.Primes[1].Bytes(), DP: priv.Precomputed.Dp.Bytes(), DQ: priv.Precomputed.Dq.Bytes(), QI: priv.Precomputed.Qinv.Bytes(),
		KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationWrapKey), to.Ptr(azkeys.KeyOperationUnwrapKey)}}
	r, err := km.ImportKey(ctx, "byok", azkeys.ImportKeyParameters{Key: jwk, HSM: to.Ptr(true)}, nil)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if !bytes.Equal(r.Key.N, priv.N.Bytes()) || r.Key.D != nil {
		t.Fatal("imported key does not show the public key only")
	}
	d := dek()
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := km.UnwrapKey(ctx, "byok", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: ct}, nil)
	if err != nil || !bytes.Equal(u.Result, d) {
		t.Fatalf("unwrap with the imported key: %v", err)
	}
	aes := dek()
	if _, err := km.ImportKey(ctx, "aes-byok", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeOct), K: aes}}, nil); err != nil {
		t.Fatalf("import oct: %v", err)
	}
	// A broken JWK: p·q ≠ n.
	jwk.P = big.NewInt(7).Bytes()
	if _, err := km.ImportKey(ctx, "broken", azkeys.ImportKeyParameters{Key: jwk}, nil); err == nil {
		t.Fatal("broken RSA key imported")
	} else {
		wantResponseError(t, err, 400, "BadParameter", "")
	}
}

// TestNegativeThroughAzkeys checks that refusals reach azkeys as
// *azcore.ResponseError with Key Vault's status and codes.
func TestNegativeThroughAzkeys(t *testing.T) {
	e := newEnv(t, envOpts{activate: true, cfg: func(c *mhsm.Config) { c.PurgeProtection = true }})
	km, sq, au, of := e.client(t, keyMgr), e.client(t, sqlMI), e.client(t, auditor), e.client(t, officer)
	createRSA(t, km, sqlKey)
	createRSA(t, km, "other")
	wrapped, err := km.WrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unwrap := func(c *azkeys.Client, name, ver string) error {
		_, err := c.UnwrapKey(ctx, name, ver, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped.Result}, nil)
		return err
	}
	tests := []struct {
		name         string
		call         func() error
		status       int
		code, inner  string
		notInnerDesc string
	}{
		{"service identity cannot create keys", func() error {
			_, err := sq.CreateKey(ctx, "x", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
			return err
		}, 403, "Forbidden", "ForbiddenByRbac", ""},
		{"service identity cannot use another key", func() error { return unwrap(sq, "other", "") }, 403, "Forbidden", "ForbiddenByRbac", ""},
		{"auditor reads but cannot use keys", func() error { return unwrap(au, sqlKey, "") }, 403, "Forbidden", "ForbiddenByRbac", ""},
		{"crypto officer cannot use keys", func() error { return unwrap(of, sqlKey, "") }, 403, "Forbidden", "ForbiddenByRbac", ""},
		{"unknown version", func() error { return unwrap(km, sqlKey, "0123456789abcdef0123456789abcdef") }, 404, "KeyNotFound", "", ""},
		{"unknown key", func() error {
			_, err := km.GetKey(ctx, "nope", "", nil)
			return err
		}, 404, "KeyNotFound", "", ""},
		{"unknown algorithm", func() error {
			_, err := km.UnwrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithm("RSA-OAEP-999")), Value: wrapped.Result}, nil)
			return err
		}, 400, "BadParameter", "", ""},
		{"corrupt ciphertext", func() error {
			bad := bytes.Clone(wrapped.Result)
			bad[10] ^= 1
			_, err := km.UnwrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: bad}, nil)
			return err
		}, 400, "BadParameter", "", ""},
		{"EC keys are not emulated", func() error {
			_, err := km.CreateKey(ctx, "ec", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
			return err
		}, 400, "BadParameter", "", ""},
		{"bad key size", func() error {
			_, err := km.CreateKey(ctx, "rsa1024", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(1024))}, nil)
			return err
		}, 400, "BadParameter", "", ""},
		{"name held by a deleted key", func() error {
			if _, err := km.DeleteKey(ctx, "other", nil); err != nil {
				return err
			}
			_, err := km.CreateKey(ctx, "other", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
			return err
		}, 409, "Conflict", "", ""},
		{"purge under purge protection", func() error {
			_, err := of.PurgeDeletedKey(ctx, "other", nil)
			return err
		}, 403, "Forbidden", "PurgeProtected", ""},
		{"key manager cannot purge (Crypto Officer can)", func() error {
			_, err := km.PurgeDeletedKey(ctx, "other", nil)
			return err
		}, 403, "Forbidden", "ForbiddenByRbac", ""},
		{"disabled key", func() error {
			if _, err := km.UpdateKey(ctx, sqlKey, "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
				return err
			}
			return unwrap(sq, sqlKey, "")
		}, 403, "Forbidden", "KeyDisabled", ""},
		{"expired key cannot wrap", func() error {
			past := time.Now().Add(-time.Hour)
			if _, err := km.UpdateKey(ctx, sqlKey, "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(true), Expires: &past}}, nil); err != nil {
				return err
			}
			_, err := km.WrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek()}, nil)
			return err
		}, 403, "Forbidden", "KeyExpired", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("succeeded")
			}
			wantResponseError(t, err, tc.status, tc.code, tc.inner)
		})
	}
	// An expired key still unwraps (Key Vault's date-time controlled operations).
	if err := unwrap(sq, sqlKey, ""); err != nil {
		t.Fatalf("unwrap with an expired key: %v", err)
	}
}

// TestOlderAPIVersion uses azkeys with api-version 7.4.
func TestOlderAPIVersion(t *testing.T) {
	e := newEnv(t, envOpts{activate: true})
	km := e.client(t, keyMgr, func(o *azkeys.ClientOptions) { o.APIVersion = "7.4" })
	createRSA(t, km, "k")
	if _, err := km.GetKey(ctx, "k", "", nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1999-01-01", "8.0", "7", "latest"} {
		st, _, body := e.do(t, keyMgr, http.MethodGet, "/keys/k?api-version="+v, nil)
		if st != 400 || decodeErr(t, body).Error.Code != "BadParameter" {
			t.Fatalf("api-version %s: %d %s", v, st, body)
		}
	}
	if st, _, _ := e.do(t, keyMgr, http.MethodGet, "/keys/k?api-version=7.6-preview.1", nil); st != 200 {
		t.Fatalf("7.6-preview.1: %d", st)
	}
}
