package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// invocation is what a lenient scan of argv finds: enough to decide
// whether runphi or runc handles the call, without a flag parser. It never
// fails; a malformed command line is left for whoever handles the call.
type invocation struct {
	verb   string // "" if none
	verbAt int    // index of the verb in args, len(args) if none
	id     string // first positional argument after the verb, "" if none
	// bundle is the create/run --bundle/-b value; "" means the working
	// directory.
	bundle string

	// Global flags.
	root      string
	rootSet   bool
	log       string
	logFormat string
	debug     bool
	help      bool
	version   bool
}

// globalValueFlags are runc's global flags that take a value. --criu is
// gone from current runc but go-runc can still send it.
var globalValueFlags = map[string]bool{"log": true, "log-format": true, "root": true, "rootless": true, "criu": true}

// verbValueFlags lists, per runc verb, the flags (long names and
// one-letter aliases) that take a value, as in runc v1.5. The scan must
// know them to find the container id: "--pid-file P id" has two
// positionals only if --pid-file is a boolean. Every other flag is a
// boolean and never consumes the next token.
var verbValueFlags = map[string]map[string]bool{
	"create": set("bundle", "b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"),
	"run":    set("bundle", "b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"),
	"exec": set("console-socket", "pidfd-socket", "cwd", "env", "e", "user", "u", "additional-gids", "g",
		"process", "p", "pid-file", "process-label", "apparmor", "cap", "c", "preserve-fds", "cgroup"),
	"ps":     set("format", "f"),
	"list":   set("format", "f"),
	"events": set("interval"),
	"update": set("resources", "r", "blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share",
		"cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp",
		"memory", "cpu-idle", "memory-reservation", "memory-swap", "pids-limit", "l3-cache-schema", "mem-bw-schema"),
	"checkpoint": set("image-path", "work-path", "parent-path", "status-fd", "page-server", "manage-cgroups-mode", "empty-ns"),
	"restore": set("console-socket", "image-path", "work-path", "manage-cgroups-mode", "bundle", "b", "pid-file",
		"empty-ns", "lsm-profile", "lsm-mount-context"),
	"spec": set("bundle", "b"),
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// splitFlag returns the name of a flag token ("--root=x" -> "root", "x",
// true) and whether it is a flag at all. One or two dashes are accepted,
// as runc's parser (Go's flag package) does.
func splitFlag(tok string) (name, value string, hasValue, ok bool) {
	if len(tok) < 2 || tok[0] != '-' || tok == "--" {
		return "", "", false, false
	}
	name = strings.TrimPrefix(tok[1:], "-")
	name, value, hasValue = strings.Cut(name, "=")
	return name, value, hasValue, true
}

// scan reads args (argv without argv[0]) like runc would: global flags up
// to the verb, then the verb's flags and positionals in any order.
func scan(args []string) invocation {
	inv := invocation{verbAt: len(args)}
	i := 0
	for ; i < len(args); i++ {
		name, value, hasValue, ok := splitFlag(args[i])
		if !ok {
			break
		}
		if globalValueFlags[name] && !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch name {
		case "root":
			inv.root, inv.rootSet = value, true
		case "log":
			inv.log = value
		case "log-format":
			inv.logFormat = value
		case "debug":
			inv.debug = !hasValue || value == "true"
		case "help", "h":
			inv.help = true
		case "version", "v":
			inv.version = true
		}
	}
	if i < len(args) && args[i] == "--" {
		i++
	}
	if i >= len(args) {
		return inv
	}
	inv.verb, inv.verbAt = args[i], i
	values := verbValueFlags[inv.verb]
	for j := i + 1; j < len(args); j++ {
		if args[j] == "--" {
			if j+1 < len(args) && inv.id == "" {
				inv.id = args[j+1]
			}
			break
		}
		name, value, hasValue, ok := splitFlag(args[j])
		if !ok {
			if inv.id == "" {
				inv.id = args[j]
			}
			continue
		}
		if values[name] && !hasValue && j+1 < len(args) {
			j++
			value = args[j]
		}
		if name == "bundle" || name == "b" {
			inv.bundle = value
		}
	}
	return inv
}

// fixSingleDash rewrites "-name" and "-name=value" to "--name..." when
// name is a long flag of fs, because pflag reads one dash as a cluster of
// one-letter flags while runc (Go's flag package) and go-runc (which sends
// -no-subreaper) use one dash for long names too. Values of flags are
// skipped, and so is everything after "--", or after the first positional
// argument when interspersed is false (those tokens are not flags).
func fixSingleDash(fs *pflag.FlagSet, args []string, interspersed bool) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			if !interspersed {
				break
			}
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil && len(name) == 1 {
			f = fs.ShorthandLookup(name)
		}
		if f == nil {
			continue
		}
		if a[1] != '-' && len(name) > 1 {
			out[i] = "-" + a
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++ // the flag's value, whatever it looks like
		}
	}
	return out
}
