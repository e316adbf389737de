package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

func killVerb() *verb {
	return &verb{
		name: "kill", usage: "<container-id> [signal]", summary: "send a signal to the container (default SIGTERM)",
		minArgs: 1, maxArgs: 2, interspersed: true,
		setup: func(fs *pflag.FlagSet) verbFunc {
			all := fs.BoolP("all", "a", false, "signal all processes; no error if the container is stopped")
			return func(ctx context.Context, c *call, args []string) error {
				sigstr := "SIGTERM"
				if len(args) == 2 {
					sigstr = args[1]
				}
				sig, err := parseSignal(sigstr)
				if err != nil {
					return err
				}
				z, err := c.runtime()
				if err != nil {
					return err
				}
				err = z.Kill(ctx, args[0], sig, *all)
				if errors.Is(err, errNotRunning) && *all {
					return nil // runc: --all on a stopped container is fine
				}
				if err == nil {
					c.log.Info("signalled", "signal", int(sig), "all", *all)
				}
				return err
			}
		},
	}
}

// parseSignal reads a signal as runc does: a number ("9", "0"), a name
// with or without the SIG prefix ("KILL", "SIGKILL"), in any case.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		// 0 only checks the container (runc bats send "kill -a id 0").
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("unknown signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
