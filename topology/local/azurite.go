package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// AzuriteEnv names the environment variable that points at azurite-blob.
const AzuriteEnv = "HSMLAB_AZURITE"

// azuriteDevKey is Azurite's public, well-known development account key.
const azuriteDevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// ErrAzuriteNotFound: no azurite-blob binary (install it with
// scripts/install-azurite.sh).
var ErrAzuriteNotFound = errors.New("azurite-blob not found (install it with scripts/install-azurite.sh, or set " + AzuriteEnv + ")")

// repoRoot returns the hsmlab checkout above the working directory, or "".
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(data, []byte("module github.com/hsmlab/hsmlab")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// FindAzurite returns the azurite-blob binary: explicit (a path given by the
// caller), $HSMLAB_AZURITE, the project's .tools/azurite (installed by
// scripts/install-azurite.sh), or azurite-blob on $PATH.
func FindAzurite(explicit string) (string, error) {
	for _, p := range []string{explicit, os.Getenv(AzuriteEnv)} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %v: %w", p, err, ErrAzuriteNotFound)
		}
		return p, nil
	}
	if root := repoRoot(); root != "" {
		p := filepath.Join(root, ".tools", "azurite", "node_modules", ".bin", "azurite-blob")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	return "", ErrAzuriteNotFound
}

// installAzurite runs the project's scripts/install-azurite.sh (npm).
func installAzurite(ctx context.Context, log io.Writer) error {
	root := repoRoot()
	if root == "" {
		return errors.New("install azurite: not inside an hsmlab checkout (scripts/install-azurite.sh)")
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "install-azurite.sh"))
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("install azurite: scripts/install-azurite.sh: %w", err)
	}
	return nil
}

// azurite is one Azurite blob service process: in memory, on a free
// loopback port, in its own process group, with a private working
// directory.
type azurite struct {
	region     string
	port       int
	connString string
	cmd        *exec.Cmd
	done       chan struct{}
	out        *syncBuffer
	stopOnce   sync.Once
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startAzurite starts azurite-blob and waits (up to 30 s of wall time) until
// it answers. On error the process, if any, is stopped.
func startAzurite(ctx context.Context, bin, dir, region string) (*azurite, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a := &azurite{region: region, port: port, done: make(chan struct{}), out: &syncBuffer{}}
	a.cmd = exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence", "--silent", "--loose")
	a.cmd.Dir = dir
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	// Its own process group (Down kills the group); killed by the kernel
	// should this process die without a Down (Pdeathsig is tied to the
	// starting thread, which the lock keeps alive until Start returns and
	// the runtime then parks, never exits).
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	err = a.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("azurite %s: start: %w", region, err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	a.connString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;", azuriteDevKey, port)
	c, err := storage.NewAzblobClient(a.connString, -1)
	if err != nil {
		a.stop()
		return nil, err
	}
	wall := clock.Wall{}
	deadline := wall.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.ServiceClient().GetProperties(pctx, nil)
		cancel()
		if err == nil {
			return a, nil
		}
		select {
		case <-a.done:
			return nil, fmt.Errorf("azurite %s exited: %v\n%s", region, a.cmd.ProcessState, a.out)
		default:
		}
		if ctx.Err() != nil || wall.Now().After(deadline) {
			a.stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("azurite %s not ready on port %d after 30s: %v\n%s", region, port, err, a.out)
		}
		sleepWall(20 * time.Millisecond)
	}
}

// client returns an azblob client without SDK retries (the storage
// emulator's own timers decide when to try again).
func (a *azurite) client() (*azblob.Client, error) {
	return storage.NewAzblobClient(a.connString, -1)
}

// pid returns the process ID (0 when it never started).
func (a *azurite) pid() int {
	if a == nil || a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// stop ends the process group: SIGTERM, then SIGKILL after 3 s; it waits
// for the process. Idempotent.
func (a *azurite) stop() {
	if a == nil || a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.stopOnce.Do(func() {
		pgid := a.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := clock.Wall{}.AfterFunc(3*time.Second, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		<-a.done
		t.Stop()
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // anything left in the group
	})
}

// sleepWall blocks for d of wall time (through lab/clock).
func sleepWall(d time.Duration) {
	done := make(chan struct{})
	clock.Wall{}.AfterFunc(d, func() { close(done) })
	<-done
}
