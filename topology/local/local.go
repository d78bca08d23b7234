package local

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
	"github.com/hsmlab/hsmlab/topology/workloads"
)

// DefaultTimeScale is the time scale of a run whose clock the caller did
// not choose: one modelled minute per wall second.
const DefaultTimeScale = 60

// SQLServerEnv names the environment variable with a go-mssqldb connection
// string; when set (or Provider.SQLServerDSN is), SQL runs on SQL Server.
const SQLServerEnv = "HSMLAB_SQLSERVER_DSN"

// Probe error codes of the local provider (the sim's, for comparable results).
const (
	CodeRegionDown  = workloads.CodeRegionDown
	CodeUnreachable = "NetworkUnreachable"
	// CodeTokenUnavailable: the principal's token expired while Entra ID
	// issues none (an identity outage).
	CodeTokenUnavailable = "TokenUnavailable"
)

// Provider is the local provider. Its zero value is ready to use: it falls
// back to pure-Go partitions without SoftHSM and to the embedded storage
// data path without Azurite, and says so.
type Provider struct {
	// SQLServerDSN runs the SQL instances' data path on SQL Server through
	// go-mssqldb ("sqlserver://user:pass@127.0.0.1:1433?database=hsmlab");
	// empty uses $HSMLAB_SQLSERVER_DSN, else the embedded data path.
	SQLServerDSN string
	// AzuritePath is the azurite-blob binary (default: FindAzurite).
	AzuritePath string
	// InstallAzurite runs scripts/install-azurite.sh (npm) when Azurite is
	// missing.
	InstallAzurite bool
	// RequireSoftHSM and RequireAzurite turn the fallbacks into errors.
	RequireSoftHSM, RequireAzurite bool
	// NoBaseLatency leaves out the topology's round-trip times (intra-region
	// on each private endpoint, inter-region on each path), which the proxies
	// otherwise add as a base delay.
	NoBaseLatency bool
	// Log receives bring-up announcements (fallbacks in capitals); nil
	// discards them.
	Log io.Writer
}

// Name returns "local".
func (*Provider) Name() string { return "local" }

// officer keys are lab material, generated once per process.
var (
	officerMu   sync.Mutex
	officerKeys []*rsa.PublicKey
)

func officers(n int) ([]*rsa.PublicKey, error) {
	officerMu.Lock()
	defer officerMu.Unlock()
	for len(officerKeys) < n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("officer key: %w", err)
		}
		officerKeys = append(officerKeys, &k.PublicKey)
	}
	return officerKeys[:n], nil
}

// env is a running local topology.
type env struct {
	p       *Provider
	t       *topology.Topology
	clk     clock.Clock
	scale   float64
	onState func(topology.StateChange)
	log     io.Writer

	tmpDir  string
	dataDir string

	parts    *partitions
	hsm      *mhsm.HSM
	iss      *server.TokenIssuer // Entra ID as the workloads see it
	opIss    *server.TokenIssuer // the lab operator's tokens (same key; never off)
	eps      map[string]*endpoint
	net      *network
	tr       *http.Transport
	vaultURL string
	admin    *restAdmin
	wl       *workloads.Set

	azMu     sync.Mutex
	az       map[string]*azurite // by region
	azDone   chan struct{}       // closed when the Azurite bring-up goroutine returns
	azErr    error
	azCancel context.CancelFunc

	mu           sync.Mutex
	closed       bool
	down         map[string]bool
	removed      map[string]bool
	misroute     map[string]string
	clients      map[string]keyclient.Client
	credMu       sync.Mutex // guards creds (KeyClient holds mu while it asks for one)
	creds        map[string]*credential
	unwrapProbes map[string]*unwrapProbe
	notes        []string
}

// unwrapProbe holds the DEK an hsm-unwrap probe unwraps again and again.
type unwrapProbe struct {
	principal, key, version string
	wrapped                 []byte
}

func (e *env) announce(loud bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.mu.Lock()
	e.notes = append(e.notes, msg)
	e.mu.Unlock()
	if e.log != nil {
		prefix := "hsmlab local: "
		if loud {
			prefix = "hsmlab local: WARNING: "
		}
		fmt.Fprintln(e.log, prefix+msg)
	}
}

// Up brings the topology up on loopback: SoftHSM partitions behind one Key
// Vault REST endpoint per pool region, toxiproxy proxies for the private
// endpoints and inter-region paths, Azurite per region with storage
// accounts, and the workload emulators reaching the HSM through azkeys. It
// then lets the environment settle in modelled time (the extended region
// receives the keys and roles, failover groups seed their secondaries): on a
// clock.Scaled it skips that time instead of waiting it out. On error it
// returns what was started, which the caller must Down.
func (p *Provider) Up(ctx context.Context, t *topology.Topology, o topology.UpOptions) (topology.Env, error) {
	clk := o.Clock
	if clk == nil {
		clk = clock.NewScaled(DefaultTimeScale)
	}
	if _, virtual := clk.(*clock.Virtual); virtual {
		return nil, errors.New("local: real components run on a wall clock: pass a clock.Scaled (hsmlab run --timescale), not the virtual clock")
	}
	e := &env{p: p, t: t, clk: clk, scale: 1, onState: o.OnState, log: p.Log, eps: map[string]*endpoint{}, az: map[string]*azurite{},
		down: map[string]bool{}, removed: map[string]bool{}, misroute: map[string]string{}, clients: map[string]keyclient.Client{}, creds: map[string]*credential{},
		unwrapProbes: map[string]*unwrapProbe{}}
	if sc, ok := clk.(*clock.Scaled); ok {
		e.scale = max(1, sc.Factor)
	}
	var err error
	if e.tmpDir, err = os.MkdirTemp("", "hsmlab-local-"); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	e.dataDir = o.DataDir
	if e.dataDir == "" {
		e.dataDir = filepath.Join(e.tmpDir, "data")
	}
	if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
		return e, err
	}
	e.announce(false, "wall clock at time scale %g× (modelled time runs %g times faster; service timers, probe intervals and the timeline are modelled time; network, TLS and HSM latencies are real and not scaled)", e.scale, e.scale)

	// Azurite starts in the background while the HSM is provisioned.
	e.startAzurites(ctx)

	if err := e.upHSM(ctx, o); err != nil {
		return e, err
	}
	if err := e.upNetwork(); err != nil {
		return e, err
	}
	if err := e.settleReplication(ctx); err != nil {
		return e, err
	}
	if err := e.upWorkloads(ctx); err != nil {
		return e, err
	}
	return e, nil
}

// upHSM builds, activates and provisions the HSM, and serves one endpoint
// per pool region.
func (e *env) upHSM(ctx context.Context, o topology.UpOptions) error {
	ps, why, err := newPartitions(e.p.RequireSoftHSM)
	if err != nil {
		return err
	}
	e.parts = ps
	cfg := e.t.HSMConfig(e.clk, o.Rand)
	cfg.NewPartition = ps.New
	cfg.OnChange = e.onHSMChange
	h, err := mhsm.New(cfg)
	if err != nil {
		return fmt.Errorf("hsm: %w", err)
	}
	e.hsm = h
	n := 0
	for _, pl := range e.t.HSM.Pools {
		n += len(pl.Partitions)
	}
	if ps.SoftHSM() {
		e.announce(false, "HSM partitions: %d SoftHSM tokens through PKCS#11 (%s), one per partition", n, ps.soft.soft.ModulePath)
	} else {
		e.announce(true, "HSM PARTITIONS ARE PURE-GO, NOT SOFTHSM: %v", why)
	}
	offs, err := officers(len(e.t.HSM.SecurityDomain.Officers))
	if err != nil {
		return err
	}
	if _, err := topology.Provision(ctx, h, e.t, offs); err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	io := server.IssuerOptions{Lifetime: e.t.Behaviour.Identity.TokenLifetime.D(), Clock: e.clk, Key: key}
	if e.iss, err = server.NewTokenIssuer(io); err != nil {
		return err
	}
	if e.opIss, err = server.NewTokenIssuer(io); err != nil {
		return err
	}
	host := vaultHost(e.t.HSM.Name)
	e.vaultURL = "https://" + host
	wallNow := clock.Wall{}.Now() // TLS checks certificates on the wall clock
	cert, certPEM, err := server.SelfSignedCert([]string{"127.0.0.1", host}, wallNow, 30*24*time.Hour)
	if err != nil {
		return err
	}
	if e.tr, err = newTransport(certPEM); err != nil {
		return err
	}
	for _, region := range h.Regions() {
		ep := &endpoint{region: region, cert: cert,
			// The HSM's modelled service time is not added: the SoftHSM
			// token's own time is real.
			handler: server.New(h, server.Options{Region: region, Tokens: e.iss, Clock: e.clk, DisableLatency: true, DisableTokenEndpoint: true})}
		e.eps[region] = ep
		if err := ep.start(); err != nil {
			return err
		}
	}
	e.admin = newRESTAdmin(e)
	return nil
}

func (e *env) upNetwork() error {
	addrs := map[string]string{}
	for r, ep := range e.eps {
		addrs[r] = ep.address()
	}
	n, err := newNetwork(e.t, addrs, !e.p.NoBaseLatency)
	e.net = n
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	base := "with the topology's round-trip times as base delay"
	if e.p.NoBaseLatency {
		base = "without base delay"
	}
	e.announce(false, "network: %d toxiproxy proxies for %d links (private endpoints and inter-region paths), %s", len(n.all), len(n.links), base)
	return nil
}

// skip moves modelled time forward on a clock that can (clock.Scaled) and
// reports whether it did.
func (e *env) skip(d time.Duration) bool {
	if s, ok := e.clk.(interface{ Skip(time.Duration) }); ok {
		s.Skip(d)
		return true
	}
	return false
}

// waitFor polls cond on the wall clock until it holds, ctx ends or limit
// passes.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	wall := clock.Wall{}
	deadline := wall.Now().Add(limit)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if wall.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %v", what, limit)
		}
		sleepWall(2 * time.Millisecond)
	}
	return nil
}

// settleReplication lets provisioning reach the extended region: every key
// and role assignment readable there.
func (e *env) settleReplication(ctx context.Context) error {
	regions := e.hsm.Regions()
	if len(regions) < 2 {
		return nil
	}
	lag := e.hsm.Config().ReplicationLag
	limit := 60 * time.Second
	if !e.skip(lag + time.Second) {
		limit += time.Duration(float64(lag) / e.scale)
	}
	op := e.Operator()
	want, err := e.hsm.ListAllRoleAssignments(ctx, op)
	if err != nil {
		return err
	}
	for _, ext := range regions[1:] {
		c := mhsm.Caller{Principal: op.Principal, Region: ext}
		err := waitFor(ctx, limit, "replication to "+ext, func() bool {
			for _, k := range e.t.HSM.Keys {
				if k.Type == "EC-HSM" {
					continue
				}
				kv, served, err := e.hsm.GetKey(ctx, c, k.Name, "")
				if err != nil || served.Region != ext || kv.Version == "" {
					return false
				}
			}
			got, err := e.hsm.ListAllRoleAssignments(ctx, c)
			return err == nil && len(got) >= len(want)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// upWorkloads starts the workload emulators on their data paths and lets
// the failover groups seed their secondaries.
func (e *env) upWorkloads(ctx context.Context) error {
	cfg := workloads.Config{Topology: e.t, Clock: e.clk, DataDir: e.dataDir, Keys: e.KeyClient,
		OnState: e.state, RegionDown: e.regionDown}
	dsn := e.p.SQLServerDSN
	if dsn == "" {
		dsn = os.Getenv(SQLServerEnv)
	}
	if len(e.t.Workloads.SQLManagedInstances) > 0 {
		if dsn != "" {
			cfg.SQLStore = func(ctx context.Context, instance string) (sqlmi.Store, error) {
				st, err := sqlmi.OpenSQLServer(ctx, dsn, instance, sqlmi.SQLServerOptions{})
				if err != nil {
					return nil, err
				}
				// A previous run's rows belong to a previous HSM.
				if err := st.Purge(ctx); err != nil {
					st.Close()
					return nil, err
				}
				return st, nil
			}
			e.announce(false, "SQL data path: SQL Server through go-mssqldb (connection string from %s)", map[bool]string{true: "the provider", false: "$" + SQLServerEnv}[e.p.SQLServerDSN != ""])
		} else {
			e.announce(false, "SQL data path: embedded (no SQL Server connection string: --sqlserver-dsn or $%s); TDE behaviour is the same emulator", SQLServerEnv)
		}
	}
	if len(e.t.Workloads.StorageAccounts) > 0 {
		<-e.azDone
		if e.azErr != nil {
			if e.p.RequireAzurite {
				return fmt.Errorf("azurite required: %w", e.azErr)
			}
			e.announce(true, "STORAGE DATA PATH IS EMBEDDED, NOT AZURITE: %v", e.azErr)
		} else {
			cfg.StorageBackend = e.azuriteBackend
			var where []string
			for _, r := range sortedKeys(e.az) {
				where = append(where, fmt.Sprintf("%s 127.0.0.1:%d (pid %d)", r, e.az[r].port, e.az[r].pid()))
			}
			e.announce(false, "storage data path: Azurite through azblob, one per region: %s", strings.Join(where, ", "))
		}
	}
	wl, err := workloads.New(ctx, cfg)
	e.wl = wl
	if err != nil {
		return err
	}
	if e.skip(time.Minute) {
		return waitFor(ctx, 30*time.Second, "failover groups seeding", wl.Settled)
	}
	return waitFor(ctx, 30*time.Second+time.Duration(float64(time.Minute)/e.scale), "failover groups seeding", wl.Settled)
}

// startAzurites starts one Azurite per region with storage accounts, in the
// background; upWorkloads waits for them.
func (e *env) startAzurites(ctx context.Context) {
	e.azDone = make(chan struct{})
	regions := map[string]bool{}
	for _, s := range e.t.Workloads.StorageAccounts {
		regions[s.Region] = true
	}
	if len(regions) == 0 {
		close(e.azDone)
		return
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.azCancel = cancel
	go func() {
		defer close(e.azDone)
		bin, err := FindAzurite(e.p.AzuritePath)
		if err != nil && e.p.InstallAzurite {
			if e.log != nil {
				fmt.Fprintln(e.log, "hsmlab local: Azurite not found; installing it with scripts/install-azurite.sh (npm)")
			}
			log := e.log
			if log == nil {
				log = io.Discard
			}
			if ierr := installAzurite(actx, log); ierr != nil {
				e.azErr = fmt.Errorf("%v; %v", err, ierr)
				return
			}
			bin, err = FindAzurite(e.p.AzuritePath)
		}
		if err != nil {
			e.azErr = err
			return
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for r := range regions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := startAzurite(actx, bin, filepath.Join(e.tmpDir, "azurite-"+r), r)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				e.azMu.Lock()
				e.az[r] = a
				e.azMu.Unlock()
			}()
		}
		wg.Wait()
		e.azErr = errors.Join(errs...)
	}()
}

// azuriteBackend is an account's data path on its region's Azurite.
func (e *env) azuriteBackend(ctx context.Context, account, region string) (storage.Backend, error) {
	e.azMu.Lock()
	a := e.az[region]
	e.azMu.Unlock()
	if a == nil {
		return nil, fmt.Errorf("no Azurite in %s", region)
	}
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	return storage.NewAzblobBackend(c, containerPrefix(account)), nil
}

// containerPrefix keeps an account's containers apart in its region's
// Azurite (lowercase letters, digits and '-').
func containerPrefix(account string) string {
	b := []byte(lowerASCII(account))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	if len(b) > 30 {
		b = b[:30]
	}
	return strings.Trim(string(b), "-") + "-"
}

func (e *env) Provider() string             { return "local" }
func (e *env) Topology() *topology.Topology { return e.t }
func (e *env) Clock() clock.Clock           { return e.clk }
func (e *env) HSM() *mhsm.HSM               { return e.hsm }
func (e *env) Operator() mhsm.Caller        { return mhsm.Caller{Principal: topology.OperatorPrincipal} }
func (e *env) Network() topology.Links      { return e.net }

// KeyAdmin returns the REST-backed key administration: key faults go
// through the Key Vault REST API, as an operator's tooling would.
func (e *env) KeyAdmin() topology.KeyAdmin { return e.admin }

// Workloads returns the runbook controls.
func (e *env) Workloads() topology.WorkloadControl { return e.wl }

// Notes returns what the result must say about this environment.
func (e *env) Notes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.notes)
}

func (e *env) state(resource, kind, from, to, reason string) {
	if e.onState != nil {
		e.onState(topology.StateChange{Time: e.clk.Now(), Resource: resource, Kind: kind, From: from, To: to, Reason: reason})
	}
}

// onHSMChange follows the emulator's partitions and pools with the real
// parts: a lost partition's token goes offline, a purged pool's endpoint
// stops. It is called with the HSM's lock held.
func (e *env) onHSMChange(c mhsm.Change) {
	e.state(c.Resource, c.Kind, c.From, c.To, c.Reason)
	switch {
	case c.Kind == "hsm-partition" && e.parts != nil:
		if tk := e.parts.token(c.Resource); tk != nil {
			tk.setOffline(c.To == mhsm.StateLost)
		}
	case c.Kind == "hsm-pool" && c.To == mhsm.StatePurged:
		e.mu.Lock()
		e.removed[c.Resource] = true
		e.mu.Unlock()
		go e.poolRemoved(c.Resource)
	}
}

// poolRemoved stops a removed pool's endpoint; under the "lost" reading its
// region's clients lose their private endpoint as well.
func (e *env) poolRemoved(region string) {
	if ep := e.eps[region]; ep != nil {
		ep.stop()
	}
	if e.t.Behaviour.HSM.RemovedRegionAccess == topology.RemovedLost && e.net != nil {
		_ = e.net.setGone(region)
	}
}

func (e *env) regionDown(r string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.down[r]
}

// dialTarget resolves the HSM for a client region and returns the first hop
// to dial and the route. Region "" is the lab's operator: straight to the
// endpoint DNS resolves for the primary region.
func (e *env) dialTarget(client string) (string, string, error) {
	e.mu.Lock()
	closed, down, removed, mis := e.closed, e.down[client], e.removed[client], e.misroute[client]
	e.mu.Unlock()
	if closed {
		return "", "", errors.New("the environment is down")
	}
	if client == "" {
		first, _ := e.hsm.Resolve(e.hsm.PrimaryRegion())
		regions := append([]string{first}, e.hsm.Regions()...)
		for _, r := range regions {
			if ep := e.eps[r]; ep != nil && ep.up() {
				return ep.address(), "direct→" + r, nil
			}
		}
		return "", "", errors.New("no HSM endpoint is up")
	}
	if down {
		return "", "", fmt.Errorf("%s is down", client)
	}
	if removed && e.t.Behaviour.HSM.RemovedRegionAccess == topology.RemovedLost {
		return "", "", fmt.Errorf("the HSM pool of %s was removed and its clients lost access (behaviour.hsm.removedRegionAccess: lost)", client)
	}
	pool := mis
	if pool == "" {
		var ok bool
		if pool, ok = e.hsm.Resolve(client); !ok {
			return "", "", errors.New("DNS resolves the HSM to no pool: every pool is down")
		}
	}
	return e.net.route(client, pool)
}

// SetRegionDown takes a region out — its HSM pool, its endpoint, its
// private endpoint's proxies and its workloads — or brings it back.
func (e *env) SetRegionDown(region string, down bool) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errors.New("local: the environment is down")
	}
	was := e.down[region]
	e.down[region] = down
	removed := e.removed[region]
	e.mu.Unlock()
	if was == down {
		return nil
	}
	var errs []error
	ep := e.eps[region]
	hasPool := slices.Contains(e.hsm.Regions(), region) && !removed
	if down && e.wl != nil {
		// The region's services go first: their timers (a failover
		// group's grace period) start at the outage, not after the
		// endpoints have closed their connections.
		e.wl.SetRegionDown(region, true)
	}
	if down {
		if hasPool {
			errs = append(errs, e.hsm.SetRegionDown(region, true))
			ep.stop()
		}
		errs = append(errs, e.net.setRegionDown(region, true))
	} else {
		if hasPool {
			errs = append(errs, ep.start())
		}
		errs = append(errs, e.net.setRegionDown(region, false))
		if hasPool {
			errs = append(errs, e.hsm.SetRegionDown(region, false))
		}
	}
	if !down && e.wl != nil {
		e.wl.SetRegionDown(region, false)
	}
	from, to := "Up", "Down"
	if !down {
		from, to = to, from
	}
	e.state(region, "region", from, to, "region-outage")
	return errors.Join(errs...)
}

// SetIssuing implements topology.IdentityControl: the token issuer stops
// (or resumes) issuing tokens; tokens already issued stay valid.
func (e *env) SetIssuing(on bool) error {
	if e.iss.Issuing() == on {
		return nil
	}
	e.iss.SetIssuing(on)
	from, to := "Issuing", "NotIssuing"
	if on {
		from, to = to, from
	}
	e.state("entra-id", "identity", from, to, "identity-outage")
	return nil
}

// Misroute implements topology.DNSControl: clients in region resolve the
// HSM to pool region to (their requests then take the inter-region path);
// "" restores Traffic Manager's resolution.
func (e *env) Misroute(region, to string) error {
	if to != "" && !slices.Contains(e.hsm.Regions(), to) {
		return fmt.Errorf("local: misroute %s to %s: no pool there (pools: %s)", region, to, strings.Join(e.hsm.Regions(), ", "))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if to == "" {
		delete(e.misroute, region)
	} else {
		e.misroute[region] = to
	}
	return nil
}

// Probe performs one observation; its latency is measured on the wall
// clock.
func (e *env) Probe(ctx context.Context, p topology.ProbeSpec) topology.ProbeResult {
	wall := clock.Wall{}
	start := wall.Now()
	var res topology.ProbeResult
	if p.Type == topology.ProbeHSMUnwrap {
		res = e.probeUnwrap(ctx, p)
	} else if e.wl == nil {
		res = topology.ProbeResult{Code: "Error", Err: "local: no workloads"}
	} else {
		res = e.wl.Probe(ctx, p)
	}
	res.Latency = max(wall.Now().Sub(start), time.Microsecond)
	return res
}

func (e *env) probeUnwrap(ctx context.Context, p topology.ProbeSpec) topology.ProbeResult {
	region := p.Target
	res := topology.ProbeResult{Region: region}
	if e.regionDown(region) {
		res.Code, res.Err = CodeRegionDown, region+" is down"
		return res
	}
	id := region + "|" + p.As + "|" + p.Key
	e.mu.Lock()
	up := e.unwrapProbes[id]
	e.mu.Unlock()
	if up == nil {
		as, key := workloads.ProbeIdentity(e.t, region, p.As, p.Key)
		// The probe's DEK is wrapped once, by the lab's operator, so the
		// probe measures unwrap only.
		dek := make([]byte, 32)
		_, _ = rand.Read(dek)
		w, err := e.hsm.WrapKey(ctx, e.Operator(), key, "", partition.RSAOAEP256, dek)
		if err != nil {
			code, _ := mhsm.Code(err)
			res.Code, res.Err = code, err.Error()
			return res
		}
		up = &unwrapProbe{principal: as, key: key, version: w.Version, wrapped: w.Value}
		e.mu.Lock()
		e.unwrapProbes[id] = up
		e.mu.Unlock()
	}
	var sv served
	_, err := e.KeyClient(up.principal, region).UnwrapKey(withServed(ctx, &sv), up.key,
		keyclient.Wrapped{KeyVersion: up.version, Alg: keyclient.RSAOAEP256, Value: up.wrapped})
	res.Path = sv.path
	if err != nil {
		res.Code, res.Err = keyclient.Code(err), err.Error()
		switch {
		case res.Code != "":
		case errors.Is(err, server.ErrIssuerStopped):
			res.Code = CodeTokenUnavailable
		case errors.Is(err, keyclient.ErrUnreachable):
			res.Code = CodeUnreachable
		default:
			res.Code = "Error"
		}
		return res
	}
	res.OK = true
	res.Pool, res.Partition, res.KeyVersion = sv.pool, sv.partition, up.version
	return res
}

// LostWrites returns the acknowledged writes missing from the target's
// current primary copy.
func (e *env) LostWrites(ctx context.Context, target string, acked []string) ([]string, error) {
	if e.wl == nil {
		return nil, errors.New("local: no workloads")
	}
	return e.wl.LostWrites(ctx, target, acked)
}

// PlaintextDEKs scans the run's data directory (SQL's embedded store, the
// disk images) for plaintext DEKs. Azurite keeps its blobs in memory.
func (e *env) PlaintextDEKs() ([]string, error) {
	if e.wl == nil {
		return nil, nil
	}
	return e.wl.PlaintextDEKs()
}

// Down stops everything the environment started, in reverse order: the
// workloads' timers, the proxies, the endpoints, the HSM and its tokens
// (the last environment of the process closes the PKCS#11 module and
// removes the token directory), the Azurite processes (by process group),
// and the temporary directory. Idempotent.
func (e *env) Down(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	var errs []error
	if e.azCancel != nil {
		e.azCancel()
	}
	e.wl.Close()
	e.net.close()
	for _, ep := range e.eps {
		ep.stop()
	}
	if e.tr != nil {
		e.tr.CloseIdleConnections()
	}
	if e.hsm != nil {
		e.hsm.Close()
	}
	if err := e.parts.release(); err != nil {
		errs = append(errs, fmt.Errorf("softhsm: %w", err))
	}
	if e.azDone != nil {
		<-e.azDone
	}
	e.azMu.Lock()
	for _, a := range e.az {
		a.stop()
	}
	e.az = map[string]*azurite{}
	e.azMu.Unlock()
	if e.tmpDir != "" {
		if err := os.RemoveAll(e.tmpDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var (
	_ topology.Env               = (*env)(nil)
	_ topology.IdentityControl   = (*env)(nil)
	_ topology.DNSControl        = (*env)(nil)
	_ topology.KeyAdministration = (*env)(nil)
	_ topology.PlaintextScanner  = (*env)(nil)
	_ topology.Noter             = (*env)(nil)
	_ topology.KeyVersionControl = (*env)(nil)
	_ topology.StepChecker       = (*Provider)(nil)
)

// Supported lists the fault and action types the local provider performs,
// with the real action each maps to. Misconfiguration faults (applied to the
// topology before bring-up) are supported whatever their type.
var Supported = map[string]string{
	"partition-loss":           "the emulator fails the partitions and their SoftHSM tokens go offline (Health and every operation fail) until restored or healed",
	"rack-power-loss":          "the partitions on the rack fail and their SoftHSM tokens go offline",
	"region-outage":            "the region's services go down, its pool goes down, its REST endpoint and its private endpoint's proxies stop",
	"extended-region-removal":  "the pool is purged and its endpoint stops; with removedRegionAccess: lost, the region's private endpoint stops too",
	"replication-lag-window":   "a rotation over the Key Vault REST API, then the primary region (or its pool) goes down as in region-outage",
	"key-revocation":           "disable, soft-delete or role-assignment removal over the Key Vault REST API (azkeys and the RBAC paths), as the operator",
	"role-assignment-removal":  "role assignments removed over the Key Vault REST API (RBAC paths)",
	"key-delete":               "soft delete over the Key Vault REST API",
	"key-purge-attempt":        "soft delete and purge over the Key Vault REST API (purge protection refuses it with 403)",
	"key-version-disable":      "versions disabled over the Key Vault REST API",
	"key-rotation":             "a new key version in the emulator",
	"link-latency":             "latency toxics (upstream and downstream) on every toxiproxy proxy of the link",
	"link-cut":                 "the link's toxiproxy proxies stop (connections refused, open ones closed)",
	"private-endpoint-down":    "the region's private-endpoint proxies stop",
	"dns-misroute":             "the region's clients resolve the HSM to the other pool and take the inter-region proxy",
	"identity-outage":          "the token issuer stops issuing; the workloads' tokens run out at their modelled lifetime",
	"sql-failover":             "failover group failover on the SQL emulators",
	"sql-revalidate":           "revalidation on the SQL emulators",
	"asr-failover":             "boots the VMs' replicas through the target region's DES (azkeys through that region's private endpoint)",
	"asr-reenable-replication": "re-creates the VMs' replicas",
	"enable-key":               "versions enabled over the Key Vault REST API",
	"restore-role-assignment":  "a role assignment created over the Key Vault REST API",
	"set-key-version":          "the workload re-wraps its DEKs with the version through azkeys",
}

// unsupported says why the local provider refuses a known type.
var unsupported = map[string]string{
	"security-domain-loss":         "losing every partition for good and rebuilding the HSM from the security domain is not implemented on real tokens (topology.DisasterRecovery)",
	"restore-from-security-domain": "losing every partition for good and rebuilding the HSM from the security domain is not implemented on real tokens (topology.DisasterRecovery)",
	"hsm-saturation":               "its load is generated in modelled time, which the time scale compresses: real SoftHSM tokens cannot serve a modelled rate multiplied by the scale",
}

// CheckStep implements topology.StepChecker: a step the provider has no
// real action for is refused before the run starts.
func (*Provider) CheckStep(kind, typ string, value any) error {
	if _, ok := value.(interface {
		ApplyTopology(*topology.Topology) error
	}); ok {
		return nil // a misconfiguration: applied to the topology before bring-up
	}
	if _, ok := Supported[typ]; ok {
		return nil
	}
	if why, ok := unsupported[typ]; ok {
		return fmt.Errorf("the local provider cannot perform %s %q: %s", kind, typ, why)
	}
	names := make([]string, 0, len(Supported))
	for n := range Supported {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Errorf("the local provider has no real action for %s %q (it performs: %s, and misconfiguration faults)", kind, typ, strings.Join(names, ", "))
}

// SetKeyVersion implements topology.KeyVersionControl on the workloads.
func (e *env) SetKeyVersion(ctx context.Context, workload, version string) error {
	if e.wl == nil {
		return errors.New("local: set key version: no workloads")
	}
	return e.wl.SetKeyVersion(ctx, workload, version)
}

// PartitionHealth reports the health of one partition's token,
// "<region>/<partition>": nil while it serves, an error wrapping
// partition.ErrUnavailable while it is offline (lost).
func (e *env) PartitionHealth(ctx context.Context, name string) error {
	tk := e.parts.token(name)
	if tk == nil {
		return fmt.Errorf("local: no partition %q", name)
	}
	return tk.Health(ctx)
}

// EndpointAddr returns the address of a pool region's REST endpoint (for
// tests and diagnostics) and whether it is serving.
func (e *env) EndpointAddr(region string) (string, bool) {
	ep := e.eps[region]
	if ep == nil {
		return "", false
	}
	return ep.address(), ep.up()
}

// ProcessIDs lists the processes the environment started (Azurite).
func (e *env) ProcessIDs() []int {
	e.azMu.Lock()
	defer e.azMu.Unlock()
	var out []int
	for _, a := range e.az {
		out = append(out, a.pid())
	}
	sort.Ints(out)
	return out
}
