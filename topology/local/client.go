package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/keyclient/azkeysclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
)

// vaultHost is the HSM's name as the workloads' clients use it. It never
// resolves: every request is routed by the environment (the private DNS
// zone, Traffic Manager and the private endpoint, in the real service) to a
// loopback address before it is dialled.
func vaultHost(hsmName string) string {
	return lowerASCII(hsmName) + ".managedhsm.invalid"
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// newTransport returns the environment's HTTP transport: it trusts only the
// endpoints' certificate and dials only 127.0.0.1.
func newTransport(certPEM []byte) (*http.Transport, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return nil, fmt.Errorf("local: no certificate to trust")
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || host != "127.0.0.1" {
				return nil, fmt.Errorf("local: refusing to dial %s: only 127.0.0.1 is allowed", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ForceAttemptHTTP2:     false,
	}, nil
}

// served is filled by the router for a request whose context carries it.
type served struct {
	pool, partition, path string
}

type servedKey struct{}

func withServed(ctx context.Context, s *served) context.Context {
	return context.WithValue(ctx, servedKey{}, s)
}

// router is the HTTP transport of one client region: for each request it
// resolves the HSM the way the region's DNS would (Traffic Manager's view,
// or a misroute), picks the path (the region's private endpoint, then the
// inter-region path when the pool is elsewhere) and sends the request to
// that path's first hop.
type router struct {
	e      *env
	region string // "" for the operator's direct path
	base   *http.Transport
}

// Do implements policy.Transporter.
func (rt *router) Do(req *http.Request) (*http.Response, error) { return rt.RoundTrip(req) }

// RoundTrip implements http.RoundTripper.
func (rt *router) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, path, err := rt.e.dialTarget(rt.region)
	sink, _ := req.Context().Value(servedKey{}).(*served)
	if sink != nil {
		sink.path = path
	}
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.URL.Host = addr // Host (the header) keeps the HSM's name
	resp, err := rt.base.RoundTrip(r2)
	if sink != nil && resp != nil {
		sink.pool = resp.Header.Get(server.HeaderServedPool)
		sink.partition = resp.Header.Get(server.HeaderServedPartition)
	}
	return resp, err
}

// credential is a principal's managed identity: it takes tokens from the
// environment's token issuer (Microsoft Entra ID, in-process: it is not
// behind the HSM's private endpoint). As in the sim, each principal holds
// one token, acquired at its first request and renewed by the first request
// after it expired, in modelled time; while the issuer is off (an identity
// outage) a principal whose token expired cannot call the HSM, and the
// error says TokenUnavailable. The SDK caches tokens on the wall clock, so
// every token is handed to it as already expired: it asks again for each
// request, and this cache decides.
type credential struct {
	e         *env
	iss       *server.TokenIssuer
	principal string
	state     bool // record Valid ↔ Expired state changes (workload identities)

	mu      sync.Mutex
	token   string
	expiry  time.Time // modelled
	expired bool
}

// tokenMargin is how much modelled life a token must have left to be used:
// the time a request takes to reach the endpoint (20 ms of wall time).
func (c *credential) tokenMargin() time.Duration {
	return time.Duration(float64(20*time.Millisecond) * c.e.scale)
}

func (c *credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if o.TenantID != "" && o.TenantID != c.iss.Tenant() {
		return azcore.AccessToken{}, fmt.Errorf("get token: tenant %q, the issuer's is %q", o.TenantID, c.iss.Tenant())
	}
	now := c.e.clk.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || !now.Add(c.tokenMargin()).Before(c.expiry) {
		tok, exp, err := c.iss.Issue(c.principal)
		if err != nil {
			if errors.Is(err, server.ErrIssuerStopped) && c.state && !c.expired {
				c.expired = true
				c.e.state(c.principal, "token", "Valid", "Expired", "token expired while Entra ID issues none")
			}
			return azcore.AccessToken{}, fmt.Errorf("%s has no valid token and Entra ID issues none (identity-outage): %w", c.principal, err)
		}
		if c.expired {
			c.expired = false
			c.e.state(c.principal, "token", "Expired", "Valid", "new token issued")
		}
		c.token, c.expiry = tok, exp
	}
	return azcore.AccessToken{Token: c.token, ExpiresOn: clock.Wall{}.Now()}, nil
}

// azkeysOptions are the SDK options of every client: the router as
// transport, no retries (the workloads' own timers decide when to try again;
// the SDK's backoff would run on the wall clock), and no challenge resource
// check (the HSM's name is not a managedhsm.azure.net host).
func (e *env) azkeysOptions(region string) *azkeys.ClientOptions {
	return &azkeys.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: &router{e: e, region: region, base: e.tr},
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableChallengeResourceVerification: true,
	}
}

// credential returns a principal's credential, one per principal (shared by
// its clients in every region, as one managed identity holds one token).
// The lab's operator takes its tokens from an issuer of its own with the
// same signing key, never switched off: an identity outage is the
// workloads' Entra ID, and the lab must still be able to inject and revert
// faults (in the sim the operator acts on the emulator directly).
func (e *env) credential(principal string) azcore.TokenCredential {
	e.credMu.Lock()
	defer e.credMu.Unlock()
	if c, ok := e.creds[principal]; ok {
		return c
	}
	c := &credential{e: e, iss: e.iss, principal: principal, state: true}
	if principal == topology.OperatorPrincipal {
		c.iss, c.state = e.opIss, false
	}
	e.creds[principal] = c
	return c
}

// KeyClient returns the key client of a principal in a region: the
// official azkeys SDK over the region's network path. Clients are cached.
func (e *env) KeyClient(principal, region string) keyclient.Client {
	k := principal + "|" + region
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[k]; ok {
		return c
	}
	c, err := azkeysclient.New(e.vaultURL, e.credential(principal), e.azkeysOptions(region))
	if err != nil {
		return failingClient{err}
	}
	e.clients[k] = simCodes{c}
	return e.clients[k]
}

// simCodes reports errors with the codes the emulator's in-process client
// (the sim) records, so that results of both providers compare and a
// scenario's errors(target, code) reads the same: Key Vault's top-level
// "Forbidden" for role and key-operation denials, whose innererror
// (ForbiddenByRbac, KeyOperationInvalid) azkeysclient reports; key states
// (KeyDisabled, ...) are the same in both.
type simCodes struct{ c keyclient.Client }

func (s simCodes) fix(err error) error {
	var ke *keyclient.Error
	if errors.As(err, &ke) && (ke.Code == server.CodeForbiddenByRBAC || ke.Code == server.CodeKeyOpNotAllowed) {
		ke.Code = server.CodeForbidden
	}
	return err
}

func (s simCodes) GetKey(ctx context.Context, name, version string) (keyclient.Key, error) {
	k, err := s.c.GetKey(ctx, name, version)
	return k, s.fix(err)
}

func (s simCodes) WrapKey(ctx context.Context, name, version string, alg keyclient.Alg, dek []byte) (keyclient.Wrapped, error) {
	w, err := s.c.WrapKey(ctx, name, version, alg, dek)
	return w, s.fix(err)
}

func (s simCodes) UnwrapKey(ctx context.Context, name string, w keyclient.Wrapped) ([]byte, error) {
	b, err := s.c.UnwrapKey(ctx, name, w)
	return b, s.fix(err)
}

// failingClient is a key client that could not be built.
type failingClient struct{ err error }

func (f failingClient) GetKey(context.Context, string, string) (keyclient.Key, error) {
	return keyclient.Key{}, f.err
}
func (f failingClient) WrapKey(context.Context, string, string, keyclient.Alg, []byte) (keyclient.Wrapped, error) {
	return keyclient.Wrapped{}, f.err
}
func (f failingClient) UnwrapKey(context.Context, string, keyclient.Wrapped) ([]byte, error) {
	return nil, f.err
}
