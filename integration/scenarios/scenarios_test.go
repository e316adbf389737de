package scenarios

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runphi-go/runphi/integration/marker"
)

func TestRegistry(t *testing.T) {
	all := All()
	if err := Check(all); err != nil {
		t.Fatal(err)
	}
	// The host and the guest find scenarios by these names; the first two
	// are the harness's own acceptance checks.
	names := Names(all)
	for _, want := range []string{"boot", "containerd-smoke"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("registry lacks %q: %v", want, names)
		}
	}
	if names[0] != "boot" {
		t.Errorf("first scenario is %q, want boot (later ones rely on its checks)", names[0])
	}
}

func TestCheckRejects(t *testing.T) {
	run := func(*Env) error { return nil }
	tests := []struct {
		name string
		list []Scenario
	}{
		{"bad name", []Scenario{{Name: "has space", Run: run}}},
		{"duplicate", []Scenario{{Name: "a", Run: run}, {Name: "a", Run: run}}},
		{"no func", []Scenario{{Name: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(tt.list); err == nil {
				t.Error("Check accepted a broken registry")
			}
		})
	}
}

func TestSelect(t *testing.T) {
	all := []Scenario{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "demo", Explicit: true}}
	tests := []struct {
		names []string
		want  []string
		err   string
	}{
		{nil, []string{"a", "b", "c"}, ""},           // explicit ones only by name
		{[]string{"c", "a"}, []string{"a", "c"}, ""}, // registry order
		{[]string{"demo"}, []string{"demo"}, ""},
		{[]string{"a", "zz"}, nil, "unknown scenario(s) zz"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			got, err := Select(all, tt.names)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Select error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, Names(got)); diff != "" {
				t.Errorf("Select mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, json string
		err        string
		timeout    time.Duration
	}{
		{"ok", `{"mode":"emulated","modules":["fuse","cuse"],"required":["cuse"],"scenarioTimeout":"30s"}`, "", 30 * time.Second},
		{"default timeout", `{"mode":"real"}`, "", DefaultTimeout},
		{"bad mode", `{"mode":"fake"}`, "mode", 0},
		{"required not loaded", `{"mode":"real","modules":["a"],"required":["b"]}`, "required module b", 0},
		{"bad timeout", `{"mode":"real","scenarioTimeout":"soon"}`, "soon", 0},
		{"not json", `mode=real`, "test config", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseConfig error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Duration(c.ScenarioTimeout) != tt.timeout {
				t.Errorf("ScenarioTimeout = %v, want %v", c.ScenarioTimeout, tt.timeout)
			}
		})
	}
}

// syncBuffer is a console sink safe for the runner's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunnerMarkers(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "tool")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho tool says $1\n[ \"$1\" = ok ]\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		Mode:            Emulated,
		Binaries:        map[string]string{"tool": fake},
		Missing:         map[string]string{"jhemu": "no main package yet"},
		ScenarioTimeout: Duration(time.Minute),
	}
	release := make(chan struct{})
	defer close(release)
	var cleaned []string
	list := []Scenario{
		{Name: "pass", Run: func(e *Env) error {
			e.Cleanup(func() { cleaned = append(cleaned, "pass") })
			_, err := e.Run("tool", "ok")
			return err
		}},
		{Name: "fail", Run: func(e *Env) error { _, err := e.Run("tool", "bad"); return err }},
		{Name: "skip", Run: func(*Env) error { return Skipf("not %s", "today") }},
		{Name: "needs", Needs: []string{"jhemu"}, Run: func(*Env) error { t.Error("ran without jhemu"); return nil }},
		{Name: "real-only", Modes: []Mode{Real}, Run: func(*Env) error { t.Error("ran in emulated mode"); return nil }},
		{Name: "panics", Run: func(*Env) error { panic("boom") }},
		{Name: "slow", Timeout: 50 * time.Millisecond, Run: func(e *Env) error {
			<-e.Context().Done()
			return e.Context().Err()
		}},
		{Name: "hangs", Timeout: 50 * time.Millisecond, Run: func(*Env) error { <-release; return nil }},
		{Name: "last", Run: func(e *Env) error {
			if _, err := os.Stat(e.Dir()); err != nil {
				return err
			}
			return nil
		}},
	}
	var out syncBuffer
	r := &Runner{Config: cfg, Console: NewConsole(&out), ScratchRoot: dir, Grace: 100 * time.Millisecond}
	c := r.Run(context.Background(), list)

	var rep marker.Report
	for _, l := range strings.Split(out.String(), "\n") {
		rep.Add(marker.Line{Text: l})
	}
	type res struct {
		Name   string
		Result marker.Kind
		Reason string
	}
	want := []res{
		{"pass", marker.Pass, ""},
		{"fail", marker.Fail, "tool (after "},
		{"skip", marker.Skip, "not today"},
		{"needs", marker.Skip, "needs jhemu"},
		{"real-only", marker.Skip, "runs in [real] mode only, this run is emulated"},
		{"panics", marker.Fail, "panic: boom"},
		{"slow", marker.Fail, "timed out after 50ms"},
		{"hangs", marker.Fail, "hung"},
		{"last", marker.Pass, ""},
	}
	// Reasons carry timings and details; their start names the cause.
	var got []res
	for i, s := range rep.Scenarios {
		reason := s.Reason
		if i < len(want) && strings.HasPrefix(reason, want[i].Reason) {
			reason = want[i].Reason
		}
		got = append(got, res{s.Name, s.Result, reason})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results mismatch (-want +got):\n%s\nconsole:\n%s", diff, out.String())
	}
	if c != (Counts{Pass: 2, Fail: 4, Skip: 3}) {
		t.Errorf("counts = %+v", c)
	}
	if diff := cmp.Diff([]string{"pass"}, cleaned); diff != "" {
		t.Errorf("cleanups mismatch (-want +got):\n%s", diff)
	}
	if s := rep.Lookup("fail"); s == nil || !strings.Contains(s.Reason, "tool says bad") {
		t.Errorf("fail reason %q does not quote the command's output", s.Reason)
	}
	if !strings.Contains(out.String(), "  | tool says ok") {
		t.Errorf("command output not echoed with a prefix:\n%s", out.String())
	}
}

func TestStartDaemon(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	e := &Env{
		Config:  &Config{Mode: Emulated},
		ctx:     context.Background(),
		console: NewConsole(&out),
		dir:     dir,
		shared:  &shared{},
	}
	d, err := e.Start("/bin/sh", "-c", "echo ready; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	err = e.WaitFor("daemon log", 5*time.Second, func() bool {
		return len(d.LogTail(1)) == 1 && d.LogTail(1)[0] == "ready"
	})
	if err != nil {
		t.Fatal(err)
	}
	e.runCleanups() // stops it
	exited, werr := d.Exited()
	if !exited || werr == nil {
		t.Errorf("after cleanup: exited=%v err=%v, want killed by SIGTERM", exited, werr)
	}
	if err := e.WaitFor("never", 30*time.Millisecond, func() bool { return false }); err == nil {
		t.Error("WaitFor of a false condition succeeded")
	}
}

func TestBinSkips(t *testing.T) {
	e := &Env{Config: &Config{Missing: map[string]string{"runphi": "build failed"}}}
	_, err := e.Bin("runphi")
	if s, ok := IsSkip(err); !ok || !strings.Contains(s.Reason, "build failed") {
		t.Errorf("Bin(runphi) = %v, want a skip naming the build failure", err)
	}
	_, err = e.Bin("no-such-program-anywhere")
	if _, ok := IsSkip(err); !ok {
		t.Errorf("Bin of an unknown program = %v, want a skip", err)
	}
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewConsole(&out).LineWriter("> ")
	for _, s := range []string{"a\r\nb", "c\n", "partial"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if got, want := out.String(), "> a\n> bc\n> partial\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"a", "bc", "partial"}, w.Tail()); diff != "" {
		t.Errorf("Tail mismatch (-want +got):\n%s", diff)
	}
}

func TestBusyboxSpec(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBundle(dir, BusyboxSpec("/img", "/bin/sh", "-c", "true")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"path": "/img"`, `"readonly": true`, `"type": "pid"`, `"/bin/sh"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config.json lacks %s", want)
		}
	}
}
