package forward

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes directories with executables for Resolve to search. self is
// the file standing in for runphi's binary.
type tree struct {
	t    *testing.T
	root string
	self string
}

func newTree(t *testing.T) *tree {
	root := t.TempDir()
	tr := &tree{t: t, root: root, self: filepath.Join(root, "runphi")}
	if err := os.WriteFile(tr.self, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return tr
}

// file creates dir/name: "exe" an executable, "plain" a non-executable
// file, "self" a hard link to runphi, "selflink" a symlink to runphi.
func (tr *tree) file(dir, name, kind string) string {
	tr.t.Helper()
	d := filepath.Join(tr.root, dir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	p := filepath.Join(d, name)
	var err error
	switch kind {
	case "exe":
		err = os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
	case "plain":
		err = os.WriteFile(p, []byte("x"), 0o644)
	case "self":
		err = os.Link(tr.self, p)
	case "selflink":
		err = os.Symlink(tr.self, p)
	}
	if err != nil {
		tr.t.Fatal(err)
	}
	return p
}

func (tr *tree) dir(name string) string { return filepath.Join(tr.root, name) }

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(tr *tree) (path, arg, want string)
		wantErr string
		isSelf  bool
	}{
		{
			name: "first executable in PATH",
			setup: func(tr *tree) (string, string, string) {
				want := tr.file("a", "runc", "exe")
				tr.file("b", "runc", "exe")
				return tr.dir("a") + ":" + tr.dir("b"), "runc", want
			},
		},
		{
			name: "runphi installed as runc ahead of the real one is skipped",
			setup: func(tr *tree) (string, string, string) {
				tr.file("a", "runc", "self")
				tr.file("b", "runc", "selflink")
				want := tr.file("c", "runc", "exe")
				return strings.Join([]string{tr.dir("a"), tr.dir("b"), tr.dir("c")}, ":"), "runc", want
			},
		},
		{
			name: "non-executable and relative entries are skipped",
			setup: func(tr *tree) (string, string, string) {
				tr.file("a", "runc", "plain")
				want := tr.file("b", "runc", "exe")
				return "relative:" + tr.dir("a") + "::" + tr.dir("b"), "runc", want
			},
		},
		{
			name: "explicit path",
			setup: func(tr *tree) (string, string, string) {
				p := tr.file("x", "runc.real", "exe")
				return "", p, p
			},
		},
		{
			name: "explicit path to runphi itself",
			setup: func(tr *tree) (string, string, string) {
				return "", tr.file("x", "runc", "selflink"), ""
			},
			wantErr: "is runphi itself",
			isSelf:  true,
		},
		{
			name: "only runphi in PATH",
			setup: func(tr *tree) (string, string, string) {
				tr.file("a", "runc", "self")
				return tr.dir("a"), "runc", ""
			},
			wantErr: "is runphi itself",
			isSelf:  true,
		},
		{
			name: "not found",
			setup: func(tr *tree) (string, string, string) {
				return tr.dir("empty"), "runc", ""
			},
			wantErr: "executable file not found",
		},
		{
			name: "explicit path missing",
			setup: func(tr *tree) (string, string, string) {
				return "", tr.dir("nope/runc"), ""
			},
			wantErr: "no such file",
		},
		{
			name:    "empty name",
			setup:   func(tr *tree) (string, string, string) { return "", "", "" },
			wantErr: "empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			path, arg, want := tt.setup(tr)
			got, err := Resolver{Self: tr.self, Path: path}.Resolve(arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) = %q, %v; want error containing %q", arg, got, err, tt.wantErr)
				}
				if errors.Is(err, ErrSelf) != tt.isSelf {
					t.Errorf("errors.Is(err, ErrSelf) = %v, want %v", !tt.isSelf, tt.isSelf)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", arg, got, err, want)
			}
		})
	}
}

// TestExec runs Exec in a child copy of the test binary, since it replaces
// the process: the child must become /bin/sh with the given arguments and
// environment, and its exit status must be the shell's.
func TestExec(t *testing.T) {
	if os.Getenv("FORWARD_TEST_EXEC") == "1" {
		err := Exec("/bin/sh", []string{"-c", `echo "$0 $FORWARD_TEST_VALUE"; exit 3`}, []string{"FORWARD_TEST_VALUE=kept"})
		t.Fatalf("Exec returned: %v", err)
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExec$")
	cmd.Env = append(os.Environ(), "FORWARD_TEST_EXEC=1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: err = %v, want exit status 3", err)
	}
	if got := strings.TrimSpace(string(out)); got != "/bin/sh kept" {
		t.Errorf("child printed %q, want argv[0] /bin/sh and the given environment", got)
	}
}

func TestExecFailure(t *testing.T) {
	err := Exec(filepath.Join(t.TempDir(), "missing"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "exec runc") {
		t.Errorf("Exec of a missing file: err = %v", err)
	}
}
