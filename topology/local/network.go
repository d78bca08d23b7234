package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"

	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/topology"
)

// delayToxic delays every chunk by a fixed number of microseconds, to
// within about 0.1 ms. It is the provider's latency toxic: the topology's
// round-trip times (1.5 ms inside a region) are finer than the stock latency
// toxic's milliseconds, and Go timers in a mostly idle process wake up to a
// millisecond late (they ride the poller's millisecond timeouts), which the
// stock toxic passes on. A timer covers all but the last millisecond; the
// rest is waited out yielding the processor.
type delayToxic struct {
	DelayUS int64 `json:"delay_us"`
}

const delayToxicType = "hsmlab_delay"

func init() {
	toxics.Register(delayToxicType, new(delayToxic))
	// Some stock toxics (bandwidth) trace through zerolog's global logger;
	// nothing else in hsmlab uses zerolog.
	zlog.Logger = zerolog.Nop()
}

func (t *delayToxic) GetBufferSize() int { return 1024 }

func (t *delayToxic) Pipe(stub *toxics.ToxicStub) {
	d := time.Duration(t.DelayUS) * time.Microsecond
	wall := clock.Wall{}
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			now := wall.Now()
			if sleep := d - now.Sub(c.Timestamp); sleep > 0 {
				if !waitUntil(wall, now.Add(sleep), stub.Interrupt) {
					stub.Output <- c // interrupted: exit fast, drop nothing
					return
				}
				// As toxiproxy's latency toxic does: delays further down
				// the chain add to this one instead of absorbing it.
				c.Timestamp = c.Timestamp.Add(sleep)
			}
			stub.Output <- c
		}
	}
}

// waitUntil waits for the wall clock to reach due; false when interrupted.
func waitUntil(wall clock.Wall, due time.Time, interrupt <-chan struct{}) bool {
	if coarse := due.Sub(wall.Now()) - time.Millisecond; coarse > 0 {
		fired := make(chan struct{})
		tm := wall.AfterFunc(coarse, func() { close(fired) })
		select {
		case <-fired:
		case <-interrupt:
			tm.Stop()
			return false
		}
	}
	for wall.Now().Before(due) {
		select {
		case <-interrupt:
			return false
		default:
			runtime.Gosched()
		}
	}
	return true
}

// link is one named link of the topology (a private endpoint or an
// inter-region path) and the toxiproxy proxies that carry it.
type link struct {
	name    string
	extra   time.Duration // injected one-way latency
	cut     bool
	reset   bool
	kbps    int
	proxies []*proxy
}

// proxy is one toxiproxy proxy: a hop of a route.
type proxy struct {
	tp     *toxiproxy.Proxy
	link   *link
	region string        // the region whose outage stops it
	base   time.Duration // the topology's round trip on this hop (downstream delay)
}

// network is the environment's links: one toxiproxy proxy from each
// region's private endpoint to each pool region (its own pool directly, the
// others through the inter-region path), and one proxy per direction of each
// inter-region path. Link faults act on every proxy of a link; a region
// outage stops the proxies in the region.
type network struct {
	srv    *toxiproxy.ApiServer
	t      *topology.Topology
	public bool

	mu     sync.Mutex
	links  map[string]*link
	pe     map[string]string    // client region → its private endpoint's name
	routes map[[2]string]*proxy // (client, pool) → first hop
	inter  map[[2]string]*proxy // (from, to) → inter-region proxy toward to
	direct map[string]string    // pool region → endpoint address
	down   map[string]bool      // regions out
	gone   map[string]bool      // regions whose clients lost the HSM for good (a removed pool, "lost" reading)
	all    []*proxy
	closed bool
}

// newNetwork builds the proxies for endpoints (pool region → address) and
// starts them. On error the caller must close what was built.
func newNetwork(t *topology.Topology, endpoints map[string]string, baseLatency bool) (*network, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	n := &network{srv: srv, t: t, public: t.HSM.PublicNetworkAccess, links: map[string]*link{}, pe: map[string]string{},
		routes: map[[2]string]*proxy{}, inter: map[[2]string]*proxy{}, direct: endpoints, down: map[string]bool{}, gone: map[string]bool{}}
	rtt := func(a, b string) time.Duration {
		if !baseLatency {
			return 0
		}
		d, _ := t.RTT(a, b)
		return d
	}
	for _, l := range t.Network.Links {
		name := topology.LinkName(l.Between[0], l.Between[1])
		lk := &link{name: name}
		n.links[name] = lk
		for _, to := range []string{l.Between[0], l.Between[1]} {
			from := l.Between[0]
			if to == from {
				from = l.Between[1]
			}
			addr, ok := endpoints[to]
			if !ok {
				continue // no pool there
			}
			p, err := n.add(lk, name+">"+to, addr, to, rtt(from, to))
			if err != nil {
				return n, err
			}
			n.inter[[2]string{from, to}] = p
		}
	}
	for _, pe := range t.Network.PrivateEndpoints {
		lk := &link{name: pe.Name}
		n.links[pe.Name] = lk
		if _, ok := n.pe[pe.Region]; ok {
			continue // the region's first private endpoint carries its clients
		}
		n.pe[pe.Region] = pe.Name
		for _, pool := range sortedKeys(endpoints) {
			up, base := endpoints[pool], rtt(pe.Region, pool)
			if pool != pe.Region {
				ip, ok := n.inter[[2]string{pe.Region, pool}]
				if !ok {
					continue // no path from this region to that pool
				}
				up, base = ip.tp.Listen, 0
			}
			p, err := n.add(lk, pe.Name+">"+pool, up, pe.Region, base)
			if err != nil {
				return n, err
			}
			n.routes[[2]string{pe.Region, pool}] = p
		}
	}
	return n, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (n *network) add(lk *link, name, upstream, region string, base time.Duration) (*proxy, error) {
	tp := toxiproxy.NewProxy(n.srv, name, "127.0.0.1:0", upstream)
	if err := n.srv.Collection.Add(tp, true); err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	p := &proxy{tp: tp, link: lk, region: region, base: base}
	lk.proxies = append(lk.proxies, p)
	n.all = append(n.all, p)
	if base > 0 {
		if err := setToxic(p, "base", delayToxicType, "downstream", map[string]any{"delay_us": base.Microseconds()}); err != nil {
			return p, err
		}
	}
	return p, nil
}

// setToxic replaces the toxic called name on a proxy; nil attrs removes it.
func setToxic(p *proxy, name, typ, stream string, attrs map[string]any) error {
	if p.tp.Toxics.GetToxic(name) != nil {
		if err := p.tp.Toxics.RemoveToxic(context.Background(), name); err != nil {
			return fmt.Errorf("proxy %s: remove toxic %s: %w", p.tp.Name, name, err)
		}
	}
	if attrs == nil {
		return nil
	}
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		return err
	}
	if _, err := p.tp.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
		return fmt.Errorf("proxy %s: add toxic %s: %w", p.tp.Name, name, err)
	}
	return nil
}

// route returns the address a client in region dials to reach the pool of
// region pool, and the route's description (as the sim writes it).
func (n *network) route(client, pool string) (string, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", "", errors.New("the network is shut down")
	}
	if !n.public {
		pe, ok := n.pe[client]
		if !ok {
			return "", "", fmt.Errorf("no private endpoint in %s and public network access is disabled", client)
		}
		p, ok := n.routes[[2]string{client, pool}]
		if !ok {
			return "", "", fmt.Errorf("no network path from %s to %s", client, pool)
		}
		return p.tp.Listen, pe + "→" + pool, nil
	}
	if client == pool {
		addr, ok := n.direct[pool]
		if !ok {
			return "", "", fmt.Errorf("no endpoint in %s", pool)
		}
		return addr, pool, nil
	}
	p, ok := n.inter[[2]string{client, pool}]
	if !ok {
		return "", "", fmt.Errorf("no network path from %s to %s", client, pool)
	}
	return p.tp.Listen, pool, nil
}

// Links lists the link names, sorted.
func (n *network) Links() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return sortedKeys(n.links)
}

func (n *network) get(name string) (*link, error) {
	l, ok := n.links[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", topology.ErrUnknownLink, name)
	}
	if n.closed {
		return nil, errors.New("the network is shut down")
	}
	return l, nil
}

// SetLatency adds extra one-way latency to every proxy of a link: a
// latency toxic upstream and one downstream, so a round trip through the
// link takes 2×extra longer (as in the sim). 0 removes them.
func (n *network) SetLatency(name string, extra time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.get(name)
	if err != nil {
		return err
	}
	if extra < 0 {
		return fmt.Errorf("link %s: negative latency %v", name, extra)
	}
	l.extra = extra
	var attrs map[string]any
	if extra > 0 {
		attrs = map[string]any{"delay_us": extra.Microseconds()}
	}
	var errs []error
	for _, p := range l.proxies {
		for _, stream := range []string{"upstream", "downstream"} {
			errs = append(errs, setToxic(p, "latency-"+stream, delayToxicType, stream, attrs))
		}
	}
	return errors.Join(errs...)
}

// SetCut cuts a link (its proxies stop: connections are refused, and those
// open are closed) or restores it.
func (n *network) SetCut(name string, cut bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.get(name)
	if err != nil {
		return err
	}
	l.cut = cut
	return n.reconcileLocked()
}

// SetReset makes the link reset every connection as soon as data flows
// (toxiproxy's reset_peer), or stops.
func (n *network) SetReset(name string, on bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.get(name)
	if err != nil {
		return err
	}
	l.reset = on
	var errs []error
	for _, p := range l.proxies {
		var attrs map[string]any
		if on {
			attrs = map[string]any{"timeout": 0}
		}
		errs = append(errs, setToxic(p, "reset", "reset_peer", "upstream", attrs))
	}
	return errors.Join(errs...)
}

// SetBandwidth limits the link to kbps KB/s each way (0 removes the limit).
func (n *network) SetBandwidth(name string, kbps int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.get(name)
	if err != nil {
		return err
	}
	if kbps < 0 {
		return fmt.Errorf("link %s: negative bandwidth %d", name, kbps)
	}
	l.kbps = kbps
	var errs []error
	for _, p := range l.proxies {
		for _, stream := range []string{"upstream", "downstream"} {
			var attrs map[string]any
			if kbps > 0 {
				attrs = map[string]any{"rate": kbps}
			}
			errs = append(errs, setToxic(p, "bandwidth-"+stream, "bandwidth", stream, attrs))
		}
	}
	return errors.Join(errs...)
}

// setRegionDown stops (or restarts) the proxies in a region.
func (n *network) setRegionDown(region string, down bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.down[region] = down
	return n.reconcileLocked()
}

// setGone stops the proxies in a region for good.
func (n *network) setGone(region string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.gone[region] = true
	return n.reconcileLocked()
}

// reconcileLocked runs each proxy that should run and stops the others.
func (n *network) reconcileLocked() error {
	var errs []error
	for _, p := range n.all {
		want := !p.link.cut && !n.down[p.region] && !n.gone[p.region]
		p.tp.Lock()
		running := p.tp.Enabled
		p.tp.Unlock()
		switch {
		case want && !running:
			if err := p.tp.Start(); err != nil {
				errs = append(errs, fmt.Errorf("proxy %s: restart on %s: %w", p.tp.Name, p.tp.Listen, err))
			}
		case !want && running:
			p.tp.Stop()
		}
	}
	return errors.Join(errs...)
}

// addrs lists the proxies' listen addresses (for tests and the report).
func (n *network) addrs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, p := range n.all {
		out = append(out, p.tp.Name+"="+p.tp.Listen)
	}
	return out
}

// close stops and removes every proxy. Idempotent.
func (n *network) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	_ = n.srv.Collection.Clear()
}

var (
	_ topology.Links      = (*network)(nil)
	_ topology.LinkShaper = (*network)(nil)
)
