package sim

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/topology"
)

// The sim implements topology.DNSControl: a region's clients can be made to
// resolve the HSM to a pool region of the fault's choosing, or to nowhere.
var _ topology.DNSControl = (*env)(nil)

// CodeNameResolution is the error code of a request from a region whose
// clients resolve the HSM to nowhere.
const CodeNameResolution = "NameResolutionFailure"

// dnsTable holds the misroutes in force: client region → pool region or
// topology.DNSNowhere. Its zero value routes every region normally.
type dnsTable struct {
	mu sync.Mutex
	to map[string]string
}

// Misroute makes the clients of region resolve the HSM to pool region to,
// whatever Traffic Manager's health view (a stale or wrong private DNS
// record): their requests are served by that pool, pinned — if it is down
// they fail as unreachable — and travel the network path from region to it.
// to = topology.DNSNowhere makes every request from the region unreachable;
// to = "" restores normal resolution. Each change is recorded as a state
// change of "<region>/dns".
func (e *env) Misroute(region, to string) error {
	if !slices.ContainsFunc(e.t.Regions, func(r topology.Region) bool { return r.Name == region }) {
		return fmt.Errorf("sim: misroute: no region %q", region)
	}
	if to != "" && to != topology.DNSNowhere && !slices.ContainsFunc(e.t.HSM.Pools, func(p topology.Pool) bool { return p.Region == to }) {
		return fmt.Errorf("sim: misroute: %q is neither a pool region nor %q", to, topology.DNSNowhere)
	}
	e.dns.mu.Lock()
	if e.dns.to == nil {
		e.dns.to = map[string]string{}
	}
	was := e.dns.to[region]
	if to == "" {
		delete(e.dns.to, region)
	} else {
		e.dns.to[region] = to
	}
	e.dns.mu.Unlock()
	if was == to {
		return nil
	}
	state := func(s string) string {
		if s == "" {
			return "Normal"
		}
		return "MisroutedTo:" + s
	}
	e.state(region+"/dns", "dns", state(was), state(to), "dns-misroute")
	return nil
}

// misrouted returns where the clients of region resolve the HSM when a
// misroute is in force.
func (e *env) misrouted(region string) (string, bool) {
	e.dns.mu.Lock()
	defer e.dns.mu.Unlock()
	to, ok := e.dns.to[region]
	return to, ok
}

// callerRegion is the region the HSM routes a request from region as: the
// misroute's pool, else region itself.
func (e *env) callerRegion(region string) string {
	if to, ok := e.misrouted(region); ok && to != topology.DNSNowhere {
		return to
	}
	return region
}

// routed returns the key client's HSM client with the DNS misroute applied.
func (k *keyClient) routed() *mhsm.Client {
	c := k.hsmClient()
	c.Caller.Region = k.e.callerRegion(k.region)
	return c
}

// resolve checks name resolution for a request from region: unreachable
// when the region resolves to nowhere, or to a pinned pool that is down.
func (e *env) resolve(region, op, key string) error {
	to, ok := e.misrouted(region)
	if !ok {
		return nil
	}
	if to == topology.DNSNowhere {
		return &keyclient.Error{Class: keyclient.ErrUnreachable, Code: CodeNameResolution, Op: op, Key: key,
			Err: fmt.Errorf("%s's clients resolve the HSM to an address where nothing answers (dns-misroute)", region)}
	}
	if pl, err := e.HSM().Pool(to); err != nil || !pl.Healthy() {
		return &keyclient.Error{Class: keyclient.ErrUnreachable, Code: mhsm.CodeServiceUnavail, Op: op, Key: key,
			Err: fmt.Errorf("%s's clients resolve the HSM to %s, which is down (dns-misroute)", region, to)}
	}
	return nil
}

// misroutePath refuses a request served by another pool than the one the
// client's misroute pins it to.
func (e *env) misroutePath(client, pool string) error {
	if to, ok := e.misrouted(client); ok && to != pool {
		return fmt.Errorf("%s's clients resolve the HSM to %s, which did not serve the request (dns-misroute)", client, to)
	}
	return nil
}

// admit is what a request meets on the client side before it reaches the
// HSM: the principal needs a token (identity.go), then the HSM's name must
// resolve.
func (e *env) admit(region, principal, op, key string) error {
	if err := e.token(principal, op, key); err != nil {
		return err
	}
	return e.resolve(region, op, key)
}
