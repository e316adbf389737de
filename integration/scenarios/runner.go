package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/runphi-go/runphi/integration/marker"
)

// Runner runs scenarios one after another and prints their markers.
type Runner struct {
	Config  *Config
	Boot    *BootReport
	Console *Console
	// ScratchRoot holds one directory per scenario (default ScratchDir).
	ScratchRoot string
	// Grace is how long a scenario that ignores its context's end gets
	// before it is reported as hung and the run moves on (default 10s).
	Grace time.Duration
}

// Counts tallies results.
type Counts struct{ Pass, Fail, Skip int }

// Run runs list in order. It never stops early: every scenario gets a
// result marker, so the host can report each one.
func (r *Runner) Run(ctx context.Context, list []Scenario) Counts {
	var c Counts
	sh := &shared{}
	defer func() {
		if sh.jhemu != nil {
			sh.jhemu.Stop(&Env{console: r.Console})
		}
	}()
	for _, s := range list {
		kind, reason := r.one(ctx, s, sh)
		switch kind {
		case marker.Pass:
			c.Pass++
		case marker.Skip:
			c.Skip++
		default:
			c.Fail++
		}
		r.print(marker.Event{Kind: kind, Scenario: s.Name, Reason: reason})
	}
	return c
}

func (r *Runner) print(e marker.Event) {
	line, err := marker.Format(e)
	if err != nil {
		r.Console.Println("runner: " + err.Error())
		return
	}
	r.Console.Println(line)
}

func (r *Runner) one(ctx context.Context, s Scenario, sh *shared) (marker.Kind, string) {
	r.print(marker.Event{Kind: marker.Start, Scenario: s.Name})
	if len(s.Modes) > 0 && !slices.Contains(s.Modes, r.Config.Mode) {
		return marker.Skip, fmt.Sprintf("runs in %v mode only, this run is %s", s.Modes, r.Config.Mode)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Duration(r.Config.ScenarioTimeout)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	root := r.ScratchRoot
	if root == "" {
		root = ScratchDir
	}
	e := &Env{Config: r.Config, Boot: r.Boot, ctx: sctx, console: r.Console, name: s.Name, dir: filepath.Join(root, s.Name), shared: sh}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return marker.Fail, fmt.Sprintf("scratch directory: %v", err)
	}
	for _, n := range s.Needs {
		if _, err := e.Bin(n); err != nil {
			return resultOf(err)
		}
	}

	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		err := s.Run(e)
		e.runCleanups()
		done <- err
	}()
	grace := r.Grace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	select {
	case err := <-done:
		if err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", timeout, err)
		}
		if err != nil {
			if _, skip := IsSkip(err); !skip {
				e.Logf("%s: %v", s.Name, err)
			}
		}
		return resultOf(err)
	case <-sctx.Done():
	}
	select {
	case err := <-done:
		if err == nil {
			return marker.Pass, ""
		}
		if _, skip := IsSkip(err); skip {
			return resultOf(err)
		}
		return marker.Fail, fmt.Sprintf("timed out after %v: %v", timeout, err)
	case <-time.After(grace):
		return marker.Fail, fmt.Sprintf("hung: still running %v after its %v timeout", grace, timeout)
	}
}

func resultOf(err error) (marker.Kind, string) {
	if err == nil {
		return marker.Pass, ""
	}
	if s, ok := IsSkip(err); ok {
		return marker.Skip, s.Reason
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // details (a panic's stack) are on the console already
	}
	return marker.Fail, msg
}
