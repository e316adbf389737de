package main

import (
	"github.com/spf13/pflag"
)

func encodeCommand() *command {
	return &command{
		name:     "encode",
		synopsis: "IN -o OUT.cell",
		summary:  "encode a JSON (or binary) configuration as a binary .cell file",
		help: `Encode the system or cell configuration IN as the binary file Jailhouse
loads. The output is written atomically; on any error nothing is written.`,
		minArgs: 1,
		maxArgs: 1,
		setup: func(fs *pflag.FlagSet) action {
			out := fs.StringP("output", "o", "", "write the binary configuration to `FILE` (required; - for standard output)")
			return func(a *app, args []string) error {
				if *out == "" {
					return usageErrorf("-o/--output is required")
				}
				f, err := a.readConfig(args[0])
				if err != nil {
					return err
				}
				data, err := marshal(f)
				if err != nil {
					return err
				}
				return a.writeOutput(*out, data)
			}
		},
	}
}
