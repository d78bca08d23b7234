package topology

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$`)
	keyNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,127}$`) // Key Vault object names
	hsmNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$`)
)

// Key types and their allowed sizes (facts §7 KEYS).
var keySizes = map[string][]int{
	"RSA-HSM": {2048, 3072, 4096},
	"oct-HSM": {128, 192, 256},
}

var ecCurves = []string{"P-256", "P-256K", "P-384", "P-521"}

// Key operations Key Vault knows.
var keyOps = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}

// validator collects errors with YAML paths.
type validator struct{ errs Errors }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// name checks a required, well-formed, unique name.
func (v *validator) name(field, what, s string, seen map[string]string) {
	switch {
	case s == "":
		v.add(field, "%s name is required", what)
	case !nameRE.MatchString(s):
		v.add(field, "%s name %q must start with a letter or digit and use only letters, digits, '.', '_' or '-' (at most 127)", what, s)
	case seen != nil && seen[s] != "":
		v.add(field, "duplicate name %q (already used by %s)", s, seen[s])
	}
	if seen != nil && s != "" && seen[s] == "" {
		seen[s] = field
	}
}

// ref checks a reference to a named object.
func (v *validator) ref(field, what, s string, set map[string]string) {
	if s == "" {
		v.add(field, "%s is required", what)
		return
	}
	if _, ok := set[s]; !ok {
		v.add(field, "%s %q is not defined (known: %s)", what, s, known(set))
	}
}

func known(set map[string]string) string {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sortStrings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Validate checks the structure of the topology: required fields, unique
// names, references that resolve, values in their domain. It does not judge
// DR design — that is Lint's job. The returned errors carry YAML paths but no
// positions (Parse adds those). Call ApplyDefaults first.
func (t *Topology) Validate() Errors {
	v := &validator{}
	if t.Name == "" {
		v.add("name", "topology name is required")
	}

	regions := map[string]string{}
	zoned := map[string]bool{}
	for i, r := range t.Regions {
		f := fmt.Sprintf("regions[%d]", i)
		v.name(f+".name", "region", r.Name, regions)
		zoned[r.Name] = r.AvailabilityZones
		if r.IntraRegionRTT <= 0 {
			v.add(f+".intraRegionRTT", "must be positive")
		}
	}
	if len(t.Regions) == 0 {
		v.add("regions", "at least one region is required")
	}

	// Network.
	links := map[string]bool{}
	for i, l := range t.Network.Links {
		f := fmt.Sprintf("network.links[%d]", i)
		v.ref(f+".between[0]", "region", l.Between[0], regions)
		v.ref(f+".between[1]", "region", l.Between[1], regions)
		if l.Between[0] == l.Between[1] && l.Between[0] != "" {
			v.add(f+".between", "a link joins two different regions")
		}
		k := pairKey(l.Between[0], l.Between[1])
		if links[k] {
			v.add(f, "duplicate link between %s and %s", l.Between[0], l.Between[1])
		}
		links[k] = true
		if l.RTT <= 0 {
			v.add(f+".rtt", "must be positive")
		}
	}
	pes := map[string]string{}
	for i, pe := range t.Network.PrivateEndpoints {
		f := fmt.Sprintf("network.privateEndpoints[%d]", i)
		v.name(f+".name", "private endpoint", pe.Name, pes)
		v.ref(f+".region", "region", pe.Region, regions)
	}

	// HSM.
	h := t.HSM
	if h.Name == "" {
		v.add("hsm.name", "HSM name is required")
	} else if !hsmNameRE.MatchString(h.Name) {
		v.add("hsm.name", "HSM name %q must be 3–24 letters, digits and dashes, start with a letter and not end with a dash", h.Name)
	}
	if h.SoftDeleteRetentionDays < 0 {
		v.add("hsm.softDeleteRetentionDays", "must be positive")
	}
	poolRegions := map[string]string{}
	partNames := map[string]string{}
	for i, p := range h.Pools {
		f := fmt.Sprintf("hsm.pools[%d]", i)
		v.ref(f+".region", "region", p.Region, regions)
		if _, dup := poolRegions[p.Region]; dup && p.Region != "" {
			v.add(f+".region", "region %q already has a pool (one pool per region)", p.Region)
		}
		poolRegions[p.Region] = f
		if len(p.Partitions) == 0 {
			v.add(f+".partitions", "a pool needs partitions (Managed HSM pools have 3)")
		}
		for j, part := range p.Partitions {
			pf := fmt.Sprintf("%s.partitions[%d]", f, j)
			v.name(pf+".name", "partition", part.Name, partNames)
			switch {
			case part.Rack == "" && part.Zone == "":
				v.add(pf, "partition %q needs a placement: rack or zone", part.Name)
			case part.Rack != "" && part.Zone != "":
				v.add(pf, "partition %q has both a rack and a zone; set one", part.Name)
			case part.Zone != "" && !zoned[p.Region] && regions[p.Region] != "":
				v.add(pf+".zone", "region %s has no availability zones; place the partition on a rack", p.Region)
			}
		}
	}
	if len(h.Pools) == 0 {
		v.add("hsm.pools", "the HSM needs at least one pool")
	}
	oq := t.OpenQuestions
	if oq.PrimaryRegion == "" {
		v.add("openQuestions.primaryRegion", "primary region is required")
	} else if _, ok := poolRegions[oq.PrimaryRegion]; !ok {
		v.add("openQuestions.primaryRegion", "primary region %q has no HSM pool (pools: %s)", oq.PrimaryRegion, known(poolRegions))
	}
	switch oq.ADServers {
	case ADSelfHosted, ADAzureADDS:
	case "":
		v.add("openQuestions.adServers", "required: %s or %s", ADSelfHosted, ADAzureADDS)
	default:
		v.add("openQuestions.adServers", "%q is not one of %s, %s", oq.ADServers, ADSelfHosted, ADAzureADDS)
	}
	for i, r := range oq.JumpBoxRegions {
		v.ref(fmt.Sprintf("openQuestions.jumpBoxRegions[%d]", i), "region", r, regions)
	}

	officers := map[string]string{}
	for i, o := range h.SecurityDomain.Officers {
		v.name(fmt.Sprintf("hsm.securityDomain.officers[%d]", i), "officer", o, officers)
	}
	if h.SecurityDomain.Quorum < 0 {
		v.add("hsm.securityDomain.quorum", "must not be negative")
	}

	keys := map[string]string{}
	for i, k := range h.Keys {
		f := fmt.Sprintf("hsm.keys[%d]", i)
		switch {
		case k.Name == "":
			v.add(f+".name", "key name is required")
		case !keyNameRE.MatchString(k.Name):
			v.add(f+".name", "key name %q may use only letters, digits and '-' (1–127)", k.Name)
		case keys[k.Name] != "":
			v.add(f+".name", "duplicate key %q", k.Name)
		}
		if k.Name != "" {
			keys[k.Name] = f
		}
		switch k.Type {
		case "RSA-HSM", "oct-HSM":
			if !contains(keySizes[k.Type], k.Size) {
				v.add(f+".size", "%s keys are %v bits, not %d", k.Type, keySizes[k.Type], k.Size)
			}
		case "EC-HSM":
			if !contains(ecCurves, k.Curve) {
				v.add(f+".curve", "EC-HSM keys need a curve: %s", strings.Join(ecCurves, ", "))
			}
		case "":
			v.add(f+".type", "key type is required (RSA-HSM, EC-HSM or oct-HSM)")
		default:
			v.add(f+".type", "key type %q is not RSA-HSM, EC-HSM or oct-HSM (Managed HSM has HSM keys only)", k.Type)
		}
		for j, op := range k.Ops {
			if !contains(keyOps, op) {
				v.add(fmt.Sprintf("%s.ops[%d]", f, j), "unknown key operation %q (known: %s)", op, strings.Join(keyOps, ", "))
			}
		}
		if r := k.Rotation; r != nil {
			if r.RotateAfterCreate == 0 && r.RotateBeforeExpiry == 0 {
				v.add(f+".rotation", "a rotation policy needs rotateAfterCreate or rotateBeforeExpiry")
			}
			if r.RotateAfterCreate != 0 && r.RotateBeforeExpiry != 0 {
				v.add(f+".rotation", "set rotateAfterCreate or rotateBeforeExpiry, not both")
			}
			if r.RotateAfterCreate != 0 && r.RotateAfterCreate.D() < MinRotationInterval {
				v.add(f+".rotation.rotateAfterCreate", "auto-rotation cannot run more often than every 28 days (P28D)")
			}
			if r.ExpiresAfter != 0 && r.ExpiresAfter.D() < MinRotationInterval {
				v.add(f+".rotation.expiresAfter", "expiry must be at least 28 days (P28D)")
			}
			if r.RotateBeforeExpiry != 0 && r.ExpiresAfter == 0 {
				v.add(f+".rotation.rotateBeforeExpiry", "rotateBeforeExpiry needs expiresAfter")
			}
			if r.RotateBeforeExpiry != 0 && r.ExpiresAfter != 0 && r.RotateBeforeExpiry >= r.ExpiresAfter {
				v.add(f+".rotation.rotateBeforeExpiry", "must be shorter than expiresAfter")
			}
		}
	}

	principals := map[string]string{}
	kinds := map[string]string{}
	for i, p := range t.Principals {
		f := fmt.Sprintf("principals[%d]", i)
		v.name(f+".name", "principal", p.Name, principals)
		kinds[p.Name] = p.Kind
		switch p.Kind {
		case PrincipalUser, PrincipalGroup, PrincipalManagedIdentity, PrincipalServicePrincipal:
		default:
			v.add(f+".kind", "principal kind %q is not one of user, group, managed-identity, service-principal", p.Kind)
		}
	}
	for i, ra := range t.RoleAssignments {
		f := fmt.Sprintf("roleAssignments[%d]", i)
		v.ref(f+".principal", "principal", ra.Principal, principals)
		if _, ok := LookupRole(ra.Role); !ok {
			v.add(f+".role", "unknown role %q (built-in roles: %s)", ra.Role, strings.Join(builtInRoleNames(), ", "))
		}
		sc, err := rbac.ParseScope(ra.Scope)
		if err != nil {
			v.add(f+".scope", "scope %q is not /, /keys or /keys/<key-name>", ra.Scope)
		} else if name, ok := sc.KeyName(); ok {
			if _, exists := keys[name]; !exists {
				v.add(f+".scope", "scope names key %q, which the HSM does not have (keys: %s)", name, known(keys))
			}
		}
	}

	// Workloads: names unique across all kinds (probes and faults name them).
	wl := map[string]string{}
	identity := func(field, s string) {
		v.ref(field, "identity", s, principals)
		if k, ok := kinds[s]; ok && k != PrincipalManagedIdentity && k != PrincipalServicePrincipal {
			v.add(field, "identity %q is a %s; a service needs a managed identity", s, k)
		}
	}
	sqlRegion := map[string]string{}
	for i, s := range t.Workloads.SQLManagedInstances {
		f := fmt.Sprintf("workloads.sqlManagedInstances[%d]", i)
		v.name(f+".name", "workload", s.Name, wl)
		v.ref(f+".region", "region", s.Region, regions)
		identity(f+".identity", s.Identity)
		v.ref(f+".key", "key", s.Key, keys)
		if s.Databases < 0 {
			v.add(f+".databases", "must not be negative")
		}
		sqlRegion[s.Name] = s.Region
	}
	inFOG := map[string]string{}
	fogs := map[string]string{}
	for i, g := range t.Workloads.FailoverGroups {
		f := fmt.Sprintf("workloads.failoverGroups[%d]", i)
		v.name(f+".name", "failover group", g.Name, fogs)
		v.ref(f+".primary", "SQL managed instance", g.Primary, sqlRegion)
		v.ref(f+".secondary", "SQL managed instance", g.Secondary, sqlRegion)
		if g.Primary != "" && g.Primary == g.Secondary {
			v.add(f+".secondary", "secondary must differ from primary")
		} else if r1, r2 := sqlRegion[g.Primary], sqlRegion[g.Secondary]; r1 != "" && r1 == r2 {
			v.add(f+".secondary", "primary and secondary are both in %s; a failover group spans two regions", r1)
		}
		for _, m := range []struct{ field, name string }{{".primary", g.Primary}, {".secondary", g.Secondary}} {
			if prev, dup := inFOG[m.name]; dup && m.name != "" {
				v.add(f+m.field, "instance %q is already in failover group %s", m.name, prev)
			}
			inFOG[m.name] = g.Name
		}
	}
	desRegion := map[string]string{}
	for i, d := range t.Workloads.DiskEncryptionSets {
		f := fmt.Sprintf("workloads.diskEncryptionSets[%d]", i)
		v.name(f+".name", "workload", d.Name, wl)
		v.ref(f+".region", "region", d.Region, regions)
		identity(f+".identity", d.Identity)
		v.ref(f+".key", "key", d.Key, keys)
		desRegion[d.Name] = d.Region
	}
	disks := map[string]string{}
	for i, vm := range t.Workloads.VirtualMachines {
		f := fmt.Sprintf("workloads.virtualMachines[%d]", i)
		v.name(f+".name", "workload", vm.Name, wl)
		v.ref(f+".region", "region", vm.Region, regions)
		if vm.DES != "" {
			v.ref(f+".des", "disk encryption set", vm.DES, desRegion)
			if r := desRegion[vm.DES]; r != "" && vm.Region != "" && r != vm.Region {
				v.add(f+".des", "disk encryption set %q is in %s but the VM is in %s; a DES serves disks in its own region", vm.DES, r, vm.Region)
			}
		} else {
			v.add(f+".des", "disk encryption set is required (the VM's disks use a CMK)")
		}
		osDisks := 0
		for j, d := range vm.Disks {
			df := fmt.Sprintf("%s.disks[%d]", f, j)
			v.name(df+".name", "disk", d.Name, disks)
			switch d.Kind {
			case "os":
				osDisks++
			case "data":
			default:
				v.add(df+".kind", "disk kind %q is not os or data", d.Kind)
			}
			if d.SizeGiB <= 0 {
				v.add(df+".sizeGiB", "must be positive")
			}
		}
		if osDisks != 1 {
			v.add(f+".disks", "a VM has exactly one os disk (found %d)", osDisks)
		}
		if a := vm.ASR; a != nil {
			v.ref(f+".asr.targetRegion", "region", a.TargetRegion, regions)
			if a.TargetRegion == vm.Region && a.TargetRegion != "" {
				v.add(f+".asr.targetRegion", "ASR replicates to another region than the VM's own")
			}
			if a.TargetDES != "" {
				v.ref(f+".asr.targetDES", "disk encryption set", a.TargetDES, desRegion)
				if r := desRegion[a.TargetDES]; r != "" && r != a.TargetRegion {
					v.add(f+".asr.targetDES", "target DES %q is in %s, not in the target region %s", a.TargetDES, r, a.TargetRegion)
				}
			}
		}
	}
	for i, s := range t.Workloads.StorageAccounts {
		f := fmt.Sprintf("workloads.storageAccounts[%d]", i)
		v.name(f+".name", "workload", s.Name, wl)
		v.ref(f+".region", "region", s.Region, regions)
		identity(f+".identity", s.Identity)
		v.ref(f+".key", "key", s.Key, keys)
	}

	// Behaviour.
	b := t.Behaviour
	switch b.HSM.PrimaryDownWrites {
	case WritesAllowed, WritesDenied:
	default:
		v.add("behaviour.hsm.primaryDownWrites", "%q is not %s or %s", b.HSM.PrimaryDownWrites, WritesAllowed, WritesDenied)
	}
	switch b.HSM.RemovedRegionAccess {
	case RemovedRerouted, RemovedLost:
	default:
		v.add("behaviour.hsm.removedRegionAccess", "%q is not %s or %s", b.HSM.RemovedRegionAccess, RemovedRerouted, RemovedLost)
	}
	for _, r := range []struct {
		field string
		rates OpRates
	}{
		{"rsa2048", b.HSM.Throughput.RSA2048}, {"rsa3072", b.HSM.Throughput.RSA3072}, {"rsa4096", b.HSM.Throughput.RSA4096},
		{"aes128", b.HSM.Throughput.AES128}, {"aes192", b.HSM.Throughput.AES192}, {"aes256", b.HSM.Throughput.AES256},
	} {
		for name, x := range map[string]float64{"unwrap": r.rates.Unwrap, "wrap": r.rates.Wrap, "get": r.rates.Get, "create": r.rates.Create, "encrypt": r.rates.Encrypt, "decrypt": r.rates.Decrypt} {
			if x < 0 {
				v.add("behaviour.hsm.throughput."+r.field+"."+name, "must not be negative")
			}
		}
	}

	p := t.Pricing
	for name, x := range map[string]float64{"poolHourlyUSD": p.PoolHourlyUSD, "hoursPerMonth": p.HoursPerMonth, "keyMonthlyUSD": p.KeyMonthlyUSD, "operationsMonthlyUSD": p.OperationsMonthlyUSD, "dedicatedHSMDeviceMonthlyUSD": p.DedicatedHSMDeviceMonthlyUSD} {
		if x < 0 {
			v.add("pricing."+name, "must not be negative")
		}
	}
	if p.DedicatedHSMDevicesPerRegion < 0 {
		v.add("pricing.dedicatedHSMDevicesPerRegion", "must not be negative")
	}
	sortErrs(v.errs)
	return v.errs
}

func pairKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}
