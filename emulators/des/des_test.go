package des_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/des"
	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
)

// TestDiskImage: blocks are sealed per block in the image file; a block
// moved to another slot fails authentication; unwritten blocks read as
// zeros; data survives a reboot and reopening the image.
func TestDiskImage(t *testing.T) {
	e := newEnv(t)
	d := e.newDES("des-chennai", "southindia", nil)
	vm := e.newVM("app", d)
	ioWorks(t, e.ctx, vm, "booted")
	if b, err := vm.ReadBlock(e.ctx, "data", 9); err != nil || !bytes.Equal(b, make([]byte, 512)) {
		t.Fatalf("unwritten block: %v", err)
	}
	if _, err := vm.ReadBlock(e.ctx, "data", 16); !errors.Is(err, des.ErrBlockRange) {
		t.Fatalf("block past the end: %v", err)
	}
	if err := vm.WriteBlock(e.ctx, "data", 1, []byte("short")); !errors.Is(err, des.ErrBlockRange) {
		t.Fatalf("short write: %v", err)
	}
	if _, err := vm.ReadBlock(e.ctx, "swap", 0); !errors.Is(err, des.ErrNoSuchDisk) {
		t.Fatalf("unknown disk: %v", err)
	}
	dk := vm.Disks()[1]
	img, err := os.ReadFile(dk.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(img, []byte("data-3")) {
		t.Fatal("plaintext block in the image")
	}
	if !bytes.HasPrefix(img, []byte("HSMLABDISK1\n")) || !bytes.Contains(img[:des.HeaderSize], []byte(e.v1)) {
		t.Fatal("header lacks magic or key version")
	}
	// Copy slot 3 over slot 5: the block index is bound into the AAD.
	slot := 512 + envelope.Overhead
	copy(img[des.HeaderSize+5*slot:], img[des.HeaderSize+3*slot:des.HeaderSize+4*slot])
	if err := os.WriteFile(dk.Path(), img, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.ReadBlock(e.ctx, "data", 5); !errors.Is(err, des.ErrCorrupt) {
		t.Fatalf("moved block: %v, want ErrCorrupt", err)
	}
	vm.Shutdown()
	ioFails(t, e.ctx, vm, "stopped", des.Stopped, des.ErrNotRunning)
	if err := vm.Boot(e.ctx); err != nil {
		t.Fatal(err)
	}
	ioWorks(t, e.ctx, vm, "rebooted")
	vm.Shutdown()

	// Reopen the images through another DES object on the same key.
	d2 := e.newDES("des-chennai-2", "southindia", nil)
	var disks []*des.Disk
	for _, old := range vm.Disks() {
		dk, err := d2.OpenDisk(old.Path())
		if err != nil {
			t.Fatal(err)
		}
		disks = append(disks, dk)
	}
	vm2, _ := des.NewVM(des.VMConfig{Name: "app2", Disks: disks})
	if err := vm2.Boot(e.ctx); err != nil {
		t.Fatal(err)
	}
	ioWorks(t, e.ctx, vm2, "reopened")
}

// TestKeyLoss: the DES's key disabled, deleted or its role removed at t=0.
// Back after 30 minutes, the VM never notices; gone for 2 hours, disk I/O
// fails at 1 h (t_ok + IOFailAfterKeyLoss), the VM is shut down, and it
// boots only once the key is usable again.
func TestKeyLoss(t *testing.T) {
	type kill struct {
		name            string
		revoke, restore func(e *env)
		class           error
	}
	kinds := []kill{
		{"disabled", func(e *env) { e.keys.SetEnabled(cmk, e.v1, false) }, func(e *env) { e.keys.SetEnabled(cmk, e.v1, true) }, des.ErrKeyDisabled},
		{"deleted", func(e *env) { e.keys.Delete(cmk) }, func(e *env) { e.keys.Recover(cmk) }, keyclient.ErrDenied},
		{"role removed", func(e *env) { e.keys.Revoke("des-des-chennai", "") }, func(e *env) { e.keys.Grant("des-des-chennai", "") }, keyclient.ErrDenied},
	}
	for _, k := range kinds {
		for _, tc := range []struct {
			outage    time.Duration
			survives  bool
			desStates string
		}{
			{30 * time.Minute, true, "Healthy>KeyLost@5m0s KeyLost>Healthy@35m0s"},
			{2 * time.Hour, false, "Healthy>KeyLost@5m0s KeyLost>DisksFailed@1h0m0s DisksFailed>Healthy@2h5m0s"},
		} {
			t.Run(k.name+"/"+tc.outage.String(), func(t *testing.T) {
				e := newEnv(t)
				d := e.newDES("des-chennai", "southindia", nil)
				vm := e.newVM("app", d)
				k.revoke(e)
				if tc.survives {
					e.at(tc.outage)
					ioWorks(t, e.ctx, vm, tc.outage.String())
					k.restore(e)
					e.at(3 * time.Hour)
					ioWorks(t, e.ctx, vm, "3h")
				} else {
					e.at(59 * time.Minute)
					ioWorks(t, e.ctx, vm, "59m")
					e.at(time.Hour)
					ioFails(t, e.ctx, vm, "1h", des.ShutDownByPlatform, des.ErrIOFailed)
					e.at(90 * time.Minute)
					err := vm.Boot(e.ctx)
					if !errors.Is(err, des.ErrBootFailed) || !errors.Is(err, k.class) {
						t.Fatalf("boot with the key gone: %v", err)
					}
					if vm.State() != des.ShutDownByPlatform {
						t.Fatalf("failed boot changed the state to %s", vm.State())
					}
					e.at(tc.outage)
					k.restore(e)
					if err := vm.Boot(e.ctx); err != nil {
						t.Fatalf("boot with the key back: %v", err)
					}
					ioWorks(t, e.ctx, vm, "rebooted")
					e.at(2*time.Hour + 5*time.Minute)
				}
				if got := e.states("des-chennai"); got != tc.desStates {
					t.Fatalf("DES states %q, want %q\n%s", got, tc.desStates, e.dump())
				}
				wantVM := "Stopped>Running@0s"
				if !tc.survives {
					wantVM += " Running>ShutDownByPlatform@1h0m0s ShutDownByPlatform>Running@2h0m0s"
				}
				if got := e.states("app"); got != wantVM {
					t.Fatalf("VM states %q, want %q", got, wantVM)
				}
			})
		}
	}
}

// TestUnreachableKeyStore: a DES that cannot reach the key store keeps
// running VMs going (no information), and boots fail as unreachable.
func TestUnreachableKeyStore(t *testing.T) {
	e := newEnv(t)
	d := e.newDES("des-chennai", "southindia", nil)
	vm := e.newVM("app", d)
	e.keys.Client("des-des-chennai").SetUnreachable(true)
	e.at(5 * time.Hour)
	ioWorks(t, e.ctx, vm, "5h")
	vm.Shutdown()
	if err := vm.Boot(e.ctx); keyclient.Class(err) != keyclient.ErrUnreachable || !errors.Is(err, des.ErrBootFailed) {
		t.Fatalf("boot while unreachable: %v", err)
	}
	if d.State() != des.Healthy {
		t.Fatalf("DES %s while unreachable", d.State())
	}
}

// TestExpiredKey: an expired key keeps VMs running and booting
// (ExpiredKeyStopsVMs false, the user report); with the parameter set it
// acts like a disabled key.
func TestExpiredKey(t *testing.T) {
	for _, stops := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "ExpiredKeyStopsVMs"}[stops], func(t *testing.T) {
			e := newEnv(t)
			d := e.newDES("des-chennai", "southindia", func(c *des.Config) { c.ExpiredKeyStopsVMs = stops })
			vm := e.newVM("app", d)
			e.keys.SetExpires(cmk, e.v1, e.vc.Now().Add(time.Second))
			e.at(59 * time.Minute)
			ioWorks(t, e.ctx, vm, "59m")
			e.at(3 * time.Hour)
			if !stops {
				ioWorks(t, e.ctx, vm, "3h")
				vm.Shutdown()
				if err := vm.Boot(e.ctx); err != nil {
					t.Fatalf("boot with an expired key: %v", err)
				}
				return
			}
			ioFails(t, e.ctx, vm, "3h", des.ShutDownByPlatform, des.ErrIOFailed)
			if err := vm.Boot(e.ctx); !errors.Is(err, des.ErrKeyExpired) {
				t.Fatalf("boot with an expired key: %v", err)
			}
			if got := e.states("app"); got != "Stopped>Running@0s Running>ShutDownByPlatform@1h0m0s" {
				t.Fatalf("VM states %q", got)
			}
		})
	}
}

// TestDESRotation: with auto-rotation the DES and its disks move to a new
// version within an hour without a reboot, and disabling the old version is
// then harmless; a fixed-version DES stays on the old one until updated.
func TestDESRotation(t *testing.T) {
	t.Run("auto", func(t *testing.T) {
		e := newEnv(t)
		d := e.newDES("des-chennai", "southindia", func(c *des.Config) { c.AutoRotate = true })
		vm := e.newVM("app", d)
		e.at(10 * time.Minute)
		v2 := e.keys.MustRotate(cmk)
		e.at(time.Hour)
		for _, dk := range vm.Disks() {
			if dk.KeyVersion() != v2 {
				t.Fatalf("disk %s on %s after the pickup", dk.Name(), dk.KeyVersion())
			}
		}
		if d.KeyVersion() != v2 {
			t.Fatal("DES did not move")
		}
		e.keys.SetEnabled(cmk, e.v1, false)
		e.at(5 * time.Hour)
		ioWorks(t, e.ctx, vm, "old version disabled")
		vm.Shutdown()
		if err := vm.Boot(e.ctx); err != nil {
			t.Fatal(err)
		}
		if s := e.states("app"); s != "Stopped>Running@0s Running>Stopped@5h0m0s Stopped>Running@5h0m0s" {
			t.Fatalf("VM rebooted by rotation: %s", s)
		}
	})
	t.Run("fixed version", func(t *testing.T) {
		e := newEnv(t)
		d := e.newDES("des-chennai", "southindia", nil)
		vm := e.newVM("app", d)
		v2 := e.keys.MustRotate(cmk)
		e.at(3 * time.Hour)
		if d.KeyVersion() != e.v1 || vm.Disks()[0].KeyVersion() != e.v1 {
			t.Fatal("fixed-version DES moved")
		}
		vm.Shutdown() // stopped disks are re-wrapped by unwrapping first
		if err := d.SetKeyVersion(e.ctx, v2); err != nil {
			t.Fatal(err)
		}
		if vm.Disks()[1].KeyVersion() != v2 {
			t.Fatal("manual update did not re-wrap")
		}
		e.keys.SetEnabled(cmk, e.v1, false)
		if err := vm.Boot(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.at(6 * time.Hour)
		ioWorks(t, e.ctx, vm, "6h")
	})
}
