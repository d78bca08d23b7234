package lab

import (
	"context"
	"fmt"

	"github.com/hsmlab/hsmlab/topology"
)

func init() {
	Register(TypeInfo{Type: "security-domain-loss", Kind: KindFault, New: func() any { return &SecurityDomainLoss{} },
		Summary: "Lose the whole HSM: every partition of every pool, for good — nothing heals, no pool is left to sync from; only the security domain and a backup bring the keys back. Irreversible",
		Facts:   "azure-facts.md §1 (TECH: the security domain is needed only when every instance is lost), §4 (SD)"})
	Register(TypeInfo{Type: "restore-from-security-domain", Kind: KindAction, New: func() any { return &RestoreFromSecurityDomain{} },
		Summary: "Rebuild a lost HSM: a new HSM, the security domain recovered with officers' private keys and uploaded, the last full backup restored, the workloads pointed at it. Fewer officers than the quorum: the security domain cannot be recovered and the action fails",
		Facts:   "azure-facts.md §4 (SD: restore = new blank pool, upload the SD, present a quorum of RSA private keys; without it \"disaster recovery isn't possible\")"})
}

func disasterRecovery(env topology.Env, typ string) (topology.DisasterRecovery, error) {
	dr, ok := env.(topology.DisasterRecovery)
	if !ok {
		return nil, fmt.Errorf("%s: the %s provider cannot lose or rebuild the HSM: %w", typ, env.Provider(), ErrNotSupported)
	}
	return dr, nil
}

// SecurityDomainLoss loses every partition of every pool of the HSM for
// good: with multi-region replication, both regions fail completely — the
// one case where the security domain is needed. It is irreversible; the
// runbook's way back is the restore-from-security-domain action.
type SecurityDomainLoss struct{}

// Irreversible: nothing heals the HSM.
func (f *SecurityDomainLoss) Irreversible() bool { return true }

// Describe says what is lost.
func (f *SecurityDomainLoss) Describe() string {
	return "every partition of every pool lost for good (recovery needs the security domain)"
}

// Inject loses the HSM; providers without topology.DisasterRecovery return
// an error wrapping ErrNotSupported.
func (f *SecurityDomainLoss) Inject(ctx context.Context, env topology.Env) error {
	dr, err := disasterRecovery(env, "security-domain-loss")
	if err != nil {
		return err
	}
	return dr.LoseHSM(ctx)
}

// Revert does nothing: the loss is irreversible.
func (f *SecurityDomainLoss) Revert(ctx context.Context, env topology.Env) error { return nil }

// RestoreFromSecurityDomain rebuilds the HSM from the security domain with
// the private keys of the first Officers officers.
type RestoreFromSecurityDomain struct {
	Officers int `yaml:"officers,omitempty" doc:"how many security officers bring their private keys (default: the quorum); fewer than the quorum cannot recover the security domain"`

	quorum, total int
}

// Validate resolves the default and checks the count against the
// topology's officers.
func (a *RestoreFromSecurityDomain) Validate(t *topology.Topology) error {
	sd := t.HSM.SecurityDomain
	a.quorum, a.total = sd.Quorum, len(sd.Officers)
	if a.Officers == 0 {
		a.Officers = a.quorum
	}
	if a.Officers < 1 || a.Officers > a.total {
		return fmt.Errorf("restore-from-security-domain: officers %d is not 1–%d (the security domain has %d officers)", a.Officers, a.total, a.total)
	}
	return nil
}

// Describe names how many officers' keys are presented.
func (a *RestoreFromSecurityDomain) Describe() string {
	return fmt.Sprintf("new HSM from the security domain with %d of %d officers' keys (quorum %d), last full backup restored", a.Officers, a.total, a.quorum)
}

// Do rebuilds the HSM. It fails (and nothing changes) when the officers'
// keys are fewer than the quorum; the error wraps secdomain.ErrQuorumNotMet.
func (a *RestoreFromSecurityDomain) Do(ctx context.Context, env topology.Env) error {
	dr, err := disasterRecovery(env, "restore-from-security-domain")
	if err != nil {
		return err
	}
	return dr.RestoreHSM(ctx, a.Officers)
}
