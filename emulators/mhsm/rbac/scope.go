package rbac

import (
	"fmt"
	"strings"
)

// Scope is where a role assignment applies, and the target of an
// authorization check. Valid scopes (facts §6, AC) are:
//
//	/                 the whole HSM
//	/keys             the whole HSM (a synonym of "/")
//	/keys/<key-name>  one key, all of its versions
//
// A key name is 1–127 ASCII letters, digits and '-'. Scopes are compared
// exactly: key names are case-sensitive here (the facts are silent on case).
type Scope string

// The HSM-wide scopes.
const (
	ScopeHSM  Scope = "/"
	ScopeKeys Scope = "/keys"
)

// maxKeyNameLen is the longest key name a scope accepts.
const maxKeyNameLen = 127

// KeyScope returns the scope "/keys/<name>" of one key. It does not validate
// name; ParseScope does.
func KeyScope(name string) Scope { return Scope("/keys/" + name) }

// ParseScope validates s and returns it as a Scope. Anything but "/", "/keys"
// or "/keys/<key-name>" — "", "keys", "/keys/", "/keys/a/b", a trailing
// slash, a key name with '_' or longer than 127 characters — returns an error
// wrapping ErrBadScope. ParseScope does not rewrite s: "/keys" stays "/keys".
func ParseScope(s string) (Scope, error) {
	if _, _, ok := splitScope(Scope(s)); !ok {
		return "", fmt.Errorf("scope %q: must be \"/\", \"/keys\" or \"/keys/<key-name>\" (key name: 1-%d letters, digits or '-'): %w",
			s, maxKeyNameLen, ErrBadScope)
	}
	return Scope(s), nil
}

// Validate returns nil if s is a valid scope, or an error wrapping
// ErrBadScope.
func (s Scope) Validate() error {
	_, err := ParseScope(string(s))
	return err
}

// IsHSM reports whether s is one of the HSM-wide scopes "/" and "/keys".
func (s Scope) IsHSM() bool { return s == ScopeHSM || s == ScopeKeys }

// KeyName returns the key name of a valid key scope "/keys/<name>"; ok is
// false for the HSM-wide scopes and for invalid scopes.
func (s Scope) KeyName() (name string, ok bool) {
	hsm, key, valid := splitScope(s)
	if !valid || hsm {
		return "", false
	}
	return key, true
}

// Covers reports whether an assignment at s applies to the target t: an
// HSM-wide scope covers every valid scope; a key scope covers only itself.
// Covers is false if either scope is invalid.
func (s Scope) Covers(t Scope) bool {
	sh, sk, ok := splitScope(s)
	if !ok {
		return false
	}
	th, tk, ok := splitScope(t)
	if !ok {
		return false
	}
	return sh || (!th && sk == tk)
}

// splitScope parses s: hsm is true for "/" and "/keys"; key is the key name
// of "/keys/<name>"; ok is false for an invalid scope.
func splitScope(s Scope) (hsm bool, key string, ok bool) {
	switch s {
	case ScopeHSM, ScopeKeys:
		return true, "", true
	}
	name, found := strings.CutPrefix(string(s), "/keys/")
	if !found || !validKeyName(name) {
		return false, "", false
	}
	return false, name, true
}

// validKeyName reports whether name is 1–127 ASCII letters, digits or '-'.
func validKeyName(name string) bool {
	if len(name) == 0 || len(name) > maxKeyNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}
