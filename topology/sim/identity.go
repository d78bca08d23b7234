package sim

import (
	"fmt"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/topology"
)

// The sim implements topology.IdentityControl: Microsoft Entra ID issuing
// (or not) the tokens the workloads' managed identities present to the HSM.
var _ topology.IdentityControl = (*env)(nil)

// CodeTokenUnavailable is the error code of a request whose principal's
// token expired while Entra ID issues none.
const CodeTokenUnavailable = "TokenUnavailable"

// identityResource is the resource name of Entra ID's state changes.
const identityResource = "entra-id"

// tokens is Entra ID as the sim's clients see it. Each principal holds one
// token, acquired at its first request and renewed by the first request
// after it expired (behaviour.identity.tokenLifetime after issue). While
// issuing is stopped a principal with no valid token cannot call the HSM.
// Its zero value issues.
type tokens struct {
	mu      sync.Mutex
	stopped bool
	expiry  map[string]time.Time // principal → when its token expires
	expired map[string]bool      // principals refused for want of a token
}

// SetIssuing stops (false) or resumes (true) issuing tokens; tokens already
// issued stay valid until they expire. Recorded as a state change of
// "entra-id" (Issuing ↔ NotIssuing). Idempotent.
func (e *env) SetIssuing(on bool) error {
	e.ids.mu.Lock()
	changed := e.ids.stopped == on
	e.ids.stopped = !on
	e.ids.mu.Unlock()
	if changed {
		from, to := "Issuing", "NotIssuing"
		if on {
			from, to = to, from
		}
		e.state(identityResource, "identity", from, to, "identity-outage")
	}
	return nil
}

// token makes sure principal holds a valid token, renewing an expired one
// when Entra ID issues. Without one the request fails with class
// ErrUnreachable and code TokenUnavailable: the key store is never reached,
// so the workloads treat it like a network error (SQL MI unavailable, not
// Inaccessible). The facts are silent on how SQL MI reacts to an identity
// outage; this is the lab's reading. A principal's first refusal and its
// next token are recorded as state changes of the principal (Valid ↔
// Expired).
func (e *env) token(principal, op, key string) error {
	now := e.clk.Now()
	e.ids.mu.Lock()
	if e.ids.expiry == nil {
		e.ids.expiry, e.ids.expired = map[string]time.Time{}, map[string]bool{}
	}
	if exp, ok := e.ids.expiry[principal]; ok && now.Before(exp) {
		e.ids.mu.Unlock()
		return nil
	}
	if e.ids.stopped {
		first := !e.ids.expired[principal]
		e.ids.expired[principal] = true
		e.ids.mu.Unlock()
		if first {
			e.state(principal, "token", "Valid", "Expired", "token expired while Entra ID issues none")
		}
		return &keyclient.Error{Class: keyclient.ErrUnreachable, Code: CodeTokenUnavailable, Op: op, Key: key,
			Err: fmt.Errorf("%s has no valid token and Entra ID issues none (identity-outage)", principal)}
	}
	e.ids.expiry[principal] = now.Add(e.t.Behaviour.Identity.TokenLifetime.D())
	back := e.ids.expired[principal]
	delete(e.ids.expired, principal)
	e.ids.mu.Unlock()
	if back {
		e.state(principal, "token", "Expired", "Valid", "new token issued")
	}
	return nil
}
