package mhsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Sentinel errors. Every error the HSM returns wraps exactly one of them
// (rbac.ErrForbidden for role denials); Code maps each to the error code and
// HTTP status the real service sends.
var (
	ErrNotActivated        = errors.New("the HSM is not activated: download the security domain first")
	ErrKeyNotFound         = errors.New("key not found")
	ErrDeletedKeyNotFound  = errors.New("deleted key not found")
	ErrKeyDisabled         = errors.New("operation is not allowed on a disabled key")
	ErrKeyNotYetValid      = errors.New("the key is not yet valid (activation date in the future)")
	ErrKeyExpired          = errors.New("the key has expired")
	ErrOperationNotAllowed = errors.New("operation is not permitted by the key's key_ops")
	ErrBadParameter        = errors.New("bad parameter")
	ErrConflict            = errors.New("conflict")
	ErrPurgeProtected      = errors.New("purge is not allowed: purge protection is on until the retention period ends")
	ErrVersionLimit        = errors.New("a key has at most 100 versions")
	ErrUnavailable         = errors.New("no HSM pool is available to serve the request")
	ErrWriteUnavailable    = errors.New("writes are not available while the primary region is down")
	ErrThrottled           = errors.New("request rate exceeds the HSM's capacity")
	ErrDecrypt             = errors.New("the ciphertext does not decrypt with this key")
	ErrDomainMismatch      = errors.New("the data belongs to an HSM with a different security domain")
	ErrRegionRefused       = errors.New("region cannot be an extended region")
	ErrNoSuchRegion        = errors.New("no such region")
	ErrNoRotationPolicy    = errors.New("the key has no rotation policy")
)

// Error codes of the Key Vault / Managed HSM data plane.
const (
	CodeForbidden      = "Forbidden"
	CodeUnauthorized   = "Unauthorized"
	CodeKeyNotFound    = "KeyNotFound"
	CodeNotFound       = "NotFound"
	CodeBadParameter   = "BadParameter"
	CodeConflict       = "Conflict"
	CodeThrottled      = "Throttled"
	CodeServiceUnavail = "ServiceUnavailable"
	CodeNotActivated   = "HSMNotActivated"
	CodeKeyDisabled    = "KeyDisabled"
	CodeKeyExpired     = "KeyExpired"
	CodeKeyNotYetValid = "KeyNotYetValid"
	CodePurgeProtected = "PurgeProtected"
	CodeDecrypt        = "BadParameter"
)

// Code returns the service error code and HTTP status for err. Unknown errors
// are 500 InternalError. For the key-state errors, Key Vault answers 403 with
// code "Forbidden"; the finer code (KeyDisabled, ...) is what the lab records
// in a run's history and what the REST server puts in the inner error.
func Code(err error) (code string, status int) {
	switch {
	case err == nil:
		return "", 200
	case errors.Is(err, rbac.ErrForbidden):
		return CodeForbidden, 403
	case errors.Is(err, ErrNotActivated):
		return CodeNotActivated, 403
	case errors.Is(err, ErrKeyNotFound), errors.Is(err, ErrDeletedKeyNotFound):
		return CodeKeyNotFound, 404
	case errors.Is(err, ErrKeyDisabled):
		return CodeKeyDisabled, 403
	case errors.Is(err, ErrKeyExpired):
		return CodeKeyExpired, 403
	case errors.Is(err, ErrKeyNotYetValid):
		return CodeKeyNotYetValid, 403
	case errors.Is(err, ErrOperationNotAllowed):
		return CodeForbidden, 403
	case errors.Is(err, ErrPurgeProtected):
		return CodePurgeProtected, 403
	case errors.Is(err, ErrBadParameter), errors.Is(err, ErrDecrypt), errors.Is(err, ErrVersionLimit),
		errors.Is(err, ErrDomainMismatch), errors.Is(err, ErrNoRotationPolicy), errors.Is(err, ErrRegionRefused),
		errors.Is(err, rbac.ErrBadScope), errors.Is(err, rbac.ErrInvalidAssignment), errors.Is(err, rbac.ErrInvalidRoleDefinition),
		errors.Is(err, rbac.ErrUnknownAction), errors.Is(err, rbac.ErrRoleNotFound):
		return CodeBadParameter, 400
	case errors.Is(err, ErrConflict), errors.Is(err, rbac.ErrConflict):
		return CodeConflict, 409
	case errors.Is(err, rbac.ErrAssignmentNotFound), errors.Is(err, ErrNoSuchRegion):
		return CodeNotFound, 404
	case errors.Is(err, rbac.ErrLimitExceeded):
		return CodeBadParameter, 400
	case errors.Is(err, rbac.ErrForbiddenChange):
		return CodeForbidden, 403
	case errors.Is(err, ErrThrottled):
		return CodeThrottled, 429
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrWriteUnavailable):
		return CodeServiceUnavail, 503
	}
	return "InternalError", 500
}

// ThrottledError is the error of a request refused because its partition's
// backlog exceeds Config.MaxQueue. It wraps ErrThrottled; Backlog and
// MaxQueue let a caller say when to retry (the REST server's Retry-After:
// the backlog drains to MaxQueue after Backlog-MaxQueue).
type ThrottledError struct {
	Partition string
	Backlog   time.Duration // queueing delay the request would have had
	MaxQueue  time.Duration // Config.MaxQueue
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: partition %s has a %v backlog", ErrThrottled, e.Partition, e.Backlog)
}

// Unwrap returns ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// cryptoErr maps a partition error to the HSM's sentinels.
func cryptoErr(op, kid string, err error) error {
	switch {
	case errors.Is(err, partition.ErrDecrypt):
		return fmt.Errorf("%s %s: %w", op, kid, ErrDecrypt)
	case errors.Is(err, partition.ErrUnsupportedAlg):
		return fmt.Errorf("%s %s: %w: %v", op, kid, ErrBadParameter, err)
	case errors.Is(err, partition.ErrUnavailable):
		return fmt.Errorf("%s %s: %w: %v", op, kid, ErrUnavailable, err)
	}
	return fmt.Errorf("%s %s: %w", op, kid, err)
}
