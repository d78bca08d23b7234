package server

import (
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
)

// jsonWebKey is a JWK as Key Vault sends and accepts it. Private parts
// appear only in an import request.
type jsonWebKey struct {
	KID    string   `json:"kid,omitempty"`
	Kty    string   `json:"kty,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	N      b64      `json:"n,omitempty"`
	E      b64      `json:"e,omitempty"`
	D      b64      `json:"d,omitempty"`
	DP     b64      `json:"dp,omitempty"`
	DQ     b64      `json:"dq,omitempty"`
	QI     b64      `json:"qi,omitempty"`
	P      b64      `json:"p,omitempty"`
	Q      b64      `json:"q,omitempty"`
	K      b64      `json:"k,omitempty"`
	T      b64      `json:"key_hsm,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      b64      `json:"x,omitempty"`
	Y      b64      `json:"y,omitempty"`
	X5C    []string `json:"x5c,omitempty"`
}

type keyAttributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         *int64 `json:"created,omitempty"`
	Updated         *int64 `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays *int32 `json:"recoverableDays,omitempty"`
	Exportable      *bool  `json:"exportable,omitempty"`
}

type keyBundle struct {
	Key        jsonWebKey        `json:"key"`
	Attributes keyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
}

type deletedKeyBundle struct {
	keyBundle
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
}

type keyItem struct {
	KID        string            `json:"kid"`
	Attributes keyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
}

type deletedKeyItem struct {
	keyItem
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
}

type listResult[T any] struct {
	Value    []T     `json:"value"`
	NextLink *string `json:"nextLink"`
}

type valueBody struct {
	Value b64 `json:"value"`
}

// rebase moves a URL of the core (its kids carry the HSM's URL) onto this
// endpoint's base URL.
func (s *handler) rebase(q *request, u string) string {
	if s.hsmURL != "" && strings.HasPrefix(u, s.hsmURL) {
		return q.base + u[len(s.hsmURL):]
	}
	return u
}

func attrsOf(a mhsm.Attributes) keyAttributes {
	en, exportable := a.Enabled, false
	days := int32(a.RecoverableDays)
	return keyAttributes{Enabled: &en, NotBefore: unixTime(a.NotBefore), Expires: unixTime(a.Expires),
		Created: unixTime(a.Created), Updated: unixTime(a.Updated), RecoveryLevel: a.RecoveryLevel,
		RecoverableDays: &days, Exportable: &exportable}
}

func (s *handler) bundle(q *request, k mhsm.KeyVersion) keyBundle {
	jwk := jsonWebKey{KID: s.rebase(q, k.KID), Kty: k.Type, KeyOps: k.Ops}
	if jwk.KeyOps == nil {
		jwk.KeyOps = []string{}
	}
	if k.Public != nil {
		jwk.N = k.Public.N.Bytes()
		jwk.E = big.NewInt(int64(k.Public.E)).Bytes()
	}
	return keyBundle{Key: jwk, Attributes: attrsOf(k.Attr), Tags: k.Tags}
}

func (s *handler) deletedBundle(q *request, d mhsm.DeletedKey) deletedKeyBundle {
	return deletedKeyBundle{keyBundle: s.bundle(q, d.KeyVersion), RecoveryID: s.rebase(q, d.RecoveryID),
		DeletedDate: unixTime(d.DeletedDate), ScheduledPurgeDate: unixTime(d.ScheduledPurgeDate)}
}

// item is a key in a list: its ID with the version when withVersion.
func (s *handler) item(q *request, k mhsm.KeyVersion, withVersion bool) keyItem {
	kid := s.rebase(q, k.KID)
	if !withVersion {
		kid = strings.TrimSuffix(kid, "/"+k.Version)
	}
	return keyItem{KID: kid, Attributes: attrsOf(k.Attr), Tags: k.Tags}
}

// keyOptions converts request attributes, operations and tags.
func keyOptions(a *keyAttributes, ops []string, tags map[string]string) (mhsm.KeyOptions, error) {
	o := mhsm.KeyOptions{Ops: ops, Tags: tags}
	if a == nil {
		return o, nil
	}
	if a.Exportable != nil && *a.Exportable {
		return o, badParameter("exportable keys (secure key release) are not emulated")
	}
	o.Enabled = a.Enabled
	nbf, err := fromUnix(a.NotBefore)
	if err != nil {
		return o, badParameter("attributes.nbf: %v", err)
	}
	exp, err := fromUnix(a.Expires)
	if err != nil {
		return o, badParameter("attributes.exp: %v", err)
	}
	o.NotBefore, o.Expires = nbf, exp
	return o, nil
}

func hasReleasePolicy(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

type createKeyRequest struct {
	Kty            string            `json:"kty"`
	KeySize        *int              `json:"key_size"`
	PublicExponent *int              `json:"public_exponent"`
	KeyOps         []string          `json:"key_ops"`
	Attributes     *keyAttributes    `json:"attributes"`
	Tags           map[string]string `json:"tags"`
	Curve          string            `json:"crv"`
	ReleasePolicy  json.RawMessage   `json:"release_policy"`
}

// createKey: POST /keys/{name}/create.
func (s *handler) createKey(q *request) (result, error) {
	var req createKeyRequest
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if req.Kty == "" {
		return result{}, badParameter("kty is required (RSA-HSM or oct-HSM)")
	}
	if req.Curve != "" {
		return result{}, badParameter("EC keys are not emulated (RSA-HSM and oct-HSM are)")
	}
	if req.PublicExponent != nil && *req.PublicExponent != 65537 {
		return result{}, badParameter("public_exponent %d: only 65537 is supported", *req.PublicExponent)
	}
	if hasReleasePolicy(req.ReleasePolicy) {
		return result{}, badParameter("release policies are not emulated")
	}
	o, err := keyOptions(req.Attributes, req.KeyOps, req.Tags)
	if err != nil {
		return result{}, err
	}
	o.Type = req.Kty
	if req.KeySize != nil {
		o.Size = *req.KeySize
		if o.Size <= 0 {
			return result{}, badParameter("key_size %d", o.Size)
		}
	}
	k, served, err := s.h.CreateKey(q.ctx, q.caller, q.params[0], o)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusOK, v: s.bundle(q, k), served: served}, nil
}

type importKeyRequest struct {
	Key           *jsonWebKey       `json:"key"`
	HSM           *bool             `json:"Hsm"`
	Attributes    *keyAttributes    `json:"attributes"`
	Tags          map[string]string `json:"tags"`
	ReleasePolicy json.RawMessage   `json:"release_policy"`
}

// importKey: PUT /keys/{name}. Managed HSM keys are always HSM keys, so
// "Hsm" is ignored; the BYOK transfer blob (key_hsm) is not emulated.
func (s *handler) importKey(q *request) (result, error) {
	var req importKeyRequest
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if req.Key == nil {
		return result{}, badParameter("key is required")
	}
	if hasReleasePolicy(req.ReleasePolicy) {
		return result{}, badParameter("release policies are not emulated")
	}
	o, err := keyOptions(req.Attributes, req.Key.KeyOps, req.Tags)
	if err != nil {
		return result{}, err
	}
	jwk := req.Key
	var (
		priv   *rsa.PrivateKey
		secret []byte
	)
	switch strings.ToUpper(jwk.Kty) {
	case "RSA", "RSA-HSM":
		if len(jwk.T) > 0 {
			return result{}, badParameter("BYOK transfer blobs (key_hsm) are not emulated: import the plain JWK")
		}
		if priv, err = rsaFromJWK(jwk); err != nil {
			return result{}, err
		}
	case "OCT", "OCT-HSM":
		if n := len(jwk.K); n != 16 && n != 24 && n != 32 {
			return result{}, badParameter("an oct key needs k of 16, 24 or 32 bytes, got %d", n)
		}
		secret = append([]byte(nil), jwk.K...)
	default:
		return result{}, badParameter("kty %.20q: RSA, RSA-HSM, oct or oct-HSM", jwk.Kty)
	}
	k, err := s.h.ImportKey(q.ctx, q.caller, q.params[0], priv, secret, o)
	clear(secret)
	if err != nil {
		return result{}, err
	}
	return ok(s.bundle(q, k))
}

// rsaFromJWK builds a private key from n, e, d, p and q, checking sizes
// before any arithmetic.
func rsaFromJWK(j *jsonWebKey) (*rsa.PrivateKey, error) {
	if len(j.N) == 0 || len(j.E) == 0 || len(j.D) == 0 || len(j.P) == 0 || len(j.Q) == 0 {
		return nil, badParameter("an RSA import needs n, e, d, p and q")
	}
	n := new(big.Int).SetBytes(j.N)
	if bits := n.BitLen(); bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, badParameter("RSA key of %d bits (2048, 3072 or 4096)", bits)
	}
	if len(j.E) > 4 || len(j.D) > len(j.N) || len(j.P) > len(j.N) || len(j.Q) > len(j.N) {
		return nil, badParameter("RSA key parameters out of range")
	}
	e := new(big.Int).SetBytes(j.E)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, badParameter("RSA public exponent out of range")
	}
	priv := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())},
		D:         new(big.Int).SetBytes(j.D),
		Primes:    []*big.Int{new(big.Int).SetBytes(j.P), new(big.Int).SetBytes(j.Q)},
	}
	if new(big.Int).Mul(priv.Primes[0], priv.Primes[1]).Cmp(n) != 0 {
		return nil, badParameter("invalid RSA key: p·q ≠ n")
	}
	return priv, nil
}

// getKey: GET /keys/{name}[/{version}].
func (s *handler) getKey(q *request) (result, error) {
	k, served, err := s.h.GetKey(q.ctx, q.caller, q.params[0], q.params[1])
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusOK, v: s.bundle(q, k), served: served}, nil
}

type updateKeyRequest struct {
	KeyOps        []string          `json:"key_ops"`
	Attributes    *keyAttributes    `json:"attributes"`
	Tags          map[string]string `json:"tags"`
	ReleasePolicy json.RawMessage   `json:"release_policy"`
}

// updateKey: PATCH /keys/{name}[/{version}].
func (s *handler) updateKey(q *request) (result, error) {
	var req updateKeyRequest
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if hasReleasePolicy(req.ReleasePolicy) {
		return result{}, badParameter("release policies are not emulated")
	}
	o, err := keyOptions(req.Attributes, req.KeyOps, req.Tags)
	if err != nil {
		return result{}, err
	}
	k, err := s.h.UpdateKey(q.ctx, q.caller, q.params[0], q.params[1], o)
	if err != nil {
		return result{}, err
	}
	return ok(s.bundle(q, k))
}

// deleteKey: DELETE /keys/{name}.
func (s *handler) deleteKey(q *request) (result, error) {
	d, err := s.h.DeleteKey(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	return ok(s.deletedBundle(q, d))
}

// listKeys: GET /keys.
func (s *handler) listKeys(q *request) (result, error) {
	ks, err := s.h.ListKeys(q.ctx, q.caller)
	if err != nil {
		return result{}, err
	}
	items := make([]keyItem, len(ks))
	for i, k := range ks {
		items[i] = s.item(q, k, false)
	}
	return paged(s, q, items)
}

// listVersions: GET /keys/{name}/versions.
func (s *handler) listVersions(q *request) (result, error) {
	ks, err := s.h.ListVersions(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	items := make([]keyItem, len(ks))
	for i, k := range ks {
		items[i] = s.item(q, k, true)
	}
	return paged(s, q, items)
}

// getDeletedKey: GET /deletedkeys/{name}.
func (s *handler) getDeletedKey(q *request) (result, error) {
	d, err := s.h.GetDeletedKey(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	return ok(s.deletedBundle(q, d))
}

// listDeletedKeys: GET /deletedkeys.
func (s *handler) listDeletedKeys(q *request) (result, error) {
	ds, err := s.h.ListDeletedKeys(q.ctx, q.caller)
	if err != nil {
		return result{}, err
	}
	items := make([]deletedKeyItem, len(ds))
	for i, d := range ds {
		items[i] = deletedKeyItem{keyItem: s.item(q, d.KeyVersion, false), RecoveryID: s.rebase(q, d.RecoveryID),
			DeletedDate: unixTime(d.DeletedDate), ScheduledPurgeDate: unixTime(d.ScheduledPurgeDate)}
	}
	return paged(s, q, items)
}

// recoverDeletedKey: POST /deletedkeys/{name}/recover.
func (s *handler) recoverDeletedKey(q *request) (result, error) {
	k, err := s.h.RecoverDeletedKey(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	return ok(s.bundle(q, k))
}

// purgeDeletedKey: DELETE /deletedkeys/{name} → 204.
func (s *handler) purgeDeletedKey(q *request) (result, error) {
	if err := s.h.PurgeDeletedKey(q.ctx, q.caller, q.params[0]); err != nil {
		return result{}, err
	}
	return result{status: http.StatusNoContent}, nil
}

// backupKey: POST /keys/{name}/backup.
func (s *handler) backupKey(q *request) (result, error) {
	blob, err := s.h.BackupKey(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	return ok(valueBody{Value: blob})
}

// restoreKey: POST /keys/restore.
func (s *handler) restoreKey(q *request) (result, error) {
	var req valueBody
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if len(req.Value) == 0 {
		return result{}, badParameter("value (the key backup) is required")
	}
	k, err := s.h.RestoreKey(q.ctx, q.caller, req.Value)
	if err != nil {
		return result{}, err
	}
	return ok(s.bundle(q, k))
}

// rotateKey: POST /keys/{name}/rotate.
func (s *handler) rotateKey(q *request) (result, error) {
	k, served, err := s.h.RotateKey(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusOK, v: s.bundle(q, k), served: served}, nil
}

// paged returns one page of items: maxresults (1–PageSize) items from the
// offset in $skiptoken, with a nextLink when more follow.
func paged[T any](s *handler, q *request, items []T) (result, error) {
	qv := q.r.URL.Query()
	size := s.o.PageSize
	if m := qv.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > DefaultPageSize {
			return result{}, badParameter("maxresults %.20q: 1 to %d", m, DefaultPageSize)
		}
		size = min(n, size)
	}
	off := 0
	if t := qv.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return result{}, badParameter("$skiptoken %.20q is not valid", t)
		}
		off = min(n, len(items))
	}
	end := min(off+size, len(items))
	out := listResult[T]{Value: items[off:end]}
	if out.Value == nil {
		out.Value = []T{}
	}
	if end < len(items) {
		v := url.Values{}
		v.Set("api-version", qv.Get("api-version"))
		v.Set("maxresults", strconv.Itoa(size))
		v.Set("$skiptoken", strconv.Itoa(end))
		next := q.base + q.r.URL.EscapedPath() + "?" + v.Encode()
		out.NextLink = &next
	}
	return ok(out)
}
