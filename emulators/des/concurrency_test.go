package des_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/des"
	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// TestConcurrentWallClock: VMs doing disk I/O under a compressed wall clock
// while the key flaps, rotates (auto-rotation re-wraps running disks) and
// VMs are rebooted, for the race detector.
func TestConcurrentWallClock(t *testing.T) {
	ctx := context.Background()
	sc := clock.NewScaled(360000) // 1h per 10 ms
	ks := keyclienttest.NewStore(sc)
	ks.MustCreateKey(cmk)
	reg := envelope.NewRegistry()
	dir := t.TempDir()
	envelopetest.Guard(t, reg, dir)
	d, err := des.New(ctx, des.Config{Name: "d", KeyName: cmk, AutoRotate: true, Keys: ks.Client("des")},
		des.WithClock(sc), des.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	var vms []*des.VM
	for i := range 3 {
		dk, err := d.CreateDisk(ctx, "os", filepath.Join(dir, fmt.Sprintf("vm%d.img", i)), 8, 512)
		if err != nil {
			t.Fatal(err)
		}
		vm, _ := des.NewVM(des.VMConfig{Name: fmt.Sprintf("vm%d", i), Disks: []*des.Disk{dk}})
		if err := vm.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	check := func(err error) {
		if err != nil && !errors.Is(err, des.ErrIOFailed) && !errors.Is(err, des.ErrNotRunning) && !errors.Is(err, des.ErrBootFailed) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	var wg sync.WaitGroup
	stopc := make(chan struct{})
	for i, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stopc:
					return
				default:
				}
				check(vm.WriteBlock(ctx, "os", n%8, block(fmt.Sprint(n))))
				_, err := vm.ReadBlock(ctx, "os", (n+1)%8)
				check(err)
				if n%50 == 49 {
					if i == 0 {
						vm.Shutdown()
					}
					check(vm.Boot(ctx))
				}
			}
		}()
	}
	wall := clock.Wall{}
	for i := range 8 {
		switch i % 4 {
		case 0:
			ks.SetEnabled(cmk, "", false)
		case 1:
			ks.SetEnabled(cmk, "", true)
		case 2:
			ks.MustRotate(cmk)
		}
		sleep(wall, 15*time.Millisecond)
	}
	close(stopc)
	wg.Wait()
	for _, vm := range vms {
		vm.Shutdown()
	}
	d.Close()
	sleep(wall, 20*time.Millisecond)
}

func sleep(c clock.Clock, d time.Duration) {
	done := make(chan struct{})
	c.AfterFunc(d, func() { close(done) })
	<-done
}
