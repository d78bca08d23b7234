package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/hsmlab/hsmlab/lab"
)

// progress is the progress bar of a wall-clock run on stderr: the stage,
// the faults in effect and the modelled time elapsed of the total.
type progress struct {
	mu      sync.Mutex
	bar     *progressbar.ProgressBar
	w       io.Writer
	done    bool
	elapsed time.Duration // modelled time reached (stages after traffic report none)
}

func newProgress(w io.Writer, sc *lab.Scenario) *progress {
	total := int64(sc.Duration.D() / time.Second)
	bar := progressbar.NewOptions64(max(total, 1),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(),
	)
	return &progress{bar: bar, w: w}
}

// update is lab.Options.Progress.
func (p *progress) update(pr lab.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || pr.Stage == "up" {
		return // bring-up announces itself on stderr line by line
	}
	p.elapsed = max(p.elapsed, pr.Elapsed)
	active := "none"
	if len(pr.Active) > 0 {
		active = strings.Join(pr.Active, ", ")
	}
	p.bar.Describe(fmt.Sprintf("[%s] modelled %v / %v · faults: %s", pr.Stage, p.elapsed.Round(time.Second), pr.Total, active))
	_ = p.bar.Set64(int64(p.elapsed / time.Second))
	if pr.Stage == "done" {
		p.done = true
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// finish ends a bar the run did not complete (an error, Ctrl-C): it stays
// where the run stopped.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	if p.elapsed > 0 {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
}
