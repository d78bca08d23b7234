package local_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/lab/clock"
	"github.com/hsmlab/hsmlab/results"
)

// The scenarios the integration tier runs on the local provider, with the
// time scale of each. Every one must pass the same expectations as in the
// sim. They run through the CLI (hsmlab run --provider local), built
// without the race detector: the expectations on unwrap latency (p99 under
// 10 ms) measure the real parts, and race instrumentation makes the Go side
// of every request (TLS, HTTP, azcore, toxiproxy) several times slower. The
// race detector covers the provider in the other integration tests.
var integrationScenarios = []struct {
	name  string
	scale float64
}{
	{"chennai-region-outage", 600},
	{"sql-key-revoked-20m", 600},
	{"partition-loss-two", 600},
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// buildCLI builds cmd/hsmlab (without -race) once per test process.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hsmlab-cli-test-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "hsmlab")
		gobin, err := exec.LookPath("go")
		if err != nil {
			cliErr = err
			return
		}
		cmd := exec.Command(gobin, "build", "-o", cliPath, "github.com/hsmlab/hsmlab/cmd/hsmlab")
		out, err := cmd.CombinedOutput()
		if err != nil {
			cliErr = errors.New("go build ./cmd/hsmlab: " + err.Error() + "\n" + string(out))
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cliPath != "" {
		os.RemoveAll(filepath.Dir(cliPath))
	}
	os.Exit(code)
}

func readResult(t *testing.T, path string) *results.Result {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := results.ReadJSON(fh)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLocalIntegrationScenarios runs each scenario on the local provider
// through the CLI, then in the sim, and compares the two results.
func TestLocalIntegrationScenarios(t *testing.T) {
	requireReal(t)
	bin := buildCLI(t)
	for _, s := range integrationScenarios {
		t.Run(s.name, func(t *testing.T) {
			out := t.TempDir()
			wall := clock.Wall{}
			start := wall.Now()
			cmd := exec.Command(bin, "run", s.name, "--provider", "local", "--require-real",
				"--timescale", strconv.FormatFloat(s.scale, 'g', -1, 64), "--out", filepath.Join(out, "local"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			el := wall.Now().Sub(start)
			if err != nil {
				t.Fatalf("hsmlab run %s --provider local: %v\n%s\n%s", s.name, err, stdout.String(), stderr.String())
			}
			local := readResult(t, filepath.Join(out, "local", s.name, "result.json"))
			if local.Provider != "local" || local.TimeScale != s.scale || local.Verdict != "pass" {
				t.Fatalf("result: provider %s, time scale %g, verdict %s", local.Provider, local.TimeScale, local.Verdict)
			}
			t.Logf("%s on local at %g×: PASS in %v wall", s.name, s.scale, el.Round(time.Millisecond))
			for _, c := range local.Checks {
				t.Logf("  %s %s %v", c.Verdict, c.Expr, c.Measured)
			}

			sim := exec.Command(bin, "run", s.name, "-q", "--out", filepath.Join(out, "sim"))
			if b, err := sim.CombinedOutput(); err != nil {
				t.Fatalf("hsmlab run %s (sim): %v\n%s", s.name, err, b)
			}
			cmp := exec.Command(bin, "compare", filepath.Join(out, "sim", s.name, "result.json"), filepath.Join(out, "local", s.name, "result.json"))
			b, err := cmp.CombinedOutput()
			if err != nil {
				t.Fatalf("hsmlab compare: %v\n%s", err, b)
			}
			for _, want := range []string{"sim provider", "local provider", "wall clock at"} {
				if !bytes.Contains(b, []byte(want)) {
					t.Errorf("comparison lacks %q:\n%s", want, b)
				}
			}
			t.Logf("sim vs local:\n%s", b)
		})
	}
}

// TestLocalIntegrationCLIInterrupt sends SIGINT (Ctrl-C) to `hsmlab run
// --provider local` in the middle of a run: it must exit saying so, with
// its Azurite processes gone, their ports closed and its temporary
// directories removed.
func TestLocalIntegrationCLIInterrupt(t *testing.T) {
	requireReal(t)
	bin := buildCLI(t)
	tmp := t.TempDir()
	cmd := exec.Command(bin, "run", "chennai-region-outage", "--provider", "local", "--require-real", "--timescale", "60", "--out", t.TempDir())
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidRE := regexp.MustCompile(`127\.0\.0\.1:(\d+) \(pid (\d+)\)`)
	var ports, pids []int
	var log bytes.Buffer
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Split(scanLinesOrCR)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			for _, m := range pidRE.FindAllStringSubmatch(line, -1) {
				port, _ := strconv.Atoi(m[1])
				pid, _ := strconv.Atoi(m[2])
				ports, pids = append(ports, port), append(pids, pid)
			}
			if strings.Contains(line, "[traffic]") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("hsmlab exited before traffic:\n%s", log.String())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no traffic after 60 s:\n%s", log.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-done
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(log.String(), "interrupted") {
		t.Fatalf("after SIGINT: %v\n%s", err, log.String())
	}
	if len(pids) != 2 {
		t.Fatalf("expected two Azurite processes announced, got %v\n%s", pids, log.String())
	}
	for i, pid := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("Azurite (pid %d) still running after Ctrl-C", pid)
		}
		if listeningPort(ports[i]) {
			t.Errorf("port %d still listening after Ctrl-C", ports[i])
		}
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("temporary directories left behind: %v", names)
	}
	t.Logf("interrupted cleanly: %s", lastLine(log.String()))
}

func scanLinesOrCR(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
