package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		systemd bool
		want    string
		bad     bool
	}{
		{"absolute", "/kubepods/burstable/pod1/abc", false, "/kubepods/burstable/pod1/abc", false},
		{"absolute, cleaned", "/a//b/../c", false, "/a/c", false},
		{"relative to own cgroup", "a/b", false, "/user.slice/runphi/a/b", false},
		{"relative cannot climb", "../../etc", false, "/user.slice/runphi/etc", false},
		{"empty: own cgroup + id", "", false, "/user.slice/runphi/ctr", false},
		{"root refused", "/", false, "", true},
		{"systemd", "kubepods-burstable-pod1.slice:cri-containerd:abc", true,
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope", false},
		{"systemd, empty slice is system.slice", ":runc:abc", true, "/system.slice/runc-abc.scope", false},
		{"systemd, no prefix", "system.slice::abc", true, "/system.slice/abc.scope", false},
		{"systemd, root slice", "-.slice:p:abc", true, "/p-abc.scope", false},
		{"systemd, empty path", "", true, "/system.slice/runphi-ctr.scope", false},
		{"systemd, child slice as name", "a.slice:p:a-b.slice", true, "/a.slice/a-b.slice", false},
		{"systemd, foreign slice as name", "a.slice:p:c-d.slice", true, "", true},
		{"systemd, two fields", "system.slice:abc", true, "", true},
		{"systemd, not a slice", "system:p:abc", true, "", true},
		{"systemd, slash in name", "system.slice:p:a/b", true, "", true},
		{"systemd, empty name", "system.slice:p:", true, "", true},
		{"systemd, empty slice component", "a--b.slice:p:x", true, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.path, tc.systemd, "ctr", "/user.slice/runphi")
			if (err != nil) != tc.bad {
				t.Fatalf("Resolve = %q, %v", got, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidPath) {
				t.Errorf("error %v does not wrap ErrInvalidPath", err)
			}
			if got != tc.want {
				t.Errorf("Resolve = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExpandSlice(t *testing.T) {
	tests := map[string]string{
		"-.slice":       "/",
		"system.slice":  "/system.slice",
		"a-b-c.slice":   "/a.slice/a-b.slice/a-b-c.slice",
		"user-0.slice":  "/user.slice/user-0.slice",
		"a.b-c.d.slice": "/a.b.slice/a.b-c.d.slice",
	}
	for in, want := range tests {
		if got, err := ExpandSlice(in); err != nil || got != want {
			t.Errorf("ExpandSlice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".slice", "a", "a-.slice", "-a.slice", "a/b.slice"} {
		if got, err := ExpandSlice(in); err == nil {
			t.Errorf("ExpandSlice(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		data, want string
		bad        bool
	}{
		{"0::/system.slice/containerd.service\n", "/system.slice/containerd.service", false},
		{"12:pids:/x\n1:name=systemd:/y\n0::/\n", "/", false},
		{"4:memory:/a\n", "/", false}, // pure v1
		{"0::/gone (deleted)\n", "/gone", false},
		{"0::relative\n", "", true},
	}
	for _, tc := range tests {
		got, err := ParseProcCgroup([]byte(tc.data))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseProcCgroup(%q) = %q, %v; want %q", tc.data, got, err, tc.want)
		}
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/x.scope\n"))
	f.Add([]byte("1:cpu:/\n0::/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProcCgroup(data)
		if err == nil && !strings.HasPrefix(p, "/") {
			t.Errorf("ParseProcCgroup(%q) = %q, not absolute", data, p)
		}
	})
}

// fakeV2 returns a directory shaped like a cgroup v2 mount.
func fakeV2(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"cgroup.controllers", "cgroup.procs"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestJoinAndRemove(t *testing.T) {
	root := fakeV2(t)
	rel := "/kubepods.slice/pod1.slice/cri-containerd-abc.scope"
	created, err := Join(root, rel, 4242)
	if err != nil || !created {
		t.Fatalf("Join = %v, %v", created, err)
	}
	procs, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel), "cgroup.procs"))
	if err != nil || string(procs) != "4242" {
		t.Errorf("cgroup.procs = %q, %v", procs, err)
	}
	// Joining an existing cgroup does not claim it.
	if created, err := Join(root, rel, 4243); err != nil || created {
		t.Errorf("second Join = %v, %v; want not created", created, err)
	}
	if err := Remove(root, rel, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); !os.IsNotExist(err) {
		t.Errorf("cgroup still there: %v", err)
	}
	if err := Remove(root, rel, time.Second); err != nil {
		t.Errorf("removing a missing cgroup = %v", err)
	}
	for _, bad := range []string{"", "/", "relative", "/a/../b"} {
		if _, err := Join(root, bad, 1); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Join(%q) = %v, want ErrInvalidPath", bad, err)
		}
	}
}

func TestJoinV1(t *testing.T) {
	root := t.TempDir() // no cgroup.controllers: a v1 layout
	if err := os.Mkdir(filepath.Join(root, "memory"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Join(root, "/x", 1); !errors.Is(err, ErrV1) {
		t.Errorf("Join on v1 = %v, want ErrV1", err)
	}
	if _, err := os.Stat(filepath.Join(root, "x")); !os.IsNotExist(err) {
		t.Error("Join on v1 made a directory")
	}
}
