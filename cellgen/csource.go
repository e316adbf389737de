package main

import (
	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/csrc"
)

func cCommand() *command {
	return &command{
		name:     "c",
		synopsis: "IN [-o OUT.c]",
		summary:  "print the equivalent Jailhouse C configuration source",
		help: `Write the configuration IN as C source in the style of Jailhouse's
configs/<arch>/*.c, for reviewers who read C configurations. Compiled with
upstream's headers and converted with "objcopy -O binary", it gives the same
bytes as "cellgen encode".`,
		minArgs: 1,
		maxArgs: 1,
		setup: func(fs *pflag.FlagSet) action {
			out := fs.StringP("output", "o", "-", "write the C source to `FILE` instead of standard output")
			return func(a *app, args []string) error {
				f, err := a.readConfig(args[0])
				if err != nil {
					return err
				}
				var src []byte
				if f.System != nil {
					src, err = csrc.System(f.System)
				} else {
					src, err = csrc.Cell(f.Cell)
				}
				if err != nil {
					return err
				}
				return a.writeOutput(*out, src)
			}
		},
	}
}
