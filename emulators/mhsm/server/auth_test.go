package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/lab/clock"
)

var challengeRE = regexp.MustCompile(`^Bearer authorization="(https://[^/"]+/([^/"]+))", resource="([^"]+)"$`)

// TestChallengeThenSuccess: a request without a token gets 401 and the
// bearer challenge; azkeys answers it (tenant from the authorization URL,
// resource https://managedhsm.azure.net) and the first operation succeeds
// with 2 HTTP requests, the next ones with 1.
func TestChallengeThenSuccess(t *testing.T) {
	e := newEnv(t, envOpts{activate: true})
	st, h, body := e.do(t, "", http.MethodPost, "/keys/k/create", `{"kty":"RSA-HSM"}`)
	if st != 401 || decodeErr(t, body).Error.Code != "Unauthorized" {
		t.Fatalf("no token: %d %s", st, body)
	}
	m := challengeRE.FindStringSubmatch(h.Get("WWW-Authenticate"))
	if m == nil {
		t.Fatalf("challenge %q", h.Get("WWW-Authenticate"))
	}
	if m[1] != e.url+"/"+server.DefaultTenant || m[2] != server.DefaultTenant || m[3] != server.Resource {
		t.Fatalf("challenge parts %q", m[1:])
	}

	km := e.client(t, keyMgr)
	before := e.requests.Load()
	createRSA(t, km, "k")
	if n := e.requests.Load() - before; n != 2 {
		t.Fatalf("first operation took %d requests, want 2 (challenge, then authorized)", n)
	}
	before = e.requests.Load()
	if _, err := km.GetKey(ctx, "k", "", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.requests.Load() - before; n != 1 {
		t.Fatalf("second operation took %d requests, want 1", n)
	}

	// Bad tokens: wrong scheme, garbage, another issuer's signature.
	other, err := server.NewTokenIssuer(server.IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.Issue(keyMgr)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"Basic abc", "Bearer", "Bearer not.a.jwt", "Bearer " + forged} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/keys/k?api-version="+server.APIVersion, nil)
		req.Header.Set("Authorization", auth)
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%.20q: %d", auth, resp.StatusCode)
		}
	}
}

// TestTokenLifetimeAndOutage: tokens expire at the issuer's clock; with
// issuing switched off (identity outage) no new token is minted but
// issued tokens keep working until they expire.
func TestTokenLifetimeAndOutage(t *testing.T) {
	vclk := clock.NewVirtual(time.Time{})
	e := newEnv(t, envOpts{activate: true, clk: vclk})
	iss, err := server.NewTokenIssuer(server.IssuerOptions{Clock: vclk, Lifetime: time.Hour, Key: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	e2 := serve(t, e.h, vclk, func(o *server.Options) { o.Tokens = iss; o.DisableLatency = true })
	tok, exp, err := iss.Issue(keyMgr)
	if err != nil || !exp.Equal(vclk.Now().Add(time.Hour)) {
		t.Fatalf("issue: %v %v", err, exp)
	}
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, e2.url+"/keys?api-version="+server.APIVersion, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e2.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	iss.SetIssuing(false)
	if _, _, err := iss.Issue(keyMgr); !errors.Is(err, server.ErrIssuerStopped) {
		t.Fatalf("issue during an outage: %v", err)
	}
	st, _, body := e2.do(t, "", http.MethodPost, server.TokenPath(server.DefaultTenant), `{"client_id":"x"}`)
	if st != 503 || !strings.Contains(string(body), "temporarily_unavailable") {
		t.Fatalf("token endpoint during an outage: %d %s", st, body)
	}
	vclk.Advance(59 * time.Minute)
	if st := get(); st != 200 {
		t.Fatalf("issued token during the outage: %d", st)
	}
	vclk.Advance(2 * time.Minute)
	if st := get(); st != 401 {
		t.Fatalf("expired token: %d", st)
	}
	iss.SetIssuing(true)
	if _, _, err := iss.Issue(keyMgr); err != nil {
		t.Fatal(err)
	}
	// A token of the same key for another audience is refused.
	aud, err := server.NewTokenIssuer(server.IssuerOptions{Clock: vclk, Audience: "https://vault.azure.net", Key: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	if tok, _, err = aud.Issue(keyMgr); err != nil {
		t.Fatal(err)
	}
	if st := get(); st != 401 {
		t.Fatalf("token for another audience: %d", st)
	}
}

// TestTokenEndpoint mints tokens over HTTP (form and JSON), with and
// without a client secret, and uses HTTPCredential with azkeys.
func TestTokenEndpoint(t *testing.T) {
	iss, err := server.NewTokenIssuer(server.IssuerOptions{ClientSecret: "s3cret", Tenant: "contoso"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{activate: true, srv: func(o *server.Options) { o.Tokens = iss }})
	path := server.TokenPath("contoso")
	form := url.Values{"client_id": {keyMgr}, "client_secret": {"s3cret"}, "grant_type": {"client_credentials"}, "scope": {server.Resource + "/.default"}}
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		TokenType   string `json:"token_type"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if tr.TokenType != "Bearer" || tr.ExpiresIn < 86000 {
		t.Fatalf("token response %+v", tr)
	}
	if p, err := iss.Verify(tr.AccessToken); err != nil || p != keyMgr {
		t.Fatalf("verify: %q %v", p, err)
	}
	tests := []struct {
		name string
		body string
		ct   string
		want int
	}{
		{"json", `{"client_id":"` + keyMgr + `","client_secret":"s3cret"}`, "application/json", 200},
		{"wrong secret", "client_id=a&client_secret=nope", "application/x-www-form-urlencoded", 401},
		{"no principal", "client_secret=s3cret", "application/x-www-form-urlencoded", 401},
		{"other resource", "client_id=a&client_secret=s3cret&scope=https://vault.azure.net/.default", "application/x-www-form-urlencoded", 400},
		{"other grant", "client_id=a&client_secret=s3cret&grant_type=password", "application/x-www-form-urlencoded", 400},
		{"malformed json", `{"client_id":`, "application/json", 400},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if st, _, _ := e.do(t, "", http.MethodGet, path, nil); st != 405 {
		t.Errorf("GET token endpoint: %d", st)
	}

	// azkeys with HTTPCredential: challenge, token over HTTP, success.
	cred := &server.HTTPCredential{TokenURL: server.TokenURL(e.url, "contoso"), Principal: keyMgr, Secret: "s3cret", Client: e.hc}
	km, err := azkeys.NewClient(e.url, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: e.hc, Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := km.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil); err != nil {
		t.Fatalf("create with HTTPCredential: %v", err)
	}
	bad := &server.HTTPCredential{TokenURL: cred.TokenURL, Principal: keyMgr, Secret: "wrong", Client: e.hc}
	if _, err := bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{server.Resource + "/.default"}}); err == nil {
		t.Fatal("wrong secret accepted")
	}
	// The in-process credential refuses another tenant's challenge.
	if _, err := server.NewCredential(iss, keyMgr).GetToken(ctx, policy.TokenRequestOptions{TenantID: "other", Scopes: []string{server.Resource + "/.default"}}); err == nil {
		t.Fatal("credential accepted another tenant")
	}
}
