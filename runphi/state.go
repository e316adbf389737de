package main

import (
	"context"
	"encoding/json"

	"github.com/spf13/pflag"
)

func stateVerb() *verb {
	return &verb{
		name: "state", usage: "<container-id>", summary: "output the state of a container",
		minArgs: 1, maxArgs: 1, interspersed: true,
		setup: func(*pflag.FlagSet) verbFunc {
			return func(ctx context.Context, c *call, args []string) error {
				z, err := c.runtime()
				if err != nil {
					return err
				}
				st, err := z.State(ctx, args[0])
				if err != nil {
					return err
				}
				// As runc: indented, no trailing newline, nothing on
				// stderr (go-runc parses stdout and stderr together).
				data, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				_, err = c.stdout.Write(data)
				return err
			}
		},
	}
}
