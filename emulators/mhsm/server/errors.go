package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Sentinel errors of the token issuer and the credentials.
var (
	// ErrIssuerStopped: the issuer is switched off (an identity outage); it
	// mints no tokens, while tokens already issued stay valid until they expire.
	ErrIssuerStopped = errors.New("token issuer is not issuing tokens")
	// ErrInvalidToken: a token is malformed, badly signed, expired, or for
	// another audience, issuer or tenant.
	ErrInvalidToken = errors.New("invalid access token")
	// ErrBadClient: the token request names no principal or a wrong secret.
	ErrBadClient = errors.New("invalid client credentials")
)

// Error codes this package sends besides the core's (mhsm.Code). Key Vault
// answers every permission and key-state refusal with 403 and the code
// "Forbidden"; the reason is in error.innererror.code.
const (
	CodeUnauthorized     = "Unauthorized"
	CodeForbidden        = mhsm.CodeForbidden
	CodeForbiddenByRBAC  = "ForbiddenByRbac"     // innererror of a role denial (as Key Vault with RBAC)
	CodeKeyOpNotAllowed  = "KeyOperationInvalid" // innererror: the key's key_ops do not allow the operation
	CodeBuiltInRole      = "RoleDefinitionNotWritable"
	CodeBadParameter     = mhsm.CodeBadParameter
	CodeNotFound         = mhsm.CodeNotFound
	CodeAssignmentAbsent = "RoleAssignmentNotFound"
	CodeRoleAbsent       = "RoleDefinitionNotFound"
	CodeMethodNotAllowed = "MethodNotAllowed"
	CodeTooLarge         = "RequestBodyTooLarge"
	CodeNotImplemented   = "NotImplemented"
	CodeInternal         = "InternalError"
)

// apiError is an error response in Key Vault's shape:
//
//	{"error":{"code":"Forbidden","message":"…","innererror":{"code":"KeyDisabled"}}}
type apiError struct {
	Status     int
	Code       string // error.code: what azcore.ResponseError.ErrorCode shows
	Inner      string // error.innererror.code; "" for none
	Message    string
	RetryAfter int // seconds; 0 sends no Retry-After
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badParameter(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, CodeBadParameter, format, args...)
}

// fromCore turns an error of the HSM into the response the real service
// sends. The top-level code of every 403 is "Forbidden" (what Key Vault
// sends and what azkeys surfaces as ResponseError.ErrorCode); the fine code
// — KeyDisabled, KeyExpired, KeyNotYetValid, PurgeProtected,
// HSMNotActivated, ForbiddenByRbac, KeyOperationInvalid — goes in
// error.innererror.code. A 429 carries Retry-After computed from the
// partition's backlog.
func fromCore(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	code, status := mhsm.Code(err)
	e := &apiError{Status: status, Code: code, Message: err.Error()}
	switch {
	case status == http.StatusForbidden:
		e.Code, e.Inner = CodeForbidden, code
		switch {
		case errors.Is(err, rbac.ErrForbidden):
			e.Inner = CodeForbiddenByRBAC
		case errors.Is(err, mhsm.ErrOperationNotAllowed):
			e.Inner = CodeKeyOpNotAllowed
		case errors.Is(err, rbac.ErrForbiddenChange):
			e.Inner = CodeBuiltInRole
		}
	case status == http.StatusTooManyRequests:
		e.RetryAfter = 1
		var te *mhsm.ThrottledError
		if errors.As(err, &te) {
			e.RetryAfter = retryAfterSeconds(te)
		}
	case errors.Is(err, rbac.ErrAssignmentNotFound):
		e.Code = CodeAssignmentAbsent
	case status == http.StatusInternalServerError:
		// Partition errors the core passes through unmapped are the
		// caller's fault (wrong input length, unsupported algorithm) or an
		// unavailable partition; anything else stays a 500.
		switch {
		case errors.Is(err, partition.ErrBadInput), errors.Is(err, partition.ErrUnsupportedAlg),
			errors.Is(err, partition.ErrUnsupportedSpec), errors.Is(err, partition.ErrDecrypt):
			e.Status, e.Code = http.StatusBadRequest, CodeBadParameter
		case errors.Is(err, partition.ErrNoKey):
			e.Status, e.Code = http.StatusNotFound, mhsm.CodeKeyNotFound
		case errors.Is(err, partition.ErrUnavailable), errors.Is(err, partition.ErrNotActivated):
			e.Status, e.Code = http.StatusServiceUnavailable, mhsm.CodeServiceUnavail
		default:
			e.Code = CodeInternal
		}
	}
	return e
}

// retryAfterSeconds is when the backlog will have drained to the queue
// bound, rounded up to whole seconds (at least 1). The facts do not say
// whether Managed HSM sends Retry-After at all (facts §3c: UNCONFIRMED).
func retryAfterSeconds(te *mhsm.ThrottledError) int {
	over := (te.Backlog - te.MaxQueue).Seconds()
	s := int(math.Ceil(over))
	if s < 1 {
		s = 1
	}
	return s
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	InnerError *innerError `json:"innererror,omitempty"`
}

type innerError struct {
	Code string `json:"code"`
}

// writeError sends e.
func writeError(w http.ResponseWriter, e *apiError) {
	body := errorBody{Error: errorDetail{Code: e.Code, Message: e.Message}}
	if e.Inner != "" {
		body.Error.InnerError = &innerError{Code: e.Inner}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, body)
}
