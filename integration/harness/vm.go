package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/runphi-go/runphi/integration/marker"
)

// Result describes one finished VM run.
type Result struct {
	Argv     []string      // the QEMU command line
	Duration time.Duration // from start to QEMU's exit (or kill)
	TimedOut bool          // killed because Options.Timeout passed
	ExitErr  error         // QEMU's exit status, nil for status 0
}

// maxLine bounds one console line; longer output is split.
const maxLine = 64 * 1024

// Run boots the VM and calls onLine, from Run's goroutine, for every console
// line (stdout and stderr of QEMU, carriage returns removed) with the time
// since QEMU started. It returns when QEMU has exited: on its own (the guest
// powered off), or killed because ctx ended or Options.Timeout passed. The
// error is non-nil only when QEMU could not be started; a non-zero exit
// status is reported in Result.ExitErr.
func Run(ctx context.Context, o *Options, onLine func(marker.Line)) (*Result, error) {
	argv, err := o.Cmdline()
	if err != nil {
		return nil, err
	}
	for _, p := range []string{o.Kernel, o.Initramfs} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	vctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("harness: console pipe: %w", err)
	}
	cmd := exec.CommandContext(vctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = pw, pw // one ordered stream
	// QEMU's own children would keep the pipe open after a kill; stop
	// waiting for them shortly after QEMU is gone.
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("harness: starting %s: %w", argv[0], err)
	}
	pw.Close() // the child holds its copy; EOF arrives when QEMU exits

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	readLines(pr, func(text string) { onLine(marker.Line{At: time.Since(start), Text: text}) })
	waitErr := <-done
	pr.Close()

	res := &Result{Argv: argv, Duration: time.Since(start)}
	if errors.Is(vctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		res.TimedOut = true
	}
	if waitErr != nil {
		res.ExitErr = waitErr
	}
	return res, nil
}

// readLines splits r into lines, dropping carriage returns, until EOF or a
// read error (the pipe closes when QEMU is killed).
func readLines(r io.Reader, fn func(string)) {
	br := bufio.NewReaderSize(r, maxLine)
	var partial strings.Builder
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(chunk) > 0 || (err == nil && !isPrefix) {
			partial.WriteString(strings.ReplaceAll(string(chunk), "\r", ""))
		}
		if err != nil {
			if partial.Len() > 0 {
				fn(partial.String())
			}
			return
		}
		if isPrefix && partial.Len() < maxLine {
			continue
		}
		fn(partial.String())
		partial.Reset()
	}
}
