// Command runphi is an OCI runtime with runc's command line that runs some
// containers as Jailhouse cells (ZICs) and hands every other call to the
// stock runc, unchanged.
//
// Routing. create and run read the bundle and decide (runphi/route): the
// annotation org.runphi.runtime, then CRI sandbox annotations, then the
// presence of /boot/config.json in the root filesystem. Any other verb
// belongs to runphi if and only if runphi holds state for the id, which
// costs one stat; otherwise runphi execs runc with its own argv[1:], so
// stdio, signals and exit status are exactly runc's. features, --version,
// help and list are answered by runphi (list merges runc's list with the
// ZICs); spec is always runc's.
//
// runphi's state lives under the configured state root (default
// /run/runphi), in one directory per runc --root value, so that
// containerd's per-namespace roots may reuse ids:
// <state_root>/<escaped runc root>/<id>/ (route.Namespace).
//
// Command line. Global flags come before the verb, as in runc: --root,
// --log, --log-format text|json, --debug, --systemd-cgroup, --rootless,
// in --flag X or --flag=X form (one dash works too). Verb flags may come
// before or after the container id. Unknown flags are errors (exit 1, like
// runc). runphi adds no flags of its own: its settings come from
// /etc/runphi/config.json and RUNPHI_* variables (runphi/config).
//
// ZIC verbs: create, start, state, kill, delete, ps, list; run only with
// --detach (create then start). exec, update, pause, resume, checkpoint,
// restore and events fail with "not supported for ZICs".
//
// Errors are logged as one record (a JSON line with --log-format json) to
// --log and printed on stderr; the exit status is 1. create never writes to
// stdout. The log level is error unless RUNPHI_DEBUG_LEVEL or --debug
// raise it.
package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/runphi-go/runphi/runphi/config"
	"github.com/runphi-go/runphi/runphi/forward"
	"github.com/runphi-go/runphi/runphi/route"
)

func main() {
	a := &app{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		environ:  os.Environ,
		geteuid:  os.Geteuid,
		exec:     forward.Exec,
		resolver: forward.Resolver{Self: forward.SelfExe, Path: os.Getenv("PATH")},
		newZIC:   newContainerRuntime,
	}
	os.Exit(a.main(context.Background(), os.Args[1:]))
}

// app is one run of runphi with its process environment; tests replace
// the fields.
type app struct {
	stdout   io.Writer
	stderr   io.Writer
	getenv   func(string) string
	environ  func() []string
	geteuid  func() int
	exec     func(path string, args, env []string) error
	resolver forward.Resolver
	newZIC   func(zicEnv) (zicRuntime, error)
}

// handledVerbs are answered by runphi whatever the id: create and run
// route by the bundle, the others involve no container.
var handledVerbs = map[string]bool{
	"create": true, "run": true, "features": true, "list": true, "help": true, "h": true,
}

// main runs one invocation with args (argv without argv[0]) and returns
// the exit status. Calls for runc's containers are decided with as little
// work as possible (scan, the config file, one stat) and never return.
func (a *app) main(ctx context.Context, args []string) int {
	inv := scan(args)
	cfg, cfgErr := config.Load(a.getenv)
	var fwdErr error
	if cfgErr == nil && !inv.help && !inv.version && a.notMine(inv, cfg) {
		// A successful exec does not return; only fakes in tests do.
		if fwdErr = a.forward(cfg, args); fwdErr == nil {
			return 0
		}
	}
	lt := newLogTarget(inv, cfg, a.getenv, a.stderr)
	defer lt.close()
	if inv.verb != runMonitorVerb { // the monitor names its container itself
		lt.log = lt.log.With("id", inv.id, "verb", inv.verb)
	}
	switch {
	case cfgErr != nil:
		return lt.fail(a.stderr, cfgErr)
	case fwdErr != nil:
		return lt.fail(a.stderr, fwdErr)
	}
	if lt.levelErr != nil {
		lt.log.Warn(lt.levelErr.Error())
	}
	g, err := parseGlobals(args)
	if err != nil {
		return lt.fail(a.stderr, err)
	}
	c := &call{app: a, inv: inv, g: g, cfg: cfg, lt: lt, log: lt.log, args: args}
	err = c.dispatch(ctx)
	var st exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	}
	return lt.fail(a.stderr, err)
}

// notMine reports whether the call can go straight to runc: its verb does
// not depend on a container, or runphi holds no state for the id. It costs
// at most one stat.
func (a *app) notMine(inv invocation, cfg config.Config) bool {
	switch {
	case inv.verb == "" || inv.verb == runMonitorVerb:
		return false
	case inv.verb == "spec":
		return true
	case inv.verb == "list":
		dir, ok := a.stateDir(inv, cfg)
		return !ok || !route.HasAny(dir)
	case handledVerbs[inv.verb]:
		return false
	}
	dir, ok := a.stateDir(inv, cfg)
	return !ok || !route.Owned(dir, inv.id)
}

// stateDir returns runphi's state directory for the call's runc root. A
// --root that runc itself rejects is never runphi's.
func (a *app) stateDir(inv invocation, cfg config.Config) (string, bool) {
	root, err := a.runcRoot(inv.root, inv.rootSet)
	if err != nil {
		return "", false
	}
	return route.Dir(cfg.StateRoot, root), true
}

func (a *app) runcRoot(flag string, set bool) (string, error) {
	euid := 0
	xdg := ""
	if !set {
		euid, xdg = a.geteuid(), a.getenv("XDG_RUNTIME_DIR")
	}
	return route.RuncRoot(flag, set, euid, xdg)
}

// forward execs runc with args. It returns only on failure (or when a
// test's fake exec returns nil).
func (a *app) forward(cfg config.Config, args []string) error {
	path, err := a.resolver.Resolve(cfg.Runc)
	if err != nil {
		return err
	}
	return a.exec(path, args, a.environ())
}
