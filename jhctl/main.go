// Command jhctl manages the Jailhouse hypervisor. It accepts the command
// lines of upstream's jailhouse tool (enable, disable, cell create, load,
// start, shutdown, destroy, list, stats, linux, console, config check) and
// does everything natively: no Python helpers, no C tool. Configurations may
// be binary .cell files or cellgen's JSON form.
//
// Exit status: 0 on success, 1 on failure (message on stderr), 2 on a usage
// error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

func main() {
	os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// run executes one jhctl command line with the real device and sysfs.
func run(args []string, stdout, stderr io.Writer) error {
	a := &app{
		stdout: stdout,
		stderr: stderr,
		getenv: os.Getenv,
		interrupt: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		},
	}
	return a.run(args)
}

// exitCode prints err and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "jhctl: %v\n", err)
	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintln(stderr, "Run 'jhctl --help' for usage.")
		return 2
	}
	return 1
}

// app is one invocation: its output streams and its dependencies.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// interrupt returns a context that ends on Ctrl-C, for commands that
	// run until interrupted (cell stats --watch).
	interrupt func() (context.Context, context.CancelFunc)
	// opts are extra client options; tests inject a fake device here.
	opts []jailhouse.Option

	paths jailhouse.Paths
}

func (a *app) client() *jailhouse.Client { return jailhouse.New(a.paths, a.opts...) }

// usageError is a malformed command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
