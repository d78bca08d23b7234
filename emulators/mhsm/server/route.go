package server

import (
	"net/http"
	"strings"
)

// splitPath splits a URL path into its non-empty segments, so the variants
// azkeys produces — "/keys/k/" for version "", "/keys/k/wrapkey" with the
// empty version segment dropped, "//providers/..." for scope "/" — route
// like their canonical forms.
func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// isTokenPath reports whether segs is /{tenant}/oauth2/v2.0/token.
func isTokenPath(segs []string, tenant string) bool {
	return len(segs) == 4 && segs[0] == tenant && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token"
}

func eq(a, b string) bool { return strings.EqualFold(a, b) }

// methods maps HTTP methods to the handler of one path.
type methods map[string]routeFunc

// route finds the handler of method and path segments. params are the
// path's variable parts in order (key name, version, scope, ...). The
// route table is in the README and in the package tests.
func route(method string, segs []string) (routeFunc, []string, *apiError) {
	ms, params := match(segs)
	if ms == nil {
		return nil, nil, newAPIError(http.StatusNotFound, CodeNotFound, "no such resource or operation: /%.200s", strings.Join(segs, "/"))
	}
	f, found := ms[method]
	if !found {
		return nil, nil, newAPIError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method %.20s is not allowed on /%.200s", method, strings.Join(segs, "/"))
	}
	return f, params, nil
}

var notImplemented = func(s *handler, q *request) (result, error) {
	return result{}, newAPIError(http.StatusNotImplemented, CodeNotImplemented, "this operation is not emulated by hsmlab")
}

// keyOps are the POST operations on a key version.
var keyOps = map[string]routeFunc{
	"wrapkey":   (*handler).wrapKey,
	"unwrapkey": (*handler).unwrapKey,
	"encrypt":   (*handler).encrypt,
	"decrypt":   (*handler).decrypt,
	"sign":      notImplemented,
	"verify":    notImplemented,
	"release":   notImplemented,
}

func match(segs []string) (methods, []string) {
	if i := providersIndex(segs); i >= 0 {
		return matchRBAC(segs[:i], segs[i+2:])
	}
	if len(segs) == 0 {
		return nil, nil
	}
	switch {
	case eq(segs[0], "keys"):
		return matchKeys(segs[1:])
	case eq(segs[0], "deletedkeys"):
		switch len(segs) {
		case 1:
			return methods{http.MethodGet: (*handler).listDeletedKeys}, nil
		case 2:
			return methods{http.MethodGet: (*handler).getDeletedKey, http.MethodDelete: (*handler).purgeDeletedKey}, segs[1:]
		case 3:
			if eq(segs[2], "recover") {
				return methods{http.MethodPost: (*handler).recoverDeletedKey}, segs[1:2]
			}
		}
	case eq(segs[0], "securitydomain"):
		return matchSecurityDomain(segs[1:])
	case eq(segs[0], "rng"), eq(segs[0], "backup"), eq(segs[0], "restore"), eq(segs[0], "settings"):
		if len(segs) <= 2 {
			return methods{http.MethodGet: notImplemented, http.MethodPost: notImplemented, http.MethodPut: notImplemented,
				http.MethodPatch: notImplemented}, nil
		}
	}
	return nil, nil
}

func matchKeys(rest []string) (methods, []string) {
	switch len(rest) {
	case 0:
		return methods{http.MethodGet: (*handler).listKeys}, nil
	case 1:
		ms := methods{http.MethodGet: (*handler).getKey, http.MethodPut: (*handler).importKey,
			http.MethodPatch: (*handler).updateKey, http.MethodDelete: (*handler).deleteKey}
		if eq(rest[0], "restore") { // POST /keys/restore; a key called "restore" keeps the rest
			ms[http.MethodPost] = (*handler).restoreKey
		}
		return ms, []string{rest[0], ""}
	case 2:
		name, x := rest[0], rest[1]
		switch {
		case eq(x, "create"):
			return methods{http.MethodPost: (*handler).createKey}, []string{name}
		case eq(x, "backup"):
			return methods{http.MethodPost: (*handler).backupKey}, []string{name}
		case eq(x, "rotate"):
			return methods{http.MethodPost: (*handler).rotateKey}, []string{name}
		case eq(x, "versions"):
			return methods{http.MethodGet: (*handler).listVersions}, []string{name}
		case eq(x, "rotationpolicy"):
			return methods{http.MethodGet: (*handler).getRotationPolicy, http.MethodPut: (*handler).putRotationPolicy}, []string{name}
		}
		if f, found := keyOps[strings.ToLower(x)]; found {
			return methods{http.MethodPost: f}, []string{name, ""}
		}
		return methods{http.MethodGet: (*handler).getKey, http.MethodPatch: (*handler).updateKey}, []string{name, x}
	case 3:
		if f, found := keyOps[strings.ToLower(rest[2])]; found {
			return methods{http.MethodPost: f}, rest[:2]
		}
		if eq(rest[2], "attestation") {
			return methods{http.MethodGet: notImplemented}, rest[:2]
		}
	}
	return nil, nil
}

func matchSecurityDomain(rest []string) (methods, []string) {
	switch {
	case len(rest) == 1 && eq(rest[0], "download"):
		return methods{http.MethodPost: (*handler).sdDownloadOp}, nil
	case len(rest) == 2 && eq(rest[0], "download") && eq(rest[1], "pending"):
		return methods{http.MethodGet: (*handler).sdDownloadPending}, nil
	case len(rest) == 1 && eq(rest[0], "upload"):
		return methods{http.MethodGet: (*handler).sdTransferKey, http.MethodPost: (*handler).sdUploadOp}, nil
	case len(rest) == 2 && eq(rest[0], "upload") && eq(rest[1], "pending"):
		return methods{http.MethodGet: (*handler).sdUploadPending}, nil
	case len(rest) == 1 && eq(rest[0], "transferkey"):
		return methods{http.MethodGet: (*handler).sdTransferKey}, nil
	}
	return nil, nil
}

// providersIndex returns the index of "providers" followed by
// "Microsoft.Authorization" in segs, or -1.
func providersIndex(segs []string) int {
	for i := 0; i+1 < len(segs); i++ {
		if eq(segs[i], "providers") && eq(segs[i+1], "Microsoft.Authorization") {
			return i
		}
	}
	return -1
}

// matchRBAC routes /{scope}/providers/Microsoft.Authorization/{kind}[/{name}];
// params are the scope ("/", "/keys", "/keys/<name>") and the name.
func matchRBAC(scopeSegs, rest []string) (methods, []string) {
	scope := "/" + strings.Join(scopeSegs, "/")
	if len(rest) == 0 || len(rest) > 2 {
		return nil, nil
	}
	switch {
	case eq(rest[0], "roleAssignments"):
		if len(rest) == 1 {
			return methods{http.MethodGet: (*handler).listRoleAssignments}, []string{scope}
		}
		return methods{http.MethodGet: (*handler).getRoleAssignment, http.MethodPut: (*handler).putRoleAssignment,
			http.MethodDelete: (*handler).deleteRoleAssignment}, []string{scope, rest[1]}
	case eq(rest[0], "roleDefinitions"):
		if len(rest) == 1 {
			return methods{http.MethodGet: (*handler).listRoleDefinitions}, []string{scope}
		}
		return methods{http.MethodGet: (*handler).getRoleDefinition, http.MethodPut: (*handler).putRoleDefinition,
			http.MethodDelete: (*handler).deleteRoleDefinition}, []string{scope, rest[1]}
	}
	return nil, nil
}
