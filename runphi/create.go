package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/runphi/route"
)

// createFlags are the options create and run share.
type createFlags struct {
	bundle        string
	consoleSocket string
	pidfdSocket   string
	pidFile       string
	noPivot       bool
	noNewKeyring  bool
	preserveFDs   int
}

func (f *createFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.bundle, "bundle", "b", "", "path to the bundle directory (default: the working directory)")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "AF_UNIX socket that receives the console pty master")
	fs.StringVar(&f.pidfdSocket, "pidfd-socket", "", "AF_UNIX socket that receives the container process's pidfd")
	fs.StringVar(&f.pidFile, "pid-file", "", "file to write the container process's pid to")
	fs.BoolVar(&f.noPivot, "no-pivot", false, "accepted; a ZIC has no host mount namespace to pivot")
	fs.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "accepted; a ZIC has no host session keyring")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container process")
	_ = fs.MarkHidden("no-pivot")
	_ = fs.MarkHidden("no-new-keyring")
}

// opts makes the paths absolute, as the container's process may run in
// another working directory.
func (f *createFlags) opts(id string) (createOpts, error) {
	o := createOpts{ID: id, NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFDs: f.preserveFDs}
	var err error
	if o.Bundle, err = absDir(f.bundle); err != nil {
		return o, err
	}
	for _, p := range []struct {
		dst *string
		src string
	}{{&o.PidFile, f.pidFile}, {&o.ConsoleSocket, f.consoleSocket}, {&o.PidfdSocket, f.pidfdSocket}} {
		if p.src == "" {
			continue
		}
		if *p.dst, err = filepath.Abs(p.src); err != nil {
			return o, err
		}
	}
	if o.PreserveFDs < 0 {
		return o, fmt.Errorf("--preserve-fds %d: must not be negative", o.PreserveFDs)
	}
	return o, nil
}

// absDir returns dir made absolute; "" is the working directory.
func absDir(dir string) (string, error) {
	if dir == "" {
		return os.Getwd()
	}
	return filepath.Abs(dir)
}

func createVerb() *verb {
	return &verb{
		name: "create", usage: "<container-id>", summary: "create a container",
		minArgs: 1, maxArgs: 1, interspersed: true, routeFirst: true,
		setup: func(fs *pflag.FlagSet) verbFunc {
			f := &createFlags{}
			f.register(fs)
			return func(ctx context.Context, c *call, args []string) error {
				return c.create(ctx, f, args[0])
			}
		},
	}
}

// routeCreate decides whether the container being created is a ZIC, from
// the leniently scanned --bundle. Whatever runc gets, runphi must not
// already hold the id.
func (c *call) routeCreate() (bool, error) {
	if dir, ok := c.stateDir(c.inv, c.cfg); ok && route.Owned(dir, c.inv.id) {
		return false, fmt.Errorf("%w: %s", errExist, c.inv.id)
	}
	dir, err := absDir(c.inv.bundle)
	if err != nil {
		return false, fmt.Errorf("bundle: %w", err)
	}
	b, err := route.ReadBundle(dir)
	if err != nil {
		return false, err
	}
	d, err := route.Decide(b)
	if err != nil {
		return false, err
	}
	c.log.Debug("routed", "zic", d.ZIC, "reason", d.Reason, "bundle", dir)
	return d.ZIC, nil
}

// create creates a ZIC. runc must not hold the id either: later verbs for
// it would reach runphi, never runc's container.
func (c *call) create(ctx context.Context, f *createFlags, id string) error {
	// The route was decided from the lenient scan; both readings of the
	// command line must agree on what it was decided for.
	if id != c.inv.id || f.bundle != c.inv.bundle {
		return fmt.Errorf("runphi: ambiguous command line: id %q and bundle %q read as %q and %q", id, f.bundle, c.inv.id, c.inv.bundle)
	}
	o, err := f.opts(id)
	if err != nil {
		return err
	}
	root, err := c.runcRoot(c.g.root, c.g.rootSet)
	if err != nil {
		return err
	}
	if route.PlausibleID(id) { // else Create rejects the id
		_, err := os.Lstat(filepath.Join(root, id))
		switch {
		case err == nil:
			return fmt.Errorf("%w: %s (a runc container)", errExist, id)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("runc state of %s: %w", id, err)
		}
	}
	z, err := c.runtime()
	if err != nil {
		return err
	}
	if err := z.Create(ctx, o); err != nil {
		return err
	}
	c.log.Info("created", "bundle", o.Bundle)
	return nil
}

func runVerb() *verb {
	return &verb{
		name: "run", usage: "<container-id>", summary: "create and start a container (ZICs: with --detach only)",
		minArgs: 1, maxArgs: 1, interspersed: true, routeFirst: true,
		setup: func(fs *pflag.FlagSet) verbFunc {
			f := &createFlags{}
			f.register(fs)
			detach := fs.BoolP("detach", "d", false, "detach from the container's process")
			fs.Bool("keep", false, "accepted; a ZIC is kept until deleted")
			fs.Bool("no-subreaper", false, "accepted; runphi does not wait for a ZIC")
			_ = fs.MarkHidden("keep")
			_ = fs.MarkHidden("no-subreaper")
			return func(ctx context.Context, c *call, args []string) error {
				// Waiting in the foreground would need the cell's exit
				// status in this process; the monitor has it, so runphi
				// only supports the detached form.
				if !*detach {
					return fmt.Errorf("run without --detach is not supported for ZICs: use run --detach, or create and start")
				}
				if err := c.create(ctx, f, args[0]); err != nil {
					return err
				}
				err := c.start(ctx, args[0])
				if err == nil {
					return nil
				}
				// runc destroys a container it failed to start.
				z, zerr := c.runtime()
				if zerr == nil {
					if derr := z.Delete(ctx, args[0], true); derr != nil {
						c.log.Warn("removing the container after a failed start", "error", derr)
					}
				}
				return err
			}
		},
	}
}
