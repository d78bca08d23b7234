package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hsmlab/hsmlab/lab/clock"
)

// Token defaults.
const (
	// Resource is the audience of Managed HSM data-plane tokens, and the
	// resource the 401 challenge names.
	Resource = "https://managedhsm.azure.net"
	// DefaultTenant is the tenant of an issuer created without one.
	DefaultTenant = "hsmlab"
	// DefaultTokenLifetime is how long a token lives when IssuerOptions
	// sets no lifetime: 24h, the topology's identity.tokenLifetime default
	// (an assumption; not in the facts).
	DefaultTokenLifetime = 24 * time.Hour
)

// IssuerOptions configure a TokenIssuer. Zero values take the defaults.
type IssuerOptions struct {
	// Tenant is the tenant ID: the path segment of the challenge's
	// authorization URL and of the token endpoint, and the tokens' tid.
	// Letters, digits, '-', '.' and '_' only. Default DefaultTenant.
	Tenant string
	// Issuer is the tokens' iss claim. Default "https://sts.hsmlab.invalid/<tenant>/".
	Issuer string
	// Audience is the tokens' aud claim. Default Resource.
	Audience string
	// Lifetime is how long an issued token is valid. Default DefaultTokenLifetime.
	Lifetime time.Duration
	// Key is the HMAC-SHA256 signing key (at least 32 bytes); default 32
	// random bytes, so tokens are valid only for this issuer.
	Key []byte
	// ClientSecret, when set, is the secret the token endpoint requires
	// (client_secret); empty means the endpoint issues a token for any
	// principal it is asked for — acceptable only on loopback.
	ClientSecret string
	// Clock tells the time of issue and expiry. Default the wall clock.
	Clock clock.Clock
}

// TokenIssuer mints and verifies the emulator's access tokens: HS256 JWTs
// whose sub and oid are the principal. It stands in for Microsoft Entra ID.
// An issuer can be switched off (an identity outage): it then mints nothing
// while the tokens it already issued live out their lifetime. A TokenIssuer
// is safe for concurrent use.
type TokenIssuer struct {
	opts   IssuerOptions
	parser *jwt.Parser

	mu      sync.RWMutex
	stopped bool
}

// Claims are the claims of an emulator token.
type Claims struct {
	jwt.RegisteredClaims
	OID string `json:"oid"`
	TID string `json:"tid"`
}

// NewTokenIssuer returns an issuer with o's settings and defaults.
func NewTokenIssuer(o IssuerOptions) (*TokenIssuer, error) {
	if o.Tenant == "" {
		o.Tenant = DefaultTenant
	}
	if !validTenant(o.Tenant) {
		return nil, fmt.Errorf("new token issuer: tenant %q: letters, digits, '-', '.' and '_' only", o.Tenant)
	}
	if o.Issuer == "" {
		o.Issuer = "https://sts.hsmlab.invalid/" + o.Tenant + "/"
	}
	if o.Audience == "" {
		o.Audience = Resource
	}
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultTokenLifetime
	}
	if o.Clock == nil {
		o.Clock = clock.Wall{}
	}
	if o.Key == nil {
		o.Key = make([]byte, 32)
		if _, err := rand.Read(o.Key); err != nil {
			return nil, fmt.Errorf("new token issuer: %w", err)
		}
	} else {
		if len(o.Key) < 32 {
			return nil, errors.New("new token issuer: the signing key needs at least 32 bytes")
		}
		o.Key = append([]byte(nil), o.Key...)
	}
	t := &TokenIssuer{opts: o}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Audience, strings.TrimSuffix(o.Audience, "/")+"/"),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(o.Clock.Now),
	)
	return t, nil
}

func validTenant(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// Tenant returns the issuer's tenant ID.
func (t *TokenIssuer) Tenant() string { return t.opts.Tenant }

// Audience returns the audience tokens are issued for.
func (t *TokenIssuer) Audience() string { return t.opts.Audience }

// Lifetime returns the lifetime of issued tokens.
func (t *TokenIssuer) Lifetime() time.Duration { return t.opts.Lifetime }

// SetIssuing switches issuing on or off. Off models an identity outage:
// Issue returns ErrIssuerStopped and the token endpoint answers 503, but
// tokens issued before keep working until they expire. Idempotent.
func (t *TokenIssuer) SetIssuing(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = !on
}

// Issuing reports whether the issuer mints tokens.
func (t *TokenIssuer) Issuing() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return !t.stopped
}

// Issue mints a token for principal, valid from now for the issuer's
// lifetime. It returns the token and its expiry, or ErrIssuerStopped.
func (t *TokenIssuer) Issue(principal string) (string, time.Time, error) {
	if principal == "" {
		return "", time.Time{}, fmt.Errorf("issue token: %w: empty principal", ErrBadClient)
	}
	if !t.Issuing() {
		return "", time.Time{}, fmt.Errorf("issue token for %s: %w", principal, ErrIssuerStopped)
	}
	now := t.opts.Clock.Now().Truncate(time.Second)
	exp := now.Add(t.opts.Lifetime)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.opts.Issuer,
			Subject:   principal,
			Audience:  jwt.ClaimStrings{t.opts.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Minute)), // Entra's clock-skew allowance
			IssuedAt:  jwt.NewNumericDate(now),
		},
		OID: principal,
		TID: t.opts.Tenant,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.opts.Key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token for %s: %w", principal, err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, issuer, audience, tenant and validity
// window at the issuer's clock, and returns its principal (the oid claim,
// else sub). Errors wrap ErrInvalidToken. Verification works while the
// issuer is switched off.
func (t *TokenIssuer) Verify(token string) (string, error) {
	var c Claims
	if _, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.opts.Key, nil }); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.TID != "" && c.TID != t.opts.Tenant {
		return "", fmt.Errorf("%w: tenant %q, want %q", ErrInvalidToken, c.TID, t.opts.Tenant)
	}
	p := c.OID
	if p == "" {
		p = c.Subject
	}
	if p == "" {
		return "", fmt.Errorf("%w: no principal (oid or sub)", ErrInvalidToken)
	}
	return p, nil
}
