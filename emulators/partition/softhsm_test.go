package partition_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

func TestFindModuleEnv(t *testing.T) {
	t.Run("missing override", func(t *testing.T) {
		t.Setenv(partition.ModuleEnv, "/nonexistent/libsofthsm2.so")
		_, err := partition.FindModule()
		if !errors.Is(err, partition.ErrSoftHSMNotFound) || !strings.Contains(err.Error(), "/nonexistent/libsofthsm2.so") {
			t.Fatalf("FindModule = %v, want ErrSoftHSMNotFound naming the path", err)
		}
	})
	t.Run("override wins", func(t *testing.T) {
		fake := filepath.Join(t.TempDir(), "libfake.so")
		if err := os.WriteFile(fake, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(partition.ModuleEnv, fake)
		got, err := partition.FindModule()
		if err != nil || got != fake {
			t.Fatalf("FindModule = %q, %v; want %q", got, err, fake)
		}
	})
	t.Run("default paths", func(t *testing.T) {
		t.Setenv(partition.ModuleEnv, "")
		got, err := partition.FindModule()
		if err != nil {
			if !errors.Is(err, partition.ErrSoftHSMNotFound) || !strings.Contains(err.Error(), "/usr/lib/softhsm/libsofthsm2.so") {
				t.Fatalf("FindModule = %v, want ErrSoftHSMNotFound naming the paths tried", err)
			}
			return
		}
		if !strings.HasSuffix(got, "libsofthsm2.so") {
			t.Fatalf("FindModule = %q", got)
		}
	})
}

func TestNewSoftHSM(t *testing.T) {
	t.Setenv(partition.ConfEnv, os.Getenv(partition.ConfEnv)) // restored after the test
	dir := t.TempDir()
	hsm, err := partition.NewSoftHSM(dir)
	if errors.Is(err, partition.ErrSoftHSMNotFound) {
		partition.RequireSoftHSM(t)
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv(partition.ConfEnv); got != hsm.ConfPath {
		t.Fatalf("$%s = %q, want %q", partition.ConfEnv, got, hsm.ConfPath)
	}
	conf, err := os.ReadFile(hsm.ConfPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"directories.tokendir = " + filepath.Join(dir, "tokens"),
		"objectstore.backend = file",
		"log.level = ERROR",
		"slots.removable = false",
	} {
		if !strings.Contains(string(conf), want+"\n") {
			t.Errorf("softhsm2.conf lacks %q:\n%s", want, conf)
		}
	}
	if err := hsm.InitToken("unit", "so-pin-0000", "user-pin-0000"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(hsm.TokenDir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("token dir has %d entries, %v; want 1", len(entries), err)
	}
	if err := hsm.InitToken("", "so-pin-0000", "user-pin-0000"); !errors.Is(err, partition.ErrBadInput) {
		t.Fatalf("InitToken(empty label) = %v, want ErrBadInput", err)
	}
	if err := hsm.InitToken("short-pin", "so-pin-0000", "1"); err == nil {
		t.Fatal("InitToken with a 1-character PIN succeeded")
	}
}
