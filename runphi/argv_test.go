package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestScan pins the command lines real callers send (contract §3) and what
// the lenient scan must find in them: the verb, the container id and, for
// create, the bundle.
func TestScan(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		argv string
		want invocation
	}{
		{
			name: "go-runc create (containerd shim)",
			argv: "--root /run/containerd/runc/k8s.io --log /b/log.json --log-format json --systemd-cgroup create --bundle /b --pid-file /b/init.pid --console-socket /tmp/s.sock --no-pivot --no-new-keyring " + id,
			want: invocation{verb: "create", verbAt: 7, id: id, bundle: "/b", root: "/run/containerd/runc/k8s.io", rootSet: true, log: "/b/log.json", logFormat: "json"},
		},
		{
			name: "go-runc kill --all",
			argv: "--root /r --log /b/log.json --log-format json kill --all " + id + " 9",
			want: invocation{verb: "kill", verbAt: 6, id: id, root: "/r", rootSet: true, log: "/b/log.json", logFormat: "json"},
		},
		{
			name: "go-runc delete --force with --debug",
			argv: "--root /r --log /l --log-format json --debug delete --force x",
			want: invocation{verb: "delete", verbAt: 7, id: "x", root: "/r", rootSet: true, log: "/l", logFormat: "json", debug: true},
		},
		{
			name: "go-runc exec",
			argv: "--root /r exec --process /tmp/p.json --detach --pid-file /b/e.pid --console-socket /s x",
			want: invocation{verb: "exec", verbAt: 2, id: "x", root: "/r", rootSet: true},
		},
		{
			name: "go-runc ps and update",
			argv: "--root=/r ps --format json x",
			want: invocation{verb: "ps", verbAt: 1, id: "x", root: "/r", rootSet: true},
		},
		{
			name: "go-runc update from stdin",
			argv: "--root /r update --resources=- x",
			want: invocation{verb: "update", verbAt: 2, id: "x", root: "/r", rootSet: true},
		},
		{
			name: "go-runc restore with a single-dash long flag",
			argv: "--root /r restore --image-path /i --work-path /w --detach --pid-file /p -no-subreaper --bundle /b x",
			want: invocation{verb: "restore", verbAt: 2, id: "x", bundle: "/b", root: "/r", rootSet: true},
		},
		{
			name: "go-runc --rootless=true",
			argv: "--root /r --rootless=true start x",
			want: invocation{verb: "start", verbAt: 3, id: "x", root: "/r", rootSet: true},
		},
		{
			name: "go-runc --rootless value as a separate token",
			argv: "--rootless true --criu /usr/sbin/criu state x",
			want: invocation{verb: "state", verbAt: 4, id: "x"},
		},
		{
			name: "conmon create, root as one token",
			argv: "--systemd-cgroup --root=/run/runc create --bundle /b --pid-file /p --console-socket /s x",
			want: invocation{verb: "create", verbAt: 2, id: "x", bundle: "/b", root: "/run/runc", rootSet: true},
		},
		{
			name: "CRI-O kill by name",
			argv: "--root /run/crun kill x KILL",
			want: invocation{verb: "kill", verbAt: 2, id: "x", root: "/run/crun", rootSet: true},
		},
		{
			name: "CRI-O kill -a",
			argv: "--root /run/crun kill -a x 15",
			want: invocation{verb: "kill", verbAt: 2, id: "x", root: "/run/crun", rootSet: true},
		},
		{
			name: "podman state without flags",
			argv: "state x",
			want: invocation{verb: "state", verbAt: 0, id: "x"},
		},
		{
			name: "runtime-tools create without root",
			argv: "create --pid-file /p --bundle /b x",
			want: invocation{verb: "create", verbAt: 0, id: "x", bundle: "/b"},
		},
		{
			name: "youki contest: flags after the id",
			argv: "--root /d/runtime create x --bundle /b --no-pivot",
			want: invocation{verb: "create", verbAt: 2, id: "x", bundle: "/b", root: "/d/runtime", rootSet: true},
		},
		{
			name: "short bundle flag and = forms",
			argv: "-root=/r run -d -b=/b x",
			want: invocation{verb: "run", verbAt: 1, id: "x", bundle: "/b", root: "/r", rootSet: true},
		},
		{
			name: "short bundle flag with separate value",
			argv: "run -d -b /b --keep x",
			want: invocation{verb: "run", verbAt: 0, id: "x", bundle: "/b"},
		},
		{
			name: "booleans never swallow the id",
			argv: "--debug --systemd-cgroup kill --all x 9",
			want: invocation{verb: "kill", verbAt: 2, id: "x", debug: true},
		},
		{
			name: "runc bats list -q",
			argv: "--root /r list -q",
			want: invocation{verb: "list", verbAt: 2, root: "/r", rootSet: true},
		},
		{
			name: "version",
			argv: "--version",
			want: invocation{verbAt: 1, version: true},
		},
		{
			name: "nothing",
			argv: "",
			want: invocation{verbAt: 0},
		},
		{
			name: "id after --",
			argv: "delete -f -- -odd",
			want: invocation{verb: "delete", verbAt: 0, id: "-odd"},
		},
		{
			name: "exec command args are not the id",
			argv: "exec -t x sh -c 'echo'",
			want: invocation{verb: "exec", verbAt: 0, id: "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scan(strings.Fields(tt.argv))
			if got != tt.want {
				t.Errorf("scan(%q) =\n%+v\nwant\n%+v", tt.argv, got, tt.want)
			}
		})
	}
}

func TestFixSingleDash(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Bool("no-subreaper", false, "")
	fs.StringP("bundle", "b", "", "")
	fs.BoolP("detach", "d", false, "")
	fs.String("pid-file", "", "")
	tests := []struct {
		in, want     string
		interspersed bool
	}{
		{"-no-subreaper --bundle /b x", "--no-subreaper --bundle /b x", true},
		{"-bundle=/b -d x", "--bundle=/b -d x", true},
		{"-b /b x", "-b /b x", true},
		{"--pid-file -no-subreaper x", "--pid-file -no-subreaper x", true}, // a value stays as it is
		{"-unknown x", "-unknown x", true},
		{"x -no-subreaper", "x --no-subreaper", true},
		{"x -no-subreaper", "x -no-subreaper", false}, // after the id: not a flag
		{"-- -no-subreaper", "-- -no-subreaper", true},
	}
	for _, tt := range tests {
		got := fixSingleDash(fs, strings.Fields(tt.in), tt.interspersed)
		if want := strings.Fields(tt.want); !slices.Equal(got, want) {
			t.Errorf("fixSingleDash(%q, %v) = %q, want %q", tt.in, tt.interspersed, got, want)
		}
	}
}

func TestParseGlobals(t *testing.T) {
	tests := []struct {
		argv    string
		check   func(g *globals) bool
		wantErr string
	}{
		{"--root /r --log /l --log-format json --systemd-cgroup --debug create x", func(g *globals) bool {
			return g.root == "/r" && g.rootSet && g.log == "/l" && g.logFormat == "json" && g.systemdCgroup && g.debug && slices.Equal(g.rest, []string{"create", "x"})
		}, ""},
		{"--root=/r --rootless=true -debug state x", func(g *globals) bool {
			return g.root == "/r" && g.rootless == "true" && g.debug && slices.Equal(g.rest, []string{"state", "x"})
		}, ""},
		{"state x --root /r", func(g *globals) bool { // globals end at the verb
			return !g.rootSet && slices.Equal(g.rest, []string{"state", "x", "--root", "/r"})
		}, ""},
		{"--criu /c start x", func(g *globals) bool { return slices.Equal(g.rest, []string{"start", "x"}) }, ""},
		{"--bogus start x", nil, "unknown flag: --bogus"},
		{"--log-format yaml start x", nil, "invalid log-format: yaml"},
	}
	for _, tt := range tests {
		g, err := parseGlobals(strings.Fields(tt.argv))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseGlobals(%q) err = %v, want %q", tt.argv, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.check(g) {
			t.Errorf("parseGlobals(%q) = %+v, %v", tt.argv, g, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"9": 9, "15": 15, "0": 0, "KILL": 9, "TERM": 15, "SIGKILL": 9, "sigterm": 15, "hup": 1} {
		got, err := parseSignal(in)
		if err != nil || int(got) != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "65", "BOGUS", "SIGBOGUS"} {
		if _, err := parseSignal(in); err == nil || !strings.Contains(err.Error(), "unknown signal") {
			t.Errorf("parseSignal(%q) err = %v, want unknown signal", in, err)
		}
	}
}

// FuzzScan: the lenient scan never fails or panics, and what it reports
// points back into argv.
func FuzzScan(f *testing.F) {
	f.Add("--root /r --log /l --log-format json create --bundle /b --pid-file /p id")
	f.Add("--root=/r kill -a id 9")
	f.Add("-- delete -f -- -x")
	f.Add("--log")
	f.Add("run -b")
	f.Fuzz(func(t *testing.T, argv string) {
		args := strings.Fields(argv)
		inv := scan(args)
		if inv.verbAt > len(args) || (inv.verb != "" && args[inv.verbAt] != inv.verb) {
			t.Fatalf("scan(%q): verb %q at %d", args, inv.verb, inv.verbAt)
		}
		if inv.id != "" && !slices.Contains(args[inv.verbAt:], inv.id) {
			t.Fatalf("scan(%q): id %q is not an argument after the verb", args, inv.id)
		}
	})
}
