package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/internal/atomicfile"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// app is one run of cellgen with its standard streams.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// action runs a command with its positional arguments, after its flags
// are parsed.
type action func(a *app, args []string) error

// command is one subcommand. setup registers the command's flags on a
// fresh flag set and returns the action bound to them, so every run has
// its own flag values.
type command struct {
	name     string
	synopsis string // arguments after the command name
	summary  string // one line for the command list
	help     string // paragraph shown by --help
	minArgs  int
	maxArgs  int // -1: no limit
	setup    func(fs *pflag.FlagSet) action
}

// commands lists the subcommands in the order the usage text shows them.
func commands() []*command {
	return []*command{
		encodeCommand(),
		decodeCommand(),
		checkCommand(),
		cCommand(),
		zicCommand(),
		versionCommand(),
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a mistake on the command line (exit status 2), as opposed
// to a failure of the work itself (exit status 1).
type usageError struct {
	cmd string // subcommand, "" for the top level
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// run parses the global flags, picks the subcommand and runs it.
func (a *app) run(args []string) error {
	fs := pflag.NewFlagSet("cellgen", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.SetInterspersed(false) // global flags end at the command name
	fs.Usage = func() {}      // help is printed below, to stdout
	help := helpFlag(fs)
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err}
	}
	if *help {
		a.usage(a.stdout)
		return nil
	}
	if fs.NArg() == 0 {
		return usageErrorf("no command given")
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return a.helpCommand(rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		return usageErrorf("unknown command %q", name)
	}
	return a.runCommand(cmd, rest)
}

// helpCommand serves "cellgen help [COMMAND]".
func (a *app) helpCommand(args []string) error {
	switch len(args) {
	case 0:
		a.usage(a.stdout)
		return nil
	case 1:
		cmd := lookup(args[0])
		if cmd == nil {
			return usageErrorf("unknown command %q", args[0])
		}
		return a.runCommand(cmd, []string{"--help"})
	}
	return usageErrorf("help takes at most one command name")
}

func (a *app) runCommand(cmd *command, args []string) error {
	fs := pflag.NewFlagSet("cellgen "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.SortFlags = false
	fs.Usage = func() {}
	act := cmd.setup(fs)
	help := helpFlag(fs)
	err := fs.Parse(args)
	switch {
	case err != nil:
		return &usageError{cmd: cmd.name, err: err}
	case *help:
		cmd.usage(a.stdout, fs)
		return nil
	case fs.NArg() < cmd.minArgs || (cmd.maxArgs >= 0 && fs.NArg() > cmd.maxArgs):
		return &usageError{cmd: cmd.name, err: fmt.Errorf("wrong number of arguments (%d); usage: cellgen %s %s", fs.NArg(), cmd.name, cmd.synopsis)}
	}
	if err := act(a, fs.Args()); err != nil {
		if ue, ok := errors.AsType[*usageError](err); ok {
			if ue.cmd == "" {
				ue.cmd = cmd.name
			}
			return ue
		}
		return fmt.Errorf("%s: %w", cmd.name, err)
	}
	return nil
}

// helpFlag registers -h/--help. It is a BoolFunc flag rather than a Bool
// so that the flag list shows it without a "[=true|false]" value.
func helpFlag(fs *pflag.FlagSet) *bool {
	help := new(bool)
	fs.BoolFuncP("help", "h", "show this help", func(v string) error {
		b, err := strconv.ParseBool(v)
		*help = b
		return err
	})
	return help
}

// exit reports err on stderr and returns the exit status for it.
func (a *app) exit(err error) int {
	if err == nil {
		return 0
	}
	if ue, ok := errors.AsType[*usageError](err); ok {
		prog := "cellgen"
		if ue.cmd != "" {
			prog += " " + ue.cmd
		}
		fmt.Fprintf(a.stderr, "%s: %v\nRun '%s --help' for usage.\n", prog, ue.err, prog)
		return 2
	}
	fmt.Fprintf(a.stderr, "cellgen: %v\n", err)
	return 1
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `Usage: cellgen COMMAND [ARGS]

cellgen builds and checks Jailhouse cell configurations (config revision 14).
Inputs may be binary (.cell) or JSON; "-" reads standard input.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'cellgen COMMAND --help' for the arguments and flags of a command.
Exit status: 0 success, 1 failure, 2 usage error.
`)
}

func (c *command) usage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: cellgen %s %s\n\n%s\n\nFlags:\n%s", c.name, c.synopsis, strings.TrimSpace(c.help), fs.FlagUsages())
}

// readConfig reads a configuration file in binary or JSON form; "-" is
// standard input. Errors name the file.
func (a *app) readConfig(path string) (*cell.File, error) {
	if path != "-" {
		return cell.ReadFile(path)
	}
	data, err := io.ReadAll(a.stdin)
	if err != nil {
		return nil, fmt.Errorf("standard input: %w", err)
	}
	f, err := cell.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("standard input: %w", err)
	}
	return f, nil
}

// writeOutput writes data to path atomically, or to standard output if
// path is "-".
func (a *app) writeOutput(path string, data []byte) error {
	if path == "-" {
		_, err := a.stdout.Write(data)
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// marshal encodes a decoded file as binary.
func marshal(f *cell.File) ([]byte, error) {
	if f.System != nil {
		return f.System.Marshal()
	}
	return f.Cell.Marshal()
}
