package topology_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/topology"
)

const lintCorrectedFile = "testdata/contoso-corrected.yaml"

// Indices into the default and corrected topologies (same order in both).
const (
	lintRAKeyManagers  = 1 // key-management-team, Crypto User at /keys
	lintRASQLChennai   = 3 // sqlmi-chennai-mi, CSEU at /keys/Contoso-SQLMI-CMK
	lintKeySQL         = 0 // Contoso-SQLMI-CMK
	lintKeyDisk        = 1 // Contoso-DISK-CMK
	lintKeyStorage     = 2 // Contoso-STORAGE-CMK
	lintPoolPrimary    = 0 // southindia
	lintExtendedRegion = "westindia"
	lintCryptoOfficer  = "Managed HSM Crypto Officer"
	lintCryptoUser     = "Managed HSM Crypto User"
	lintWrongDNSZone   = "privatelink.vaultcore.azure.net" // the Key Vault zone, a likely slip
	lintSoutheastAsia  = "southeastasia"
	lintSecondPool     = 1
)

// lintCorrected loads testdata/contoso-corrected.yaml (loaded, defaulted and
// validated); each call returns a fresh copy.
func lintCorrected(t *testing.T) *topology.Topology {
	t.Helper()
	c, err := topology.Load(lintCorrectedFile)
	if err != nil {
		t.Fatalf("load %s: %v", lintCorrectedFile, err)
	}
	return c
}

func lintDefault(t *testing.T) *topology.Topology {
	t.Helper()
	return topology.Default()
}

// lintRenameRegion renames region from to to everywhere in tp (through its JSON
// form, where region names appear only as whole string values).
func lintRenameRegion(tp *topology.Topology, from, to string) {
	b, err := json.Marshal(tp)
	if err != nil {
		panic(err)
	}
	b = []byte(strings.ReplaceAll(string(b), `"`+from+`"`, `"`+to+`"`))
	var out topology.Topology
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	*tp = out
}

// lintAddRegion declares a region (without availability zones) in tp.
func lintAddRegion(tp *topology.Topology, name string) {
	tp.Regions = append(tp.Regions, topology.Region{Name: name, City: name, IntraRegionRTT: topology.Duration(1500 * time.Microsecond)})
}

// lintMutated clones base, applies mutate, checks the result still passes
// Validate (lint runs on validated topologies) and lints it.
func lintMutated(t *testing.T, base *topology.Topology, mutate func(*topology.Topology)) []topology.Finding {
	t.Helper()
	c := base.Clone()
	if mutate != nil {
		mutate(c)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("the mutated topology does not validate, so this case no longer tests Lint:\n%v", errs)
	}
	return topology.Lint(c)
}

// lintAssertRule checks that rule fires (want) or does not fire (!want) in fs.
func lintAssertRule(t *testing.T, fs []topology.Finding, rule string, want bool) {
	t.Helper()
	got := false
	for _, f := range fs {
		if f.Rule == rule {
			got = true
		}
	}
	if got != want {
		t.Errorf("rule %s fired = %v, want %v; findings:\n%s", rule, got, want, lintDump(fs))
	}
}

func lintDump(fs []topology.Finding) string {
	if len(fs) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + " {field " + f.Field + "}\n")
	}
	return b.String()
}

type lintCase struct {
	name   string
	rule   string
	base   func(*testing.T) *topology.Topology
	mutate func(*topology.Topology)
	fires  bool
}

func lintCases() []lintCase {
	C, D := lintCorrected, lintDefault
	keep := func(*topology.Topology) {}
	return []lintCase{
		// key-manager-crypto-officer
		{"key managers given Crypto Officer", "key-manager-crypto-officer", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRAKeyManagers].Role = lintCryptoOfficer
		}, true},
		{"a user without a team given Crypto Officer (short name)", "key-manager-crypto-officer", C, func(tp *topology.Topology) {
			tp.Principals = append(tp.Principals, topology.Principal{Name: "alice", Kind: topology.PrincipalUser})
			tp.RoleAssignments = append(tp.RoleAssignments, topology.RoleAssignment{Principal: "alice", Role: "Crypto Officer", Scope: "/"})
		}, true},
		{"governance team holds Crypto Officer on purpose", "key-manager-crypto-officer", C, keep, false},
		{"key managers with Crypto Officer and Crypto User", "key-manager-crypto-officer", C, func(tp *topology.Topology) {
			tp.RoleAssignments = append(tp.RoleAssignments, topology.RoleAssignment{Principal: "key-management-team", Role: lintCryptoOfficer, Scope: "/"})
		}, false},

		// service-identity-extra-actions
		{"SQL MI identity given Crypto User on its key", "service-identity-extra-actions", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Role = lintCryptoUser
		}, true},
		{"SQL MI identity given Crypto User by ID", "service-identity-extra-actions", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Role = "21dbd100-6940-42c2-9190-5d6cb909625b"
		}, true},
		{"service identities have Crypto Service Encryption User only", "service-identity-extra-actions", C, keep, false},

		// service-identity-wide-scope
		{"SQL MI identity scoped to the whole HSM", "service-identity-wide-scope", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Scope = "/"
		}, true},
		{"SQL MI identity scoped to /keys", "service-identity-wide-scope", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Scope = "/keys"
		}, true},
		{"SQL MI identity scoped to the disk key", "service-identity-wide-scope", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Scope = "/keys/Contoso-DISK-CMK"
		}, true},
		{"service identities scoped to their own keys", "service-identity-wide-scope", C, keep, false},

		// service-identity-missing-access
		{"SQL MI identity has no role assignment", "service-identity-missing-access", C, func(tp *topology.Topology) {
			tp.RoleAssignments = append(tp.RoleAssignments[:lintRASQLChennai:lintRASQLChennai], tp.RoleAssignments[lintRASQLChennai+1:]...)
		}, true},
		{"SQL MI identity can only read its key (Crypto Auditor)", "service-identity-missing-access", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Role = "Managed HSM Crypto Auditor"
		}, true},
		{"SQL MI identity assigned on another key", "service-identity-missing-access", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Scope = "/keys/Contoso-DISK-CMK"
		}, true},
		{"SQL MI identity assigned at /keys still has access", "service-identity-missing-access", C, func(tp *topology.Topology) {
			tp.RoleAssignments[lintRASQLChennai].Scope = "/keys"
		}, false},
		{"every identity can use its key", "service-identity-missing-access", C, keep, false},

		// des-missing-in-region
		{"ASR target region has no DES", "des-missing-in-region", C, func(tp *topology.Topology) {
			lintRemoveExtendedDES(tp)
		}, true},
		{"no DES in the extended region but no ASR", "des-missing-in-region", C, func(tp *topology.Topology) {
			lintRemoveExtendedDES(tp)
			tp.OpenQuestions.ASR = false
		}, false},
		{"a DES in every VM and ASR target region", "des-missing-in-region", C, keep, false},

		// asr-target-des-unset
		{"ASR VM without a target DES", "asr-target-des-unset", C, func(tp *topology.Topology) {
			tp.Workloads.VirtualMachines[0].ASR.TargetDES = ""
		}, true},
		{"VM without a target DES but ASR not used", "asr-target-des-unset", C, func(tp *topology.Topology) {
			tp.Workloads.VirtualMachines[0].ASR.TargetDES = ""
			tp.OpenQuestions.ASR = false
		}, false},
		{"every ASR VM has a target DES", "asr-target-des-unset", C, keep, false},

		// des-region-no-pool
		{"DES in a region whose pool was dropped", "des-region-no-pool", C, func(tp *topology.Topology) {
			tp.HSM.Pools = tp.HSM.Pools[:1]
		}, true},
		{"DES in a region the HSM never had", "des-region-no-pool", C, func(tp *topology.Topology) {
			lintAddRegion(tp, lintSoutheastAsia)
			tp.Workloads.DiskEncryptionSets = append(tp.Workloads.DiskEncryptionSets, topology.DiskEncryptionSet{
				Name: "des-sea", Region: lintSoutheastAsia, Identity: "des-pune-mi", Key: "Contoso-DISK-CMK", AutoRotation: true,
			})
		}, true},
		{"every DES has a pool in its region", "des-region-no-pool", C, keep, false},

		// des-extended-region-unconfirmed
		{"DES in the extended region", "des-extended-region-unconfirmed", C, keep, true},
		{"DES in the primary region only", "des-extended-region-unconfirmed", C, func(tp *topology.Topology) {
			lintRemoveExtendedDES(tp)
			tp.OpenQuestions.ASR = false
		}, false},

		// purge-protection-off
		{"purge protection off with SQL and storage", "purge-protection-off", C, func(tp *topology.Topology) {
			tp.HSM.PurgeProtection = false
		}, true},
		{"purge protection off with disks only", "purge-protection-off", C, func(tp *topology.Topology) {
			tp.HSM.PurgeProtection = false
			tp.Workloads.SQLManagedInstances = nil
			tp.Workloads.FailoverGroups = nil
			tp.Workloads.StorageAccounts = nil
		}, false},
		{"purge protection on", "purge-protection-off", C, keep, false},

		// soft-delete-retention-range
		{"retention 6 days", "soft-delete-retention-range", C, func(tp *topology.Topology) { tp.HSM.SoftDeleteRetentionDays = 6 }, true},
		{"retention 91 days", "soft-delete-retention-range", C, func(tp *topology.Topology) { tp.HSM.SoftDeleteRetentionDays = 91 }, true},
		{"retention 7 days", "soft-delete-retention-range", C, func(tp *topology.Topology) { tp.HSM.SoftDeleteRetentionDays = 7 }, false},
		{"retention 90 days", "soft-delete-retention-range", C, keep, false},

		// security-domain-officers
		{"two officers", "security-domain-officers", C, func(tp *topology.Topology) {
			tp.HSM.SecurityDomain.Officers = tp.HSM.SecurityDomain.Officers[:2]
		}, true},
		{"three officers", "security-domain-officers", C, keep, false},

		// security-domain-quorum
		{"quorum 1", "security-domain-quorum", C, func(tp *topology.Topology) { tp.HSM.SecurityDomain.Quorum = 1 }, true},
		{"quorum 0 (unset)", "security-domain-quorum", C, func(tp *topology.Topology) { tp.HSM.SecurityDomain.Quorum = 0 }, true},
		{"quorum 4 of 3 officers", "security-domain-quorum", C, func(tp *topology.Topology) { tp.HSM.SecurityDomain.Quorum = 4 }, true},
		{"quorum 3 of 3 officers", "security-domain-quorum", C, func(tp *topology.Topology) { tp.HSM.SecurityDomain.Quorum = 3 }, false},
		{"quorum 2 of 3 officers", "security-domain-quorum", C, keep, false},

		// security-domain-quorum-max
		{"quorum 11 of 12 officers", "security-domain-quorum-max", C, func(tp *topology.Topology) {
			tp.HSM.SecurityDomain.Officers = lintOfficers(12)
			tp.HSM.SecurityDomain.Quorum = 11
		}, true},
		{"quorum 10 of 12 officers", "security-domain-quorum-max", C, func(tp *topology.Topology) {
			tp.HSM.SecurityDomain.Officers = lintOfficers(12)
			tp.HSM.SecurityDomain.Quorum = 10
		}, false},

		// extended-region-unsupported
		{"default topology extends to Central India", "extended-region-unsupported", D, keep, true},
		{"extended to East US without the override", "extended-region-unsupported", C, func(tp *topology.Topology) {
			lintRenameRegion(tp, lintExtendedRegion, "eastus")
		}, true},
		{"extended to West India", "extended-region-unsupported", C, keep, false},
		{"primary (not extended) in a listed region", "extended-region-unsupported", C, func(tp *topology.Topology) {
			lintRenameRegion(tp, "southindia", "centralindia")
		}, false},

		// extended-region-formerly-unsupported
		{"extended to Central US", "extended-region-formerly-unsupported", C, func(tp *topology.Topology) {
			lintRenameRegion(tp, lintExtendedRegion, "centralus")
		}, true},
		{"extended to West India (not on either list)", "extended-region-formerly-unsupported", C, keep, false},

		// single-extended-region
		{"a third pool", "single-extended-region", C, func(tp *topology.Topology) {
			lintAddRegion(tp, lintSoutheastAsia)
			tp.HSM.Pools = append(tp.HSM.Pools, topology.Pool{Region: lintSoutheastAsia, Partitions: []topology.Partition{
				{Name: "sea-p1", Rack: "rack-1"}, {Name: "sea-p2", Rack: "rack-2"}, {Name: "sea-p3", Rack: "rack-3"},
			}})
		}, true},
		{"two pools", "single-extended-region", C, keep, false},

		// jump-box-missing
		{"no jump box in the extended region", "jump-box-missing", C, func(tp *topology.Topology) {
			tp.OpenQuestions.JumpBoxRegions = []string{"southindia"}
		}, true},
		{"no jump box in the extended region but public access on", "jump-box-missing", C, func(tp *topology.Topology) {
			tp.OpenQuestions.JumpBoxRegions = []string{"southindia"}
			tp.HSM.PublicNetworkAccess = true
		}, false},
		{"jump boxes in both regions", "jump-box-missing", C, keep, false},

		// private-endpoint-missing
		{"no private endpoint in the extended region", "private-endpoint-missing", C, func(tp *topology.Topology) {
			tp.Network.PrivateEndpoints = tp.Network.PrivateEndpoints[:1]
		}, true},
		{"no private endpoint in the extended region but public access on", "private-endpoint-missing", C, func(tp *topology.Topology) {
			tp.Network.PrivateEndpoints = tp.Network.PrivateEndpoints[:1]
			tp.HSM.PublicNetworkAccess = true
		}, false},
		{"private endpoints in both regions", "private-endpoint-missing", C, keep, false},

		// private-endpoint-dns-zone
		{"Key Vault DNS zone on an HSM endpoint", "private-endpoint-dns-zone", C, func(tp *topology.Topology) {
			tp.Network.PrivateEndpoints[1].DNSZone = lintWrongDNSZone
		}, true},
		{"DNS zone in another letter case", "private-endpoint-dns-zone", C, func(tp *topology.Topology) {
			tp.Network.PrivateEndpoints[1].DNSZone = "PrivateLink.ManagedHSM.Azure.net"
		}, false},
		{"correct DNS zones", "private-endpoint-dns-zone", C, keep, false},

		// sql-tde-key-type
		{"TDE protector RSA 4096", "sql-tde-key-type", C, func(tp *topology.Topology) { tp.HSM.Keys[lintKeySQL].Size = 4096 }, true},
		{"TDE protector EC", "sql-tde-key-type", C, func(tp *topology.Topology) {
			k := &tp.HSM.Keys[lintKeySQL]
			k.Type, k.Size, k.Curve, k.Ops = "EC-HSM", 0, "P-256", nil
		}, true},
		{"TDE protector RSA 3072", "sql-tde-key-type", C, func(tp *topology.Topology) { tp.HSM.Keys[lintKeySQL].Size = 3072 }, false},
		{"RSA 4096 for storage is fine for TDE rules", "sql-tde-key-type", C, func(tp *topology.Topology) { tp.HSM.Keys[lintKeyStorage].Size = 4096 }, false},

		// cmk-key-type
		{"storage key is AES", "cmk-key-type", C, func(tp *topology.Topology) {
			k := &tp.HSM.Keys[lintKeyStorage]
			k.Type, k.Size = "oct-HSM", 256
		}, true},
		{"disk key is EC", "cmk-key-type", C, func(tp *topology.Topology) {
			k := &tp.HSM.Keys[lintKeyDisk]
			k.Type, k.Size, k.Curve, k.Ops = "EC-HSM", 0, "P-384", nil
		}, true},
		{"storage key RSA 4096", "cmk-key-type", C, func(tp *topology.Topology) { tp.HSM.Keys[lintKeyStorage].Size = 4096 }, false},

		// workload-key-ops
		{"disk key limited to encrypt/decrypt", "workload-key-ops", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeyDisk].Ops = []string{"encrypt", "decrypt"}
		}, true},
		{"SQL key without unwrapKey", "workload-key-ops", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeySQL].Ops = []string{"wrapKey"}
		}, true},
		{"disk key with every operation", "workload-key-ops", C, func(tp *topology.Topology) { tp.HSM.Keys[lintKeyDisk].Ops = nil }, false},
		{"keys limited to wrap and unwrap", "workload-key-ops", C, keep, false},

		// key-expires-before-rotation
		{"versions expire before rotation", "key-expires-before-rotation", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeySQL].Rotation.ExpiresAfter = topology.Duration(300 * 24 * time.Hour)
		}, true},
		{"versions expire the day they rotate", "key-expires-before-rotation", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeySQL].Rotation.ExpiresAfter = tp.HSM.Keys[lintKeySQL].Rotation.RotateAfterCreate
		}, true},
		{"rotation a year before expiry", "key-expires-before-rotation", C, keep, false},
		{"rotation without expiry", "key-expires-before-rotation", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeySQL].Rotation.ExpiresAfter = 0
		}, false},

		// ad-ds-domain-controller-vms
		{"Azure AD DS with domain-controller VMs", "ad-ds-domain-controller-vms", C, func(tp *topology.Topology) {
			tp.OpenQuestions.ADServers = topology.ADAzureADDS
		}, true},
		{"self-hosted domain controllers", "ad-ds-domain-controller-vms", C, keep, false},
		{"Azure AD DS without domain-controller VMs", "ad-ds-domain-controller-vms", C, lintAzureADDSWithoutVMs, false},

		// ad-ds-no-cmk
		{"Azure AD DS without domain-controller VMs", "ad-ds-no-cmk", C, lintAzureADDSWithoutVMs, true},
		{"Azure AD DS with domain-controller VMs reports the error instead", "ad-ds-no-cmk", C, func(tp *topology.Topology) {
			tp.OpenQuestions.ADServers = topology.ADAzureADDS
		}, false},
		{"self-hosted AD", "ad-ds-no-cmk", C, keep, false},

		// pool-partition-count
		{"two partitions", "pool-partition-count", C, func(tp *topology.Topology) {
			tp.HSM.Pools[lintPoolPrimary].Partitions = tp.HSM.Pools[lintPoolPrimary].Partitions[:2]
		}, true},
		{"four partitions", "pool-partition-count", C, func(tp *topology.Topology) {
			p := &tp.HSM.Pools[lintPoolPrimary]
			p.Partitions = append(p.Partitions, topology.Partition{Name: "chennai-p4", Rack: "rack-4"})
		}, true},
		{"three partitions", "pool-partition-count", C, keep, false},

		// pool-partition-placement
		{"two partitions on one rack", "pool-partition-placement", C, func(tp *topology.Topology) {
			tp.HSM.Pools[lintPoolPrimary].Partitions[1].Rack = "rack-1"
		}, true},
		{"two partitions in one zone", "pool-partition-placement", D, func(tp *topology.Topology) {
			tp.HSM.Pools[lintSecondPool].Partitions[2].Zone = "1"
		}, true},
		{"same rack names in different pools", "pool-partition-placement", C, keep, false},

		// failover-secondary-no-pool
		{"FOG secondary in a region without a pool", "failover-secondary-no-pool", C, func(tp *topology.Topology) {
			lintAddRegion(tp, lintSoutheastAsia)
			tp.Workloads.SQLManagedInstances[1].Region = lintSoutheastAsia
		}, true},
		{"FOG secondary where the extended pool is", "failover-secondary-no-pool", C, keep, false},

		// failover-auto-rotation-mismatch
		{"auto-rotation on the primary only", "failover-auto-rotation-mismatch", C, func(tp *topology.Topology) {
			tp.Workloads.SQLManagedInstances[1].AutoRotation = false
		}, true},
		{"auto-rotation on the secondary only", "failover-auto-rotation-mismatch", C, func(tp *topology.Topology) {
			tp.Workloads.SQLManagedInstances[0].AutoRotation = false
		}, true},
		{"auto-rotation off on both", "failover-auto-rotation-mismatch", C, func(tp *topology.Topology) {
			tp.Workloads.SQLManagedInstances[0].AutoRotation = false
			tp.Workloads.SQLManagedInstances[1].AutoRotation = false
		}, false},
		{"separate keys, one auto-rotating", "failover-auto-rotation-mismatch", C, func(tp *topology.Topology) {
			k := tp.HSM.Keys[lintKeySQL]
			k.Name = "Contoso-SQLMI-CMK-2"
			tp.HSM.Keys = append(tp.HSM.Keys, k)
			tp.Workloads.SQLManagedInstances[1].Key = k.Name
			tp.Workloads.SQLManagedInstances[1].AutoRotation = false
			tp.RoleAssignments[lintRASQLChennai+1].Scope = "/keys/" + k.Name
		}, false},
		{"auto-rotation on both", "failover-auto-rotation-mismatch", C, keep, false},

		// storage-key-version-pinned
		{"storage pins a key version", "storage-key-version-pinned", C, func(tp *topology.Topology) {
			tp.Workloads.StorageAccounts[0].KeyVersion = "0123456789abcdef"
		}, true},
		{"storage follows the latest version", "storage-key-version-pinned", C, keep, false},

		// key-rotation-policy
		{"key without a rotation policy", "key-rotation-policy", C, func(tp *topology.Topology) { tp.HSM.Keys[lintKeyStorage].Rotation = nil }, true},
		{"key rotated every three years", "key-rotation-policy", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeyStorage].Rotation = &topology.RotationPolicy{
				RotateAfterCreate: topology.Duration(3 * 365 * 24 * time.Hour),
				ExpiresAfter:      topology.Duration(4 * 365 * 24 * time.Hour),
			}
		}, true},
		{"key rotated 30 days before a 3-year expiry", "key-rotation-policy", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeyStorage].Rotation = &topology.RotationPolicy{
				RotateBeforeExpiry: topology.Duration(30 * 24 * time.Hour),
				ExpiresAfter:       topology.Duration(3 * 365 * 24 * time.Hour),
			}
		}, true},
		{"key rotated 30 days before a 2-year expiry", "key-rotation-policy", C, func(tp *topology.Topology) {
			tp.HSM.Keys[lintKeyStorage].Rotation = &topology.RotationPolicy{
				RotateBeforeExpiry: topology.Duration(30 * 24 * time.Hour),
				ExpiresAfter:       topology.Duration(2 * 365 * 24 * time.Hour),
			}
		}, false},
		{"keys rotated yearly", "key-rotation-policy", C, keep, false},
	}
}

// lintRemoveExtendedDES drops the extended region's DES and the VMs' ASR target DES.
func lintRemoveExtendedDES(tp *topology.Topology) {
	tp.Workloads.DiskEncryptionSets = tp.Workloads.DiskEncryptionSets[:1]
	for i := range tp.Workloads.VirtualMachines {
		if a := tp.Workloads.VirtualMachines[i].ASR; a != nil {
			a.TargetDES = ""
		}
	}
}

func lintAzureADDSWithoutVMs(tp *topology.Topology) {
	tp.OpenQuestions.ADServers = topology.ADAzureADDS
	tp.Workloads.VirtualMachines = nil
}

func lintOfficers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "officer-" + string(rune('a'+i))
	}
	return out
}

func TestLintRules(t *testing.T) {
	var mu sync.Mutex
	fired := map[string]bool{}
	notFired := map[string]bool{}
	catalogue := map[string]topology.Rule{}
	for _, r := range topology.Rules() {
		catalogue[r.ID] = r
	}
	for _, tc := range lintCases() {
		t.Run(tc.rule+"/"+tc.name, func(t *testing.T) {
			fs := lintMutated(t, tc.base(t), tc.mutate)
			lintAssertRule(t, fs, tc.rule, tc.fires)
			for _, f := range fs {
				r, ok := catalogue[f.Rule]
				if !ok {
					t.Errorf("finding of rule %q, which Rules() does not list", f.Rule)
					continue
				}
				if f.Severity != r.Severity || f.Fact != r.Fact {
					t.Errorf("finding %s has severity %q and fact %q; the catalogue says %q and %q", f.Rule, f.Severity, f.Fact, r.Severity, r.Fact)
				}
				if f.Object == "" || f.Message == "" || strings.Contains(f.Message, "\n") {
					t.Errorf("finding %s needs an object and a one-line message: %+v", f.Rule, f)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.fires {
				fired[tc.rule] = true
			} else {
				notFired[tc.rule] = true
			}
		})
	}
	for id := range catalogue {
		if !fired[id] {
			t.Errorf("rule %s has no case that triggers it", id)
		}
		if !notFired[id] {
			t.Errorf("rule %s has no case that does not trigger it", id)
		}
	}
	for id := range fired {
		if _, ok := catalogue[id]; !ok {
			t.Errorf("a case tests rule %s, which Rules() does not list", id)
		}
	}
}

// TestRulesCoverEveryEmittedRule lints a topology with as many mistakes as
// possible at once and checks that everything Lint emits is catalogued.
func TestRulesCoverEveryEmittedRule(t *testing.T) {
	catalogue := map[string]topology.Rule{}
	for _, r := range topology.Rules() {
		catalogue[r.ID] = r
	}
	seen := map[string]bool{}
	for _, tc := range lintCases() {
		c := tc.base(t).Clone()
		tc.mutate(c)
		for _, f := range topology.Lint(c) {
			seen[f.Rule] = true
		}
	}
	var missing, extra []string
	for id := range seen {
		if _, ok := catalogue[id]; !ok {
			extra = append(extra, id)
		}
	}
	for id := range catalogue {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("Lint emitted rules not in Rules(): %v; Rules() entries never emitted: %v", extra, missing)
	}
}

func TestRulesCatalogue(t *testing.T) {
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	ids := map[string]bool{}
	for _, r := range topology.Rules() {
		if !kebab.MatchString(r.ID) {
			t.Errorf("rule id %q is not kebab-case", r.ID)
		}
		if ids[r.ID] {
			t.Errorf("duplicate rule id %q", r.ID)
		}
		ids[r.ID] = true
		switch r.Severity {
		case topology.SeverityError, topology.SeverityWarning, topology.SeverityInfo:
		default:
			t.Errorf("rule %s: severity %q", r.ID, r.Severity)
		}
		if r.Summary == "" || r.Fact == "" {
			t.Errorf("rule %s needs a summary and a fact", r.ID)
		}
		if !strings.Contains(r.Fact, "azure-facts.md") && !strings.Contains(r.Fact, "seed") {
			t.Errorf("rule %s: fact %q cites neither azure-facts.md nor the seed", r.ID, r.Fact)
		}
	}
	rs := topology.Rules()
	rs[0].ID = "mutated"
	if topology.Rules()[0].ID == "mutated" {
		t.Error("Rules returns the catalogue itself, not a copy")
	}
}

func TestLintDefaultReportsCentralIndia(t *testing.T) {
	fs := topology.Lint(topology.Default())
	if !topology.HasErrors(fs) {
		t.Fatalf("default topology: want errors, got:\n%s", lintDump(fs))
	}
	var f *topology.Finding
	for i := range fs {
		if fs[i].Rule == "extended-region-unsupported" {
			f = &fs[i]
		}
	}
	if f == nil {
		t.Fatalf("default topology does not report extended-region-unsupported:\n%s", lintDump(fs))
	}
	if f.Severity != topology.SeverityError || f.Object != "region centralindia" || f.Field != "hsm.pools[1].region" {
		t.Errorf("finding = %+v", *f)
	}
	if !strings.Contains(f.Message, "hypothetical") || !strings.Contains(f.Fact, "finding 1") {
		t.Errorf("message should say the override models a hypothetical and cite finding 1: %+v", *f)
	}
	// The only error and the only warning-or-worse finding is that one.
	for _, g := range fs {
		if g.Severity != topology.SeverityInfo && g.Rule != "extended-region-unsupported" {
			t.Errorf("unexpected finding on the default topology: %s", g)
		}
	}
	t.Logf("default topology:\n%s", lintDump(fs))
}

func TestLintUnsupportedRegionWithoutOverride(t *testing.T) {
	c := topology.Default()
	c.HSM.AllowUnsupportedExtendedRegion = false
	fs := topology.Lint(c)
	lintAssertRule(t, fs, "extended-region-unsupported", true)
	for _, f := range fs {
		if f.Rule == "extended-region-unsupported" && strings.Contains(f.Message, "hypothetical") {
			t.Errorf("without the override the message must not talk about it: %s", f.Message)
		}
	}
}

func TestLintCorrectedIsClean(t *testing.T) {
	c := lintCorrected(t)
	fs := topology.Lint(c)
	for _, f := range fs {
		if f.Severity != topology.SeverityInfo {
			t.Errorf("%s: want no errors or warnings, got %s", lintCorrectedFile, f)
		}
	}
	if topology.HasErrors(fs) {
		t.Errorf("HasErrors = true for %s", lintCorrectedFile)
	}
	t.Logf("%s:\n%s", lintCorrectedFile, lintDump(fs))
	// It differs from the default in the extended region only.
	if c.Name == topology.Default().Name {
		t.Errorf("the corrected topology should have its own name")
	}
	if got := c.Regions[1].Name; got != lintExtendedRegion || topology.CannotExtend(got) {
		t.Errorf("extended region = %q; want %s (not on the cannot-extend list)", got, lintExtendedRegion)
	}
}

func TestLintKeyManagerMessage(t *testing.T) {
	fs := lintMutated(t, lintCorrected(t), func(tp *topology.Topology) {
		tp.RoleAssignments[lintRAKeyManagers].Role = lintCryptoOfficer
	})
	for _, f := range fs {
		if f.Rule != "key-manager-crypto-officer" {
			continue
		}
		if f.Severity != topology.SeverityError || f.Object != "roleAssignments[1] key-management-team" || f.Field != "roleAssignments[1].role" {
			t.Errorf("finding = %+v", f)
		}
		if !strings.Contains(f.Message, "cannot create or rotate keys") || !strings.Contains(f.Message, "Crypto User") {
			t.Errorf("message must say Crypto Officer cannot create or rotate keys and to use Crypto User: %q", f.Message)
		}
		return
	}
	t.Fatalf("rule did not fire:\n%s", lintDump(fs))
}

func TestLintSortedAndDeterministic(t *testing.T) {
	// Many mistakes at once.
	broken := func() *topology.Topology {
		c := lintCorrected(t)
		c.HSM.PurgeProtection = false
		c.HSM.SoftDeleteRetentionDays = 120
		c.HSM.SecurityDomain.Quorum = 1
		c.RoleAssignments[lintRAKeyManagers].Role = lintCryptoOfficer
		c.RoleAssignments[lintRASQLChennai].Scope = "/"
		c.HSM.Keys[lintKeyStorage].Rotation = nil
		c.Workloads.StorageAccounts[1].KeyVersion = "v1"
		c.OpenQuestions.JumpBoxRegions = nil
		c.HSM.Pools[lintPoolPrimary].Partitions[2].Rack = "rack-1"
		return c
	}
	a, b := topology.Lint(broken()), topology.Lint(broken())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Lint is not deterministic:\n%s\nvs\n%s", lintDump(a), lintDump(b))
	}
	rank := map[topology.Severity]int{topology.SeverityError: 0, topology.SeverityWarning: 1, topology.SeverityInfo: 2}
	if !sort.SliceIsSorted(a, func(i, j int) bool {
		if rank[a[i].Severity] != rank[a[j].Severity] {
			return rank[a[i].Severity] < rank[a[j].Severity]
		}
		return a[i].Rule < a[j].Rule
	}) {
		t.Errorf("findings are not sorted by severity then rule:\n%s", lintDump(a))
	}
	var sev []topology.Severity
	for _, f := range a {
		if len(sev) == 0 || sev[len(sev)-1] != f.Severity {
			sev = append(sev, f.Severity)
		}
	}
	if !reflect.DeepEqual(sev, []topology.Severity{topology.SeverityError, topology.SeverityWarning, topology.SeverityInfo}) {
		t.Errorf("want errors, then warnings, then infos; got %v:\n%s", sev, lintDump(a))
	}
}

func TestLintObjectsSortNumerically(t *testing.T) {
	c := lintCorrected(t)
	for i := 0; i < 11; i++ {
		c.Principals = append(c.Principals, topology.Principal{Name: "user-" + string(rune('a'+i)), Kind: topology.PrincipalUser})
		c.RoleAssignments = append(c.RoleAssignments, topology.RoleAssignment{Principal: "user-" + string(rune('a'+i)), Role: lintCryptoOfficer, Scope: "/"})
	}
	var objs []string
	for _, f := range topology.Lint(c) {
		if f.Rule == "key-manager-crypto-officer" {
			objs = append(objs, f.Object)
		}
	}
	if len(objs) != 11 || objs[0] != "roleAssignments[9] user-a" || objs[1] != "roleAssignments[10] user-b" {
		t.Errorf("objects in order %v", objs)
	}
}

func TestLintDoesNotModifyTopology(t *testing.T) {
	c := topology.Default()
	before := c.Digest()
	topology.Lint(c)
	if c.Digest() != before {
		t.Error("Lint modified the topology")
	}
}

func TestLintDegenerateInputs(t *testing.T) {
	if fs := topology.Lint(nil); fs != nil {
		t.Errorf("Lint(nil) = %v", fs)
	}
	// A structurally invalid topology must not make Lint panic.
	fs := topology.Lint(&topology.Topology{
		RoleAssignments: []topology.RoleAssignment{{Principal: "x", Role: "no such role", Scope: "bad"}},
		Workloads: topology.Workloads{
			SQLManagedInstances: []topology.SQLManagedInstance{{Name: "s"}},
			FailoverGroups:      []topology.FailoverGroup{{Name: "g", Primary: "s", Secondary: "missing"}},
			VirtualMachines:     []topology.VirtualMachine{{Name: "vm", ASR: &topology.ASRReplica{}}},
		},
		OpenQuestions: topology.OpenQuestions{ASR: true},
	})
	lintAssertRule(t, fs, "security-domain-officers", true)
}

func TestHasErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   []topology.Finding
		want bool
	}{
		{"none", nil, false},
		{"info and warning", []topology.Finding{{Severity: topology.SeverityInfo}, {Severity: topology.SeverityWarning}}, false},
		{"one error", []topology.Finding{{Severity: topology.SeverityInfo}, {Severity: topology.SeverityError}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := topology.HasErrors(tc.fs); got != tc.want {
				t.Errorf("HasErrors = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFindingJSON(t *testing.T) {
	b, err := json.Marshal(topology.Finding{Rule: "r", Severity: topology.SeverityWarning, Object: "o", Message: "m", Fact: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"rule":"r","severity":"warning","object":"o","message":"m","fact":"f"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestCannotExtendRegions(t *testing.T) {
	if n := len(topology.CannotExtendRegions); n != 12 {
		t.Errorf("%d regions on the cannot-extend list; facts §2 lists 12", n)
	}
	for _, tc := range []struct {
		region           string
		cannot, formerly bool
	}{
		{"centralindia", true, false},
		{"CentralIndia", true, false},
		{"westcentralus", true, false},
		{"southindia", false, false},
		{"westindia", false, false},
		{"centralus", false, true},
	} {
		if got := topology.CannotExtend(tc.region); got != tc.cannot {
			t.Errorf("CannotExtend(%q) = %v", tc.region, got)
		}
		if got := topology.FormerlyCannotExtend(tc.region); got != tc.formerly {
			t.Errorf("FormerlyCannotExtend(%q) = %v", tc.region, got)
		}
	}
}
