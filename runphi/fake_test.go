package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/runphi/forward"
	"github.com/runphi-go/runphi/runphi/route"
)

// fakeZIC is a zicRuntime that records its calls and keeps its containers
// as directories in the state directory, as the real one does, so that
// routing by state presence works across calls.
type fakeZIC struct {
	env   zicEnv
	calls []string
	// fail makes the named method return this error.
	fail map[string]error
	// status is what State reports.
	status string
	pids   []int
}

func (f *fakeZIC) record(format string, args ...any) error {
	call := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, call)
	name, _, _ := strings.Cut(call, " ")
	return f.fail[name]
}

func (f *fakeZIC) Create(_ context.Context, o createOpts) error {
	if err := f.record("Create %+v", o); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(f.env.stateDir, o.ID), 0o755)
}

func (f *fakeZIC) Start(_ context.Context, id string) error { return f.record("Start %s", id) }

func (f *fakeZIC) State(_ context.Context, id string) (containerState, error) {
	return containerState{
		Version: "1.3.0", ID: id, InitProcessPid: 42, Status: f.status, Bundle: "/b", Rootfs: "/b/rootfs",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Owner: "root",
	}, f.record("State %s", id)
}

func (f *fakeZIC) Kill(_ context.Context, id string, sig unix.Signal, all bool) error {
	return f.record("Kill %s %d %v", id, int(sig), all)
}

func (f *fakeZIC) Delete(_ context.Context, id string, force bool) error {
	if err := f.record("Delete %s %v", id, force); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(f.env.stateDir, id))
}

func (f *fakeZIC) Ps(_ context.Context, id string) ([]int, error) {
	return f.pids, f.record("Ps %s", id)
}

func (f *fakeZIC) List(context.Context) ([]containerState, error) {
	ents, err := os.ReadDir(f.env.stateDir)
	if err != nil {
		return nil, err
	}
	var out []containerState
	for _, e := range ents {
		st, _ := f.State(context.Background(), e.Name())
		out = append(out, st)
	}
	return out, f.record("List")
}

// harness runs app.main in-process with a temporary state root, a fake
// runc on disk (for list and features, which run it) and a fake exec
// that records forwarding instead of replacing the test process.
type harness struct {
	t         testing.TB
	dir       string
	stateRoot string
	runcRoot  string // passed as --root by h.run
	runc      string // the fake runc's path
	env       map[string]string
	zic       *fakeZIC
	zicEnvs   []zicEnv
	forwarded [][]string // argv (without argv[0]) of each exec
	execPath  string
	stdout    bytes.Buffer
	stderr    bytes.Buffer
}

// fakeRuncScript answers list and features like runc and fails otherwise.
const fakeRuncScript = `#!/bin/sh
case "$*" in
*"list --format json") echo '[{"ociVersion":"1.0.2","id":"r1","pid":7,"status":"running","bundle":"/rb","rootfs":"/rb/rootfs","created":"2026-01-01T00:00:00Z","owner":"root"}]' ;;
features) echo '{"ociVersionMin":"1.0.0","ociVersionMax":"1.2.0","annotations":{"org.opencontainers.runc.version":"9.9"}}' ;;
--version) printf 'runc version 9.9\ncommit: abc\nspec: 1.2.0\n' ;;
*) echo "fake runc: unexpected $*" >&2; exit 99 ;;
esac
`

func newHarness(t testing.TB) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t:         t,
		dir:       dir,
		stateRoot: filepath.Join(dir, "state"),
		runcRoot:  filepath.Join(dir, "runc-root"),
		runc:      filepath.Join(dir, "bin", "runc"),
		zic:       &fakeZIC{fail: map[string]error{}, status: "created"},
	}
	must(t, os.MkdirAll(filepath.Dir(h.runc), 0o755))
	must(t, os.WriteFile(h.runc, []byte(fakeRuncScript), 0o755))
	cfg := filepath.Join(dir, "config.json")
	must(t, os.WriteFile(cfg, []byte(`{"runc": "`+h.runc+`"}`), 0o644))
	h.env = map[string]string{"RUNPHI_CONFIG": cfg, "RUNPHI_STATE_ROOT": h.stateRoot}
	return h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) app() *app {
	return &app{
		stdout:  &h.stdout,
		stderr:  &h.stderr,
		getenv:  func(k string) string { return h.env[k] },
		environ: func() []string { return []string{"A=1"} },
		geteuid: func() int { return 0 },
		exec: func(path string, args, env []string) error {
			h.execPath = path
			h.forwarded = append(h.forwarded, slices.Clone(args))
			return nil
		},
		resolver: forward.Resolver{Self: filepath.Join(h.dir, "no-self"), Path: "/nonexistent"},
		newZIC: func(e zicEnv) (zicRuntime, error) {
			h.zicEnvs = append(h.zicEnvs, e)
			h.zic.env = e
			return h.zic, nil
		},
	}
}

// run runs runphi with --root <runcRoot> and args; it returns the exit
// status.
func (h *harness) run(args ...string) int {
	return h.runRaw(append([]string{"--root", h.runcRoot}, args...)...)
}

// runRaw runs runphi with exactly args.
func (h *harness) runRaw(args ...string) int {
	h.stdout.Reset()
	h.stderr.Reset()
	h.forwarded = nil
	h.zic.calls = nil
	return h.app().main(context.Background(), args)
}

// nsDir is runphi's state directory for h.runcRoot.
func (h *harness) nsDir() string {
	return route.Dir(h.stateRoot, h.runcRoot)
}

// holdZIC makes runphi hold state for id, as a successful create would.
func (h *harness) holdZIC(id string) {
	must(h.t, os.MkdirAll(filepath.Join(h.nsDir(), id), 0o755))
}

// bundle writes a bundle; zic puts /boot/config.json in its rootfs.
func (h *harness) bundle(name string, annotations string, zic bool) string {
	b := filepath.Join(h.dir, name)
	must(h.t, os.MkdirAll(filepath.Join(b, "rootfs", "boot"), 0o755))
	cfg := `{"ociVersion":"1.3.0","root":{"path":"rootfs"},"process":{"args":["/bin/app"]}`
	if annotations != "" {
		cfg += `,"annotations":` + annotations
	}
	must(h.t, os.WriteFile(filepath.Join(b, "config.json"), []byte(cfg+"}"), 0o644))
	if zic {
		must(h.t, os.WriteFile(filepath.Join(b, "rootfs", "boot", "config.json"), []byte(`{"os_var":"zephyr"}`), 0o644))
	}
	return b
}
