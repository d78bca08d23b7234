package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// APIVersion is the Key Vault REST API version the azkeys SDK (v1.5) sends.
// Earlier 7.x versions (7.0–7.6, with or without -preview) are accepted too.
const APIVersion = "2025-07-01"

// Response headers of the lab extension naming the pool region and the
// partition that served a key operation. The real service does not send
// them; clients ignore unknown headers.
const (
	HeaderServedPool      = "x-hsmlab-served-pool"
	HeaderServedPartition = "x-hsmlab-served-partition"
)

var apiVersionRE = regexp.MustCompile(`^(2025-07-01|7\.[0-9](-preview(\.[0-9]+)?)?)$`)

// handler serves one region's endpoint.
type handler struct {
	h      *mhsm.HSM
	o      Options
	clk    clock.Clock
	hsmURL string // prefix of the core's kids, replaced by the request's base URL

	mu         sync.Mutex
	sdDownload string // status of the last security-domain download ("" = none)
	sdUpload   string // status of the last upload
}

// New returns the Key Vault REST handler of h for the region opts.Region.
// A nil h answers every authenticated request with 503 (an HSM that does
// not exist or is gone). See the package documentation for the contract.
func New(h *mhsm.HSM, opts Options) http.Handler {
	o, err := opts.withDefaults()
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, newAPIError(http.StatusServiceUnavailable, mhsm.CodeServiceUnavail, "server: %v", err))
		})
	}
	s := &handler{h: h, o: o, clk: o.Clock}
	if h != nil {
		s.hsmURL = h.URL()
	}
	return s
}

// request is one authenticated request after routing.
type request struct {
	r      *http.Request
	ctx    context.Context
	caller mhsm.Caller
	body   []byte
	base   string // scheme://host of this endpoint, the base of every kid sent back
	params []string
}

// result is a handler's successful answer.
type result struct {
	status int
	v      any // nil: no body
	served mhsm.Served
	header map[string]string
}

type routeFunc func(s *handler, q *request) (result, error)

func ok(v any) (result, error) { return result{status: http.StatusOK, v: v}, nil }

// ServeHTTP authenticates, routes and answers one request.
func (s *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.clk.Now()
	segs := splitPath(r.URL.Path)
	if !s.o.DisableTokenEndpoint && isTokenPath(segs, s.o.Tokens.Tenant()) {
		s.serveToken(w, r)
		return
	}
	// Authenticate before anything else, the body included: the SDK's first
	// request has its body stripped to elicit the challenge.
	principal, aerr := s.authenticate(r)
	if aerr != nil {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s", resource="%s"`, s.authority(r), s.o.Tokens.Audience()))
		writeError(w, aerr)
		return
	}
	if aerr := checkAPIVersion(r); aerr != nil {
		writeError(w, aerr)
		return
	}
	rt, params, aerr := route(r.Method, segs)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if s.h == nil {
		writeError(w, newAPIError(http.StatusServiceUnavailable, mhsm.CodeServiceUnavail, "the HSM is not available"))
		return
	}
	body, aerr := s.readBody(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	q := &request{r: r, ctx: r.Context(), caller: mhsm.Caller{Principal: principal, Region: s.o.Region},
		body: body, base: baseURL(r), params: params}
	res, err := rt(s, q)
	if err != nil {
		writeError(w, fromCore(err))
		return
	}
	s.hold(r.Context(), start, res.served)
	if res.served.Region != "" {
		// Lab extension (not sent by Azure): which pool and partition served.
		w.Header().Set(HeaderServedPool, res.served.Region)
		w.Header().Set(HeaderServedPartition, res.served.Partition)
	}
	for k, v := range res.header {
		w.Header().Set(k, v)
	}
	if res.v == nil {
		w.WriteHeader(res.status)
		return
	}
	writeJSON(w, res.status, res.v)
}

// hold delays the response until start plus the HSM's modelled latency
// (queueing and service time), unless latency modelling is off or the
// client has gone.
func (s *handler) hold(ctx context.Context, start time.Time, served mhsm.Served) {
	lat := served.Latency()
	if s.o.DisableLatency || lat <= 0 {
		return
	}
	d := start.Add(lat).Sub(s.clk.Now())
	if d <= 0 {
		return
	}
	done := make(chan struct{})
	t := s.clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
	case <-ctx.Done():
		t.Stop()
	}
}

// authenticate returns the principal of the request's bearer token.
func (s *handler) authenticate(r *http.Request) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", newAPIError(http.StatusUnauthorized, CodeUnauthorized, "AKV10000: request is missing a Bearer or PoP token")
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", newAPIError(http.StatusUnauthorized, CodeUnauthorized, "AKV10001: the Authorization header is not a Bearer token")
	}
	p, err := s.o.Tokens.Verify(strings.TrimSpace(tok))
	if err != nil {
		return "", newAPIError(http.StatusUnauthorized, CodeUnauthorized, "AKV10022: %v", err)
	}
	return p, nil
}

// authority is the challenge's authorization URL: this endpoint's base
// followed by the tenant, where the token endpoint lives.
func (s *handler) authority(r *http.Request) string {
	return baseURL(r) + "/" + s.o.Tokens.Tenant()
}

func baseURL(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	host := r.Host
	if host == "" || strings.ContainsAny(host, " \"/,=") {
		host = "localhost"
	}
	return scheme + "://" + host
}

func checkAPIVersion(r *http.Request) *apiError {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return badParameter("the api-version query parameter is required (%s)", APIVersion)
	}
	if !apiVersionRE.MatchString(v) {
		return badParameter("the specified version (%.40q) is not recognized; use %s or 7.x", v, APIVersion)
	}
	return nil
}

// readBody reads the whole request body, refusing more than MaxBody bytes
// with 413.
func (s *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	tooLarge := newAPIError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body exceeds %d bytes", s.o.MaxBody)
	if r.ContentLength > s.o.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, badParameter("cannot read the request body: %v", err)
	}
	return body, nil
}
