package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLintDefaultReportsCentralIndia(t *testing.T) {
	code, out, _ := runCLI(t, "lint")
	if code != exitFail {
		t.Fatalf("exit %d, want %d (the default topology has an error-level finding)", code, exitFail)
	}
	if !strings.Contains(out, "extended-region-unsupported") || !strings.Contains(out, "centralindia") {
		t.Fatalf("output does not report Central India:\n%s", out)
	}
}

func TestLintJSONAndCorrectedTopology(t *testing.T) {
	code, out, stderr := runCLI(t, "lint", "--format", "json", "../../topology/testdata/contoso-corrected.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	var doc struct {
		Findings []struct{ Severity string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, f := range doc.Findings {
		if f.Severity == "error" || f.Severity == "warning" {
			t.Fatalf("corrected topology has a %s finding: %s", f.Severity, out)
		}
	}
}

func TestBadInputExitsTwoWithPosition(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("name: x\nhsm:\n  purgeProtection: maybe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"lint", "cost"} {
		code, _, stderr := runCLI(t, cmd, p)
		if code != exitBadInput {
			t.Fatalf("%s: exit %d, want 2", cmd, code)
		}
		if !strings.Contains(stderr, "bad.yaml:3:20") || !strings.Contains(stderr, "hsm.purgeProtection") {
			t.Fatalf("%s: error does not name file:line:column and field: %q", cmd, stderr)
		}
	}
	if code, _, _ := runCLI(t, "lint", "--format", "xml"); code != exitBadInput {
		t.Fatalf("bad --format: exit %d", code)
	}
	if code, _, _ := runCLI(t, "lint", "--no-such-flag"); code != exitBadInput {
		t.Fatalf("unknown flag: exit %d", code)
	}
	if code, _, stderr := runCLI(t, "lint", "/no/such/file.yaml"); code != exitBadInput || !strings.Contains(stderr, "file.yaml") {
		t.Fatalf("missing file: exit %d %q", code, stderr)
	}
}

func TestCostReproducesTheSeed(t *testing.T) {
	code, out, _ := runCLI(t, "cost", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		MonthlyUSD          float64 `json:"monthlyUSD"`
		DedicatedMonthlyUSD float64 `json:"dedicatedMonthlyUSD"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.MonthlyUSD < 4600 || rep.MonthlyUSD > 4650 || rep.DedicatedMonthlyUSD != 13968 {
		t.Fatalf("monthly %.2f, dedicated %.2f; seed: ~$4,620 and ~$13,968", rep.MonthlyUSD, rep.DedicatedMonthlyUSD)
	}
	code, out, _ = runCLI(t, "cost")
	if code != exitOK || !strings.Contains(out, "Managed HSM saves 67%") {
		t.Fatalf("table output: exit %d\n%s", code, out)
	}
}

func TestLintRulesAndTopologyCommands(t *testing.T) {
	code, out, _ := runCLI(t, "lint", "--rules")
	if code != exitOK || !strings.Contains(out, "key-manager-crypto-officer") {
		t.Fatalf("--rules: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "topology", "default")
	if code != exitOK || !strings.Contains(out, "Contoso-PROD-HSM") {
		t.Fatalf("topology default: exit %d", code)
	}
	p := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "topology", "validate", p)
	if code != exitOK || !strings.Contains(out, "valid") {
		t.Fatalf("validate: exit %d %s", code, out)
	}
}
