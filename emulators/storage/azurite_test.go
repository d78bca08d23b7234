package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// The Azurite tests need the azurite-blob binary: $HSMLAB_AZURITE, or
// .tools/azurite/node_modules/.bin/azurite-blob under the repository root
// (installed by scripts/install-azurite.sh). Without it they skip, unless
// HSMLAB_REQUIRE_AZURITE=1, which turns the skip into a failure (CI).

// azuriteDevKey is Azurite's public, well-known development account key.
const azuriteDevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

type azurite struct {
	connString string
	cmd        *exec.Cmd
	done       chan struct{}
	out        *bytes.Buffer
}

// findAzurite returns the azurite-blob path or why it is missing.
func findAzurite() (string, string) {
	if p := os.Getenv("HSMLAB_AZURITE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("HSMLAB_AZURITE=%s: %v", p, err)
		}
		return p, ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "azurite", "node_modules", ".bin", "azurite-blob")
			if _, err := os.Stat(p); err != nil {
				return "", "azurite-blob not found at " + p
			}
			return p, ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "no go.mod above the test's working directory"
		}
		dir = parent
	}
}

// startAzurite starts a private Azurite blob service on a free loopback
// port, in-memory, with a t.TempDir() working directory, and stops it by
// PID when the test ends.
func startAzurite(t *testing.T) *azurite {
	t.Helper()
	bin, why := findAzurite()
	if bin == "" {
		msg := "Azurite not available (" + why + "); install it with scripts/install-azurite.sh or set HSMLAB_AZURITE"
		if os.Getenv("HSMLAB_REQUIRE_AZURITE") == "1" {
			t.Fatal(msg + " [HSMLAB_REQUIRE_AZURITE=1]")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	a := &azurite{done: make(chan struct{}), out: &bytes.Buffer{}}
	a.cmd = exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence", "--silent", "--loose")
	a.cmd.Dir = t.TempDir()
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start azurite: %v", err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	t.Cleanup(a.stop)
	a.connString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;", azuriteDevKey, port)

	// Wait (wall clock, through lab/clock: a real process) until the blob
	// service answers.
	c, err := storage.NewAzblobClient(a.connString, -1)
	if err != nil {
		t.Fatal(err)
	}
	wall := clock.Wall{}
	deadline := wall.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ServiceClient().GetProperties(ctx, nil)
		cancel()
		if err == nil {
			return a
		}
		select {
		case <-a.done:
			t.Fatalf("azurite exited: %v\n%s", a.cmd.ProcessState, a.out)
		default:
		}
		if wall.Now().After(deadline) {
			t.Fatalf("azurite not ready on port %d after 30s: %v\n%s", port, err, a.out)
		}
		sleep(wall, 100*time.Millisecond)
	}
}

func sleep(c clock.Clock, d time.Duration) {
	done := make(chan struct{})
	c.AfterFunc(d, func() { close(done) })
	<-done
}

// stop kills the Azurite process by PID and waits for it. Idempotent.
func (a *azurite) stop() {
	if a.cmd.Process != nil {
		_ = a.cmd.Process.Kill()
	}
	<-a.done
}

var prefixSeq atomic.Int64

// azuriteBackend returns a newBackend on a fresh Azurite, with retries
// disabled (MaxRetries -1) so faults show raw behaviour, and registers the
// plaintext-DEK check over everything stored in it.
func azuriteBackend(t *testing.T, reg *envelope.Registry) (storage.Backend, []string) {
	a := startAzurite(t)
	c, err := storage.NewAzblobClient(a.connString, -1)
	if err != nil {
		t.Fatal(err)
	}
	guardAzurite(t, c, reg)
	return storage.NewAzblobBackend(c, fmt.Sprintf("t%d-", prefixSeq.Add(1))), []string{t.TempDir()}
}

// guardAzurite registers a cleanup (run before Azurite stops) that runs
// checkAzurite.
func guardAzurite(t *testing.T, c *azblob.Client, reg *envelope.Registry) {
	t.Cleanup(func() { checkAzurite(t, c, reg) })
}

// checkAzurite reads every blob and its metadata back from Azurite and
// fails the test on any plaintext DEK of reg (or when Azurite holds no blob).
func checkAzurite(t *testing.T, c *azblob.Client, reg *envelope.Registry) {
	ctx := context.Background()
	n := 0
	cp := c.NewListContainersPager(nil)
	for cp.More() {
		page, err := cp.NextPage(ctx)
		if err != nil {
			t.Errorf("plaintext-DEK check: list containers: %v", err)
			return
		}
		for _, ci := range page.ContainerItems {
			bp := c.NewListBlobsFlatPager(*ci.Name, nil)
			for bp.More() {
				bpage, err := bp.NextPage(ctx)
				if err != nil {
					t.Errorf("plaintext-DEK check: list %s: %v", *ci.Name, err)
					return
				}
				for _, it := range bpage.Segment.BlobItems {
					resp, err := c.DownloadStream(ctx, *ci.Name, *it.Name, nil)
					if err != nil {
						t.Errorf("plaintext-DEK check: download: %v", err)
						continue
					}
					var buf bytes.Buffer
					buf.ReadFrom(resp.Body)
					resp.Body.Close()
					for k, v := range resp.Metadata {
						fmt.Fprintf(&buf, "\n%s=%s", k, *v)
					}
					envelopetest.CheckBytes(t, reg, *ci.Name+"/"+*it.Name, buf.Bytes())
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("plaintext-DEK check: no blobs in Azurite")
	}
}

// TestAzuriteRotationThenDisableOldVersion is the 6 h vs 25 h case over Azurite.
func TestAzuriteRotationThenDisableOldVersion(t *testing.T) {
	testRotationThenDisable(t, azuriteBackend)
}

// TestAzuriteDataPath: blobs go to Azurite sealed, with the wrapped key and
// version in metadata (returned canonicalized); no plaintext DEK or
// plaintext data is stored; revocation bites after the cache TTL while
// Azurite itself keeps answering.
func TestAzuriteDataPath(t *testing.T) {
	a := startAzurite(t)
	raw, err := storage.NewAzblobClient(a.connString, -1)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(t *testing.T, reg *envelope.Registry) (storage.Backend, []string) {
		guardAzurite(t, raw, reg)
		return storage.NewAzblobBackend(raw, "dp-"), []string{t.TempDir()}
	}, nil)
	secret := []byte("the quick brown fox jumps over the lazy dog")
	for i := range 5 {
		if err := e.acct.Put(e.ctx, "data", fmt.Sprintf("dir/blob-%d", i), secret); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.acct.Get(e.ctx, "data", "dir/blob-3"); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("get: %q %v", got, err)
	}
	names, err := e.acct.List(e.ctx, "data")
	if err != nil || len(names) != 5 || names[0] != "dir/blob-0" {
		t.Fatalf("list: %v %v", names, err)
	}

	// What Azurite holds: read it with the SDK directly.
	checked := 0
	for _, cont := range []string{"dp-data", "dp-hsmlab-accounts"} {
		pager := raw.NewListBlobsFlatPager(cont, nil)
		for pager.More() {
			page, err := pager.NextPage(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Segment.BlobItems {
				resp, err := raw.DownloadStream(e.ctx, cont, *it.Name, nil)
				if err != nil {
					t.Fatal(err)
				}
				var body bytes.Buffer
				body.ReadFrom(resp.Body)
				resp.Body.Close()
				if bytes.Contains(body.Bytes(), secret) {
					t.Errorf("%s/%s holds the plaintext", cont, *it.Name)
				}
				envelopetest.CheckBytes(t, e.reg, cont+"/"+*it.Name, body.Bytes())
				var metaDump strings.Builder
				canon := false
				meta := map[string]string{}
				for k, v := range resp.Metadata {
					fmt.Fprintf(&metaDump, "%s=%s\n", k, *v)
					meta[k] = *v
					canon = canon || k != strings.ToLower(k)
				}
				envelopetest.CheckBytes(t, e.reg, cont+"/"+*it.Name+"#metadata", []byte(metaDump.String()))
				w, err := storage.WrappedFromMetadata(meta)
				if err != nil || w.KeyVersion != e.v1 || w.KeyName != cmk {
					t.Errorf("%s/%s metadata %v: %+v %v", cont, *it.Name, resp.Metadata, w, err)
				}
				if !canon {
					t.Logf("note: metadata keys came back lower-case: %v", resp.Metadata)
				}
				checked++
			}
		}
	}
	if checked != 6 {
		t.Fatalf("checked %d blobs in Azurite, want 6", checked)
	}

	e.keys.SetEnabled(cmk, e.v1, false)
	e.at(30 * time.Minute)
	e.expectOK("30m", "dir/blob-1", string(secret))
	e.at(61 * time.Minute)
	e.expectForbidden("61m", "dir/blob-1", storage.CodeKeyNotFound)
}

// TestAzuriteDown: with Azurite gone and retries off, requests fail at once
// with a data-path error, not a key error, and the account state is unchanged.
func TestAzuriteDown(t *testing.T) {
	a := startAzurite(t)
	c, err := storage.NewAzblobClient(a.connString, -1)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(t *testing.T, _ *envelope.Registry) (storage.Backend, []string) {
		return storage.NewAzblobBackend(c, "down-"), []string{t.TempDir()}
	}, nil)
	if err := e.put("a", "alpha"); err != nil {
		t.Fatal(err)
	}
	checkAzurite(t, c, e.reg)
	a.stop()
	wall := clock.Wall{}
	start := wall.Now()
	_, err = e.get("a")
	if !errors.Is(err, storage.ErrDataPath) || errors.Is(err, storage.ErrForbidden) {
		t.Fatalf("get with Azurite down: %v", err)
	}
	if el := clock.Since(wall, start); el > 10*time.Second {
		t.Fatalf("get with Azurite down took %v (retries not disabled?)", el)
	}
	if e.acct.State() != storage.Available {
		t.Fatalf("data-path failure changed the key state to %s", e.acct.State())
	}
}
