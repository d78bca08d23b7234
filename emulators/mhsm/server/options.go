package server

import (
	"github.com/hsmlab/hsmlab/lab/clock"
)

// Defaults of Options.
const (
	// DefaultMaxBody bounds a request body; larger bodies get 413.
	DefaultMaxBody = 1 << 20
	// DefaultPageSize is the page size of list operations (Key Vault's
	// maxresults maximum, 25).
	DefaultPageSize = 25
)

// Options configure a handler.
type Options struct {
	// Region is the region of this endpoint: every request is made as a
	// client in it (mhsm.Caller.Region), and the HSM's routing picks the
	// pool. Empty means the primary region.
	Region string
	// Tokens verifies the bearer tokens and backs the token endpoint. Nil
	// creates an issuer with a random key, usable through the token endpoint.
	Tokens *TokenIssuer
	// Clock is the time source. Default the wall clock.
	Clock clock.Clock
	// MaxBody bounds request bodies (bytes); larger bodies are refused with
	// 413. Default DefaultMaxBody.
	MaxBody int64
	// PageSize is the number of items per page of list operations
	// (maxresults may ask for fewer). Default DefaultPageSize.
	PageSize int
	// DisableLatency sends responses as soon as they are ready instead of
	// holding them until the request's start plus the HSM's modelled
	// latency. Set it under a virtual clock that nothing advances.
	DisableLatency bool
	// DisableTokenEndpoint stops serving POST /{tenant}/oauth2/v2.0/token;
	// tokens then come only from the issuer in-process.
	DisableTokenEndpoint bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Clock == nil {
		o.Clock = clock.Wall{}
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.PageSize <= 0 || o.PageSize > DefaultPageSize {
		o.PageSize = DefaultPageSize
	}
	if o.Tokens == nil {
		t, err := NewTokenIssuer(IssuerOptions{Clock: o.Clock})
		if err != nil {
			return o, err
		}
		o.Tokens = t
	}
	return o, nil
}
