package sqlmi_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
	"github.com/hsmlab/hsmlab/lab/clock"
)

// TestConcurrentWallClock runs a failover group under a compressed wall
// clock (timers on their own goroutines) with concurrent writers and
// readers while the primary's key access flaps and a failover happens, for
// the race detector. Only the documented errors may appear.
func TestConcurrentWallClock(t *testing.T) {
	e := newEnv(t)
	sc := clock.NewScaled(60000) // one modelled minute per wall millisecond
	ks := keyclienttest.NewStore(sc)
	ks.MustCreateKey(cmk)
	open := func(name string) *sqlmi.Instance {
		st, _ := e.dirStore()
		m, err := sqlmi.New(e.ctx, sqlmi.Config{Name: name, KeyName: cmk, Keys: ks.Client("mi-" + name), Store: st},
			sqlmi.WithClock(sc), sqlmi.WithRegistry(e.reg), sqlmi.WithObserver(e.observe))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := open("a"), open("b")
	g, err := sqlmi.NewFailoverGroup(e.ctx, sqlmi.GroupConfig{Name: "g", Primary: a, Secondary: b, ReplicationLag: time.Minute, Clock: sc})
	if err != nil {
		t.Fatal(err)
	}
	allowed := []error{sqlmi.ErrInaccessible, sqlmi.ErrUnavailable, sqlmi.ErrNotPrimary, sqlmi.ErrFailoverInProgress, sqlmi.ErrNotFound, sqlmi.ErrClosed}
	check := func(err error) {
		if err == nil {
			return
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return
			}
		}
		t.Errorf("unexpected error: %v", err)
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
				for _, m := range []*sqlmi.Instance{a, b} {
					check(m.Write(e.ctx, fmt.Sprintf("w%d-%d", w, i%20), []byte("v")))
					_, err := m.Query(e.ctx, fmt.Sprintf("w%d-%d", w, (i+7)%20))
					check(err)
				}
			}
		}()
	}
	wall := clock.Wall{}
	for i := range 6 {
		if i%2 == 0 {
			ks.Revoke("mi-a", cmk)
		} else {
			ks.Grant("mi-a", cmk)
		}
		sleep(wall, 20*time.Millisecond)
		if i == 3 {
			_, err := g.Failover(i%2 == 0)
			if err != nil && !errors.Is(err, sqlmi.ErrNotReady) && !errors.Is(err, sqlmi.ErrNotLinked) {
				t.Errorf("failover: %v", err)
			}
		}
	}
	close(stopc)
	wg.Wait()
	g.Close()
	a.Close()
	b.Close()
	sleep(wall, 20*time.Millisecond) // let timer goroutines that already fired finish
}

func sleep(c clock.Clock, d time.Duration) {
	done := make(chan struct{})
	c.AfterFunc(d, func() { close(done) })
	<-done
}
