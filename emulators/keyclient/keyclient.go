// Package keyclient is the seam between the workloads and a key store: the
// small interface SQL MI, Storage and the Disk Encryption Set use to reach a
// customer-managed key. It is satisfied by the in-process Managed HSM
// emulator, by the official azkeys client against the emulator's REST
// endpoint, and by azkeys against a real Managed HSM — the workloads cannot
// tell which.
//
// A Client acts as one principal (the workload's managed identity). Errors
// are classified the way the services react to them: a reachable key store
// that says no (ErrDenied) makes SQL MI Inaccessible, while a key store that
// cannot be reached (ErrUnreachable) makes it unavailable but not
// Inaccessible (shared/reference/azure-facts.md §8).
//
// This package imports nothing of the project.
package keyclient

import (
	"context"
	"crypto/rsa"
	"errors"
	"time"
)

// Alg is a key-wrap algorithm (Key Vault JSON Web Algorithm name).
type Alg string

// Wrap algorithms used by the workloads.
const (
	RSAOAEP256 Alg = "RSA-OAEP-256"
	RSAOAEP    Alg = "RSA-OAEP"
)

// Key is the public view of one key version.
type Key struct {
	Name    string
	Version string
	Type    string // "RSA-HSM", "oct-HSM", ...
	Enabled bool
	// NotBefore and Expires are zero when unset.
	NotBefore time.Time
	Expires   time.Time
	Public    *rsa.PublicKey // nil for symmetric keys
}

// Wrapped is a wrapped data-encryption key and the key version that wrapped it.
type Wrapped struct {
	KeyVersion string
	Alg        Alg
	Value      []byte
}

// Client reaches one key store as one principal. An empty version means the
// key's current version. Implementations are safe for concurrent use.
type Client interface {
	// GetKey returns the key's public view.
	GetKey(ctx context.Context, name, version string) (Key, error)
	// WrapKey wraps dek with the key.
	WrapKey(ctx context.Context, name, version string, alg Alg, dek []byte) (Wrapped, error)
	// UnwrapKey unwraps a DEK wrapped by WrapKey; w.KeyVersion names the version.
	UnwrapKey(ctx context.Context, name string, w Wrapped) ([]byte, error)
}

// Error classes. Implementations wrap their errors so that errors.Is matches
// exactly one of these.
var (
	// ErrDenied: the key store answered and refused — key disabled, deleted
	// or missing, expired for the operation, or the principal lacks the role.
	ErrDenied = errors.New("key access denied")
	// ErrUnreachable: the key store could not be reached or did not answer
	// (network cut, DNS failure, endpoint down, region outage, timeout).
	ErrUnreachable = errors.New("key store unreachable")
	// ErrThrottled: the key store asked the caller to slow down (429).
	ErrThrottled = errors.New("key store throttled the request")
	// ErrInvalid: the request itself was wrong (bad parameter, corrupt
	// wrapped value); retrying will not help.
	ErrInvalid = errors.New("invalid key request")
)

// Class returns the error class of err: ErrDenied, ErrUnreachable,
// ErrThrottled, ErrInvalid, or nil for nil and unclassified errors.
func Class(err error) error {
	for _, c := range []error{ErrDenied, ErrUnreachable, ErrThrottled, ErrInvalid} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}

// Error is a classified key-store error that keeps the service's own error
// code (for example "KeyDisabled", "Forbidden", "KeyNotFound") for the
// run's history.
type Error struct {
	Class error  // one of the classes above
	Code  string // the service's error code
	Op    string // "wrapKey", "unwrapKey", "getKey"
	Key   string
	Err   error // the underlying error
}

func (e *Error) Error() string {
	msg := e.Op + " " + e.Key + ": " + e.Class.Error()
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the class and the underlying error.
func (e *Error) Unwrap() []error { return []error{e.Class, e.Err} }

// Code returns the service error code carried by err, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
