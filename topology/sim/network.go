package sim

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hsmlab/hsmlab/topology"
)

type link struct {
	rtt   time.Duration
	extra time.Duration // one-way, added in both directions
	cut   bool
}

// network holds the sim's links: one per inter-region path and one per
// private endpoint.
type network struct {
	t     *topology.Topology
	mu    sync.Mutex
	links map[string]*link
	pe    map[string]string // region → private endpoint name
}

func newNetwork(t *topology.Topology) *network {
	n := &network{t: t, links: map[string]*link{}, pe: map[string]string{}}
	for _, l := range t.Network.Links {
		n.links[topology.LinkName(l.Between[0], l.Between[1])] = &link{rtt: l.RTT.D()}
	}
	for _, pe := range t.Network.PrivateEndpoints {
		n.links[pe.Name] = &link{}
		if _, ok := n.pe[pe.Region]; !ok {
			n.pe[pe.Region] = pe.Name
		}
	}
	return n
}

// Links lists the link names, sorted.
func (n *network) Links() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.links))
	for k := range n.links {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (n *network) get(name string) (*link, error) {
	l, ok := n.links[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", topology.ErrUnknownLink, name)
	}
	return l, nil
}

// SetLatency sets a link's extra one-way latency.
func (n *network) SetLatency(name string, extra time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.get(name)
	if err != nil {
		return err
	}
	l.extra = extra
	return nil
}

// SetCut cuts or restores a link.
func (n *network) SetCut(name string, cut bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.get(name)
	if err != nil {
		return err
	}
	l.cut = cut
	return nil
}

// path returns the round trip from a client region to a pool region and a
// description of the route. With public network access disabled the client
// must go through its region's private endpoint.
func (n *network) path(client, pool string) (time.Duration, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var rtt time.Duration
	route := ""
	if !n.t.HSM.PublicNetworkAccess {
		name, ok := n.pe[client]
		if !ok {
			return 0, "", fmt.Errorf("no private endpoint in %s and public network access is disabled", client)
		}
		l := n.links[name]
		if l.cut {
			return 0, "", fmt.Errorf("private endpoint %s is down", name)
		}
		rtt += 2 * l.extra
		route = name + "→"
	}
	if client == pool {
		d, _ := n.t.RTT(client, pool)
		return rtt + d, route + pool, nil
	}
	l, ok := n.links[topology.LinkName(client, pool)]
	if !ok {
		return 0, "", fmt.Errorf("no network path from %s to %s", client, pool)
	}
	if l.cut {
		return 0, "", fmt.Errorf("link %s is cut", topology.LinkName(client, pool))
	}
	return rtt + l.rtt + 2*l.extra, route + pool, nil
}
