package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/emulators/storage"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// TestConcurrentWallClock: an account under a compressed wall clock
// (cache revalidation and the daily poll on timer goroutines) with
// concurrent readers and writers while access flaps and the key rotates,
// for the race detector. Only the documented errors may appear.
func TestConcurrentWallClock(t *testing.T) {
	ctx := context.Background()
	sc := clock.NewScaled(360000) // 1h of modelled time per 10 ms
	ks := keyclienttest.NewStore(sc)
	ks.MustCreateKey(cmk)
	reg := envelope.NewRegistry()
	dir := t.TempDir()
	envelopetest.Guard(t, reg, dir)
	be, err := storage.NewDirBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := storage.New(ctx, storage.Config{Name: "acct", KeyName: cmk, Keys: ks.Client(principal), Backend: be},
		storage.WithClock(sc), storage.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	check := func(err error) {
		if err != nil && !errors.Is(err, storage.ErrForbidden) && !errors.Is(err, storage.ErrBlobNotFound) && !errors.Is(err, storage.ErrClosed) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	var wg sync.WaitGroup
	stopc := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopc:
					return
				default:
				}
				check(a.Put(ctx, "blobs", fmt.Sprintf("b%d-%d", w, i%10), []byte("x")))
				_, err := a.Get(ctx, "blobs", fmt.Sprintf("b%d-%d", w, (i+3)%10))
				check(err)
			}
		}()
	}
	wall := clock.Wall{}
	for i := range 8 {
		switch i % 4 {
		case 0:
			ks.Revoke(principal, cmk)
		case 1:
			ks.Grant(principal, cmk)
		case 2:
			ks.MustRotate(cmk)
		}
		sleep(wall, 15*time.Millisecond)
	}
	close(stopc)
	wg.Wait()
	a.Close()
	sleep(wall, 20*time.Millisecond)
}
