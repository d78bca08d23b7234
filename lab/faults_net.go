package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hsmlab/hsmlab/topology"
)

func init() {
	Register(TypeInfo{Type: "private-endpoint-down", Kind: KindFault, New: func() any { return &PrivateEndpointDown{} },
		Summary: "The HSM's private endpoint(s) in a region go down: that region's clients cannot reach the HSM (network errors: SQL MI becomes unavailable, not Inaccessible)",
		Facts:   "azure-facts.md §8 (TDE: SQL MI special case for network errors), §11 (PL: private endpoints), §2 (MRR: a PE per region)"})
	Register(TypeInfo{Type: "dns-misroute", Kind: KindFault, New: func() any { return &DNSMisroute{} },
		Summary: "A region's clients resolve the HSM to another pool region (whatever Traffic Manager's health view), or to \"nowhere\" (unreachable)",
		Facts:   "azure-facts.md §2 (MRR: Traffic Manager routing, DNS TTL 5 s), §11 (PL: private DNS zone)"})
	Register(TypeInfo{Type: "identity-outage", Kind: KindFault, New: func() any { return &IdentityOutage{} },
		Summary: "Microsoft Entra ID issues no new tokens: workloads keep working while their tokens last (behaviour.identity.tokenLifetime), then cannot reach their keys",
		Facts:   "not in azure-facts.md: token lifetime is an assumption (behaviour.identity.tokenLifetime); seed: \"valid Azure AD credentials\" are one of the four conditions"})
}

// PrivateEndpointDown takes down every private endpoint of the HSM in a
// region (the links named after them). With public network access disabled
// the region's clients then cannot reach any pool: their key operations
// fail as unreachable — SQL MI becomes unavailable but not Inaccessible
// (facts §8) until behaviour.sql.networkErrorBuffer runs out.
type PrivateEndpointDown struct {
	Region string `yaml:"region" doc:"region whose private endpoint(s) go down" required:"true"`

	endpoints []string // the region's private endpoints (Validate)
	cut       []string
}

// Validate finds the region's private endpoints.
func (f *PrivateEndpointDown) Validate(t *topology.Topology) error {
	f.endpoints = nil
	var all []string
	for _, pe := range t.Network.PrivateEndpoints {
		if pe.Region == f.Region {
			f.endpoints = append(f.endpoints, pe.Name)
		}
		all = append(all, pe.Name+" ("+pe.Region+")")
	}
	if len(f.endpoints) == 0 {
		return fmt.Errorf("private-endpoint-down: %q has no private endpoint (private endpoints: %s)", f.Region, strings.Join(all, ", "))
	}
	return nil
}

// Describe names the endpoints.
func (f *PrivateEndpointDown) Describe() string {
	return fmt.Sprintf("private endpoint %s of %s down", strings.Join(f.endpoints, ", "), f.Region)
}

// Inject cuts every endpoint's link.
func (f *PrivateEndpointDown) Inject(ctx context.Context, env topology.Env) error {
	f.cut = nil
	for _, pe := range f.endpoints {
		if err := env.Network().SetCut(pe, true); err != nil {
			return fmt.Errorf("private-endpoint-down: %w", err)
		}
		f.cut = append(f.cut, pe)
	}
	return nil
}

// Revert restores the endpoints this fault cut. Idempotent, and safe after
// a partial Inject.
func (f *PrivateEndpointDown) Revert(ctx context.Context, env topology.Env) error {
	var errs []error
	for _, pe := range f.cut {
		if err := env.Network().SetCut(pe, false); err != nil {
			errs = append(errs, err)
		}
	}
	f.cut = nil
	return errors.Join(errs...)
}

// DNSMisroute makes a region's clients resolve the HSM's name to a pool
// region of the fault's choosing — whether or not Traffic Manager considers
// it healthy — or to an address where nothing answers (to: nowhere). Their
// requests then travel to that pool (over the inter-region link, at its
// latency) or fail as unreachable. It needs an environment that implements
// topology.DNSControl; on others Inject fails with ErrNotSupported.
type DNSMisroute struct {
	Region string `yaml:"region" doc:"region whose clients resolve wrongly" required:"true"`
	To     string `yaml:"to" doc:"pool region the HSM's name resolves to, or nowhere" required:"true"`
}

// Validate checks the region and the target.
func (f *DNSMisroute) Validate(t *topology.Topology) error {
	if !slices.ContainsFunc(t.Regions, func(r topology.Region) bool { return r.Name == f.Region }) {
		return fmt.Errorf("dns-misroute: no region %q", f.Region)
	}
	if f.To == topology.DNSNowhere {
		return nil
	}
	if _, err := poolOf(t, "dns-misroute", f.To); err != nil {
		return fmt.Errorf("%w, and to is not %q", err, topology.DNSNowhere)
	}
	return nil
}

// Describe names the misroute.
func (f *DNSMisroute) Describe() string {
	return fmt.Sprintf("%s's clients resolve the HSM to %s", f.Region, f.To)
}

func dnsControl(env topology.Env) (topology.DNSControl, error) {
	dc, ok := env.(topology.DNSControl)
	if !ok {
		return nil, fmt.Errorf("dns-misroute: DNS control on %s: %w", env.Provider(), ErrNotSupported)
	}
	return dc, nil
}

// Inject misroutes the region.
func (f *DNSMisroute) Inject(ctx context.Context, env topology.Env) error {
	dc, err := dnsControl(env)
	if err != nil {
		return err
	}
	return dc.Misroute(f.Region, f.To)
}

// Revert restores normal resolution. Idempotent.
func (f *DNSMisroute) Revert(ctx context.Context, env topology.Env) error {
	dc, err := dnsControl(env)
	if err != nil {
		return err
	}
	return dc.Misroute(f.Region, "")
}

// IdentityOutage stops Microsoft Entra ID from issuing tokens. Tokens
// already issued stay valid for behaviour.identity.tokenLifetime (an
// assumption: the facts are silent), so each workload keeps working until
// its token expires and it cannot get another; then its key operations
// fail as unreachable (the key store is never reached), until Revert
// resumes issuing. It needs an environment that implements
// topology.IdentityControl; on others Inject fails with ErrNotSupported.
type IdentityOutage struct {
	lifetime topology.Duration
}

// Validate reads the token lifetime (for the description).
func (f *IdentityOutage) Validate(t *topology.Topology) error {
	f.lifetime = t.Behaviour.Identity.TokenLifetime
	return nil
}

// Describe names the token lifetime the workloads live on.
func (f *IdentityOutage) Describe() string {
	return fmt.Sprintf("Entra ID issues no tokens (issued tokens last behaviour.identity.tokenLifetime = %v)", f.lifetime)
}

func identityControl(env topology.Env) (topology.IdentityControl, error) {
	ic, ok := env.(topology.IdentityControl)
	if !ok {
		return nil, fmt.Errorf("identity-outage: identity control on %s: %w", env.Provider(), ErrNotSupported)
	}
	return ic, nil
}

// Inject stops issuing.
func (f *IdentityOutage) Inject(ctx context.Context, env topology.Env) error {
	ic, err := identityControl(env)
	if err != nil {
		return err
	}
	return ic.SetIssuing(false)
}

// Revert resumes issuing. Idempotent.
func (f *IdentityOutage) Revert(ctx context.Context, env topology.Env) error {
	ic, err := identityControl(env)
	if err != nil {
		return err
	}
	return ic.SetIssuing(true)
}
