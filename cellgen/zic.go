package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/runphi-go/runphi/internal/atomicfile"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	bundlepkg "github.com/runphi-go/runphi/cellgen/bundle"
	"github.com/runphi-go/runphi/cellgen/check"
	"github.com/runphi-go/runphi/cellgen/descriptor"
	"github.com/runphi-go/runphi/cellgen/zic"
)

func zicCommand() *command {
	return &command{
		name:     "zic",
		synopsis: "--board DIR --bundle OCI_BUNDLE [--state FILE] [--name NAME] -o OUT.cell",
		summary:  "allocate resources and write the cell configuration for an OCI bundle",
		help: `Build the cell configuration of a ZIC (a container run as a Jailhouse cell):
read the bundle's config.json and the ZIC descriptor (/boot/config.json) in its
root filesystem, allocate CPUs, RAM, a loader slot and, if asked for, an
ivshmem-net link from the board's pool, check the cell against the board's
root cell and write it.

With --state the allocation is recorded in that state file, shared with
runphi, and is kept until released; without it the cell is allocated from an
empty pool and nothing is recorded. On any failure nothing is written and the
state file keeps its grants.`,
		setup: func(fs *pflag.FlagSet) action {
			var o zicOptions
			fs.StringVarP(&o.board, "board", "b", "", "board `DIR` with pool.json and system.json (required)")
			fs.StringVar(&o.bundle, "bundle", "", "OCI bundle `DIR` with config.json (required)")
			fs.StringVar(&o.state, "state", "", "allocator state `FILE` to record the grant in")
			fs.StringVar(&o.name, "name", "", "cell and grant `NAME` (default: the bundle directory's name)")
			fs.StringVarP(&o.output, "output", "o", "", "write the cell configuration to `FILE` (required)")
			return o.run
		},
	}
}

type zicOptions struct {
	board, bundle, state, name, output string
}

func (o *zicOptions) run(a *app, _ []string) error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"--board", o.board}, {"--bundle", o.bundle}, {"-o/--output", o.output}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("%s required", strings.Join(missing, ", "))
	}
	if o.output == "-" {
		return usageErrorf("-o/--output must name a file")
	}
	bundle, err := filepath.Abs(o.bundle)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", o.bundle, err)
	}
	name := o.name
	if name == "" {
		name = filepath.Base(bundle)
	}

	b, err := board.Load(o.board)
	if err != nil {
		return err
	}
	z, err := bundlepkg.Open(bundle, nil, b)
	if err != nil {
		return err
	}
	defer z.Close()
	req, opts := z.Request, z.Options

	if o.state == "" {
		g, err := alloc.NewState().Allocate(b.Pool, name, req)
		if err != nil {
			return fmt.Errorf("allocate %q: %w", name, err)
		}
		return writeZIC(a, b, z, g, opts, o.output)
	}

	// The reservation keeps the state locked until the cell file is
	// written, and is rolled back if anything fails.
	res, err := alloc.Open(o.state, b.Pool).Reserve(name, req)
	if err != nil {
		return fmt.Errorf("allocate %q in %s: %w", name, o.state, err)
	}
	if err := writeZIC(a, b, z, res.Grant(), opts, o.output); err != nil {
		if rerr := res.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("release %q in %s: %w", name, o.state, rerr))
		}
		return err
	}
	if err := res.Commit(); err != nil {
		// Keep the output and the state consistent: no cell file for a
		// grant that is not recorded as in use.
		if rerr := os.Remove(o.output); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("record %q in %s: %w", name, o.state, err)
	}
	return nil
}

// writeZIC generates the cell for grant g, checks it beside the board's
// root cell, checks that the image's payload can be loaded into it, and
// writes it atomically.
func writeZIC(a *app, b *board.Board, z *bundlepkg.ZIC, g alloc.Grant, opts zic.Options, output string) error {
	c, err := zic.Generate(b, g, opts)
	if err != nil {
		return err
	}
	p, err := z.ReadPayload()
	if err == nil && z.Desc.OS != descriptor.OSLinux {
		_, err = z.Images(c, p)
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", z.Rootfs, err)
	}
	findings := check.System(b.Root, c)
	if errs := check.Errors(findings); len(errs) > 0 {
		for _, f := range errs {
			fmt.Fprintln(a.stderr, f.String())
		}
		return fmt.Errorf("cell %q does not fit board %s: %s", c.Name, b.Name, plural(len(errs), "error"))
	}
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(output, data, 0o644)
}
