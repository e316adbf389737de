package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/runphi-go/runphi/runphi/config"
	"github.com/runphi-go/runphi/runphi/logging"
)

// globals are runc's global options, parsed strictly for calls runphi
// handles itself.
type globals struct {
	root          string
	rootSet       bool
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	help          bool
	version       bool
	rest          []string // the verb and its arguments
}

// globalFlags registers runc's global flags on fs and returns the values.
// --criu is accepted and ignored (runc dropped it; go-runc may send it).
func globalFlags(fs *pflag.FlagSet) *globals {
	g := &globals{}
	fs.StringVar(&g.root, "root", "/run/runc", "root directory of runc's container state; runphi keys its own state by it")
	fs.StringVar(&g.log, "log", "", "log file (default stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "log at debug level")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "linux.cgroupsPath is slice:prefix:name")
	fs.StringVar(&g.rootless, "rootless", "auto", "ignore cgroup permission errors: true, false or auto")
	fs.String("criu", "", "accepted and ignored")
	_ = fs.MarkHidden("criu")
	fs.BoolVarP(&g.help, "help", "h", false, "show help")
	fs.BoolVarP(&g.version, "version", "v", false, "print the version")
	return g
}

// parseGlobals parses the global flags of args (argv without argv[0]); it
// stops at the verb.
func parseGlobals(args []string) (*globals, error) {
	fs := pflag.NewFlagSet("runphi", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	fs.Usage = func() {}
	g := globalFlags(fs)
	if err := fs.Parse(fixSingleDash(fs, args, false)); err != nil {
		return nil, err
	}
	if _, err := logging.ParseFormat(g.logFormat); err != nil {
		return nil, err
	}
	g.rootSet = fs.Changed("root")
	g.rest = fs.Args()
	return g, nil
}

// logTarget is where the runc-style log goes for one call.
type logTarget struct {
	log    *slog.Logger
	file   *logging.File // nil when the log is stderr
	extra  *logging.File
	stderr bool // the log already goes to stderr
	// levelErr is a bad RUNPHI_DEBUG_LEVEL, to be reported as a warning.
	levelErr error
}

// newLogTarget builds the logger from the (already scanned) log options,
// the environment and the configuration. Files are opened on first use.
func newLogTarget(inv invocation, cfg config.Config, getenv func(string) string, stderr io.Writer) *logTarget {
	lt := &logTarget{}
	level, lerr := logging.Level(getenv(logging.EnvLevel), inv.debug)
	lt.levelErr = lerr
	format, err := logging.ParseFormat(inv.logFormat)
	if err != nil {
		format = logging.Text // the bad value is reported by parseGlobals
	}
	opts := logging.Options{Format: format, Level: level, Log: stderr}
	if inv.log != "" {
		lt.file = &logging.File{Path: inv.log, Fallback: stderr}
		opts.Log = lt.file
	} else {
		lt.stderr = true
	}
	if cfg.LogFile != "" {
		lt.extra = &logging.File{Path: cfg.LogFile, Fallback: io.Discard}
		// runphi's own log keeps at least the info lines (what was
		// created, started, killed) whatever the runc-style log shows.
		opts.Extra, opts.ExtraLevel = lt.extra, min(level, slog.LevelInfo)
	}
	lt.log = logging.New(opts)
	return lt
}

func (lt *logTarget) close() {
	for _, f := range []*logging.File{lt.file, lt.extra} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// fail reports err the way runc's fatal does: an error record in the log,
// and the message on stderr too unless the log already is stderr. It
// returns the exit status.
func (lt *logTarget) fail(stderr io.Writer, err error) int {
	lt.log.Error(err.Error())
	if !lt.stderr {
		fmt.Fprintln(stderr, err)
	}
	return 1
}
