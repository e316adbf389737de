package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// asRunphi makes the test binary behave as runphi when re-executed with
// this variable set, so the tests below drive the real main, os.Exit and
// execve included.
const asRunphi = "RUNPHI_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asRunphi) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// fakeRunc records its argv (NUL-separated), pid and stdin in $FAKE_RUNC_DIR,
// writes one line to stdout and one to stderr, and exits with
// $FAKE_RUNC_EXIT, or kills itself with SIGKILL if that is "kill".
const fakeRunc = `#!/bin/sh
printf '%s\0' "$@" > "$FAKE_RUNC_DIR/argv"
echo $$ > "$FAKE_RUNC_DIR/pid"
cat > "$FAKE_RUNC_DIR/stdin"
echo "runc stdout"
echo "runc stderr" >&2
if [ "$FAKE_RUNC_EXIT" = kill ]; then kill -9 $$; fi
exit "$FAKE_RUNC_EXIT"
`

type binHarness struct {
	dir  string
	runc string
	env  []string
}

func newBinHarness(t *testing.T) *binHarness {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the fake runc")
	}
	dir := t.TempDir()
	b := &binHarness{dir: dir, runc: filepath.Join(dir, "runc")}
	must(t, os.WriteFile(b.runc, []byte(fakeRunc), 0o755))
	cfg := filepath.Join(dir, "config.json")
	must(t, os.WriteFile(cfg, []byte(`{"runc": "`+b.runc+`", "state_root": "`+dir+`/state"}`), 0o644))
	b.env = append(os.Environ(), asRunphi+"=1", "RUNPHI_CONFIG="+cfg, "FAKE_RUNC_DIR="+dir)
	return b
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func readBack(t *testing.T, f *os.File) string {
	t.Helper()
	data, err := os.ReadFile(f.Name())
	must(t, err)
	return string(data)
}

type result struct {
	pid            int
	exit           int
	signaled       syscall.Signal
	stdout, stderr string
}

func (b *binHarness) run(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(slices.Clone(b.env), env...)
	cmd.Stdin = strings.NewReader(stdin)
	// Files, not pipes: a ZIC's monitor inherits create's stdio and
	// outlives it, and a pipe would keep Run waiting for it.
	stdout, stderr := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run runphi: %v", err)
	}
	r := result{pid: cmd.Process.Pid, stdout: readBack(t, stdout), stderr: readBack(t, stderr)}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		r.signaled = ws.Signal()
	} else {
		r.exit = ws.ExitStatus()
	}
	return r
}

// TestForwardExec: a forwarded call becomes runc in the same process
// (same pid), with the identical argv, stdin, stdout, stderr and exit
// status, including death by SIGKILL (exit 137 to a shell).
func TestForwardExec(t *testing.T) {
	b := newBinHarness(t)
	id := strings.Repeat("0123456789abcdef", 4) // 64 characters, never truncated
	tests := []struct {
		name     string
		args     []string
		exit     string
		stdin    string
		wantExit int
		wantSig  syscall.Signal
	}{
		{"state", []string{"state", id}, "0", "", 0, 0},
		{"go-runc kill --all", []string{"--root", b.dir + "/k8s.io", "--log", b.dir + "/log.json", "--log-format", "json", "kill", "--all", id, "9"}, "1", "", 1, 0},
		{"CRI-O delete", []string{"--root=" + b.dir + "/crun", "--systemd-cgroup", "delete", "--force", id}, "3", "", 3, 0},
		{"update from stdin", []string{"update", "--resources", "-", id}, "0", `{"cpu":{"shares":2}}`, 0, 0},
		{"killed runc", []string{"--debug", "ps", "--format", "json", id}, "kill", "", 0, syscall.SIGKILL},
		{"create of an ordinary container", []string{"create", "--bundle", b.dir + "/nobundle-but-sandbox", id}, "0", "", 0, 0},
		{"spec", []string{"spec", "--rootless"}, "0", "", 0, 0},
	}
	sandbox := filepath.Join(b.dir, "nobundle-but-sandbox")
	must(t, os.MkdirAll(sandbox, 0o755))
	must(t, os.WriteFile(filepath.Join(sandbox, "config.json"), []byte(`{"annotations":{"io.kubernetes.cri.container-type":"sandbox"}}`), 0o644))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.run(t, tt.stdin, []string{"FAKE_RUNC_EXIT=" + tt.exit}, tt.args...)
			if r.exit != tt.wantExit || r.signaled != tt.wantSig {
				t.Fatalf("exit %d signal %v, want %d signal %v; stderr %q", r.exit, r.signaled, tt.wantExit, tt.wantSig, r.stderr)
			}
			argv, err := os.ReadFile(filepath.Join(b.dir, "argv"))
			must(t, err)
			if got := strings.Split(strings.TrimSuffix(string(argv), "\x00"), "\x00"); !slices.Equal(got, tt.args) {
				t.Errorf("runc got argv %q, want %q", got, tt.args)
			}
			pid, err := os.ReadFile(filepath.Join(b.dir, "pid"))
			must(t, err)
			if p, _ := strconv.Atoi(strings.TrimSpace(string(pid))); p != r.pid {
				t.Errorf("runc ran as pid %d, runphi was %d: not an exec", p, r.pid)
			}
			if stdin, _ := os.ReadFile(filepath.Join(b.dir, "stdin")); string(stdin) != tt.stdin {
				t.Errorf("runc read stdin %q, want %q", stdin, tt.stdin)
			}
			if r.stdout != "runc stdout\n" || r.stderr != "runc stderr\n" {
				t.Errorf("stdout %q stderr %q, want runc's own lines only", r.stdout, r.stderr)
			}
		})
	}
}

// TestExecErrorLine: the real binary's failing create writes one JSON
// object to --log, the message to stderr, nothing to stdout, exits 1, and
// does not run runc.
func TestExecErrorLine(t *testing.T) {
	b := newBinHarness(t)
	bundle := filepath.Join(b.dir, "bundle")
	must(t, os.MkdirAll(bundle, 0o755))
	must(t, os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"root":{"path":"rootfs"},"annotations":{"org.runphi.runtime":"maybe"}}`), 0o644))
	logFile := filepath.Join(b.dir, "log.json")
	r := b.run(t, "", nil, "--root", b.dir+"/root", "--log", logFile, "--log-format", "json", "create", "--bundle", bundle, "--pid-file", b.dir+"/p", "x")
	if r.exit != 1 || r.stdout != "" {
		t.Fatalf("exit %d stdout %q, want 1 and nothing", r.exit, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "argv")); err == nil {
		t.Error("runc was run")
	}
	data, err := os.ReadFile(logFile)
	must(t, err)
	var rec struct{ Level, Msg, Time string }
	if err := json.Unmarshal(data, &rec); err != nil || rec.Level != "error" || !strings.Contains(rec.Msg, "org.runphi.runtime") {
		t.Fatalf("log %q: %+v %v", data, rec, err)
	}
	if !strings.Contains(r.stderr, rec.Msg) {
		t.Errorf("stderr %q lacks %q", r.stderr, rec.Msg)
	}
}

// TestExecRefusesItself: runc configured as runphi's own binary is an
// error, not an exec loop.
func TestExecRefusesItself(t *testing.T) {
	b := newBinHarness(t)
	self, err := os.Executable()
	must(t, err)
	r := b.run(t, "", []string{"RUNPHI_RUNC=" + self}, "state", "x")
	if r.exit != 1 || !strings.Contains(r.stderr, "is runphi itself") {
		t.Errorf("exit %d stderr %q", r.exit, r.stderr)
	}
}
