package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/internal/version"
)

func versionCommand() *command {
	return &command{
		name:     "version",
		synopsis: "",
		summary:  "print the version of cellgen",
		help:     `Print cellgen's version and the Jailhouse config revision it writes.`,
		setup: func(*pflag.FlagSet) action {
			return func(a *app, _ []string) error {
				_, err := fmt.Fprintf(a.stdout, "cellgen %s (Jailhouse config revision %d)\n", version.String(), cell.Revision)
				return err
			}
		},
	}
}
