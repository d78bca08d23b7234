// Package sim is the in-process provider: it brings a topology up inside the
// process under the run's virtual clock — the Managed HSM emulator with
// pure-Go partitions per region, the workload emulators with embedded data
// paths, and in-process network links (intra-region, inter-region, through
// each private endpoint) whose latency faults can raise and which faults can
// cut. Hours of modelled time run in milliseconds, deterministically for a
// seed.
//
// Unwrap latency in the sim = the modelled network round trip (the client
// region's path to the serving pool: intra-region RTT, or the inter-region
// link's RTT, plus any injected latency) + the HSM's modelled queueing and
// service time at the partition's documented capacity.
package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
)

// Provider is the sim provider. Its zero value is ready to use.
type Provider struct{}

// Name returns "sim".
func (Provider) Name() string { return "sim" }

// Error codes the sim's network and regions produce.
const (
	CodeRegionDown  = "RegionDown"         // the probe's own region is out
	CodeUnreachable = "NetworkUnreachable" // no network path to the serving pool
)

// officer keys are lab material, generated once per process and shared by
// every run: RSA key generation would otherwise dominate a sim run.
var (
	officerMu   sync.Mutex
	officerKeys []*rsa.PublicKey
	officerPriv []*rsa.PrivateKey // kept for security-domain recovery (dr.go)
)

func officers(n int) ([]*rsa.PublicKey, error) {
	officerMu.Lock()
	defer officerMu.Unlock()
	for len(officerKeys) < n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("sim: officer key: %w", err)
		}
		officerKeys = append(officerKeys, &k.PublicKey)
		officerPriv = append(officerPriv, k)
	}
	return officerKeys[:n], nil
}

// Up builds the environment and lets it settle: provisioning writes reach
// the extended region after the replication lag, so on a virtual clock Up
// advances past it and the run starts from a steady state.
func (Provider) Up(ctx context.Context, t *topology.Topology, o topology.UpOptions) (topology.Env, error) {
	clk := o.Clock
	if clk == nil {
		clk = clock.NewVirtual(time.Time{})
	}
	e := &env{t: t, clk: clk, rnd: o.Rand, onState: o.OnState, down: map[string]bool{}, net: newNetwork(t)}
	e.virt, _ = clk.(*clock.Virtual)
	h, err := e.newHSM(nil)
	if err != nil {
		return nil, fmt.Errorf("sim: hsm: %w", err)
	}
	e.hsm = h
	offs, err := officers(len(t.HSM.SecurityDomain.Officers))
	if err != nil {
		return e, err
	}
	prov, err := topology.Provision(ctx, h, t, offs)
	if err != nil {
		return e, fmt.Errorf("sim: %w", err)
	}
	if err := e.keepRecoveryMaterial(ctx, prov); err != nil {
		return e, fmt.Errorf("sim: %w", err)
	}
	e.unwrapProbes = map[string]*unwrapProbe{}
	if e.virt != nil {
		// The extended region receives the keys and roles after the lag.
		e.virt.Advance(t.Behaviour.HSM.ReplicationLag.D() + time.Second)
	}
	if err := e.upWorkloads(ctx, o.DataDir); err != nil {
		return e, fmt.Errorf("sim: %w", err)
	}
	if e.virt != nil {
		// Let the failover groups seed their secondaries.
		e.virt.Advance(time.Minute)
	}
	return e, nil
}

type env struct {
	t       *topology.Topology
	clk     clock.Clock
	virt    *clock.Virtual
	rnd     *mrand.Rand
	hsm     *mhsm.HSM // replaced by RestoreHSM (dr.go): read it with HSM()
	dr      recovery
	net     *network
	onState func(topology.StateChange)

	wl      *workloads
	dataDir string
	tmpDir  string // removed by Down when the sim made it

	mu           sync.Mutex
	down         map[string]bool
	unwrapProbes map[string]*unwrapProbe

	dns dnsTable // DNS misroutes (dns.go)
	ids tokens   // Entra ID tokens (identity.go)
}

func (e *env) Provider() string             { return "sim" }
func (e *env) Topology() *topology.Topology { return e.t }
func (e *env) Clock() clock.Clock           { return e.clk }
func (e *env) Operator() mhsm.Caller        { return mhsm.Caller{Principal: topology.OperatorPrincipal} }
func (e *env) Network() topology.Links      { return e.net }

// HSM returns the current HSM: the provisioned one, or the one RestoreHSM
// rebuilt from the security domain.
func (e *env) HSM() *mhsm.HSM {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hsm
}

// Down stops the workloads and releases the HSM; a data directory the sim
// created itself is removed. Idempotent.
func (e *env) Down(ctx context.Context) error {
	e.closeWorkloads()
	e.closeRecovery()
	if h := e.HSM(); h != nil {
		h.Close()
	}
	if e.tmpDir != "" {
		os.RemoveAll(e.tmpDir)
		e.tmpDir = ""
	}
	return nil
}

func (e *env) state(resource, kind, from, to, reason string) {
	if e.onState != nil {
		e.onState(topology.StateChange{Time: e.clk.Now(), Resource: resource, Kind: kind, From: from, To: to, Reason: reason})
	}
}

// SetRegionDown takes a region out: its HSM pool, its private endpoint
// (and with it DNS resolution from the region), and its workloads.
func (e *env) SetRegionDown(region string, down bool) error {
	e.mu.Lock()
	was := e.down[region]
	e.down[region] = down
	e.mu.Unlock()
	if was == down {
		return nil
	}
	if h := e.HSM(); slices.Contains(h.Regions(), region) {
		if err := h.SetRegionDown(region, down); err != nil {
			return err
		}
	}
	e.setRegionWorkloads(region, down)
	from, to := "Up", "Down"
	if !down {
		from, to = to, from
	}
	e.state(region, "region", from, to, "region-outage")
	return nil
}

func (e *env) regionDown(r string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.down[r]
}

// path checks the network path from a client region to the pool that
// served it and returns its round-trip time.
func (e *env) path(client, pool string) (time.Duration, string, error) {
	if e.regionDown(client) {
		return 0, "", fmt.Errorf("%s is down", client)
	}
	if e.t.Behaviour.HSM.RemovedRegionAccess == topology.RemovedLost && e.removed(client) {
		return 0, "", fmt.Errorf("the HSM pool of %s was removed and its clients lost access (behaviour.hsm.removedRegionAccess: lost)", client)
	}
	if err := e.misroutePath(client, pool); err != nil {
		return 0, "", err
	}
	return e.net.path(client, pool)
}

// removed reports whether the topology had a pool in region that the HSM no
// longer has (the extended region was removed).
func (e *env) removed(region string) bool {
	had := slices.ContainsFunc(e.t.HSM.Pools, func(p topology.Pool) bool { return p.Region == region })
	return had && !slices.Contains(e.HSM().Regions(), region)
}

// Probe performs one observation.
func (e *env) Probe(ctx context.Context, p topology.ProbeSpec) topology.ProbeResult {
	switch p.Type {
	case topology.ProbeHSMUnwrap:
		return e.probeUnwrap(ctx, p)
	}
	return e.probeWorkload(ctx, p)
}

// keyClient is a workload's key client: the HSM seen from a region through
// the sim's network.
type keyClient struct {
	e      *env
	region string
	c      *mhsm.Client
	served mhsm.Served
}

// KeyClient returns the key client of a principal in a region.
func (e *env) KeyClient(principal, region string) keyclient.Client {
	kc := &keyClient{e: e, region: region}
	kc.c = mhsm.NewClient(e.HSM(), principal, region)
	kc.c.Observe = func(_ string, s mhsm.Served) { kc.served = s }
	return kc
}

func (k *keyClient) net(op, key string) error {
	if _, _, err := k.e.path(k.region, k.served.Region); err != nil {
		return &keyclient.Error{Class: keyclient.ErrUnreachable, Code: CodeUnreachable, Op: op, Key: key, Err: err}
	}
	return nil
}

func (k *keyClient) pre(op, key string) error {
	if k.e.regionDown(k.region) {
		return &keyclient.Error{Class: keyclient.ErrUnreachable, Code: CodeRegionDown, Op: op, Key: key, Err: errors.New(k.region + " is down")}
	}
	return k.e.admit(k.region, k.c.Caller.Principal, op, key)
}

// GetKey implements keyclient.Client.
func (k *keyClient) GetKey(ctx context.Context, name, version string) (keyclient.Key, error) {
	if err := k.pre("getKey", name); err != nil {
		return keyclient.Key{}, err
	}
	out, err := k.routed().GetKey(ctx, name, version)
	if err != nil {
		return out, err
	}
	return out, k.net("getKey", name)
}

// WrapKey implements keyclient.Client.
func (k *keyClient) WrapKey(ctx context.Context, name, version string, alg keyclient.Alg, dek []byte) (keyclient.Wrapped, error) {
	if err := k.pre("wrapKey", name); err != nil {
		return keyclient.Wrapped{}, err
	}
	out, err := k.routed().WrapKey(ctx, name, version, alg, dek)
	if err != nil {
		return out, err
	}
	return out, k.net("wrapKey", name)
}

// UnwrapKey implements keyclient.Client.
func (k *keyClient) UnwrapKey(ctx context.Context, name string, w keyclient.Wrapped) ([]byte, error) {
	if err := k.pre("unwrapKey", name); err != nil {
		return nil, err
	}
	out, err := k.routed().UnwrapKey(ctx, name, w)
	if err != nil {
		return nil, err
	}
	return out, k.net("unwrapKey", name)
}
