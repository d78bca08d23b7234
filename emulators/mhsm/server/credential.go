package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hsmlab/hsmlab/lab/clock"
)

// Credential is an azcore.TokenCredential that acts as one principal,
// taking tokens straight from an in-process TokenIssuer. Use it with the
// azkeys client in tests and in the simulator's REST transport.
type Credential struct {
	Issuer    *TokenIssuer
	Principal string
}

var _ azcore.TokenCredential = (*Credential)(nil)

// NewCredential returns a credential for principal from iss.
func NewCredential(iss *TokenIssuer, principal string) *Credential {
	return &Credential{Issuer: iss, Principal: principal}
}

// GetToken implements azcore.TokenCredential. The challenge's tenant, when
// the client passes one, must be the issuer's; the scopes must be the
// issuer's audience. It fails with ErrIssuerStopped while the issuer is off.
func (c *Credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if o.TenantID != "" && o.TenantID != c.Issuer.Tenant() {
		return azcore.AccessToken{}, fmt.Errorf("get token: tenant %q, the issuer's is %q", o.TenantID, c.Issuer.Tenant())
	}
	if !c.Issuer.scopeOK(strings.Join(o.Scopes, " ")) {
		return azcore.AccessToken{}, fmt.Errorf("get token: scopes %v: the issuer issues tokens for %s only", o.Scopes, c.Issuer.Audience())
	}
	tok, exp, err := c.Issuer.Issue(c.Principal)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("get token: %w", err)
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: exp, RefreshOn: exp.Add(-c.Issuer.Lifetime() / 2)}, nil
}

// HTTPCredential is an azcore.TokenCredential that obtains tokens for one
// principal from an emulator's token endpoint over HTTP (client-credentials
// grant), the way a workload would ask Microsoft Entra ID.
type HTTPCredential struct {
	// TokenURL is the token endpoint, TokenURL(base, tenant).
	TokenURL string
	// Principal is sent as client_id; Secret as client_secret (if set).
	Principal string
	Secret    string
	// Client sends the request; it must trust the emulator's certificate.
	// Nil uses http.DefaultClient.
	Client *http.Client
	// Clock converts expires_in when expires_on is absent. Default the wall clock.
	Clock clock.Clock
}

var _ azcore.TokenCredential = (*HTTPCredential)(nil)

// GetToken implements azcore.TokenCredential.
func (c *HTTPCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.Principal}}
	if c.Secret != "" {
		form.Set("client_secret", c.Secret)
	}
	if len(o.Scopes) > 0 {
		form.Set("scope", strings.Join(o.Scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("get token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := c.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("get token: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("get token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var te tokenError
		_ = json.Unmarshal(data, &te)
		err := fmt.Errorf("get token: %s: %s: %s", resp.Status, te.Error, te.Description)
		if resp.StatusCode == http.StatusServiceUnavailable {
			err = fmt.Errorf("%w (%s)", ErrIssuerStopped, err)
		}
		return azcore.AccessToken{}, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("get token: malformed token response")
	}
	exp := time.Unix(tr.ExpiresOn, 0)
	if tr.ExpiresOn == 0 {
		clk := c.Clock
		if clk == nil {
			clk = clock.Wall{}
		}
		exp = clk.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return azcore.AccessToken{Token: tr.AccessToken, ExpiresOn: exp}, nil
}
