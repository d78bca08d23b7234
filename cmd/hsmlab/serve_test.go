package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/topology"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	endpointRE = regexp.MustCompile(`(?m)^(\w+) \((primary|extended)\): (https://127\.0\.0\.1:\d+)$`)
	cmdRE      = regexp.MustCompile(`(?m)^    ((?:TOKEN=\$\(curl|curl -s) .*)$`)
	goRE       = regexp.MustCompile(`(?m)^    ((?:certPEM, _|hc, _|cred|c, _|k, err) := .*)$`)
)

// TestServe starts `hsmlab serve` in-process on random loopback ports, runs
// the printed curl flow (and its Go equivalent, and the printed Go
// snippet) against every region, then cancels and checks that the
// listeners are closed.
func TestServe(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf syncBuffer
	done := make(chan error, 1)
	cfg := serveConfig{out: out, listen: "127.0.0.1", tenant: server.DefaultTenant, replicationLag: 10 * time.Millisecond, officerBits: 2048}
	go func() { done <- runServe(ctx, topology.Default(), cfg, &buf) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(buf.String(), "Ctrl-C stops the endpoints.") {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, buf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	printed := buf.String()
	t.Log(printed)
	eps := endpointRE.FindAllStringSubmatch(printed, -1)
	if len(eps) != 2 || eps[0][1] != "southindia" || eps[1][1] != "centralindia" {
		t.Fatalf("endpoints %v", eps)
	}
	cmds := cmdRE.FindAllStringSubmatch(printed, -1)
	if len(cmds) != 4 {
		t.Fatalf("%d curl lines", len(cmds))
	}
	time.Sleep(50 * time.Millisecond) // the replication lag

	// Lab material: the officers' keys readable by the owner only.
	keys, _ := filepath.Glob(filepath.Join(out, "officer-*.key.pem"))
	if len(keys) != 3 {
		t.Fatalf("officer keys %v", keys)
	}
	for _, f := range append(keys, filepath.Join(out, "security-domain.json"), filepath.Join(out, "client-secret.txt")) {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	if data, _ := os.ReadFile(keys[0]); !bytes.Contains(data, []byte("LAB MATERIAL")) {
		t.Fatal("officer key not marked as lab material")
	}
	certPEM, err := os.ReadFile(filepath.Join(out, "tls-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile(filepath.Join(out, "client-secret.txt"))
	if err != nil {
		t.Fatal(err)
	}

	for i, ep := range eps {
		url := ep[3]
		// The curl flow, as printed.
		if _, err := exec.LookPath("curl"); err == nil {
			script := cmds[2*i][1] + "\n" + cmds[2*i+1][1] + "\n"
			got, err := exec.Command("bash", "-c", script).CombinedOutput()
			if err != nil || !bytes.Contains(got, []byte(`"kid":"`+url+`/keys/Contoso-SQLMI-CMK/`)) {
				t.Fatalf("%s: printed curl flow: %v\n%s\n%s", ep[1], err, script, got)
			}
		} else {
			t.Log("curl not installed: the curl flow is checked in Go only")
		}
		// Its Go equivalent: a token from the endpoint, then azkeys.
		hc, err := server.TrustingClient(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		cred := &server.HTTPCredential{TokenURL: server.TokenURL(url, server.DefaultTenant), Principal: "sqlmi-chennai-mi",
			Secret: strings.TrimSpace(string(secret)), Client: hc}
		c, err := azkeys.NewClient(url, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}},
			DisableChallengeResourceVerification: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetKey(ctx, "Contoso-SQLMI-CMK", "", nil); err != nil {
			t.Fatalf("%s: azkeys get: %v", ep[1], err)
		}
		var re *azcore.ResponseError
		if _, err := c.GetKey(ctx, "Contoso-DISK-CMK", "", nil); !errors.As(err, &re) || re.StatusCode != 403 {
			t.Fatalf("%s: SQL MI identity reads the disk key: %v", ep[1], err)
		}
		hc.CloseIdleConnections()
	}
	if !testing.Short() {
		runSnippet(t, printed)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, ep := range eps {
		addr := strings.TrimPrefix(ep[3], "https://")
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still listens on %s", ep[1], addr)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Logf("dial %s: %v", addr, err)
		}
	}
}

// runSnippet builds and runs the printed Go snippet of the first region as
// a program inside the module (under testdata, which ./... skips).
func runSnippet(t *testing.T, printed string) {
	t.Helper()
	var lines []string
	for _, m := range goRE.FindAllStringSubmatch(printed, -1) {
		lines = append(lines, m[1])
		if strings.HasPrefix(m[1], "k, err") {
			break
		}
	}
	if len(lines) != 5 {
		t.Fatalf("Go snippet: %d lines", len(lines))
	}
	src := `package main

import (
	"context"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
)

func main() {
	` + strings.Join(lines, "\n\t") + `
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("kid", *k.Key.KID)
}
`
	if _, err := os.Stat("testdata"); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove("testdata") })
	}
	dir, err := os.MkdirTemp("testdata", "snippet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("go", "run", "./"+dir).CombinedOutput()
	if err != nil || !bytes.Contains(got, []byte("kid https://127.0.0.1:")) {
		t.Fatalf("printed Go snippet: %v\n%s\n%s", err, src, got)
	}
}

func TestServeBadInput(t *testing.T) {
	if code, _, _ := runCLI(t, "serve", "--ports", "x"); code != exitBadInput {
		t.Fatalf("--ports x: exit %d", code)
	}
	if code, _, stderr := runCLI(t, "serve", "--ports", "1", "--out", t.TempDir()); code != exitBadInput || !strings.Contains(stderr, "2 region") {
		t.Fatalf("one port for two regions: exit %d %s", code, stderr)
	}
}
