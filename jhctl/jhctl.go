package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/internal/version"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Environment variables that relocate the driver interfaces, for tests and
// emulators; the --device and --sysfs flags take precedence.
const (
	envDevice = "JHCTL_DEVICE"
	envSysfs  = "JHCTL_SYSFS"
)

const usageText = `Usage: jhctl [--device PATH] [--sysfs PATH] { COMMAND | --help | --version }

Available commands:
   enable SYSCONFIG
   disable
   cell create CELLCONFIG
   cell load { ID | [--name] NAME } { IMAGE | { -s | --string } "STRING" } [-a | --address ADDRESS] ...
   cell start { ID | [--name] NAME }
   cell shutdown { ID | [--name] NAME }
   cell destroy { ID | [--name] NAME }
   cell list [--json]
   cell stats { ID | [--name] NAME } [--json] [--watch]
   cell linux CELLCONFIG KERNEL [-d DTB] [-i INITRD] [-c CMDLINE] [-k FACTOR] [-w OUTFILE] [--loader PATH]
   console [-f | --follow]
   config check SYSCONFIG [CELLCONFIG ...]

Configurations are binary .cell files or cellgen JSON.
Global options:
`

// run parses the global options and dispatches to the command.
func (a *app) run(args []string) error {
	fs := pflag.NewFlagSet("jhctl", pflag.ContinueOnError)
	fs.SetInterspersed(false) // options after the command belong to it
	fs.SetOutput(io.Discard)
	device := fs.String("device", "", "jailhouse device node (default "+jailhouse.DefaultDevice+", env "+envDevice+")")
	sysfs := fs.String("sysfs", "", "jailhouse sysfs directory (default "+jailhouse.DefaultSysfs+", env "+envSysfs+")")
	showVersion := fs.Bool("version", false, "print the version")
	help := fs.BoolP("help", "h", false, "print this help")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *help {
		fmt.Fprint(a.stdout, usageText+fs.FlagUsages())
		return nil
	}
	if *showVersion {
		fmt.Fprintf(a.stdout, "jhctl %s (Jailhouse configuration revision %d)\n", version.String(), cell.Revision)
		return nil
	}
	a.paths = jailhouse.Paths{Device: a.getenv(envDevice), Sysfs: a.getenv(envSysfs)}
	if fs.Changed("device") {
		a.paths.Device = *device
	}
	if fs.Changed("sysfs") {
		a.paths.Sysfs = *sysfs
	}

	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("no command given")
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "enable":
		return a.enable(rest)
	case "disable":
		return a.disable(rest)
	case "cell":
		return a.cell(rest)
	case "console":
		return a.console(rest)
	case "config":
		return a.config(rest)
	}
	return usagef("unknown command %q", cmd)
}

// cell dispatches the cell subcommands.
func (a *app) cell(args []string) error {
	if len(args) == 0 {
		return usagef("cell: no subcommand given")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return a.cellCreate(rest)
	case "load":
		return a.cellLoad(rest)
	case "start":
		return a.cellSimple("start", rest, (*jailhouse.Client).StartCell)
	case "shutdown":
		return a.cellSimple("shutdown", rest, (*jailhouse.Client).ShutdownCell)
	case "destroy":
		return a.cellSimple("destroy", rest, (*jailhouse.Client).DestroyCell)
	case "list":
		return a.cellList(rest)
	case "stats":
		return a.cellStats(rest)
	case "linux":
		return a.cellLinux(rest)
	case "-h", "--help":
		fmt.Fprint(a.stdout, usageText)
		return nil
	}
	return usagef("unknown cell subcommand %q", sub)
}

// flagSet returns a subcommand's flag set; usage is the synopsis printed by
// --help.
func (a *app) flagSet(name, usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(a.stdout, "Usage: jhctl %s\n", usage)
		if u := fs.FlagUsages(); u != "" {
			fmt.Fprint(a.stdout, "\nOptions:\n"+u)
		}
	}
	return fs
}

// parse parses args with fs. It reports errHelpShown after printing the
// usage for --help, and a usage error for anything malformed.
func parse(fs *pflag.FlagSet, args []string) error {
	fs.BoolP("help", "h", false, "print this help")
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) || (err == nil && mustBool(fs, "help")) {
		fs.Usage()
		return errHelpShown
	}
	if err != nil {
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

func mustBool(fs *pflag.FlagSet, name string) bool {
	v, err := fs.GetBool(name)
	return err == nil && v
}

// errHelpShown ends a command after --help; it is not a failure.
var errHelpShown = errors.New("help shown")

// helpDone turns errHelpShown into success.
func helpDone(err error) error {
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}
