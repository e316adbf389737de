package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/check"
)

func checkCommand() *command {
	return &command{
		name:     "check",
		synopsis: "SYSTEM [CELL...]",
		summary:  "validate a system configuration together with its cells",
		help: `Check the system configuration SYSTEM and the cell configurations CELL,
meant to run at the same time, for what the Jailhouse driver and hypervisor
would reject and for conflicts between the cells. Findings are printed one per
line; the exit status is 1 if any of them is an error, 0 if there are only
warnings.`,
		minArgs: 1,
		maxArgs: -1,
		setup: func(*pflag.FlagSet) action {
			return func(a *app, args []string) error {
				f, err := a.readConfig(args[0])
				if err != nil {
					return err
				}
				if f.System == nil {
					return fmt.Errorf("%s: is a cell configuration, want a system configuration first", args[0])
				}
				var cells []*cell.Cell
				for _, p := range args[1:] {
					f, err := a.readConfig(p)
					if err != nil {
						return err
					}
					if f.Cell == nil {
						return fmt.Errorf("%s: is a system configuration, want a cell configuration", p)
					}
					cells = append(cells, f.Cell)
				}

				findings := check.System(f.System, cells...)
				for _, fd := range findings {
					fmt.Fprintln(a.stdout, fd.String())
				}
				nerr := len(check.Errors(findings))
				nwarn := len(findings) - nerr
				if nerr > 0 {
					return errors.New(plural(nerr, "error") + ", " + plural(nwarn, "warning"))
				}
				if nwarn > 0 {
					fmt.Fprintf(a.stdout, "ok, %s\n", plural(nwarn, "warning"))
				} else {
					fmt.Fprintln(a.stdout, "ok")
				}
				return nil
			}
		},
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
