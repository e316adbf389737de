package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/runphi-go/runphi/runphi/route"
)

// TestForwardUnknownIDs: every verb for an id runphi holds no state for
// goes to runc with the argv unchanged, whatever the flags.
func TestForwardUnknownIDs(t *testing.T) {
	h := newHarness(t)
	h.holdZIC("zic") // present, but not the id asked for
	cases := [][]string{
		{"start", "c1"},
		{"state", "c1"},
		{"kill", "c1", "9"},
		{"kill", "--all", "c1", "9"},
		{"kill", "-a", "c1", "0"},
		{"delete", "c1"},
		{"delete", "--force", "c1"},
		{"ps", "--format", "json", "c1"},
		{"exec", "--process", "/p.json", "--detach", "--pid-file", "/e.pid", "c1"},
		{"update", "--resources=-", "c1"},
		{"pause", "c1"},
		{"resume", "c1"},
		{"events", "--interval", "1s", "c1"},
		{"checkpoint", "--image-path", "/i", "--work-path", "/w", "c1"},
		{"restore", "--image-path", "/i", "--detach", "--pid-file", "/p", "-no-subreaper", "--bundle", "/b", "c1"},
		{"spec", "--bundle", "/b"},
		{"frobnicate", "c1"}, // runc reports unknown verbs itself
		{"start", "../zic"},  // never a state directory
		{"state", ""},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			argv := append([]string{"--root", h.runcRoot, "--log", "/l.json", "--log-format", "json"}, args...)
			if st := h.runRaw(argv...); st != 0 {
				t.Fatalf("exit %d, stderr %s", st, h.stderr.String())
			}
			if len(h.forwarded) != 1 || !slices.Equal(h.forwarded[0], argv) {
				t.Fatalf("forwarded %q, want exactly %q", h.forwarded, argv)
			}
			if h.execPath != h.runc {
				t.Errorf("exec'd %s, want the configured runc %s", h.execPath, h.runc)
			}
			if len(h.zic.calls) != 0 || h.stdout.Len() != 0 || h.stderr.Len() != 0 {
				t.Errorf("runphi acted itself: calls %q, stdout %q, stderr %q", h.zic.calls, h.stdout.String(), h.stderr.String())
			}
		})
	}
}

// TestStateIsPerRuncRoot: a ZIC under one --root is invisible under
// another (containerd namespaces may reuse ids) and under the default root.
func TestStateIsPerRuncRoot(t *testing.T) {
	h := newHarness(t)
	h.holdZIC("z")
	if h.run("state", "z"); len(h.zic.calls) != 1 {
		t.Fatalf("ZIC under its own root not handled: calls %q, forwarded %q", h.zic.calls, h.forwarded)
	}
	for _, argv := range [][]string{
		{"--root", h.runcRoot + "-other", "state", "z"},
		{"state", "z"},
	} {
		h.runRaw(argv...)
		if len(h.forwarded) != 1 || len(h.zic.calls) != 0 {
			t.Errorf("%q: forwarded %q, calls %q; want it forwarded", argv, h.forwarded, h.zic.calls)
		}
	}
	// The relative and the "=" form of the same root find the ZIC too.
	t.Chdir(filepath.Dir(h.runcRoot))
	for _, argv := range [][]string{
		{"--root", filepath.Base(h.runcRoot), "state", "z"},
		{"--root=" + h.runcRoot + "/", "state", "z"},
	} {
		h.runRaw(argv...)
		if len(h.zic.calls) != 1 {
			t.Errorf("%q: calls %q, forwarded %q; want the ZIC", argv, h.zic.calls, h.forwarded)
		}
	}
}

func TestZICVerbs(t *testing.T) {
	tests := []struct {
		args      []string
		fail      map[string]error
		pids      []int
		wantCalls []string
		wantExit  int
		wantOut   string // exact stdout, if not ""
		wantErrIn string // substring of stderr
	}{
		{args: []string{"start", "z"}, wantCalls: []string{"Start z"}},
		{args: []string{"kill", "z"}, wantCalls: []string{"Kill z 15 false"}},
		{args: []string{"kill", "z", "KILL"}, wantCalls: []string{"Kill z 9 false"}},
		{args: []string{"kill", "z", "SIGINT"}, wantCalls: []string{"Kill z 2 false"}},
		{args: []string{"kill", "--all", "z", "9"}, wantCalls: []string{"Kill z 9 true"}},
		{args: []string{"kill", "-a", "z", "0"}, wantCalls: []string{"Kill z 0 true"}},
		{args: []string{"kill", "z", "15", "--all"}, wantCalls: []string{"Kill z 15 true"}},
		{args: []string{"kill", "z", "BOGUS"}, wantExit: 1, wantErrIn: `unknown signal`},
		{args: []string{"kill", "z", "9"}, fail: map[string]error{"Kill": errNotRunning}, wantCalls: []string{"Kill z 9 false"},
			wantExit: 1, wantErrIn: "container not running"},
		{args: []string{"kill", "--all", "z", "9"}, fail: map[string]error{"Kill": fmt.Errorf("kill: %w", errNotRunning)},
			wantCalls: []string{"Kill z 9 true"}},
		{args: []string{"delete", "z"}, wantCalls: []string{"Delete z false"}},
		{args: []string{"delete", "-f", "z"}, wantCalls: []string{"Delete z true"}},
		{args: []string{"delete", "z", "--force"}, wantCalls: []string{"Delete z true"}},
		{args: []string{"delete", "--force", "z"}, fail: map[string]error{"Delete": errNotExist}, wantCalls: []string{"Delete z true"}},
		{args: []string{"delete", "z"}, fail: map[string]error{"Delete": errNotExist}, wantCalls: []string{"Delete z false"},
			wantExit: 1, wantErrIn: "container does not exist"},
		{args: []string{"ps", "--format", "json", "z"}, pids: []int{4, 5}, wantCalls: []string{"Ps z"}, wantOut: "[4,5]\n"},
		{args: []string{"ps", "-f", "json", "z"}, wantCalls: []string{"Ps z"}, wantOut: "[]\n"},
		{args: []string{"ps", "--format=yaml", "z"}, wantExit: 1, wantErrIn: "invalid format option"},
		{args: []string{"state", "z"}, wantCalls: []string{"State z"}, wantOut: `{
  "ociVersion": "1.3.0",
  "id": "z",
  "pid": 42,
  "status": "created",
  "bundle": "/b",
  "rootfs": "/b/rootfs",
  "created": "2026-01-02T03:04:05Z",
  "owner": "root"
}`},
		{args: []string{"exec", "--process", "/p", "--detach", "z"}, wantExit: 1, wantErrIn: "exec is not supported for ZICs"},
		{args: []string{"update", "--resources", "-", "z"}, wantExit: 1, wantErrIn: "update is not supported for ZICs"},
		{args: []string{"pause", "z"}, wantExit: 1, wantErrIn: "pause is not supported for ZICs"},
		{args: []string{"resume", "z"}, wantExit: 1, wantErrIn: "resume is not supported for ZICs"},
		{args: []string{"checkpoint", "--image-path", "/i", "z"}, wantExit: 1, wantErrIn: "checkpoint is not supported for ZICs"},
		{args: []string{"restore", "-no-subreaper", "z"}, wantExit: 1, wantErrIn: "restore is not supported for ZICs"},
		{args: []string{"events", "z"}, wantExit: 1, wantErrIn: "events is not supported for ZICs"},
		{args: []string{"kill", "--bogus", "z"}, wantExit: 1, wantErrIn: "unknown flag: --bogus"},
		{args: []string{"start", "z", "extra"}, wantExit: 1, wantErrIn: `requires exactly 1 argument(s)`},
		{args: []string{"kill", "z", "9", "x"}, wantExit: 1, wantErrIn: `requires a maximum of 2 argument(s)`},
		{args: []string{"start", "z"}, fail: map[string]error{"Start": errors.New("container is not in created state")},
			wantCalls: []string{"Start z"}, wantExit: 1, wantErrIn: "not in created state"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t)
			h.holdZIC("z")
			h.zic.fail, h.zic.pids = tt.fail, tt.pids
			st := h.run(tt.args...)
			if st != tt.wantExit {
				t.Fatalf("exit %d, want %d; stderr %s", st, tt.wantExit, h.stderr.String())
			}
			if len(h.forwarded) != 0 {
				t.Fatalf("a ZIC's call was forwarded: %q", h.forwarded)
			}
			if !slices.Equal(h.zic.calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", h.zic.calls, tt.wantCalls)
			}
			if tt.wantOut != "" && h.stdout.String() != tt.wantOut {
				t.Errorf("stdout\n%s\nwant\n%s", h.stdout.String(), tt.wantOut)
			}
			if tt.wantErrIn != "" && !strings.Contains(h.stderr.String(), tt.wantErrIn) {
				t.Errorf("stderr %q lacks %q", h.stderr.String(), tt.wantErrIn)
			}
			if tt.wantExit == 0 && h.stderr.Len() != 0 {
				t.Errorf("stderr on success: %q", h.stderr.String())
			}
		})
	}
}

func TestZicEnv(t *testing.T) {
	h := newHarness(t)
	h.holdZIC("z")
	h.run("--systemd-cgroup", "start", "z")
	if len(h.zicEnvs) != 1 {
		t.Fatalf("runtime built %d times", len(h.zicEnvs))
	}
	e := h.zicEnvs[0]
	if e.stateDir != route.Dir(h.stateRoot, h.runcRoot) || e.runcRoot != h.runcRoot || !e.systemdCgroup || e.cfg.Runc != h.runc {
		t.Errorf("zicEnv = %+v", e)
	}
	// The monitor is started with the call's global flags, as given.
	if want := []string{"--root", h.runcRoot, "--systemd-cgroup"}; !slices.Equal(e.globalArgs, want) {
		t.Errorf("globalArgs = %q, want %q", e.globalArgs, want)
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name        string
		annotations string
		zic         bool
		args        func(b string) []string
		wantForward bool
		wantCalls   []string // "" entries are matched by prefix
		wantExit    int
		wantErrIn   string
	}{
		{
			name: "ZIC by descriptor (go-runc argv)", zic: true,
			args: func(b string) []string {
				return []string{"create", "--bundle", b, "--pid-file", b + "/init.pid", "--console-socket", "/tmp/c.sock", "--no-pivot", "--no-new-keyring", "z"}
			},
			wantCalls: []string{"Create {ID:z Bundle:<b> PidFile:<b>/init.pid ConsoleSocket:/tmp/c.sock PidfdSocket: NoPivot:true NoNewKeyring:true PreserveFDs:0}"},
		},
		{
			name: "ZIC, flags after the id and = forms", zic: true,
			args:      func(b string) []string { return []string{"create", "z", "--bundle=" + b, "--preserve-fds=2"} },
			wantCalls: []string{"Create {ID:z Bundle:<b> PidFile: ConsoleSocket: PidfdSocket: NoPivot:false NoNewKeyring:false PreserveFDs:2}"},
		},
		{
			name: "ZIC, relative bundle and pid file made absolute", zic: true,
			args:      func(b string) []string { return []string{"create", "-b", filepath.Base(b), "--pid-file", "p.pid", "z"} },
			wantCalls: []string{"Create {ID:z Bundle:<b> PidFile:<dir>/p.pid ConsoleSocket: PidfdSocket: NoPivot:false NoNewKeyring:false PreserveFDs:0}"},
		},
		{
			name: "ZIC forced by annotation", annotations: `{"org.runphi.runtime":"runphi"}`,
			args:      func(b string) []string { return []string{"create", "--bundle", b, "z"} },
			wantCalls: []string{"Create {ID:z Bundle:<b> PidFile: ConsoleSocket: PidfdSocket: NoPivot:false NoNewKeyring:false PreserveFDs:0}"},
		},
		{
			name: "ordinary container forwarded",
			args: func(b string) []string {
				return []string{"create", "--bundle", b, "--pid-file", b + "/init.pid", "--pidfd-socket", "/s", "c"}
			},
			wantForward: true,
		},
		{
			name: "sandbox forwarded despite a descriptor", zic: true, annotations: `{"io.kubernetes.cri.container-type":"sandbox"}`,
			args:        func(b string) []string { return []string{"create", "--bundle", b, "c"} },
			wantForward: true,
		},
		{
			name: "CRI-O sandbox forwarded", zic: true, annotations: `{"io.kubernetes.cri-o.ContainerType":"sandbox"}`,
			args:        func(b string) []string { return []string{"create", "--bundle", b, "c"} },
			wantForward: true,
		},
		{
			name: "annotation runc forwards a ZIC image", zic: true, annotations: `{"org.runphi.runtime":"runc"}`,
			args:        func(b string) []string { return []string{"create", "--bundle", b, "c"} },
			wantForward: true,
		},
		{
			name:        "flag unknown to runphi is runc's business",
			args:        func(b string) []string { return []string{"create", "--bundle", b, "--future-flag", "c"} },
			wantForward: true,
		},
		{
			name: "flag unknown to runphi on a ZIC", zic: true,
			args:     func(b string) []string { return []string{"create", "--bundle", b, "--future-flag", "z"} },
			wantExit: 1, wantErrIn: "unknown flag: --future-flag",
		},
		{
			name: "bad annotation value", annotations: `{"org.runphi.runtime":"yes"}`,
			args:     func(b string) []string { return []string{"create", "--bundle", b, "c"} },
			wantExit: 1, wantErrIn: `unknown value`,
		},
		{
			name: "run --detach on a ZIC is create and start", zic: true,
			args: func(b string) []string { return []string{"run", "-d", "--bundle", b, "z"} },
			wantCalls: []string{
				"Create {ID:z Bundle:<b> PidFile: ConsoleSocket: PidfdSocket: NoPivot:false NoNewKeyring:false PreserveFDs:0}",
				"Start z",
			},
		},
		{
			name: "run in the foreground on a ZIC", zic: true,
			args:     func(b string) []string { return []string{"run", "--bundle", b, "z"} },
			wantExit: 1, wantErrIn: "run without --detach is not supported for ZICs",
		},
		{
			name:        "run of an ordinary container forwarded",
			args:        func(b string) []string { return []string{"run", "--bundle", b, "--keep", "c"} },
			wantForward: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.bundle("bundle", tt.annotations, tt.zic)
			t.Chdir(h.dir)
			args := append([]string{"--root", h.runcRoot}, tt.args(b)...)
			st := h.runRaw(args...)
			if st != tt.wantExit {
				t.Fatalf("exit %d, want %d; stderr %s", st, tt.wantExit, h.stderr.String())
			}
			if tt.wantForward {
				if len(h.forwarded) != 1 || !slices.Equal(h.forwarded[0], args) {
					t.Fatalf("forwarded %q, want exactly %q", h.forwarded, args)
				}
			} else if len(h.forwarded) != 0 {
				t.Fatalf("forwarded %q, want runphi to handle it", h.forwarded)
			}
			var want []string
			for _, c := range tt.wantCalls {
				want = append(want, strings.NewReplacer("<b>", b, "<dir>", h.dir).Replace(c))
			}
			if !slices.Equal(h.zic.calls, want) {
				t.Errorf("calls\n%q\nwant\n%q", h.zic.calls, want)
			}
			if tt.wantErrIn != "" && !strings.Contains(h.stderr.String(), tt.wantErrIn) {
				t.Errorf("stderr %q lacks %q", h.stderr.String(), tt.wantErrIn)
			}
			if h.stdout.Len() != 0 {
				t.Errorf("create wrote to stdout: %q", h.stdout.String())
			}
		})
	}
}

// TestCreateIDClash: an id is runc's or runphi's, never both.
func TestCreateIDClash(t *testing.T) {
	t.Run("runphi holds the id, ordinary bundle", func(t *testing.T) {
		h := newHarness(t)
		h.holdZIC("x")
		b := h.bundle("b", "", false)
		if st := h.run("create", "--bundle", b, "x"); st != 1 || len(h.forwarded) != 0 || !strings.Contains(h.stderr.String(), "already exists") {
			t.Errorf("exit %d, forwarded %q, stderr %q", st, h.forwarded, h.stderr.String())
		}
	})
	t.Run("runc holds the id, ZIC bundle", func(t *testing.T) {
		h := newHarness(t)
		must(t, os.MkdirAll(filepath.Join(h.runcRoot, "x"), 0o755))
		b := h.bundle("b", "", true)
		if st := h.run("create", "--bundle", b, "x"); st != 1 || len(h.zic.calls) != 0 || !strings.Contains(h.stderr.String(), "already exists") {
			t.Errorf("exit %d, calls %q, stderr %q", st, h.zic.calls, h.stderr.String())
		}
	})
	t.Run("created ZIC is routed to runphi afterwards", func(t *testing.T) {
		h := newHarness(t)
		b := h.bundle("b", "", true)
		h.run("create", "--bundle", b, "x")
		h.run("start", "x")
		if !slices.Equal(h.zic.calls, []string{"Start x"}) {
			t.Errorf("start after create: calls %q, forwarded %q", h.zic.calls, h.forwarded)
		}
		h.run("delete", "x")
		h.run("state", "x")
		if len(h.forwarded) != 1 {
			t.Errorf("state after delete was not forwarded: %q", h.forwarded)
		}
	})
}

// TestJSONErrorLine is containerd's and podman's contract: a failing
// create leaves exactly one JSON object (level error, msg, RFC 3339 time)
// in --log, prints the message on stderr and nothing on stdout, exits 1.
func TestJSONErrorLine(t *testing.T) {
	h := newHarness(t)
	broken := filepath.Join(h.dir, "broken")
	must(t, os.MkdirAll(broken, 0o755))
	must(t, os.WriteFile(filepath.Join(broken, "config.json"), []byte(`{"root": `), 0o644))
	logFile := filepath.Join(h.dir, "log.json")
	st := h.run("--log", logFile, "--log-format", "json", "create", "--bundle", broken, "--pid-file", "/p", "cid")
	if st != 1 {
		t.Fatalf("exit %d, want 1", st)
	}
	if h.stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", h.stdout.String())
	}
	data, err := os.ReadFile(logFile)
	must(t, err)
	var rec map[string]any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("log is not JSON: %v: %s", err, data)
	}
	if dec.More() {
		t.Fatalf("log holds more than one object: %s", data)
	}
	if !strings.HasSuffix(string(data), "}\n") || strings.Count(string(data), "\n") != 1 {
		t.Errorf("log is not one line: %q", data)
	}
	msg, _ := rec["msg"].(string)
	if rec["level"] != "error" || !strings.Contains(msg, "config.json") || rec["id"] != "cid" || rec["verb"] != "create" {
		t.Errorf("log record %v", rec)
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(rec["time"])); err != nil {
		t.Errorf("time %v is not RFC 3339", rec["time"])
	}
	if !strings.Contains(h.stderr.String(), msg) {
		t.Errorf("stderr %q lacks the message %q", h.stderr.String(), msg)
	}
}

// TestErrorWithoutLog: without --log the log is stderr, and the message
// appears there once.
func TestErrorWithoutLog(t *testing.T) {
	h := newHarness(t)
	h.holdZIC("z")
	h.zic.fail = map[string]error{"Kill": errNotRunning}
	if st := h.run("kill", "z", "9"); st != 1 {
		t.Fatalf("exit %d", st)
	}
	if n := strings.Count(h.stderr.String(), "container not running"); n != 1 {
		t.Errorf("stderr has the message %d times: %q", n, h.stderr.String())
	}
	if !strings.Contains(h.stderr.String(), "level=error") {
		t.Errorf("stderr %q is not a log line", h.stderr.String())
	}
}

func TestLogLevel(t *testing.T) {
	for _, tt := range []struct {
		env     string
		debug   bool
		wantLog bool
	}{{"", false, false}, {"info", false, true}, {"", true, true}, {"error", false, false}} {
		h := newHarness(t)
		h.holdZIC("z")
		h.env["RUNPHI_DEBUG_LEVEL"] = tt.env
		logFile := filepath.Join(h.dir, "log.json")
		args := []string{"--log", logFile, "--log-format", "json"}
		if tt.debug {
			args = append(args, "--debug")
		}
		h.run(append(args, "start", "z")...)
		data, _ := os.ReadFile(logFile)
		if got := strings.Contains(string(data), `"msg":"started"`); got != tt.wantLog {
			t.Errorf("RUNPHI_DEBUG_LEVEL=%q --debug=%v: log %q", tt.env, tt.debug, data)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	h := newHarness(t)
	bad := filepath.Join(h.dir, "bad.json")
	must(t, os.WriteFile(bad, []byte(`{"runc_path": "/x"}`), 0o644))
	h.env["RUNPHI_CONFIG"] = bad
	if st := h.run("state", "c"); st != 1 || len(h.forwarded) != 0 || !strings.Contains(h.stderr.String(), `unknown key`) || !strings.Contains(h.stderr.String(), "runc_path") {
		t.Errorf("exit %d, forwarded %q, stderr %q", st, h.forwarded, h.stderr.String())
	}
}

func TestForwardRefusesItself(t *testing.T) {
	h := newHarness(t)
	a := h.app()
	a.resolver.Self = h.runc // the configured runc is runphi's own binary
	st := a.main(t.Context(), []string{"state", "c"})
	if st != 1 || len(h.forwarded) != 0 || !strings.Contains(h.stderr.String(), "is runphi itself") {
		t.Errorf("exit %d, forwarded %q, stderr %q", st, h.forwarded, h.stderr.String())
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(t)
	for _, flag := range []string{"--version", "-v"} {
		if st := h.runRaw(flag); st != 0 {
			t.Fatalf("%s: exit %d", flag, st)
		}
		lines := strings.Split(h.stdout.String(), "\n")
		if !strings.HasPrefix(lines[0], "runphi version ") {
			t.Errorf("%s: first line %q", flag, lines[0])
		}
		for _, want := range []string{"spec: " + specs.Version + "\n", "runc: " + h.runc + " (runc version 9.9)\n"} {
			if !strings.Contains(h.stdout.String(), want) {
				t.Errorf("%s: output %q lacks %q", flag, h.stdout.String(), want)
			}
		}
	}
}

func TestFeatures(t *testing.T) {
	h := newHarness(t)
	if st := h.runRaw("features"); st != 0 {
		t.Fatalf("exit %d: %s", st, h.stderr.String())
	}
	var f features.Features
	must(t, json.Unmarshal(h.stdout.Bytes(), &f))
	if f.OCIVersionMax != "1.2.0" || f.Annotations["org.opencontainers.runc.version"] != "9.9" {
		t.Errorf("runc's features not kept: %+v", f)
	}
	if f.Annotations[route.AnnotationRuntime] != "runphi|runc" || f.Annotations["org.runphi.version"] == "" ||
		!slices.Contains(f.PotentiallyUnsafeConfigAnnotations, "org.runphi.") {
		t.Errorf("runphi's features missing: %+v", f)
	}

	// Without a runc, runphi reports its own.
	h.env["RUNPHI_RUNC"] = filepath.Join(h.dir, "missing-runc")
	if st := h.runRaw("features"); st != 0 {
		t.Fatalf("exit %d without runc: %s", st, h.stderr.String())
	}
	f = features.Features{}
	must(t, json.Unmarshal(h.stdout.Bytes(), &f))
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version || f.Annotations[route.AnnotationRuntime] == "" {
		t.Errorf("fallback features %+v", f)
	}
}

func TestList(t *testing.T) {
	h := newHarness(t)
	if h.run("list"); len(h.forwarded) != 1 {
		t.Fatalf("list without ZICs not forwarded: %q", h.forwarded)
	}
	h.holdZIC("z1")
	// Without a runc root, only the ZICs are listed.
	if st := h.run("list", "-q"); st != 0 || h.stdout.String() != "z1\n" {
		t.Fatalf("list without a runc root: exit %d, stdout %q, stderr %q", st, h.stdout.String(), h.stderr.String())
	}
	must(t, os.MkdirAll(h.runcRoot, 0o755))
	if st := h.run("list", "--format", "json"); st != 0 {
		t.Fatalf("exit %d: %s", st, h.stderr.String())
	}
	var got []containerState
	must(t, json.Unmarshal(h.stdout.Bytes(), &got))
	if len(got) != 2 || got[0].ID != "r1" || got[0].InitProcessPid != 7 || got[1].ID != "z1" {
		t.Errorf("merged list %+v", got)
	}
	if h.run("list", "-q"); h.stdout.String() != "r1\nz1\n" {
		t.Errorf("list -q = %q", h.stdout.String())
	}
	h.run("list")
	lines := strings.Split(strings.TrimSpace(h.stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[2], "z1 ") {
		t.Errorf("list table %q", h.stdout.String())
	}
}

func TestHelp(t *testing.T) {
	h := newHarness(t)
	t.Chdir(h.dir) // no config.json here: help must not route
	for _, args := range [][]string{{"--help"}, {}, {"help"}} {
		if st := h.runRaw(args...); st != 0 || !strings.Contains(h.stdout.String(), "Commands:") {
			t.Errorf("%q: exit %d, stdout %q", args, st, h.stdout.String())
		}
	}
	for _, args := range [][]string{{"help", "create"}, {"create", "--help"}, {"create", "-h"}} {
		if st := h.runRaw(args...); st != 0 || !strings.Contains(h.stdout.String(), "Usage: runphi create") || !strings.Contains(h.stdout.String(), "--pid-file") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, st, h.stdout.String(), h.stderr.String())
		}
	}
}

// BenchmarkForwardDecision measures what runphi does before exec'ing runc
// for a container it does not hold: scan argv, load the configuration,
// stat the state directory, find runc. The goal (bare exec wrapper + 1 ms)
// leaves this part well under a millisecond.
func BenchmarkForwardDecision(b *testing.B) {
	for _, args := range [][]string{
		{"state", "c1"},
		{"--log", "/l.json", "--log-format", "json", "kill", "--all", "c1", "9"},
		{"list"},
	} {
		b.Run(strings.Join(args, " "), func(b *testing.B) {
			h := newHarness(b)
			for b.Loop() {
				h.forwarded = nil
				if h.app().main(b.Context(), append([]string{"--root", h.runcRoot}, args...)) != 0 || len(h.forwarded) != 1 {
					b.Fatal("not forwarded")
				}
			}
		})
	}
}
