package topology_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/topology"
)

func TestDefaultMirrorsTheSeed(t *testing.T) {
	top := topology.Default()
	if top.HSM.Name != "Contoso-PROD-HSM" {
		t.Errorf("HSM name = %q", top.HSM.Name)
	}
	if top.OpenQuestions.PrimaryRegion != "southindia" {
		t.Errorf("primary region = %q", top.OpenQuestions.PrimaryRegion)
	}
	if got := top.HSM.SoftDeleteRetentionDays; got != 90 {
		t.Errorf("retention = %d, want 90 (facts §5)", got)
	}
	if !top.HSM.PurgeProtection || top.HSM.PublicNetworkAccess {
		t.Errorf("purge protection %v, public access %v; want on, off", top.HSM.PurgeProtection, top.HSM.PublicNetworkAccess)
	}
	if len(top.HSM.Pools) != 2 {
		t.Fatalf("pools = %d, want 2", len(top.HSM.Pools))
	}
	for _, p := range top.HSM.Pools {
		if len(p.Partitions) != 3 {
			t.Errorf("pool %s has %d partitions, want 3 (facts §1)", p.Region, len(p.Partitions))
		}
		for _, part := range p.Partitions {
			if p.Region == "southindia" && part.Rack == "" {
				t.Errorf("Chennai partition %s not on a rack", part.Name)
			}
			if p.Region == "centralindia" && part.Zone == "" {
				t.Errorf("Pune partition %s not in a zone", part.Name)
			}
		}
	}
	if sd := top.HSM.SecurityDomain; len(sd.Officers) != 3 || sd.Quorum != 2 {
		t.Errorf("security domain %d officers quorum %d, want 3 / 2", len(sd.Officers), sd.Quorum)
	}
	want := map[string]bool{"Contoso-SQLMI-CMK": true, "Contoso-DISK-CMK": true, "Contoso-STORAGE-CMK": true}
	for _, k := range top.HSM.Keys {
		if !want[k.Name] || k.Type != "RSA-HSM" || k.Size != 2048 || k.Rotation == nil {
			t.Errorf("key %+v", k)
		}
		delete(want, k.Name)
	}
	if len(want) != 0 {
		t.Errorf("missing keys %v", want)
	}
	// Every service identity holds Crypto Service Encryption User on its own key.
	svc := map[string]string{}
	for _, s := range top.Workloads.SQLManagedInstances {
		svc[s.Identity] = s.Key
	}
	for _, d := range top.Workloads.DiskEncryptionSets {
		svc[d.Identity] = d.Key
	}
	for _, s := range top.Workloads.StorageAccounts {
		svc[s.Identity] = s.Key
	}
	if len(svc) != 6 {
		t.Errorf("service identities = %d, want 6", len(svc))
	}
	for _, ra := range top.RoleAssignments {
		if key, ok := svc[ra.Principal]; ok {
			if ra.Role != "Managed HSM Crypto Service Encryption User" || ra.Scope != "/keys/"+key {
				t.Errorf("service identity %s: %s at %s", ra.Principal, ra.Role, ra.Scope)
			}
			delete(svc, ra.Principal)
		}
	}
	if len(svc) != 0 {
		t.Errorf("service identities without an assignment: %v", svc)
	}
	if got := top.Behaviour.HSM.ReplicationLag.D(); got != 6*time.Minute {
		t.Errorf("replication lag %v, want 6m (facts §2)", got)
	}
	if len(top.Network.PrivateEndpoints) != 2 || len(top.OpenQuestions.JumpBoxRegions) != 2 {
		t.Errorf("private endpoints %d, jump-box regions %d; want 2 each", len(top.Network.PrivateEndpoints), len(top.OpenQuestions.JumpBoxRegions))
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	src := `name: minimal
openQuestions: {primaryRegion: r1, adServers: self-hosted-vms, asr: false}
regions: [{name: r1, availabilityZones: true}]
hsm:
  name: hsm-one
  purgeProtection: true
  pools: [{region: r1, partitions: [{name: p1, zone: "1"}]}]
  securityDomain: {officers: [a, b, c], quorum: 2}
`
	top, err := topology.Parse("min.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"retention", top.HSM.SoftDeleteRetentionDays, 90},
		{"replication lag", top.Behaviour.HSM.ReplicationLag.D(), 6 * time.Minute},
		{"dns ttl", top.Behaviour.HSM.DNSTTL.D(), 5 * time.Second},
		{"sql inaccessible", top.Behaviour.SQL.TimeToInaccessible.D(), 10 * time.Minute},
		{"storage poll", top.Behaviour.Storage.KeyVersionPoll.D(), 24 * time.Hour},
		{"rsa2048 unwrap", top.Behaviour.HSM.Throughput.RSA2048.Unwrap, 1100.0},
		{"rsa3072 unwrap", top.Behaviour.HSM.Throughput.RSA3072.Unwrap, 360.0},
		{"pool price", top.Pricing.PoolHourlyUSD, 3.20},
		{"writes", top.Behaviour.HSM.PrimaryDownWrites, topology.WritesAllowed},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// base is a small valid topology the error cases mutate line by line.
const base = `name: t
openQuestions:
  primaryRegion: r1
  adServers: self-hosted-vms
  asr: true
regions:
  - name: r1
    availabilityZones: false
  - name: r2
    availabilityZones: true
hsm:
  name: hsm-one
  purgeProtection: true
  pools:
    - region: r1
      partitions:
        - {name: p1, rack: a}
  securityDomain: {officers: [a, b, c], quorum: 2}
  keys:
    - {name: k1, type: RSA-HSM, size: 2048}
principals:
  - {name: mi, kind: managed-identity}
roleAssignments:
  - {principal: mi, role: Crypto Service Encryption User, scope: /keys/k1}
workloads:
  storageAccounts:
    - {name: st1, region: r1, identity: mi, key: k1}
`

func TestParseErrorsNameLineColumnField(t *testing.T) {
	cases := []struct {
		name      string
		from, to  string // replace in base
		line, col int
		field     string
		msg       string
	}{
		{"wrong type", "purgeProtection: true", "purgeProtection: yes-please", 13, 20, "hsm.purgeProtection", "boolean"},
		{"wrong type int", "size: 2048}", "size: big}", 20, 39, "hsm.keys[0].size", "integer"},
		{"unknown field", "  purgeProtection: true", "  purgeProtektion: true", 13, 3, "hsm.purgeProtektion", "unknown field"},
		{"unknown nested field", "{name: p1, rack: a}", "{name: p1, shelf: a}", 17, 22, "hsm.pools[0].partitions[0].shelf", "unknown field"},
		{"bad duration", "name: t\n", "name: t\nbehaviour: {hsm: {dnsTTL: 5 seconds}}\n", 2, 27, "behaviour.hsm.dnsTTL", "invalid duration"},
		{"negative duration", "name: t\n", "name: t\nbehaviour: {sql: {timeToInaccessible: -10m}}\n", 2, 39, "behaviour.sql.timeToInaccessible", "negative"},
		{"dangling key ref", "key: k1}", "key: k9}", 27, 50, "workloads.storageAccounts[0].key", `key "k9" is not defined`},
		{"dangling region", "region: r1, identity", "region: r7, identity", 27, 27, "workloads.storageAccounts[0].region", `region "r7" is not defined`},
		{"dangling principal", "{principal: mi,", "{principal: nobody,", 24, 17, "roleAssignments[0].principal", "not defined"},
		{"unknown role", "role: Crypto Service Encryption User", "role: Key Wizard", 24, 27, "roleAssignments[0].role", "unknown role"},
		{"scope of missing key", "scope: /keys/k1}", "scope: /keys/k2}", 24, 66, "roleAssignments[0].scope", `key "k2"`},
		{"bad key size", "size: 2048}", "size: 1024}", 20, 39, "hsm.keys[0].size", "bits"},
		{"zone in rackless region", "{name: p1, rack: a}", "{name: p1, zone: \"1\"}", 17, 28, "hsm.pools[0].partitions[0].zone", "no availability zones"},
		{"syntax", "keys:\n", "keys: [\n", 21, 0, "", "must be specified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(base, c.from, c.to, 1)
			if src == base {
				t.Fatalf("case does not change the base document")
			}
			_, err := topology.Parse("case.yaml", []byte(src))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, topology.ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			var e *topology.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not a *topology.Error: %T %v", err, err)
			}
			if e.File != "case.yaml" {
				t.Errorf("file = %q", e.File)
			}
			if e.Line == 0 {
				t.Errorf("no line in %v", e)
			}
			if c.line != 0 && (e.Line != c.line || (c.col != 0 && e.Column != c.col)) {
				t.Errorf("position %d:%d, want %d:%d (%v)", e.Line, e.Column, c.line, c.col, e)
			}
			if c.field != "" && e.Field != c.field {
				t.Errorf("field %q, want %q (%v)", e.Field, c.field, e)
			}
			if !strings.Contains(e.Error(), c.msg) {
				t.Errorf("message %q does not mention %q", e.Error(), c.msg)
			}
		})
	}
}

func TestBaseIsValid(t *testing.T) {
	if _, err := topology.Parse("base.yaml", []byte(base)); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateNames(t *testing.T) {
	src := strings.Replace(base, "  - {name: mi, kind: managed-identity}\n", "  - {name: mi, kind: managed-identity}\n  - {name: mi, kind: user}\n", 1)
	_, err := topology.Parse("dup.yaml", []byte(src))
	var e *topology.Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, `duplicate name "mi"`) || e.Line != 23 {
		t.Fatalf("got %v", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := topology.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(p, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	top, err := topology.Load(p)
	if err != nil || top.Name != "t" {
		t.Fatalf("Load: %v", err)
	}
	if top2, _ := topology.LoadOrDefault(""); top2.Name != "contoso" {
		t.Errorf("LoadOrDefault(\"\") = %q", top2.Name)
	}
}

func TestDigestAndClone(t *testing.T) {
	a, b := topology.Default(), topology.Default()
	if a.Digest() != b.Digest() || len(a.Digest()) != 64 {
		t.Fatalf("digest not stable: %s vs %s", a.Digest(), b.Digest())
	}
	c := a.Clone()
	c.HSM.Keys[0].Size = 3072
	if a.HSM.Keys[0].Size != 2048 {
		t.Fatal("Clone shares memory with the original")
	}
	if c.Digest() == a.Digest() {
		t.Fatal("digest ignores a changed key size")
	}
	if d := a.Clone(); d.Digest() != a.Digest() {
		t.Fatal("Clone changed the digest")
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5s", 5 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"90d", 90 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"P28D", 28 * 24 * time.Hour, true},
		{"PT1H", time.Hour, true},
		{"P1Y", 365 * 24 * time.Hour, true},
		{"P1DT12H", 36 * time.Hour, true},
		{"P", 0, false},
		{"PT", 0, false},
		{"P1H", 0, false},
		{"-1s", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1e300d", 0, false},
	}
	for _, c := range cases {
		got, err := topology.ParseDuration(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(topology.DefaultSource())
	f.Add([]byte("name: [\n"))
	f.Add([]byte("hsm: {pools: [{region: 1, partitions: 7}]}"))
	f.Add([]byte("behaviour: {hsm: {dnsTTL: P1Y2M3DT4H5M6S}}"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := topology.Parse("fuzz.yaml", data)
		if err == nil && top == nil {
			t.Fatal("nil topology without an error")
		}
		if err != nil && !errors.Is(err, topology.ErrInvalid) {
			t.Fatalf("error does not match ErrInvalid: %v", err)
		}
	})
}
