package main

import (
	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/cell"
)

func decodeCommand() *command {
	return &command{
		name:     "decode",
		synopsis: "IN",
		summary:  "print a binary (or JSON) configuration as canonical JSON",
		help: `Decode the system or cell configuration IN and print it in the canonical
JSON form that "cellgen encode" reads back to the same bytes.`,
		minArgs: 1,
		maxArgs: 1,
		setup: func(fs *pflag.FlagSet) action {
			out := fs.StringP("output", "o", "-", "write the JSON to `FILE` instead of standard output")
			return func(a *app, args []string) error {
				f, err := a.readConfig(args[0])
				if err != nil {
					return err
				}
				var data []byte
				if f.System != nil {
					data, err = cell.SystemJSON(f.System)
				} else {
					data, err = cell.CellJSON(f.Cell)
				}
				if err != nil {
					return err
				}
				return a.writeOutput(*out, data)
			}
		},
	}
}
