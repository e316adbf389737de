package main

import (
	"context"
	"errors"

	"github.com/spf13/pflag"
)

func deleteVerb() *verb {
	return &verb{
		name: "delete", usage: "<container-id>", summary: "delete a container (and its cell)",
		minArgs: 1, maxArgs: 1, interspersed: true,
		setup: func(fs *pflag.FlagSet) verbFunc {
			force := fs.BoolP("force", "f", false, "kill the container first if it is running")
			return func(ctx context.Context, c *call, args []string) error {
				z, err := c.runtime()
				if err != nil {
					return err
				}
				err = z.Delete(ctx, args[0], *force)
				if *force && errors.Is(err, errNotExist) {
					return nil // runc: --force ignores a missing container
				}
				if err != nil {
					return err
				}
				c.log.Info("deleted", "force", *force)
				return nil
			}
		},
	}
}
