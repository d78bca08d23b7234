package mhsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
)

// DownloadSecurityDomain activates the HSM (facts §4): it creates the
// security domain, installs its key in every partition of every pool, and
// returns the blob — the domain key split with Shamir's scheme, one share
// encrypted to each officer's RSA key, quorum needed to recover. It needs at
// least 3 officer keys and 2 ≤ quorum ≤ officers. Called again on an active
// HSM it re-wraps the same domain for new officer keys (existing keys are
// not affected). Requires Managed HSM Administrator.
func (h *HSM) DownloadSecurityDomain(ctx context.Context, c Caller, officers []secdomain.Officer, quorum int) (*secdomain.Blob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.replicas[h.primary]
	if err := authorize(p, c, rbac.SecurityDomainDownload, rbac.ScopeHSM); err != nil {
		return nil, fmt.Errorf("security domain download: %w", err)
	}
	d := h.domain
	if d == nil {
		var err error
		if d, err = secdomain.New(rand.Reader); err != nil {
			return nil, fmt.Errorf("security domain download: %w", err)
		}
	}
	blob, err := secdomain.Download(d, officers, quorum, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("security domain download: %w: %w", ErrBadParameter, err)
	}
	if h.domain == nil {
		if err := h.installDomain(ctx, d); err != nil {
			return nil, err
		}
	}
	return blob, nil
}

func (h *HSM) installDomain(ctx context.Context, d *secdomain.Domain) error {
	for _, r := range h.replicas {
		if err := r.pool.each(func(m *member) error { return m.p.InstallDomainKey(ctx, d.Key()) }); err != nil {
			return fmt.Errorf("install security domain: %w", err)
		}
	}
	h.domain = d
	return nil
}

// SecurityDomainID returns the ID of the HSM's security domain ("" before activation).
func (h *HSM) SecurityDomainID() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.domain == nil {
		return ""
	}
	return h.domain.ID()
}

// TransferKey returns the exchange key of a new, not yet activated HSM: the
// client recovers the security domain with a quorum of officer keys and
// seals it to this key for UploadSecurityDomain (as `az keyvault
// security-domain upload` does). Requires Managed HSM Administrator.
func (h *HSM) TransferKey(ctx context.Context, c Caller) (*rsa.PublicKey, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.replicas[h.primary]
	if err := authorize(p, c, rbac.SecurityDomainTransferKeyRead, rbac.ScopeHSM); err != nil {
		return nil, fmt.Errorf("transfer key: %w", err)
	}
	if h.domain != nil {
		return nil, fmt.Errorf("%w: the HSM is already activated", ErrConflict)
	}
	if h.transfer == nil {
		k, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			return nil, fmt.Errorf("transfer key: %w", err)
		}
		h.transfer = k
	}
	return &h.transfer.PublicKey, nil
}

// UploadSecurityDomain activates a new, empty HSM with a recovered security
// domain sealed to its transfer key. The HSM then holds no keys: restore a
// full backup (Restore) to bring them back. Requires Managed HSM Administrator.
func (h *HSM) UploadSecurityDomain(ctx context.Context, c Caller, sealed []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.replicas[h.primary]
	if err := authorize(p, c, rbac.SecurityDomainUpload, rbac.ScopeHSM); err != nil {
		return fmt.Errorf("security domain upload: %w", err)
	}
	if h.domain != nil {
		return fmt.Errorf("%w: the HSM is already activated", ErrConflict)
	}
	if h.transfer == nil {
		return fmt.Errorf("%w: get the transfer key first", ErrBadParameter)
	}
	d, err := secdomain.Open(sealed, h.transfer)
	if err != nil {
		return fmt.Errorf("security domain upload: %w: %w", ErrBadParameter, err)
	}
	if err := h.installDomain(ctx, d); err != nil {
		return err
	}
	h.transfer = nil
	return nil
}
