package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
)

// serveConfig holds the flags of `hsmlab serve`.
type serveConfig struct {
	out, hostOut   string
	listen         string
	ports          []int
	tenant         string
	noSecret       bool
	tokenLifetime  time.Duration
	replicationLag time.Duration
	noLatency      bool
	officerBits    int
	seed           uint64
}

func newServeCmd() *cobra.Command {
	var c serveConfig
	var ports string
	cmd := &cobra.Command{
		Use:   "serve [topology.yaml]",
		Short: "Serve the topology's Managed HSM over the Key Vault REST API, one HTTPS endpoint per region",
		Long: `serve builds the topology's Managed HSM, activates it (it generates the security
officers' keys and downloads the security domain to them), creates the topology's
keys and role assignments, and serves it over the Key Vault REST API: one HTTPS
endpoint per pool region on 127.0.0.1, so that the official azkeys client, curl or
the REST clients of other languages work against it. Each endpoint serves as a
client in its region would be served (nearest healthy pool).

Tokens come from the emulator's own token endpoint,
POST https://<endpoint>/<tenant>/oauth2/v2.0/token with client_id=<principal>
and client_secret=<secret> (written to the output directory). This is lab
equipment: it listens on loopback only unless told otherwise, and anyone holding
the client secret can act as any principal.

The output directory receives the TLS certificate to trust, the client secret,
the security domain and the officers' private keys (lab material: 0600).

Ctrl-C (SIGINT) or SIGTERM stops it cleanly.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if c.ports, err = parsePorts(ports); err != nil {
				return badInput(err)
			}
			top, err := loadTopology(args)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, top, c, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.out, "out", "", "directory for the lab material (default: a new temporary directory)")
	f.StringVar(&c.hostOut, "host-out", "", "the --out directory as the user sees it, for the printed examples (containers)")
	f.StringVar(&c.listen, "listen", "127.0.0.1", "address to listen on (keep loopback; 0.0.0.0 only inside a container)")
	f.StringVar(&ports, "ports", "", "ports of the regions' endpoints, primary first, comma-separated (default: random free ports)")
	f.StringVar(&c.tenant, "tenant", server.DefaultTenant, "tenant ID of the token issuer")
	f.BoolVar(&c.noSecret, "no-client-secret", false, "issue tokens without a client secret (loopback labs only)")
	f.DurationVar(&c.tokenLifetime, "token-lifetime", 0, "lifetime of issued tokens (default: the topology's behaviour.identity.tokenLifetime)")
	f.DurationVar(&c.replicationLag, "replication-lag", 0, "override the topology's replication lag (6m: the extended region sees keys and roles that late)")
	f.BoolVar(&c.noLatency, "no-latency", false, "answer without waiting for the HSM's modelled service and queueing time")
	f.IntVar(&c.officerBits, "officer-key-bits", 3072, "RSA size of the generated security officers' keys")
	f.Uint64Var(&c.seed, "seed", 0, "seed of the emulator's random source (version IDs); 0 picks one")
	return cmd
}

func parsePorts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("--ports %q: comma-separated port numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// endpoint is one region's listener.
type endpoint struct {
	region string
	url    string
	srv    *http.Server
}

// runServe builds, activates and populates the HSM, serves it until ctx
// ends, then shuts the endpoints down and returns nil.
func runServe(ctx context.Context, top *topology.Topology, c serveConfig, w io.Writer) error {
	clk := clock.Wall{}
	if c.seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		c.seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	cfg := top.HSMConfig(clk, mrand.New(mrand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15)))
	if c.replicationLag > 0 {
		cfg.ReplicationLag = c.replicationLag
	}
	nRegions := 1
	if cfg.Extended != nil {
		nRegions = 2
	}
	if len(c.ports) > 0 && len(c.ports) != nRegions {
		return badInput(fmt.Errorf("--ports names %d port(s) for %d region(s)", len(c.ports), nRegions))
	}
	h, err := mhsm.New(cfg)
	if err != nil {
		return badInput(err)
	}
	defer h.Close()

	out, err := prepareOut(c.out)
	if err != nil {
		return err
	}
	hostOut := c.hostOut
	if hostOut == "" {
		hostOut = out
	}
	officers, err := officerKeys(top, c.officerBits)
	if err != nil {
		return err
	}
	pubs := make([]*rsa.PublicKey, len(officers))
	for i, o := range officers {
		pubs[i] = &o.key.PublicKey
	}
	prov, err := topology.Provision(ctx, h, top, pubs)
	if err != nil {
		return badInput(err)
	}
	if err := writeLabMaterial(out, prov.SecurityDomain, officers); err != nil {
		return err
	}

	secret := ""
	if !c.noSecret {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = base64.RawURLEncoding.EncodeToString(b[:])
		if err := os.WriteFile(filepath.Join(out, "client-secret.txt"), []byte(secret+"\n"), 0o600); err != nil {
			return err
		}
	}
	lifetime := c.tokenLifetime
	if lifetime <= 0 {
		lifetime = top.Behaviour.Identity.TokenLifetime.D()
	}
	iss, err := server.NewTokenIssuer(server.IssuerOptions{Tenant: c.tenant, Lifetime: lifetime, ClientSecret: secret, Clock: clk})
	if err != nil {
		return badInput(err)
	}
	hosts := []string{"127.0.0.1", "localhost", "::1"}
	if ip := net.ParseIP(c.listen); ip == nil || !ip.IsUnspecified() && !ip.IsLoopback() {
		hosts = append(hosts, c.listen)
	}
	cert, certPEM, err := server.SelfSignedCert(hosts, clk.Now(), 30*24*time.Hour)
	if err != nil {
		return err
	}
	certFile := filepath.Join(out, "tls-cert.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return err
	}

	regions := h.Regions()
	replicated := clk.Now().Add(cfg.ReplicationLag)
	var eps []*endpoint
	defer func() { shutdown(eps) }()
	stopped := make(chan error, len(regions)) // an endpoint that stops on its own
	for i, region := range regions {
		port := 0
		if len(c.ports) > 0 {
			port = c.ports[i]
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(c.listen, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("serve %s: %w", region, err)
		}
		host := c.listen
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		ep := &endpoint{region: region, url: "https://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))}
		ep.srv = &http.Server{
			Handler:           server.New(h, server.Options{Region: region, Tokens: iss, Clock: clk, DisableLatency: c.noLatency}),
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
		}
		go func() {
			if err := ep.srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
				stopped <- fmt.Errorf("%s: %w", region, err)
			}
		}()
		eps = append(eps, ep)
	}

	printServe(w, top, h, c, iss, hostOut, secret, eps, replicated)
	select {
	case <-ctx.Done():
	case err := <-stopped:
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(w, "\nhsmlab serve: stopping")
	return nil
}

// shutdown stops every endpoint gracefully (in-flight requests finish,
// up to 5 s) and waits until their listeners are closed.
func shutdown(eps []*endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ep := range eps {
		if err := ep.srv.Shutdown(ctx); err != nil {
			_ = ep.srv.Close()
		}
	}
}

func prepareOut(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "hsmlab-serve-")
		if err != nil {
			return "", err
		}
		return d, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

const labWarning = `# hsmlab LAB MATERIAL — not for production.
# Whoever holds a quorum of these officer keys and the security domain can
# recover the emulated HSM's keys. Generated by hsmlab serve.
`

// officer is a security officer with the RSA key pair that holds the
// officer's share of the security domain.
type officer struct {
	name string
	key  *rsa.PrivateKey
}

// officerKeys generates one RSA key per security officer of the topology
// (at least three: the security domain needs them, facts §4).
func officerKeys(top *topology.Topology, bits int) ([]officer, error) {
	names := top.HSM.SecurityDomain.Officers
	for i := len(names); i < 3; i++ {
		names = append(names, fmt.Sprintf("officer-%d", i+1))
	}
	out := make([]officer, len(names))
	for i, n := range names {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("officer key %s: %w", n, err)
		}
		out[i] = officer{name: n, key: k}
	}
	return out, nil
}

// writeLabMaterial writes the security domain and each officer's private
// key (PKCS#8 PEM), readable by the owner only.
func writeLabMaterial(out string, blob interface{ Marshal() ([]byte, error) }, officers []officer) error {
	data, err := blob.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "security-domain.json"), data, 0o600); err != nil {
		return err
	}
	for _, o := range officers {
		der, err := x509.MarshalPKCS8PrivateKey(o.key)
		if err != nil {
			return err
		}
		p := append([]byte(labWarning), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
		if err := os.WriteFile(filepath.Join(out, "officer-"+o.name+".key.pem"), p, 0o600); err != nil {
			return err
		}
	}
	readme := labWarning + `
security-domain.json       the security domain (hsmlab's format), quorum of officer keys needed
officer-*.key.pem          the security officers' RSA private keys
tls-cert.pem               the endpoints' self-signed certificate: trust it (curl --cacert)
client-secret.txt          the token endpoint's client secret
`
	return os.WriteFile(filepath.Join(out, "README.txt"), []byte(readme), 0o600)
}

// examplePrincipal returns a principal and a key of the topology such that
// the principal may read the key, for the printed examples.
func examplePrincipal(top *topology.Topology) (string, string) {
	if len(top.HSM.Keys) == 0 {
		return "", ""
	}
	key := top.HSM.Keys[0].Name
	for _, a := range top.RoleAssignments {
		r, ok := topology.LookupRole(a.Role)
		if ok && r.Allows(rbac.KeysRead) && rbac.Scope(a.Scope).Covers(rbac.KeyScope(key)) {
			return a.Principal, key
		}
	}
	return "", key
}

func printServe(w io.Writer, top *topology.Topology, h *mhsm.HSM, c serveConfig, iss *server.TokenIssuer, out, secret string, eps []*endpoint, replicated time.Time) {
	cfg := h.Config()
	fmt.Fprintf(w, "hsmlab serve: %s (topology %s) is activated and serves %d region(s); seed %d\n", h.Name(), top.Name, len(eps), c.seed)
	fmt.Fprintf(w, "  lab material (officer keys, security domain, TLS certificate, client secret): %s\n", out)
	fmt.Fprintf(w, "  tenant %s · tokens live %v · replication lag %v · latency model %s\n",
		iss.Tenant(), iss.Lifetime(), cfg.ReplicationLag, map[bool]string{true: "off", false: "on"}[c.noLatency])
	principal, key := examplePrincipal(top)
	if principal == "" {
		principal = "<principal>"
	}
	if key == "" {
		key = "<key>"
	}
	cacert := filepath.Join(out, "tls-cert.pem")
	secretArg, goSecret := "", ""
	if secret != "" {
		secretArg = " -d client_secret=" + secret
		goSecret = fmt.Sprintf(", Secret: %q", secret)
	}
	for i, ep := range eps {
		role := "extended"
		if i == 0 {
			role = "primary"
		}
		tokenURL := server.TokenURL(ep.url, iss.Tenant())
		fmt.Fprintf(w, "\n%s (%s): %s\n", ep.region, role, ep.url)
		if i > 0 {
			fmt.Fprintf(w, "  the topology's keys and roles reach this pool at %s (replication lag %v; --replication-lag to shorten)\n",
				replicated.Format("15:04:05"), cfg.ReplicationLag)
		}
		fmt.Fprintf(w, "  curl (a token for %s, then get key %s):\n", principal, key)
		fmt.Fprintf(w, "    TOKEN=$(curl -s --cacert %s -d client_id=%s%s %s | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\n",
			cacert, principal, secretArg, tokenURL)
		fmt.Fprintf(w, "    curl -s --cacert %s -H \"Authorization: Bearer $TOKEN\" '%s/keys/%s?api-version=%s'\n", cacert, ep.url, key, server.APIVersion)
		fmt.Fprintf(w, "  Go (azkeys; imports azcore, azkeys and github.com/hsmlab/hsmlab/emulators/mhsm/server):\n")
		fmt.Fprintf(w, "    certPEM, _ := os.ReadFile(%q)\n", cacert)
		fmt.Fprintf(w, "    hc, _ := server.TrustingClient(certPEM)\n")
		fmt.Fprintf(w, "    cred := &server.HTTPCredential{TokenURL: %q, Principal: %q%s, Client: hc}\n", tokenURL, principal, goSecret)
		fmt.Fprintf(w, "    c, _ := azkeys.NewClient(%q, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}, DisableChallengeResourceVerification: true})\n", ep.url)
		fmt.Fprintf(w, "    k, err := c.GetKey(context.Background(), %q, \"\", nil)\n", key)
	}
	if len(eps) > 1 {
		fmt.Fprintf(w, "\nWrites go to the primary; the extended region sees them after the replication lag (%v).\n", cfg.ReplicationLag)
	}
	fmt.Fprintln(w, "Ctrl-C stops the endpoints.")
}
