// Command init is /init of the integration test guest: PID 1 that prepares
// the system and powers off at the end, or, started as "init runner", the
// process that runs the scenarios. See package guest.
package main

import (
	"fmt"
	"os"

	"github.com/runphi-go/runphi/integration/guest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == guest.RunnerArg {
		os.Exit(guest.Runner(os.Stdout))
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "init: must run as PID 1 of the test guest")
		os.Exit(2)
	}
	guest.Init(os.Stdout)
}
