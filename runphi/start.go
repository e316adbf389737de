package main

import (
	"context"

	"github.com/spf13/pflag"
)

func startVerb() *verb {
	return &verb{
		name: "start", usage: "<container-id>", summary: "start the user program (boot the cell) of a created container",
		minArgs: 1, maxArgs: 1, interspersed: true,
		setup: func(*pflag.FlagSet) verbFunc {
			return func(ctx context.Context, c *call, args []string) error {
				return c.start(ctx, args[0])
			}
		},
	}
}

func (c *call) start(ctx context.Context, id string) error {
	z, err := c.runtime()
	if err != nil {
		return err
	}
	if err := z.Start(ctx, id); err != nil {
		return err
	}
	c.log.Info("started")
	return nil
}
