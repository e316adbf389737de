package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/runphi/config"
	"github.com/runphi-go/runphi/runphi/route"
)

// call is one invocation that runphi handles itself (or has yet to route).
type call struct {
	*app
	inv  invocation
	g    *globals
	cfg  config.Config
	lt   *logTarget
	log  *slog.Logger
	args []string // argv without argv[0], as given: what runc gets if forwarded
	zic  zicRuntime
}

// verbFunc runs a verb with its positional arguments.
type verbFunc func(ctx context.Context, c *call, args []string) error

// verb is one subcommand, defined in its own file.
type verb struct {
	name    string
	usage   string // positional arguments, for help
	summary string
	// minArgs and maxArgs bound the positional arguments (-1: no limit).
	minArgs, maxArgs int
	// interspersed lets flags follow positional arguments (runc accepts
	// "create <id> --bundle B"); ps keeps everything after the id for ps.
	interspersed bool
	// routeFirst verbs (create, run) decide ZIC or runc from the bundle
	// before their flags are parsed strictly: a flag runphi does not know
	// is runc's business when the container goes to runc.
	routeFirst bool
	// raw verbs parse no flags (exec and friends, refused for ZICs).
	raw   bool
	setup func(fs *pflag.FlagSet) verbFunc
}

// verbs lists the subcommands runphi implements, in help order.
func verbs() []*verb {
	return []*verb{
		createVerb(), runVerb(), startVerb(), stateVerb(), killVerb(), deleteVerb(),
		psVerb(), listVerb(), featuresVerb(), specVerb(),
		unsupportedVerb("exec", "run a new process inside the container"),
		unsupportedVerb("update", "update container resource constraints"),
		unsupportedVerb("pause", "pause all processes inside the container"),
		unsupportedVerb("resume", "resume all paused processes"),
		unsupportedVerb("events", "display container events"),
		unsupportedVerb("checkpoint", "checkpoint a running container"),
		unsupportedVerb("restore", "restore a container from a checkpoint"),
	}
}

func lookupVerb(name string) *verb {
	for _, v := range verbs() {
		if v.name == name {
			return v
		}
	}
	return nil
}

// dispatch runs the verb named by the global parse.
func (c *call) dispatch(ctx context.Context) error {
	switch {
	case c.g.version:
		return c.printVersion(ctx)
	case c.g.help || len(c.g.rest) == 0:
		c.usage(c.stdout)
		return nil
	}
	name, args := c.g.rest[0], c.g.rest[1:]
	switch name {
	case "help", "h":
		if len(args) > 0 {
			if v := lookupVerb(args[0]); v != nil {
				fs := newFlagSet(v)
				v.setup(fs)
				c.verbUsage(c.stdout, v, fs)
				return nil
			}
		}
		c.usage(c.stdout)
		return nil
	case runMonitorVerb:
		return c.runMonitor(ctx, args)
	}
	v := lookupVerb(name)
	if v == nil {
		return fmt.Errorf("runphi: unknown command %q", name)
	}
	return c.runVerb(ctx, v, args)
}

func newFlagSet(v *verb) *pflag.FlagSet {
	fs := pflag.NewFlagSet("runphi "+v.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SetInterspersed(v.interspersed)
	return fs
}

func (c *call) runVerb(ctx context.Context, v *verb, args []string) error {
	fs := newFlagSet(v)
	run := v.setup(fs)
	if v.raw {
		return run(ctx, c, args)
	}
	help := fs.BoolP("help", "h", false, "show help")
	perr := fs.Parse(fixSingleDash(fs, args, v.interspersed))
	if *help || errors.Is(perr, pflag.ErrHelp) {
		c.verbUsage(c.stdout, v, fs)
		return nil
	}
	if v.routeFirst {
		zic, err := c.routeCreate()
		if err != nil {
			return err
		}
		if !zic {
			return c.forward(c.cfg, c.args)
		}
	}
	if perr != nil {
		return fmt.Errorf("runphi %s: %w", v.name, perr)
	}
	if err := checkArgs(v, fs.NArg()); err != nil {
		return err
	}
	return run(ctx, c, fs.Args())
}

// checkArgs enforces a verb's argument count with runc's wording.
func checkArgs(v *verb, n int) error {
	switch {
	case v.minArgs == v.maxArgs && n != v.minArgs:
		return fmt.Errorf("runphi: %q requires exactly %d argument(s)", v.name, v.minArgs)
	case n < v.minArgs:
		return fmt.Errorf("runphi: %q requires a minimum of %d argument(s)", v.name, v.minArgs)
	case v.maxArgs >= 0 && n > v.maxArgs:
		return fmt.Errorf("runphi: %q requires a maximum of %d argument(s)", v.name, v.maxArgs)
	}
	return nil
}

// runtime returns the ZIC lifecycle manager for the call's runc root.
func (c *call) runtime() (zicRuntime, error) {
	if c.zic != nil {
		return c.zic, nil
	}
	root, err := c.runcRoot(c.g.root, c.g.rootSet)
	if err != nil {
		return nil, err
	}
	z, err := c.newZIC(zicEnv{
		cfg:           c.cfg,
		stateDir:      route.Dir(c.cfg.StateRoot, root),
		runcRoot:      root,
		systemdCgroup: c.g.systemdCgroup,
		log:           c.log,
		hypervisor:    c.hypervisor(),
		globalArgs:    c.args[:len(c.args)-len(c.g.rest)],
	})
	if err != nil {
		return nil, err
	}
	c.zic = z
	return z, nil
}

// usage prints the command list.
func (c *call) usage(w io.Writer) {
	var sb strings.Builder
	sb.WriteString(`runphi: an OCI runtime that runs containers as Jailhouse cells (ZICs)
and forwards every other container to runc.

Usage: runphi [global options] <command> [command options] [arguments...]

Commands:
`)
	for _, v := range verbs() {
		fmt.Fprintf(&sb, "  %-11s %s\n", v.name, v.summary)
	}
	sb.WriteString("  help        show this help, or a command's\n\nGlobal options:\n")
	fs := pflag.NewFlagSet("runphi", pflag.ContinueOnError)
	globalFlags(fs)
	sb.WriteString(fs.FlagUsages())
	sb.WriteString(`
Configuration: ` + config.DefaultPath + ` (or $` + config.PathEnv + `) and RUNPHI_* variables;
log level: $RUNPHI_DEBUG_LEVEL (error, warn, info, debug, trace).
`)
	io.WriteString(w, sb.String())
}

func (c *call) verbUsage(w io.Writer, v *verb, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: runphi %s [command options] %s\n\n%s\n", v.name, v.usage, v.summary)
	if u := fs.FlagUsages(); u != "" {
		fmt.Fprintf(w, "\nOptions:\n%s", u)
	}
}

// unsupportedVerb is a runc verb that runphi forwards for runc's containers
// and refuses for ZICs. It reaches runphi only when the id is a ZIC.
func unsupportedVerb(name, summary string) *verb {
	return &verb{
		name: name, usage: "<container-id> ...", summary: summary + " (runc containers only)",
		minArgs: 0, maxArgs: -1, raw: true,
		setup: func(*pflag.FlagSet) verbFunc {
			return func(_ context.Context, c *call, _ []string) error {
				return &errNotSupported{verb: name, id: c.inv.id}
			}
		},
	}
}

// specVerb is always runc's; it reaches runphi only for --help.
func specVerb() *verb {
	return &verb{
		name: "spec", usage: "", summary: "create a new specification file (runc's)", maxArgs: -1, raw: true,
		setup: func(*pflag.FlagSet) verbFunc {
			return func(_ context.Context, c *call, _ []string) error {
				return c.forward(c.cfg, c.args)
			}
		},
	}
}
