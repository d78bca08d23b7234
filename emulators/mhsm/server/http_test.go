package server_test

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// TestMalformedRequests: bodies and paths the service refuses, each with
// Key Vault's error shape and never a 500.
func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, envOpts{activate: true})
	createRSA(t, e.client(t, keyMgr), sqlKey)
	huge := bytes.Repeat([]byte("a"), server.DefaultMaxBody+1)
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"malformed JSON", "POST", "/keys/" + sqlKey + "/wrapkey", `{"alg":"RSA-OAEP-256","value":`, 400, "BadParameter"},
		{"JSON of the wrong type", "POST", "/keys/" + sqlKey + "/wrapkey", `["alg"]`, 400, "BadParameter"},
		{"bad base64", "POST", "/keys/" + sqlKey + "/wrapkey", `{"alg":"RSA-OAEP-256","value":"!!!not base64!!!"}`, 400, "BadParameter"},
		{"missing value", "POST", "/keys/" + sqlKey + "/wrapkey", `{"alg":"RSA-OAEP-256"}`, 400, "BadParameter"},
		{"missing alg", "POST", "/keys/" + sqlKey + "/wrapkey", `{"value":"AQID"}`, 400, "BadParameter"},
		{"empty body", "POST", "/keys/new/create", nil, 400, "BadParameter"},
		{"create without kty", "POST", "/keys/new/create", `{"key_size":2048}`, 400, "BadParameter"},
		{"bad key name", "POST", "/keys/bad_name!/create", `{"kty":"RSA-HSM"}`, 400, "BadParameter"},
		{"bad expiry", "PATCH", "/keys/" + sqlKey, `{"attributes":{"exp":-5}}`, 400, "BadParameter"},
		{"bad rotation duration", "PUT", "/keys/" + sqlKey + "/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P1X"},"action":{"type":"Rotate"}}]}`, 400, "BadParameter"},
		{"rotation too often", "PUT", "/keys/" + sqlKey + "/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P7D"},"action":{"type":"Rotate"}}]}`, 400, "BadParameter"},
		{"huge body", "POST", "/keys/" + sqlKey + "/wrapkey", huge, 413, "RequestBodyTooLarge"},
		{"unknown collection", "GET", "/secrets/x", nil, 404, "NotFound"},
		{"too deep", "GET", "/keys/a/b/c/d/e", nil, 404, "NotFound"},
		{"root", "GET", "/", nil, 404, "NotFound"},
		{"wrong method", "DELETE", "/keys/" + sqlKey + "/wrapkey", nil, 405, "MethodNotAllowed"},
		{"sign is not emulated", "POST", "/keys/" + sqlKey + "/sign", `{"alg":"RS256","value":"AQID"}`, 501, "NotImplemented"},
		{"restore garbage", "POST", "/keys/restore", `{"value":"AQID"}`, 400, "BadParameter"},
		{"bad maxresults", "GET", "/keys?maxresults=0", nil, 400, "BadParameter"},
		{"bad skiptoken", "GET", "/keys?$skiptoken=x", nil, 400, "BadParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _, body := e.do(t, keyMgr, tc.method, tc.path, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			if c := decodeErr(t, body).Error.Code; c != tc.code {
				t.Fatalf("code %s, want %s: %s", c, tc.code, body)
			}
		})
	}
	if st, _, body := e.do(t, officer, "GET", "/deletedkeys/nope", nil); st != 404 || decodeErr(t, body).Error.Code != "KeyNotFound" {
		t.Fatalf("missing deleted key: %d %s", st, body)
	}
	// Padded base64url and the standard alphabet are accepted in requests;
	// responses are unpadded base64url.
	st, _, body := e.do(t, keyMgr, "POST", "/keys/"+sqlKey+"/wrapkey", `{"alg":"RSA-OAEP-256","value":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`)
	if st != 200 || bytes.Contains(body, []byte("=")) && !bytes.Contains(body, []byte(`"kid"`)) {
		t.Fatalf("padded value: %d %s", st, body)
	}
	if bytes.Contains(body, []byte(`=",`)) || bytes.Contains(body, []byte(`="}`)) {
		t.Fatalf("response is padded: %s", body)
	}
}

// TestThrottlingAndOutage: with a queue bound (Config.MaxQueue) a burst
// beyond capacity gets 429 with Retry-After; a region outage gets 503.
func TestThrottlingAndOutage(t *testing.T) {
	vclk := clock.NewVirtual(time.Time{})
	e := newEnv(t, envOpts{activate: true, clk: vclk, cfg: func(c *mhsm.Config) {
		c.MaxQueue = 100 * time.Millisecond
		tp := mhsm.DefaultThroughput()
		r := tp[partition.KeySpec{Type: partition.RSA, Bits: 2048}]
		r.Unwrap = 0.25 // one unwrap every 4 s per partition
		tp[partition.KeySpec{Type: partition.RSA, Bits: 2048}] = r
		c.Throughput = tp
	}})
	km := e.client(t, keyMgr)
	createRSA(t, km, sqlKey)
	vclk.Advance(2 * time.Second) // key creation (1/s) booked a partition for 1 s
	w, err := km.WrapKey(ctx, sqlKey, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}
	for i := range 3 { // three partitions, one unwrap each
		if _, err := km.UnwrapKey(ctx, sqlKey, "", p, nil); err != nil {
			t.Fatalf("unwrap %d: %v", i, err)
		}
	}
	_, err = km.UnwrapKey(ctx, sqlKey, "", p, nil)
	wantResponseError(t, err, 429, "Throttled", "")
	var re *azcore.ResponseError
	errors.As(err, &re)
	if ra, _ := strconv.Atoi(re.RawResponse.Header.Get("Retry-After")); ra != 4 {
		t.Fatalf("Retry-After %q, want 4 (a 4 s backlog over a 0.1 s bound, rounded up)", re.RawResponse.Header.Get("Retry-After"))
	}
	vclk.Advance(4 * time.Second)
	if _, err := km.UnwrapKey(ctx, sqlKey, "", p, nil); err != nil {
		t.Fatalf("unwrap after Retry-After: %v", err)
	}

	if err := e.h.SetRegionDown(chennai, true); err != nil {
		t.Fatal(err)
	}
	_, err = km.UnwrapKey(ctx, sqlKey, "", p, nil)
	wantResponseError(t, err, 503, "ServiceUnavailable", "")

	// A closed HSM, and a handler without one, answer 503 too.
	if err := e.h.SetRegionDown(chennai, false); err != nil {
		t.Fatal(err)
	}
	e.h.Close()
	if st, _, body := e.do(t, keyMgr, http.MethodGet, "/keys/"+sqlKey, nil); st != 503 {
		t.Fatalf("closed HSM: %d %s", st, body)
	}
	gone := serve(t, nil, vclk, nil)
	if st, _, _ := gone.do(t, keyMgr, http.MethodGet, "/keys", nil); st != 503 {
		t.Fatalf("no HSM: %d", st)
	}
}

// TestLatencyModel: under the wall clock a response waits for the HSM's
// modelled service time (here a get at 5 ops/s: 200 ms); with the model
// off it does not.
func TestLatencyModel(t *testing.T) {
	slow := func(c *mhsm.Config) {
		tp := mhsm.DefaultThroughput()
		k := partition.KeySpec{Type: partition.RSA, Bits: 2048}
		r := tp[k]
		r.Get, r.Create = 5, 1000
		tp[k] = r
		c.Throughput = tp
	}
	for _, on := range []bool{true, false} {
		e := newEnv(t, envOpts{activate: true, latency: on, cfg: slow})
		km := e.client(t, keyMgr)
		createRSA(t, km, "k")
		start := time.Now()
		if _, err := km.GetKey(ctx, "k", "", nil); err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if on && el < 200*time.Millisecond {
			t.Errorf("latency model on: get took %v, want ≥ 200ms", el)
		}
		if !on && el >= 200*time.Millisecond {
			t.Errorf("latency model off: get took %v", el)
		}
	}
}

// TestRegionsReplicate: each endpoint serves as a client in its region;
// a key created through Chennai reaches Pune's pool after the replication
// lag (facts §2).
func TestRegionsReplicate(t *testing.T) {
	vclk := clock.NewVirtual(time.Time{})
	h := newHSM(t, vclk, func(c *mhsm.Config) {
		c.Extended = &mhsm.RegionConfig{Name: pune}
		c.AllowUnsupportedExtendedRegion = true
	})
	activate(t, h)
	vclk.Advance(7 * time.Minute)
	iss, err := server.NewTokenIssuer(server.IssuerOptions{Clock: vclk})
	if err != nil {
		t.Fatal(err)
	}
	ch := serve(t, h, vclk, func(o *server.Options) { o.Tokens = iss; o.DisableLatency = true })
	pn := serve(t, h, vclk, func(o *server.Options) { o.Tokens = iss; o.Region = pune; o.DisableLatency = true })
	createRSA(t, ch.client(t, keyMgr), sqlKey)
	_, err = pn.client(t, sqlMI).GetKey(ctx, sqlKey, "", nil)
	wantResponseError(t, err, 404, "KeyNotFound", "")
	vclk.Advance(6 * time.Minute)
	if _, err := pn.client(t, sqlMI).GetKey(ctx, sqlKey, "", nil); err != nil {
		t.Fatalf("Pune after the replication lag: %v", err)
	}
	// Chennai down: Pune serves; Chennai's endpoint routes to Pune once DNS
	// (TTL 5 s) has moved.
	if err := h.SetRegionDown(chennai, true); err != nil {
		t.Fatal(err)
	}
	_, err = ch.client(t, sqlMI).GetKey(ctx, sqlKey, "", nil)
	wantResponseError(t, err, 503, "ServiceUnavailable", "")
	vclk.Advance(6 * time.Second)
	if _, err := ch.client(t, sqlMI).GetKey(ctx, sqlKey, "", nil); err != nil {
		t.Fatalf("after the DNS TTL: %v", err)
	}
	if !strings.HasPrefix(ch.url, "https://127.0.0.1:") {
		t.Fatalf("test server on %s", ch.url)
	}
}
