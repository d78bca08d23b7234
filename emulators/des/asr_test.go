package des_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/des"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
)

func (e *env) replicate(vm *des.VM, target *des.DES) *des.Replication {
	e.t.Helper()
	r, err := des.EnableReplication(e.ctx, des.ReplicationConfig{
		Name: "asr-" + vm.Name(), VM: vm, TargetRegion: "centralindia",
		TargetDir: filepath.Join(e.dir, "pune"), TargetDES: target,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestASRFailover: a VM replicated to Pune fails over there and boots from
// the replica, which has the blocks written before and after replication
// was enabled — if a DES was pre-created in Pune. Without one the failover
// fails with ErrNoTargetDES until the DES exists and replication is
// re-enabled.
func TestASRFailover(t *testing.T) {
	t.Run("with target DES", func(t *testing.T) {
		e := newEnv(t)
		src := e.newDES("des-chennai", "southindia", nil)
		dst := e.newDES("des-pune", "centralindia", nil)
		vm := e.newVM("app", src)
		r := e.replicate(vm, dst)
		if r.State() != des.Protected {
			t.Fatalf("replication %s", r.State())
		}
		if err := vm.WriteBlock(e.ctx, "data", 7, block("after-enable")); err != nil {
			t.Fatal(err)
		}
		vm.Shutdown() // Chennai goes dark
		e.at(time.Hour)
		pvm, err := r.Failover(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pvm.Name() != "app@centralindia" || r.State() != des.FailedOver {
			t.Fatalf("failover VM %s, replication %s", pvm.Name(), r.State())
		}
		ioWorks(t, e.ctx, pvm, "failed over")
		if b, err := pvm.ReadBlock(e.ctx, "data", 7); err != nil || string(b[:12]) != "after-enable" {
			t.Fatalf("mirrored block: %q %v", b[:12], err)
		}
		if pvm.Disks()[0].DES() != dst {
			t.Fatal("replica not attached to the target DES")
		}
		if _, err := r.Failover(e.ctx); err == nil {
			t.Fatal("second failover succeeded")
		}
	})
	t.Run("without target DES", func(t *testing.T) {
		e := newEnv(t)
		src := e.newDES("des-chennai", "southindia", nil)
		vm := e.newVM("app", src)
		r := e.replicate(vm, nil)
		if r.State() != des.Unprotected {
			t.Fatalf("replication %s without a target DES", r.State())
		}
		vm.Shutdown()
		if _, err := r.Failover(e.ctx); !errors.Is(err, des.ErrNoTargetDES) {
			t.Fatalf("failover without a target DES: %v", err)
		}
		// Fix: create the DES in Pune and re-enable replication (the source is
		// stopped, so its disks are read by unwrapping through its DES).
		dst := e.newDES("des-pune", "centralindia", nil)
		if err := r.ReenableReplication(e.ctx, dst); err != nil {
			t.Fatal(err)
		}
		pvm, err := r.Failover(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		ioWorks(t, e.ctx, pvm, "failed over after the fix")
		if got := e.states("asr-app"); got != "Unprotected>Protected@0s Protected>FailedOver@0s" {
			t.Fatalf("replication states %q", got)
		}
	})
}

// TestASRAfterRotation: the key is rotated (both DESes auto-rotate); the
// replica keeps the old version until replication is re-enabled, so a
// failover without re-enabling boots on the old version — and fails once
// the old version is disabled; after ReenableReplication it uses the new one.
func TestASRAfterRotation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		reenable    bool
		disableOld  bool
		bootOK      bool
		wantVersion func(e *env, v2 string) string
	}{
		{"no re-enable: old version", false, false, true, func(e *env, _ string) string { return e.v1 }},
		{"no re-enable, old version disabled: boot fails", false, true, false, nil},
		{"re-enabled: new version", true, true, true, func(_ *env, v2 string) string { return v2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			auto := func(c *des.Config) { c.AutoRotate = true }
			src := e.newDES("des-chennai", "southindia", auto)
			dst := e.newDES("des-pune", "centralindia", auto)
			vm := e.newVM("app", src)
			r := e.replicate(vm, dst)
			e.at(10 * time.Minute)
			v2 := e.keys.MustRotate(cmk)
			e.at(2 * time.Hour)
			if src.KeyVersion() != v2 || dst.KeyVersion() != v2 || vm.Disks()[0].KeyVersion() != v2 {
				t.Fatal("DESes or source disks did not pick up the new version")
			}
			for disk, v := range r.ReplicaKeyVersions() {
				if v != e.v1 {
					t.Fatalf("replica of %s moved to %s without re-enabling replication", disk, v)
				}
			}
			if tc.reenable {
				if err := r.ReenableReplication(e.ctx, nil); err != nil {
					t.Fatal(err)
				}
				for disk, v := range r.ReplicaKeyVersions() {
					if v != v2 {
						t.Fatalf("replica of %s on %s after re-enabling", disk, v)
					}
				}
			}
			if tc.disableOld {
				e.keys.SetEnabled(cmk, e.v1, false)
			}
			vm.Shutdown()
			pvm, err := r.Failover(e.ctx)
			if !tc.bootOK {
				if !errors.Is(err, des.ErrBootFailed) || !errors.Is(err, des.ErrKeyDisabled) || pvm == nil || pvm.State() != des.Stopped {
					t.Fatalf("failover boot on a disabled old version: %v", err)
				}
				if keyclient.Class(err) != nil {
					t.Fatalf("disabled version reported with class %v", keyclient.Class(err))
				}
				e.keys.SetEnabled(cmk, e.v1, true)
				if err := pvm.Boot(e.ctx); err != nil {
					t.Fatalf("boot after re-enabling the old version: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, dk := range pvm.Disks() {
				if want := tc.wantVersion(e, v2); dk.KeyVersion() != want {
					t.Fatalf("failover disk %s on %s, want %s", dk.Name(), dk.KeyVersion(), want)
				}
			}
			ioWorks(t, e.ctx, pvm, "failed over")
		})
	}
}
