package topology

import (
	"context"
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// OperatorPrincipal is the identity the lab itself acts as when it brings an
// HSM to the topology's state and when faults and runbook actions act on it.
// It is granted Administrator, Crypto User and Crypto Officer on top of the
// topology's own assignments; lint never sees it.
const OperatorPrincipal = "hsmlab-operator"

// HSMConfig maps the topology's HSM to the emulator's configuration. The
// caller may set NewPartition (SoftHSM partitions, for instance) on the
// result.
func (t *Topology) HSMConfig(clk clock.Clock, rnd *rand.Rand) mhsm.Config {
	b := t.Behaviour.HSM
	cfg := mhsm.Config{
		Name:                           t.HSM.Name,
		AllowUnsupportedExtendedRegion: t.HSM.AllowUnsupportedExtendedRegion,
		SoftDeleteRetentionDays:        t.HSM.SoftDeleteRetentionDays,
		PurgeProtection:                t.HSM.PurgeProtection,
		Administrators:                 []string{OperatorPrincipal},
		ReplicationLag:                 b.ReplicationLag.D(),
		DNSTTL:                         b.DNSTTL.D(),
		PrimaryDownWritesDenied:        b.PrimaryDownWrites == WritesDenied,
		PartitionHealTime:              b.PartitionHealTime.D(),
		Throughput:                     t.throughput(),
		Nearness:                       t.Nearness,
		Clock:                          clk,
		Rand:                           rnd,
	}
	for _, p := range t.HSM.Pools {
		rc := mhsm.RegionConfig{Name: p.Region}
		for _, part := range p.Partitions {
			rc.Partitions = append(rc.Partitions, mhsm.PartitionConfig{Name: part.Name, Placement: part.Placement()})
		}
		if p.Region == t.OpenQuestions.PrimaryRegion {
			cfg.Primary = rc
		} else {
			e := rc
			cfg.Extended = &e
		}
	}
	return cfg
}

func (t *Topology) throughput() mhsm.Throughput {
	tp := t.Behaviour.HSM.Throughput
	conv := func(r OpRates) mhsm.Rates {
		return mhsm.Rates{Unwrap: r.Unwrap, Wrap: r.Wrap, Encrypt: r.Encrypt, Decrypt: r.Decrypt, Get: r.Get, Create: r.Create, Admin: 10}
	}
	return mhsm.Throughput{
		{Type: partition.RSA, Bits: 2048}: conv(tp.RSA2048),
		{Type: partition.RSA, Bits: 3072}: conv(tp.RSA3072),
		{Type: partition.RSA, Bits: 4096}: conv(tp.RSA4096),
		{Type: partition.Oct, Bits: 128}:  conv(tp.AES128),
		{Type: partition.Oct, Bits: 192}:  conv(tp.AES192),
		{Type: partition.Oct, Bits: 256}:  conv(tp.AES256),
	}
}

// RTT returns the modelled round-trip time between two regions: the
// region's intra-region RTT for the same region, the link's RTT otherwise
// (false when no link joins them).
func (t *Topology) RTT(a, b string) (time.Duration, bool) {
	if a == b {
		for _, r := range t.Regions {
			if r.Name == a {
				return r.IntraRegionRTT.D(), true
			}
		}
		return 0, false
	}
	for _, l := range t.Network.Links {
		if (l.Between[0] == a && l.Between[1] == b) || (l.Between[0] == b && l.Between[1] == a) {
			return l.RTT.D(), true
		}
	}
	return 0, false
}

// Nearness orders pool regions by round-trip time from a client region
// (Traffic Manager's "closest region", facts §2); ties keep pool order and
// regions without a link come last.
func (t *Topology) Nearness(client string, pools []string) []string {
	out := append([]string(nil), pools...)
	if client == "" {
		return out
	}
	rtt := func(p string) time.Duration {
		if d, ok := t.RTT(client, p); ok {
			return d
		}
		return time.Duration(1<<62 - 1)
	}
	sort.SliceStable(out, func(i, j int) bool { return rtt(out[i]) < rtt(out[j]) })
	return out
}

// Provisioned is what Provision produced: the security domain blob and the
// officer keys it is encrypted to (lab material).
type Provisioned struct {
	SecurityDomain *secdomain.Blob
	Keys           map[string]mhsm.KeyVersion
}

// Provision brings a new HSM to the topology's state, acting as
// OperatorPrincipal: it activates the HSM (security domain downloaded to
// the officers' keys with the topology's quorum), grants the operator its
// roles, applies the topology's role assignments, and creates every key with
// its rotation policy. Replication to the extended region then takes the
// replication lag; a caller on a virtual clock advances past it.
func Provision(ctx context.Context, h *mhsm.HSM, t *Topology, officers []*rsa.PublicKey) (*Provisioned, error) {
	op := mhsm.Caller{Principal: OperatorPrincipal}
	var offs []secdomain.Officer
	for i, k := range officers {
		name := fmt.Sprintf("officer-%d", i+1)
		if i < len(t.HSM.SecurityDomain.Officers) {
			name = t.HSM.SecurityDomain.Officers[i]
		}
		offs = append(offs, secdomain.Officer{Name: name, Public: k})
	}
	blob, err := h.DownloadSecurityDomain(ctx, op, offs, t.HSM.SecurityDomain.Quorum)
	if err != nil {
		return nil, fmt.Errorf("provision: activate: %w", err)
	}
	grant := func(name, principal, role string, scope rbac.Scope) error {
		_, err := h.CreateRoleAssignment(ctx, op, rbac.Assignment{Name: name, Principal: principal, RoleDefinitionID: role, Scope: scope})
		return err
	}
	if err := grant("hsmlab-operator-crypto-user", OperatorPrincipal, rbac.CryptoUserRoleID, rbac.ScopeKeys); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	if err := grant("hsmlab-operator-crypto-officer", OperatorPrincipal, rbac.CryptoOfficerRoleID, rbac.ScopeHSM); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	for i, ra := range t.RoleAssignments {
		role, ok := LookupRole(ra.Role)
		if !ok {
			return nil, fmt.Errorf("provision: roleAssignments[%d]: unknown role %q", i, ra.Role)
		}
		name := fmt.Sprintf("ra-%02d-%s", i, sanitize(ra.Principal))
		if err := grant(name, ra.Principal, role.ID, rbac.Scope(ra.Scope)); err != nil {
			return nil, fmt.Errorf("provision: roleAssignments[%d]: %w", i, err)
		}
	}
	p := &Provisioned{SecurityDomain: blob, Keys: map[string]mhsm.KeyVersion{}}
	for _, k := range t.HSM.Keys {
		if k.Type == "EC-HSM" {
			continue // EC keys are not emulated; no workload uses them
		}
		kv, _, err := h.CreateKey(ctx, op, k.Name, mhsm.KeyOptions{Type: k.Type, Size: k.Size, Ops: k.Ops})
		if err != nil {
			return nil, fmt.Errorf("provision: key %s: %w", k.Name, err)
		}
		p.Keys[k.Name] = kv
		if r := k.Rotation; r != nil {
			pol := mhsm.RotationPolicy{ExpiresAfter: r.ExpiresAfter.D()}
			pol.LifetimeActions = []mhsm.LifetimeAction{{Action: mhsm.ActionRotate, TimeAfterCreate: r.RotateAfterCreate.D(), TimeBeforeExpiry: r.RotateBeforeExpiry.D()}}
			if _, err := h.UpdateRotationPolicy(ctx, op, k.Name, pol); err != nil {
				return nil, fmt.Errorf("provision: key %s rotation policy: %w", k.Name, err)
			}
		}
	}
	return p, nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '-'
		}
		return r
	}, s)
}
