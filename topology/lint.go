package topology

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// Severity is how bad a lint finding is.
type Severity string

// The severities, worst first. An error is a topology that will not work or
// breaks a documented requirement; a warning is a DR or security weakness
// that works today; info is worth knowing and needs no change.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// rank orders severities worst first; unknown severities sort last.
func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	case SeverityInfo:
		return 2
	}
	return 3
}

// Finding is one DR or security mistake that Lint found in a topology.
type Finding struct {
	// Rule is the stable kebab-case id of the rule, one of Rules().
	Rule string `json:"rule"`
	// Severity is the rule's severity.
	Severity Severity `json:"severity"`
	// Object says what the finding is about, as a YAML path and a name
	// ("roleAssignments[1] key-management-team") or a region ("region
	// centralindia").
	Object string `json:"object"`
	// Field is the YAML path of the offending field when one field is at
	// fault ("roleAssignments[1].role"), else empty.
	Field string `json:"field,omitempty"`
	// Message is one line saying what is wrong and what to do.
	Message string `json:"message"`
	// Fact is what the rule rests on: a section of
	// shared/reference/azure-facts.md or of the seed.
	Fact string `json:"fact"`
}

// String formats f on one line: severity, rule, object, message and fact.
func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s: %s [%s]", f.Severity, f.Rule, f.Object, f.Message, f.Fact)
}

// HasErrors reports whether any finding has SeverityError.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Rule describes one lint rule, for documentation and `hsmlab lint --rules`.
type Rule struct {
	// ID is the stable kebab-case id findings carry.
	ID string `json:"id"`
	// Severity is the severity of every finding of the rule.
	Severity Severity `json:"severity"`
	// Summary says what the rule checks and why it has its severity.
	Summary string `json:"summary"`
	// Fact is what the rule rests on.
	Fact string `json:"fact"`
}

// Rule ids. Every id here has an entry in ruleCatalogue.
const (
	ruleKeyManagerCryptoOfficer      = "key-manager-crypto-officer"
	ruleServiceIdentityExtraActions  = "service-identity-extra-actions"
	ruleServiceIdentityWideScope     = "service-identity-wide-scope"
	ruleServiceIdentityMissingAccess = "service-identity-missing-access"
	ruleDESMissingInRegion           = "des-missing-in-region"
	ruleASRTargetDESUnset            = "asr-target-des-unset"
	ruleDESRegionNoPool              = "des-region-no-pool"
	ruleDESExtendedRegion            = "des-extended-region-unconfirmed"
	rulePurgeProtectionOff           = "purge-protection-off"
	ruleSoftDeleteRetention          = "soft-delete-retention-range"
	ruleSDOfficers                   = "security-domain-officers"
	ruleSDQuorum                     = "security-domain-quorum"
	ruleSDQuorumMax                  = "security-domain-quorum-max"
	ruleExtendedRegionUnsupported    = "extended-region-unsupported"
	ruleExtendedRegionFormerly       = "extended-region-formerly-unsupported"
	ruleSingleExtendedRegion         = "single-extended-region"
	ruleJumpBoxMissing               = "jump-box-missing"
	rulePrivateEndpointMissing       = "private-endpoint-missing"
	rulePrivateEndpointDNSZone       = "private-endpoint-dns-zone"
	ruleSQLTDEKeyType                = "sql-tde-key-type"
	ruleCMKKeyType                   = "cmk-key-type"
	ruleWorkloadKeyOps               = "workload-key-ops"
	ruleKeyExpiresBeforeRotation     = "key-expires-before-rotation"
	ruleADDSDomainControllers        = "ad-ds-domain-controller-vms"
	ruleADDSNoCMK                    = "ad-ds-no-cmk"
	rulePoolPartitionCount           = "pool-partition-count"
	rulePoolPartitionPlacement       = "pool-partition-placement"
	ruleFailoverSecondaryNoPool      = "failover-secondary-no-pool"
	ruleFailoverAutoRotation         = "failover-auto-rotation-mismatch"
	ruleStorageKeyVersionPinned      = "storage-key-version-pinned"
	ruleKeyRotationPolicy            = "key-rotation-policy"
)

// ruleCatalogue is the source of every finding's severity and fact.
var ruleCatalogue = []Rule{
	{ruleKeyManagerCryptoOfficer, SeverityError,
		"A user, group or application that is not a workload identity (and not in a governance or compliance team, who hold the role on purpose) has Managed HSM Crypto Officer but no role that can create keys: Crypto Officer cannot create or rotate keys, so key managers need Crypto User (the seed's #1 mistake).",
		"seed §3 step 4, §7; azure-facts.md §6 (ROLES)"},
	{ruleServiceIdentityExtraActions, SeverityError,
		"The identity of a SQL MI, DES or storage account has a role granting more than keys/read, wrap and unwrap (Crypto Service Encryption User). Error: a leaked or misused service identity could then delete, purge, export or re-permission keys and take every workload down.",
		"azure-facts.md §6 (ROLES); seed §7"},
	{ruleServiceIdentityWideScope, SeverityWarning,
		"A service identity's role assignment is scoped to the whole HSM (/ or /keys) or to a key its workloads do not use. Warning, not error: it lets one service unwrap with other services' keys (least privilege, PCI scope) but cannot destroy keys or break a workload.",
		"azure-facts.md §6 (AC: best scope /keys/<name>); seed §7"},
	{ruleServiceIdentityMissingAccess, SeverityError,
		"A workload's identity lacks keys/read, wrap or unwrap on the workload's own key, so the workload cannot use its CMK.",
		"azure-facts.md §6, §8 (TDE), §9 (ASR), §10 (STG)"},
	{ruleDESMissingInRegion, SeverityError,
		"A region hosts VMs with CMK disks, or is the ASR target of one (openQuestions.asr), but has no Disk Encryption Set; a DES is regional and must be created in each region.",
		"seed §5; azure-facts.md §9 (ASR prerequisite)"},
	{ruleASRTargetDESUnset, SeverityError,
		"A VM replicated by ASR (openQuestions.asr) has no asr.targetDES; replication of CMK disks needs a DES pre-created in the target region.",
		"azure-facts.md §9 (ASR, Terraform note); seed §5"},
	{ruleDESRegionNoPool, SeverityError,
		"A Disk Encryption Set is in a region where the HSM has no pool; managed disks need the key store in the same region as the DES.",
		"azure-facts.md finding 2; §9 (DISK, DISK-R)"},
	{ruleDESExtendedRegion, SeverityInfo,
		"A Disk Encryption Set is in the HSM's extended region; whether the extended-region pool counts as the same region for a DES is UNCONFIRMED. Info, not warning: every two-region design with disks needs it and no topology change can avoid it, so verify it on Azure.",
		"azure-facts.md finding 2"},
	{rulePurgeProtectionOff, SeverityError,
		"Purge protection is off while SQL TDE or Storage CMK use the HSM; both require soft delete and purge protection on the key store.",
		"azure-facts.md §5, §8 (TDE), §10 (STG)"},
	{ruleSoftDeleteRetention, SeverityError,
		"Soft-delete retention is outside 7–90 days.",
		"azure-facts.md §5 (SOFT)"},
	{ruleSDOfficers, SeverityError,
		"The security domain has fewer than 3 officers (RSA key pairs).",
		"azure-facts.md §4 (SD)"},
	{ruleSDQuorum, SeverityError,
		"The security-domain quorum is below 2 or above the number of officers (the domain could never be restored).",
		"azure-facts.md §4 (SD)"},
	{ruleSDQuorumMax, SeverityError,
		"The security-domain quorum is above 10, the documented maximum.",
		"azure-facts.md §4 (SD)"},
	{ruleExtendedRegionUnsupported, SeverityError,
		"An extended pool is in a region Microsoft says cannot be an extended region at this time (CannotExtendRegions), even when hsm.allowUnsupportedExtendedRegion models it as a hypothetical.",
		"azure-facts.md finding 1, §2 (MRR, MRR-old)"},
	{ruleExtendedRegionFormerly, SeverityWarning,
		"An extended pool is in a region that was on the 2024 cannot-be-extended list but not on the 2025 one (FormerlyCannotExtendRegions); confirm before relying on it.",
		"azure-facts.md §2 (MRR-old vs MRR)"},
	{ruleSingleExtendedRegion, SeverityError,
		"The HSM has more than one extended region (more than 2 pools); extension is supported to a single additional region only.",
		"azure-facts.md §2 (MRR)"},
	{ruleJumpBoxMissing, SeverityWarning,
		"Public network access is disabled and a region with a private endpoint has no jump box (openQuestions.jumpBoxRegions): admins cannot manage the HSM from there.",
		"seed §6, §13 Q4"},
	{rulePrivateEndpointMissing, SeverityWarning,
		"Public network access is disabled and a region with workloads has no private endpoint; its workloads depend on another region's endpoint. Create a PE and private DNS zone in the extended region too.",
		"azure-facts.md §2, §11 (MRR, PL); seed §3 step 6"},
	{rulePrivateEndpointDNSZone, SeverityError,
		"A private endpoint's DNS zone is not privatelink.managedhsm.azure.net, so the HSM name will not resolve to it.",
		"azure-facts.md §11 (PL)"},
	{ruleSQLTDEKeyType, SeverityError,
		"A SQL MI's TDE protector is not an RSA key of 2048 or 3072 bits.",
		"azure-facts.md §8 (TDE)"},
	{ruleCMKKeyType, SeverityError,
		"A DES or storage account uses a key that is not RSA; disks and storage take RSA 2048/3072/4096 only.",
		"azure-facts.md §9 (DISK-R), §10 (STG)"},
	{ruleWorkloadKeyOps, SeverityError,
		"A workload's key restricts its operations (ops) to a list without wrapKey or unwrapKey; CMK services wrap and unwrap their DEKs with it.",
		"azure-facts.md §8 (TDE), §10 (STG); seed §4"},
	{ruleKeyExpiresBeforeRotation, SeverityError,
		"A key's rotation policy lets each version expire before the next rotation (rotateAfterCreate ≥ expiresAfter); SQL TDE needs an unexpired protector and disks may stop.",
		"azure-facts.md §7 (ROT), §8 (TDE prerequisites), §9 (DISK)"},
	{ruleADDSDomainControllers, SeverityError,
		"openQuestions.adServers is azure-ad-ds but the topology has domain-controller VMs with CMK disks; with Azure AD DS there are no such VMs and CMK is not possible for that workload.",
		"seed §13 Q2"},
	{ruleADDSNoCMK, SeverityWarning,
		"openQuestions.adServers is azure-ad-ds: CMK is not possible for the AD workload, which falls outside the HSM's protection.",
		"seed §13 Q2"},
	{rulePoolPartitionCount, SeverityWarning,
		"A pool does not have exactly 3 partitions, as every Managed HSM pool does; failure scenarios will not match Azure.",
		"azure-facts.md §1 (TECH, SCALE)"},
	{rulePoolPartitionPlacement, SeverityWarning,
		"Two partitions of one pool share a rack or zone, so one rack or zone failure takes out more than one.",
		"azure-facts.md §1 (TECH)"},
	{ruleFailoverSecondaryNoPool, SeverityWarning,
		"A failover group's secondary SQL MI is in a region without an HSM pool; after a failover it depends on a key store in another region.",
		"azure-facts.md §8 (TDE geo-replication), §2"},
	{ruleFailoverAutoRotation, SeverityWarning,
		"The two SQL MIs of a failover group share a TDE key but auto-rotation is on for only one; it must be on for both or rotation errors and blocks manual rotation.",
		"azure-facts.md §8 (Auto-rotation with geo)"},
	{ruleStorageKeyVersionPinned, SeverityInfo,
		"A storage account pins a key version, so it does not pick up rotated versions automatically.",
		"azure-facts.md §10 (STG)"},
	{ruleKeyRotationPolicy, SeverityInfo,
		"A key has no rotation policy, or one that rotates less often than every two years.",
		"azure-facts.md §7 (ROT)"},
}

var ruleIndex = func() map[string]Rule {
	m := make(map[string]Rule, len(ruleCatalogue))
	for _, r := range ruleCatalogue {
		m[r.ID] = r
	}
	return m
}()

// Rules returns the catalogue of lint rules, in a stable order. Every
// finding Lint returns carries the ID, severity and fact of one of them. The
// slice is a fresh copy.
func Rules() []Rule { return append([]Rule(nil), ruleCatalogue...) }

// governanceTeams hold Managed HSM Crypto Officer on purpose (seed §3 step 4:
// "a governance/compliance role"); key-manager-crypto-officer skips them.
var governanceTeams = []string{"governance", "compliance"}

// twoYears is the longest rotation interval facts §7 recommends.
const twoYears = 2 * 365 * 24 * time.Hour

// Lint judges the DR and security design of a topology against the facts
// and the seed, and returns its findings sorted by severity (errors first),
// then rule, then object. t should have been through ApplyDefaults and
// Validate; Lint does not modify t, never panics on a structurally invalid
// topology, and returns nil for nil. A nil or empty result means the
// topology is clean.
func Lint(t *Topology) []Finding {
	if t == nil {
		return nil
	}
	l := newLinter(t)
	l.roleRules()
	l.desRules()
	l.hsmRules()
	l.securityDomainRules()
	l.networkRules()
	l.keyRules()
	l.adRules()
	l.poolRules()
	l.failoverRules()
	l.storageRules()
	sortFindings(l.out)
	return l.out
}

// keyUse is one workload using a key through an identity.
type keyUse struct {
	kind     string // "SQL managed instance", "disk encryption set", "storage account"
	path     string // YAML path, e.g. "workloads.sqlManagedInstances[0]"
	name     string
	region   string
	identity string
	key      string
}

func (u keyUse) object() string { return u.path + " " + u.name }

// roleGrant is one role assignment, resolved.
type roleGrant struct {
	idx     int
	role    rbac.RoleDefinition
	roleOK  bool
	scope   rbac.Scope
	scopeOK bool
}

type linter struct {
	t       *Topology
	out     []Finding
	primary string
	pools   map[string]int         // pool region -> index in HSM.Pools
	keys    map[string]int         // key name -> index in HSM.Keys
	uses    []keyUse               // every workload's key use, in file order
	usesOf  map[string][]keyUse    // identity -> its workloads
	grants  map[string][]roleGrant // principal -> its assignments
	all     []roleGrant            // every assignment, indexed like RoleAssignments
}

func newLinter(t *Topology) *linter {
	l := &linter{
		t:       t,
		primary: t.OpenQuestions.PrimaryRegion,
		pools:   map[string]int{},
		keys:    map[string]int{},
		usesOf:  map[string][]keyUse{},
		grants:  map[string][]roleGrant{},
	}
	for i, p := range t.HSM.Pools {
		if _, dup := l.pools[p.Region]; !dup {
			l.pools[p.Region] = i
		}
	}
	for i, k := range t.HSM.Keys {
		if _, dup := l.keys[k.Name]; !dup {
			l.keys[k.Name] = i
		}
	}
	w := t.Workloads
	for i, s := range w.SQLManagedInstances {
		l.uses = append(l.uses, keyUse{"SQL managed instance", fmt.Sprintf("workloads.sqlManagedInstances[%d]", i), s.Name, s.Region, s.Identity, s.Key})
	}
	for i, d := range w.DiskEncryptionSets {
		l.uses = append(l.uses, keyUse{"disk encryption set", fmt.Sprintf("workloads.diskEncryptionSets[%d]", i), d.Name, d.Region, d.Identity, d.Key})
	}
	for i, s := range w.StorageAccounts {
		l.uses = append(l.uses, keyUse{"storage account", fmt.Sprintf("workloads.storageAccounts[%d]", i), s.Name, s.Region, s.Identity, s.Key})
	}
	for _, u := range l.uses {
		if u.identity != "" {
			l.usesOf[u.identity] = append(l.usesOf[u.identity], u)
		}
	}
	for i, ra := range t.RoleAssignments {
		g := roleGrant{idx: i}
		g.role, g.roleOK = LookupRole(ra.Role)
		if sc, err := rbac.ParseScope(ra.Scope); err == nil {
			g.scope, g.scopeOK = sc, true
		}
		l.grants[ra.Principal] = append(l.grants[ra.Principal], g)
		l.all = append(l.all, g)
	}
	return l
}

// add records a finding of rule; severity and fact come from the catalogue.
func (l *linter) add(rule, object, field, format string, args ...any) {
	sev, fact := SeverityError, ""
	if r, ok := ruleIndex[rule]; ok {
		sev, fact = r.Severity, r.Fact
	}
	l.out = append(l.out, Finding{
		Rule: rule, Severity: sev, Object: object, Field: field,
		Message: fmt.Sprintf(format, args...), Fact: fact,
	})
}

// shortAction drops the data-action prefix and the "/action" suffix:
// "keys/unwrap".
func shortAction(a rbac.DataAction) string {
	s := strings.TrimPrefix(string(a), rbac.DataActionPrefix+"/")
	return strings.TrimSuffix(s, "/action")
}

// cmkActions are what a CMK identity needs: Crypto Service Encryption User.
var cmkActions = []rbac.DataAction{rbac.KeysRead, rbac.KeysWrap, rbac.KeysUnwrap}

func (l *linter) roleRules() {
	t := l.t
	principals := map[string]Principal{}
	for _, p := range t.Principals {
		principals[p.Name] = p
	}

	// Key managers with Crypto Officer and nothing that can create keys.
	seen := map[string]bool{}
	for _, ra := range t.RoleAssignments {
		name := ra.Principal
		if seen[name] {
			continue
		}
		seen[name] = true
		if len(l.usesOf[name]) > 0 || inFold(governanceTeams, principals[name].Team) {
			continue
		}
		officer, canCreate := -1, false
		for _, g := range l.grants[name] {
			if !g.roleOK {
				continue
			}
			if officer < 0 && strings.EqualFold(g.role.ID, rbac.CryptoOfficerRoleID) {
				officer = g.idx
			}
			if g.role.Allows(rbac.KeysCreate) {
				canCreate = true
			}
		}
		if officer >= 0 && !canCreate {
			l.add(ruleKeyManagerCryptoOfficer,
				fmt.Sprintf("roleAssignments[%d] %s", officer, name), fmt.Sprintf("roleAssignments[%d].role", officer),
				"%s has %s, which cannot create or rotate keys (it purges and recovers deleted keys and manages roles); key managers need %s",
				name, rbac.CryptoOfficerRoleName, rbac.CryptoUserRoleName)
		}
	}

	// Service identities: only read/wrap/unwrap, only on their own key.
	for i, ra := range t.RoleAssignments {
		uses := l.usesOf[ra.Principal]
		if len(uses) == 0 {
			continue
		}
		obj := fmt.Sprintf("roleAssignments[%d] %s", i, ra.Principal)
		g := l.all[i]
		if g.roleOK {
			var extra []string
			for _, a := range rbac.AllDataActions() {
				if !contains(cmkActions, a) && g.role.Allows(a) {
					extra = append(extra, shortAction(a))
				}
			}
			if len(extra) > 0 {
				l.add(ruleServiceIdentityExtraActions, obj, fmt.Sprintf("roleAssignments[%d].role", i),
					"%s is the identity of %s but %s also grants %s; give it %s only",
					ra.Principal, describeUses(uses), g.role.Name, summarizeList(extra, 4), rbac.CryptoServiceEncryptionUserRoleName)
			}
		}
		if !g.scopeOK {
			continue
		}
		own := ownKeys(uses)
		if g.scope.IsHSM() {
			l.add(ruleServiceIdentityWideScope, obj, fmt.Sprintf("roleAssignments[%d].scope", i),
				"%s (identity of %s) is assigned at %s, which covers every key in the HSM; scope it to %s",
				ra.Principal, describeUses(uses), ra.Scope, scopesOf(own))
		} else if name, ok := g.scope.KeyName(); ok && !contains(own, name) {
			l.add(ruleServiceIdentityWideScope, obj, fmt.Sprintf("roleAssignments[%d].scope", i),
				"%s (identity of %s) is assigned on key %s, which its workloads do not use; they use %s",
				ra.Principal, describeUses(uses), name, strings.Join(own, ", "))
		}
	}

	// Every workload's identity can read, wrap and unwrap its key.
	for _, u := range l.uses {
		if u.identity == "" || u.key == "" {
			continue
		}
		target := rbac.KeyScope(u.key)
		var missing []string
		for _, a := range cmkActions {
			ok := false
			for _, g := range l.grants[u.identity] {
				if g.roleOK && g.scopeOK && g.scope.Covers(target) && g.role.Allows(a) {
					ok = true
					break
				}
			}
			if !ok {
				missing = append(missing, shortAction(a))
			}
		}
		if len(missing) > 0 {
			l.add(ruleServiceIdentityMissingAccess, u.object(), u.path+".identity",
				"%s %s cannot use its key %s: identity %s lacks %s there; assign %s at %s",
				u.kind, u.name, u.key, u.identity, strings.Join(missing, ", "), rbac.CryptoServiceEncryptionUserRoleName, target)
		}
	}
}

func describeUses(uses []keyUse) string {
	parts := make([]string, len(uses))
	for i, u := range uses {
		parts[i] = u.kind + " " + u.name
	}
	return strings.Join(parts, ", ")
}

func ownKeys(uses []keyUse) []string {
	var keys []string
	for _, u := range uses {
		if u.key != "" && !contains(keys, u.key) {
			keys = append(keys, u.key)
		}
	}
	return keys
}

func scopesOf(keys []string) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = string(rbac.KeyScope(k))
	}
	if len(s) == 0 {
		return "/keys/<its key>"
	}
	return strings.Join(s, " and ")
}

// summarize lists at most n items and counts the rest.
func summarizeList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

func (l *linter) desRules() {
	t := l.t
	w := t.Workloads
	desIn := map[string][]string{}
	for _, d := range w.DiskEncryptionSets {
		desIn[d.Region] = append(desIn[d.Region], d.Name)
	}

	// Regions that need a DES: VM regions and, with ASR, replication targets.
	var order []string
	reasons := map[string][]string{}
	need := func(region, why string) {
		if region == "" {
			return
		}
		if _, ok := reasons[region]; !ok {
			order = append(order, region)
		}
		reasons[region] = append(reasons[region], why)
	}
	for _, vm := range w.VirtualMachines {
		need(vm.Region, "hosts VM "+vm.Name)
		if t.OpenQuestions.ASR && vm.ASR != nil {
			need(vm.ASR.TargetRegion, "is the ASR target of VM "+vm.Name)
		}
	}
	for _, r := range order {
		if len(desIn[r]) == 0 {
			l.add(ruleDESMissingInRegion, "region "+r, "",
				"region %s %s but has no disk encryption set; a DES is regional and must be created there (for ASR before replication is enabled)",
				r, strings.Join(reasons[r], ", "))
		}
	}

	if t.OpenQuestions.ASR {
		for i, vm := range w.VirtualMachines {
			if vm.ASR == nil || vm.ASR.TargetDES != "" {
				continue
			}
			hint := ""
			if d := desIn[vm.ASR.TargetRegion]; len(d) > 0 {
				hint = " (" + vm.ASR.TargetRegion + " has " + strings.Join(d, ", ") + ")"
			}
			l.add(ruleASRTargetDESUnset, fmt.Sprintf("workloads.virtualMachines[%d] %s", i, vm.Name),
				fmt.Sprintf("workloads.virtualMachines[%d].asr.targetDES", i),
				"VM %s is replicated by ASR to %s but asr.targetDES is empty; CMK disks replicate only to a DES pre-created in the target region%s",
				vm.Name, vm.ASR.TargetRegion, hint)
		}
	}

	for i, d := range w.DiskEncryptionSets {
		obj := fmt.Sprintf("workloads.diskEncryptionSets[%d] %s", i, d.Name)
		if _, ok := l.pools[d.Region]; !ok {
			l.add(ruleDESRegionNoPool, obj, fmt.Sprintf("workloads.diskEncryptionSets[%d].region", i),
				"DES %s is in %s, where the HSM has no pool (pools: %s); managed disks need the key store in the DES's region",
				d.Name, d.Region, strings.Join(l.poolRegions(), ", "))
		} else if d.Region != l.primary {
			l.add(ruleDESExtendedRegion, obj, fmt.Sprintf("workloads.diskEncryptionSets[%d].region", i),
				"DES %s relies on the extended-region pool in %s; whether that counts as the same region for a DES is UNCONFIRMED, so verify it on Azure before relying on it for DR",
				d.Name, d.Region)
		}
	}
}

func (l *linter) poolRegions() []string {
	var rs []string
	for _, p := range l.t.HSM.Pools {
		rs = append(rs, p.Region)
	}
	return rs
}

func (l *linter) hsmRules() {
	t := l.t
	h := t.HSM
	hsmObj := "hsm " + h.Name

	if !h.PurgeProtection {
		var deps []string
		for _, s := range t.Workloads.SQLManagedInstances {
			deps = append(deps, "SQL MI "+s.Name)
		}
		for _, s := range t.Workloads.StorageAccounts {
			deps = append(deps, "storage account "+s.Name)
		}
		if len(deps) > 0 {
			l.add(rulePurgeProtectionOff, hsmObj, "hsm.purgeProtection",
				"purge protection is off but %s use the HSM; SQL TDE and Storage CMK require soft delete and purge protection on the key store (set it at creation)",
				summarizeList(deps, 4))
		}
	}

	if d := h.SoftDeleteRetentionDays; d < 7 || d > 90 {
		l.add(ruleSoftDeleteRetention, hsmObj, "hsm.softDeleteRetentionDays",
			"soft-delete retention is %d days; Managed HSM allows 7–90 (default 90), fixed at creation", d)
	}

	if len(h.Pools) > 2 {
		l.add(ruleSingleExtendedRegion, hsmObj, "hsm.pools",
			"the HSM has %d pools (%s); multi-region replication extends to a single additional region only",
			len(h.Pools), strings.Join(l.poolRegions(), ", "))
	}

	for i, p := range h.Pools {
		if p.Region == l.primary {
			continue
		}
		field := fmt.Sprintf("hsm.pools[%d].region", i)
		switch {
		case CannotExtend(p.Region):
			msg := "%s is on Microsoft's list of regions that cannot be extended regions at this time, so extending %s to it may not be possible today"
			if h.AllowUnsupportedExtendedRegion {
				msg += "; hsm.allowUnsupportedExtendedRegion overrides this so the lab can model it as a hypothetical"
			}
			l.add(ruleExtendedRegionUnsupported, "region "+p.Region, field, msg, p.Region, h.Name)
		case FormerlyCannotExtend(p.Region):
			l.add(ruleExtendedRegionFormerly, "region "+p.Region, field,
				"%s was on the 2024 list of regions that cannot be extended regions and is not on the 2025 one; confirm it can be extended before relying on it", p.Region)
		}
	}
}

func (l *linter) securityDomainRules() {
	sd := l.t.HSM.SecurityDomain
	const obj = "hsm.securityDomain"
	n, q := len(sd.Officers), sd.Quorum
	if n < 3 {
		l.add(ruleSDOfficers, obj, "hsm.securityDomain.officers",
			"the security domain has %d officers; activation needs at least 3 RSA key pairs", n)
	}
	switch {
	case q < 2:
		l.add(ruleSDQuorum, obj, "hsm.securityDomain.quorum",
			"quorum is %d; it must be at least 2 so that no single officer can restore the HSM", q)
	case q > n:
		l.add(ruleSDQuorum, obj, "hsm.securityDomain.quorum",
			"quorum is %d but there are only %d officers; the security domain could never be restored", q, n)
	}
	if q > 10 {
		l.add(ruleSDQuorumMax, obj, "hsm.securityDomain.quorum",
			"quorum is %d; the maximum quorum of a Managed HSM security domain is 10", q)
	}
}

func (l *linter) networkRules() {
	t := l.t
	peIn := map[string]bool{}
	for i, pe := range t.Network.PrivateEndpoints {
		peIn[pe.Region] = true
		if !strings.EqualFold(pe.DNSZone, PrivateLinkDNSZone) {
			l.add(rulePrivateEndpointDNSZone, fmt.Sprintf("network.privateEndpoints[%d] %s", i, pe.Name),
				fmt.Sprintf("network.privateEndpoints[%d].dnsZone", i),
				"private DNS zone %q is not %s; the HSM's name will not resolve to this endpoint", pe.DNSZone, PrivateLinkDNSZone)
		}
	}
	if t.HSM.PublicNetworkAccess {
		return
	}

	for _, r := range l.regionsInOrder() {
		if peIn[r] && !contains(t.OpenQuestions.JumpBoxRegions, r) {
			l.add(ruleJumpBoxMissing, "region "+r, "openQuestions.jumpBoxRegions",
				"public network access is disabled and %s has a private endpoint but no jump box; admins there cannot manage the HSM (add a jump box or Bastion in the VNet)", r)
		}
	}

	var order []string
	wl := map[string][]string{}
	at := func(region, name string) {
		if region == "" {
			return
		}
		if _, ok := wl[region]; !ok {
			order = append(order, region)
		}
		if !contains(wl[region], name) {
			wl[region] = append(wl[region], name)
		}
	}
	for _, u := range l.uses {
		at(u.region, u.name)
	}
	for _, vm := range t.Workloads.VirtualMachines {
		at(vm.Region, vm.Name)
		if t.OpenQuestions.ASR && vm.ASR != nil {
			at(vm.ASR.TargetRegion, vm.Name+" (ASR replica)")
		}
	}
	for _, r := range order {
		if !peIn[r] {
			l.add(rulePrivateEndpointMissing, "region "+r, "network.privateEndpoints",
				"public network access is disabled and %s runs %s but has no private endpoint; create a private endpoint and %s zone there so its workloads do not depend on another region's endpoint",
				r, summarizeList(wl[r], 4), PrivateLinkDNSZone)
		}
	}
}

// regionsInOrder returns the declared regions, then any other region named
// by a pool or private endpoint, each once.
func (l *linter) regionsInOrder() []string {
	var rs []string
	add := func(r string) {
		if r != "" && !contains(rs, r) {
			rs = append(rs, r)
		}
	}
	for _, r := range l.t.Regions {
		add(r.Name)
	}
	for _, p := range l.t.HSM.Pools {
		add(p.Region)
	}
	for _, pe := range l.t.Network.PrivateEndpoints {
		add(pe.Region)
	}
	return rs
}

func (l *linter) keyRules() {
	t := l.t
	usersOf := map[string][]keyUse{}
	for _, u := range l.uses {
		usersOf[u.key] = append(usersOf[u.key], u)
	}
	for i, k := range t.HSM.Keys {
		obj := fmt.Sprintf("hsm.keys[%d] %s", i, k.Name)
		f := fmt.Sprintf("hsm.keys[%d]", i)
		var sql, other []string
		for _, u := range usersOf[k.Name] {
			if u.kind == "SQL managed instance" {
				sql = append(sql, u.name)
			} else {
				other = append(other, u.name)
			}
		}

		if len(sql) > 0 {
			switch {
			case k.Type != "RSA-HSM":
				l.add(ruleSQLTDEKeyType, obj, f+".type",
					"%s is the TDE protector of %s but is %s; TDE protectors are RSA 2048 or 3072", k.Name, strings.Join(sql, ", "), k.Type)
			case k.Size != 2048 && k.Size != 3072:
				l.add(ruleSQLTDEKeyType, obj, f+".size",
					"%s is the TDE protector of %s but is RSA %d; TDE protectors are RSA 2048 or 3072", k.Name, strings.Join(sql, ", "), k.Size)
			}
		}
		if len(other) > 0 && k.Type != "RSA-HSM" {
			l.add(ruleCMKKeyType, obj, f+".type",
				"%s is used by %s but is %s; disk encryption sets and storage accounts take RSA keys (2048/3072/4096) only", k.Name, strings.Join(other, ", "), k.Type)
		}
		if users := usersOf[k.Name]; len(users) > 0 && len(k.Ops) > 0 {
			var missing []string
			for _, op := range []string{"wrapKey", "unwrapKey"} {
				if !contains(k.Ops, op) {
					missing = append(missing, op)
				}
			}
			if len(missing) > 0 {
				names := make([]string, len(users))
				for j, u := range users {
					names[j] = u.name
				}
				l.add(ruleWorkloadKeyOps, obj, f+".ops",
					"%s does not permit %s but %s wrap and unwrap their DEKs with it", k.Name, strings.Join(missing, ", "), summarizeList(names, 4))
			}
		}

		r := k.Rotation
		if r == nil {
			l.add(ruleKeyRotationPolicy, obj, f+".rotation",
				"%s has no rotation policy; rotate at least every two years (rotation is free)", k.Name)
			continue
		}
		if r.RotateAfterCreate != 0 && r.ExpiresAfter != 0 && r.RotateAfterCreate >= r.ExpiresAfter {
			l.add(ruleKeyExpiresBeforeRotation, obj, f+".rotation.expiresAfter",
				"each version of %s expires after %s but is replaced only after %s; workloads would be left on an expired key",
				k.Name, r.ExpiresAfter, r.RotateAfterCreate)
		}
		var every time.Duration
		switch {
		case r.RotateAfterCreate != 0:
			every = r.RotateAfterCreate.D()
		case r.RotateBeforeExpiry != 0 && r.ExpiresAfter > r.RotateBeforeExpiry:
			every = r.ExpiresAfter.D() - r.RotateBeforeExpiry.D()
		}
		if every > twoYears {
			l.add(ruleKeyRotationPolicy, obj, f+".rotation",
				"%s rotates every %s, less often than the two years recommended", k.Name, Duration(every))
		}
	}
}

func (l *linter) adRules() {
	t := l.t
	if t.OpenQuestions.ADServers != ADAzureADDS {
		return
	}
	var dcs []string
	for _, vm := range t.Workloads.VirtualMachines {
		if vm.Role == "domain-controller" {
			dcs = append(dcs, vm.Name)
		}
	}
	if len(dcs) > 0 {
		l.add(ruleADDSDomainControllers, "openQuestions", "openQuestions.adServers",
			"AD servers are %s but the topology has domain-controller VMs %s with CMK disks; with Azure AD DS CMK is not possible for that workload, so drop the VMs or choose %s",
			ADAzureADDS, strings.Join(dcs, ", "), ADSelfHosted)
		return
	}
	l.add(ruleADDSNoCMK, "openQuestions", "openQuestions.adServers",
		"AD servers are %s: CMK is not possible for that workload, so the directory's data is outside the HSM's protection", ADAzureADDS)
}

func (l *linter) poolRules() {
	for i, p := range l.t.HSM.Pools {
		obj := fmt.Sprintf("hsm.pools[%d] %s", i, p.Region)
		if n := len(p.Partitions); n != 3 {
			l.add(rulePoolPartitionCount, obj, fmt.Sprintf("hsm.pools[%d].partitions", i),
				"the pool in %s has %d partitions; a Managed HSM pool has 3, on different racks", p.Region, n)
		}
		first := map[string]string{}
		for j, part := range p.Partitions {
			if part.Rack == "" && part.Zone == "" {
				continue
			}
			where := part.Placement()
			if prev, dup := first[where]; dup {
				l.add(rulePoolPartitionPlacement, obj, fmt.Sprintf("hsm.pools[%d].partitions[%d]", i, j),
					"partitions %s and %s of the pool in %s share %s; one failure there takes out both", prev, part.Name, p.Region, where)
				continue
			}
			first[where] = part.Name
		}
	}
}

func (l *linter) failoverRules() {
	t := l.t
	sql := map[string]int{}
	for i, s := range t.Workloads.SQLManagedInstances {
		if _, dup := sql[s.Name]; !dup {
			sql[s.Name] = i
		}
	}
	for i, g := range t.Workloads.FailoverGroups {
		obj := fmt.Sprintf("workloads.failoverGroups[%d] %s", i, g.Name)
		pi, okP := sql[g.Primary]
		si, okS := sql[g.Secondary]
		if !okP || !okS {
			continue
		}
		p, s := t.Workloads.SQLManagedInstances[pi], t.Workloads.SQLManagedInstances[si]
		if _, ok := l.pools[s.Region]; !ok {
			tail := ""
			if _, ok := l.pools[p.Region]; ok && len(l.pools) == 1 {
				tail = "; the only pool is in " + p.Region + ", so an outage there leaves the secondary without a key store"
			}
			l.add(ruleFailoverSecondaryNoPool, obj, fmt.Sprintf("workloads.failoverGroups[%d].secondary", i),
				"secondary %s is in %s, where the HSM has no pool; after a failover it unwraps across regions%s", s.Name, s.Region, tail)
		}
		if p.Key == s.Key && p.AutoRotation != s.AutoRotation {
			off, offIdx := s, si
			if !p.AutoRotation {
				off, offIdx = p, pi
			}
			l.add(ruleFailoverAutoRotation, obj, fmt.Sprintf("workloads.sqlManagedInstances[%d].autoRotation", offIdx),
				"%s and %s share key %s but auto-rotation is off on %s; enable it on both or rotation errors and blocks manual rotation",
				p.Name, s.Name, p.Key, off.Name)
		}
	}
}

func (l *linter) storageRules() {
	for i, s := range l.t.Workloads.StorageAccounts {
		if s.KeyVersion == "" {
			continue
		}
		l.add(ruleStorageKeyVersionPinned, fmt.Sprintf("workloads.storageAccounts[%d] %s", i, s.Name),
			fmt.Sprintf("workloads.storageAccounts[%d].keyVersion", i),
			"%s pins version %s of %s, so it does not pick up rotated versions (omit keyVersion for the daily auto-update)", s.Name, s.KeyVersion, s.Key)
	}
}

// sortFindings orders findings by severity (errors first), rule, object,
// field and message; numbers inside objects compare numerically.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if ra, rb := a.Severity.rank(), b.Severity.rank(); ra != rb {
			return ra < rb
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Object != b.Object {
			return naturalLess(a.Object, b.Object)
		}
		if a.Field != b.Field {
			return naturalLess(a.Field, b.Field)
		}
		return a.Message < b.Message
	})
}

// naturalLess compares strings with runs of digits compared as numbers, so
// "x[2]" sorts before "x[10]".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
