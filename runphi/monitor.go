package main

import (
	"context"
	"strconv"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/monitor"
)

// runMonitorVerb is the hidden verb create uses to start a ZIC's monitor
// process (runphi/monitor); it is never forwarded.
const runMonitorVerb = monitor.Verb

// exitStatus is an error that only carries an exit status, already
// reported by whoever returned it.
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// runMonitor runs the monitor; its exit status is the container's.
func (c *call) runMonitor(_ context.Context, args []string) error {
	d := monitor.Deps{Hypervisor: c.hypervisor(), Stdout: c.stdout, Stderr: c.stderr}
	// The monitor writes its lines to stderr (the container's log)
	// anyway; the logger adds the --log file, if there is one.
	if !c.lt.stderr {
		d.Logger = c.log
	}
	status := monitor.Main(args, d)
	return exitStatus(status)
}

// hypervisor returns the Jailhouse client for the configured paths.
func (c *call) hypervisor() *jailhouse.Client { return newHypervisor(c.cfg, c.getenv) }
