package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareTwoResults(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"a", "b"} {
		if code, out, errb := runCLI(t, "run", "partition-loss-two", "-q", "--out", filepath.Join(dir, sub), "--seed", map[string]string{"a": "1", "b": "2"}[sub]); code != exitOK {
			t.Fatalf("run: exit %d\n%s%s", code, out, errb)
		}
	}
	if code, _, _ := runCLI(t, "run", "chennai-pool-loss", "-q", "--out", filepath.Join(dir, "c")); code != exitOK {
		t.Fatal("run chennai-pool-loss failed")
	}
	a := filepath.Join(dir, "a", "partition-loss-two", "result.json")
	b := filepath.Join(dir, "b", "partition-loss-two", "result.json")
	code, out, errb := runCLI(t, "compare", a, b)
	if code != exitOK || !strings.Contains(out, "Scenario  partition-loss-two") || !strings.Contains(out, "seed") || !strings.Contains(out, "metrics differ") {
		t.Fatalf("compare: exit %d\n%s%s", code, out, errb)
	}
	code, _, errb = runCLI(t, "compare", a, filepath.Join(dir, "c", "chennai-pool-loss", "result.json"))
	if code != exitBadInput || !strings.Contains(errb, "different scenarios") {
		t.Fatalf("compare of two scenarios: exit %d: %s", code, errb)
	}
}

func TestProviderFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "partition-loss-two", "--provider", "nope"}, "available providers: sim, local"},
		{[]string{"run", "partition-loss-two", "--timescale", "600"}, "apply to wall-clock providers"},
		{[]string{"run", "partition-loss-two", "--provider", "local", "--timescale", "0.5"}, "at least 1"},
	} {
		code, _, errb := runCLI(t, tc.args...)
		if code != exitBadInput || !strings.Contains(errb, tc.want) {
			t.Errorf("%v: exit %d, %q (want 2 and %q)", tc.args, code, errb, tc.want)
		}
	}
}
