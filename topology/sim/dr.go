package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/topology"
)

// The sim implements topology.DisasterRecovery: the whole HSM can be lost
// and rebuilt from the security domain (facts §4).
var _ topology.DisasterRecovery = (*env)(nil)

// recovery is the customer's disaster-recovery material, kept from the
// moment the HSM is provisioned: the security-domain blob, the officers'
// private keys (offline, in the officers' safe deposit boxes) and the full
// backup taken right after provisioning. A restored HSM waits in pending
// until its restore has replicated to every pool.
type recovery struct {
	blob     *secdomain.Blob
	officers []*rsa.PrivateKey
	quorum   int
	backup   []byte
	pending  *mhsm.HSM
}

// newHSM builds an HSM (not yet activated) from the topology, with the
// sim's memoized in-memory partitions. Its state changes are reported
// unless quiet is set: a restored HSM is silent until it takes over.
func (e *env) newHSM(quiet *atomic.Bool) (*mhsm.HSM, error) {
	cfg := e.t.HSMConfig(e.clk, e.rnd)
	cfg.NewPartition = func(region string, p mhsm.PartitionConfig) (partition.Partition, error) {
		// Identical unwraps are memoized: probes repeat them thousands of times.
		return partition.Memo(partition.NewMemory(region+"/"+p.Name), 0), nil
	}
	cfg.OnChange = func(c mhsm.Change) {
		if quiet == nil || !quiet.Load() {
			e.state(c.Resource, c.Kind, c.From, c.To, c.Reason)
		}
	}
	return mhsm.New(cfg)
}

// keepRecoveryMaterial keeps what the customer keeps after activation: the
// security-domain blob, the officers' private keys, and a full backup of
// the freshly provisioned HSM taken by the operator (an Administrator).
func (e *env) keepRecoveryMaterial(ctx context.Context, p *topology.Provisioned) error {
	n := len(e.t.HSM.SecurityDomain.Officers)
	officerMu.Lock()
	keys := append([]*rsa.PrivateKey(nil), officerPriv[:n]...)
	officerMu.Unlock()
	backup, err := e.HSM().Backup(ctx, e.Operator())
	if err != nil {
		return fmt.Errorf("full backup after provisioning: %w", err)
	}
	e.dr = recovery{blob: p.SecurityDomain, officers: keys, quorum: e.t.HSM.SecurityDomain.Quorum, backup: backup}
	return nil
}

// LoseHSM loses every partition of every pool. Nothing heals: confidential
// service healing needs a healthy partition or pool to sync from, and none
// is left (mhsm: a lost partition heals only while some pool is healthy).
// Losing an already lost HSM is a no-op.
func (e *env) LoseHSM(ctx context.Context) error {
	h := e.HSM()
	var errs []error
	for _, region := range h.Regions() {
		pool, err := h.Pool(region)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var names []string
		for _, p := range pool.Partitions() {
			names = append(names, p.Name)
		}
		if _, err := h.FailPartitions(region, 0, names...); err != nil {
			errs = append(errs, fmt.Errorf("lose hsm: %s: %w", region, err))
		}
	}
	return errors.Join(errs...)
}

// RestoreHSM rebuilds the HSM from the security domain, the way a customer
// would after a total loss (facts §4): the security domain is recovered
// with the private keys of the first n officers (fewer than the quorum
// fails with an error wrapping secdomain.ErrQuorumNotMet, and nothing
// changes); a new HSM with the same name and pools is created, its transfer
// key fetched, the recovered domain sealed to it and uploaded, and the full
// backup taken after provisioning restored (keys with every version, role
// assignments, rotation policies — anything created later is lost). The
// restore replicates to the extended pool like any write, so the
// workloads' key clients and the probes are pointed at the new HSM once it
// has (behaviour.hsm.replicationLag — Microsoft: wait up to 6 minutes
// before using a write); the old HSM is then closed, its timers and
// replication stopped. Regions down at the time stay down in the new HSM.
func (e *env) RestoreHSM(ctx context.Context, n int) error {
	e.mu.Lock()
	dr := e.dr
	busy := dr.pending != nil
	down := make(map[string]bool, len(e.down))
	for r, d := range e.down {
		down[r] = d
	}
	e.mu.Unlock()
	switch {
	case busy:
		return errors.New("restore hsm: a restored HSM is still replicating")
	case dr.blob == nil || dr.backup == nil:
		return errors.New("restore hsm: no security domain or backup was kept")
	case n < 1 || n > len(dr.officers):
		return fmt.Errorf("restore hsm: %d officers: the security domain has %d", n, len(dr.officers))
	}
	// Recover first: without a quorum no new HSM is worth creating.
	d, err := secdomain.Recover(dr.blob, dr.officers[:n])
	if err != nil {
		return fmt.Errorf("restore hsm: recover the security domain with %d of %d officers' keys (quorum %d): %w", n, len(dr.officers), dr.quorum, err)
	}
	quiet := new(atomic.Bool)
	quiet.Store(true)
	h, err := e.newHSM(quiet)
	if err != nil {
		return fmt.Errorf("restore hsm: new hsm: %w", err)
	}
	op := e.Operator()
	fail := func(step string, err error) error {
		h.Close()
		return fmt.Errorf("restore hsm: %s: %w", step, err)
	}
	tk, err := h.TransferKey(ctx, op)
	if err != nil {
		return fail("transfer key", err)
	}
	sealed, err := secdomain.Seal(d, tk, rand.Reader)
	if err != nil {
		return fail("seal the security domain", err)
	}
	if err := h.UploadSecurityDomain(ctx, op, sealed); err != nil {
		return fail("upload the security domain", err)
	}
	for _, region := range h.Regions() {
		if down[region] {
			if err := h.SetRegionDown(region, true); err != nil {
				return fail("region "+region, err)
			}
		}
	}
	if err := h.Restore(ctx, op, dr.backup); err != nil {
		return fail("restore the backup", err)
	}
	e.mu.Lock()
	e.dr.pending = h
	e.mu.Unlock()
	if len(h.Regions()) == 1 {
		e.swapHSM(h, quiet)
		return nil
	}
	// The replication of the restore is scheduled at now+lag; the swap
	// comes a second later (on a virtual clock it would also run after it at
	// the same instant, but a wall clock gives no such order).
	e.clk.AfterFunc(h.Config().ReplicationLag+time.Second, func() { e.swapHSM(h, quiet) })
	return nil
}

// swapHSM makes h the current HSM (with the regions that are down now
// down in it too), lets it report its state changes, reports the pools and
// partitions that serve again, and closes the old HSM. It does nothing if h is no longer pending (the environment went
// down).
func (e *env) swapHSM(h *mhsm.HSM, quiet *atomic.Bool) {
	e.mu.Lock()
	if e.dr.pending != h {
		e.mu.Unlock()
		return
	}
	old := e.hsm
	e.hsm, e.dr.pending = h, nil
	down := make(map[string]bool, len(e.down))
	for r, d := range e.down {
		down[r] = d
	}
	e.mu.Unlock()
	// Regions that went down or came back while the restore replicated.
	for _, region := range h.Regions() {
		_ = h.SetRegionDown(region, down[region])
	}
	quiet.Store(false)
	const why = "replaced by an HSM restored from the security domain"
	for _, region := range old.Regions() {
		op, err1 := old.Pool(region)
		np, err2 := h.Pool(region)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, p := range op.Partitions() {
			if !p.Healthy {
				e.state(region+"/"+p.Name, "hsm-partition", mhsm.StateLost, mhsm.StateHealthy, why)
			}
		}
		if !op.Healthy() && np.Healthy() {
			e.state(region, "hsm-pool", mhsm.StateDown, mhsm.StateServing, why)
		}
	}
	old.Close()
}

// closeRecovery closes a restored HSM that never took over. Idempotent.
func (e *env) closeRecovery() {
	e.mu.Lock()
	p := e.dr.pending
	e.dr.pending = nil
	e.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

// hsmClient returns the key client bound to the environment's current HSM,
// so the workloads follow RestoreHSM without being rebuilt.
func (k *keyClient) hsmClient() *mhsm.Client {
	c := *k.c
	c.HSM = k.e.HSM()
	return &c
}
