package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// TokenPath returns the path of the token endpoint of tenant:
// /{tenant}/oauth2/v2.0/token, the shape of Microsoft Entra ID's.
func TokenPath(tenant string) string { return "/" + tenant + "/oauth2/v2.0/token" }

// TokenURL returns the token endpoint of the emulator endpoint base (for
// example "https://127.0.0.1:8443") for tenant.
func TokenURL(base, tenant string) string { return strings.TrimSuffix(base, "/") + TokenPath(tenant) }

// tokenResponse is an OAuth 2.0 token response as Entra ID sends it.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	ExpiresOn    int64  `json:"expires_on"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
}

// tokenError is an OAuth 2.0 error response.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// tokenRequest holds the fields of a token request. client_id (or
// principal) names the principal; client_secret must match the issuer's
// secret when it has one; grant_type, when given, is client_credentials;
// scope, when given, is the audience or "<audience>/.default".
type tokenRequest struct {
	ClientID     string `json:"client_id"`
	Principal    string `json:"principal"`
	ClientSecret string `json:"client_secret"`
	GrantType    string `json:"grant_type"`
	Scope        string `json:"scope"`
}

// serveToken answers POST /{tenant}/oauth2/v2.0/token with a form
// (application/x-www-form-urlencoded) or JSON body.
func (s *handler) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, tokenError{"invalid_request", "use POST"})
		return
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, tokenError{"invalid_request", "the request body is too large"})
			return
		}
	}
	var req tokenRequest
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json") {
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, tokenError{"invalid_request", "malformed JSON body"})
			return
		}
	} else {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, tokenError{"invalid_request", "malformed form body"})
			return
		}
		req = tokenRequest{ClientID: v.Get("client_id"), Principal: v.Get("principal"), ClientSecret: v.Get("client_secret"),
			GrantType: v.Get("grant_type"), Scope: v.Get("scope")}
	}
	resp, err := s.issueFor(req)
	if err != nil {
		switch {
		case errors.Is(err, ErrIssuerStopped):
			writeJSON(w, http.StatusServiceUnavailable, tokenError{"temporarily_unavailable", err.Error()})
		case errors.Is(err, ErrBadClient):
			writeJSON(w, http.StatusUnauthorized, tokenError{"invalid_client", err.Error()})
		default:
			writeJSON(w, http.StatusBadRequest, tokenError{"invalid_request", err.Error()})
		}
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (s *handler) issueFor(req tokenRequest) (tokenResponse, error) {
	iss := s.o.Tokens
	p := req.ClientID
	if p == "" {
		p = req.Principal
	}
	if p == "" {
		return tokenResponse{}, fmt.Errorf("%w: client_id (the principal) is required", ErrBadClient)
	}
	if sec := iss.opts.ClientSecret; sec != "" && subtle.ConstantTimeCompare([]byte(sec), []byte(req.ClientSecret)) != 1 {
		return tokenResponse{}, fmt.Errorf("%w: wrong client_secret", ErrBadClient)
	}
	if req.GrantType != "" && req.GrantType != "client_credentials" {
		return tokenResponse{}, fmt.Errorf("unsupported grant_type %.40q (client_credentials)", req.GrantType)
	}
	if req.Scope != "" && !iss.scopeOK(req.Scope) {
		return tokenResponse{}, fmt.Errorf("scope %.100q: this issuer issues tokens for %s/.default only", req.Scope, iss.Audience())
	}
	tok, exp, err := iss.Issue(p)
	if err != nil {
		return tokenResponse{}, err
	}
	in := int64(exp.Sub(iss.opts.Clock.Now()).Seconds())
	return tokenResponse{TokenType: "Bearer", ExpiresIn: in, ExtExpiresIn: in, ExpiresOn: exp.Unix(),
		Resource: iss.Audience(), AccessToken: tok}, nil
}

// scopeOK reports whether a requested scope is this issuer's audience.
func (t *TokenIssuer) scopeOK(scope string) bool {
	a := strings.TrimSuffix(t.opts.Audience, "/")
	for _, sc := range strings.Fields(scope) {
		sc = strings.TrimSuffix(strings.TrimSuffix(sc, "/.default"), "/")
		if sc != a {
			return false
		}
	}
	return true
}
