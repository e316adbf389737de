package route

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bundle writes a bundle directory with the given config.json and, if zic,
// a rootfs (at rootfsDir, relative to the bundle unless absolute) holding
// /boot/config.json.
func bundle(t *testing.T, config string, rootfsDir string, zic bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if rootfsDir == "" {
		return dir
	}
	rootfs := rootfsDir
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(dir, rootfs)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if zic {
		if err := os.WriteFile(filepath.Join(rootfs, "boot", "config.json"), []byte(`{"os_var":"zephyr"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDecide(t *testing.T) {
	absRootfs := filepath.Join(t.TempDir(), "abs-rootfs")
	tests := []struct {
		name    string
		config  string
		rootfs  string
		zicImg  bool
		want    bool
		wantErr string
	}{
		{"descriptor present, relative root.path", `{"root":{"path":"rootfs"}}`, "rootfs", true, true, ""},
		{"descriptor present, ./ relative root.path", `{"root":{"path":"./rootfs"}}`, "rootfs", true, true, ""},
		{"descriptor absent", `{"root":{"path":"rootfs"}}`, "rootfs", false, false, ""},
		{"descriptor present, absolute root.path", `{"root":{"path":"` + absRootfs + `"}}`, absRootfs, true, true, ""},
		{"annotation runc beats descriptor", `{"root":{"path":"rootfs"},"annotations":{"org.runphi.runtime":"runc"}}`, "rootfs", true, false, ""},
		{"annotation runphi without descriptor", `{"root":{"path":"rootfs"},"annotations":{"org.runphi.runtime":"runphi"}}`, "rootfs", false, true, ""},
		{"annotation runphi beats sandbox", `{"annotations":{"org.runphi.runtime":"runphi","io.kubernetes.cri.container-type":"sandbox"}}`, "", false, true, ""},
		{"annotation bad value", `{"annotations":{"org.runphi.runtime":"RunPhi"}}`, "", false, false, `unknown value "RunPhi"`},
		{"containerd sandbox", `{"root":{"path":"rootfs"},"annotations":{"io.kubernetes.cri.container-type":"sandbox"}}`, "rootfs", true, false, ""},
		{"CRI-O sandbox", `{"root":{"path":"rootfs"},"annotations":{"io.kubernetes.cri-o.ContainerType":"sandbox"}}`, "rootfs", true, false, ""},
		{"CRI container with descriptor", `{"root":{"path":"rootfs"},"annotations":{"io.kubernetes.cri.container-type":"container"}}`, "rootfs", true, true, ""},
		{"sandbox needs no rootfs", `{"annotations":{"io.kubernetes.cri.container-type":"sandbox"}}`, "", false, false, ""},
		{"no root", `{}`, "", false, false, "root.path is not set"},
		{"missing rootfs", `{"root":{"path":"nope"}}`, "", false, false, "root filesystem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := bundle(t, tt.config, tt.rootfs, tt.zicImg)
			b, err := ReadBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decide(b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decide = %+v, %v; want error containing %q", d, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.ZIC != tt.want || d.Reason == "" {
				t.Errorf("Decide = %+v, want ZIC %v with a reason", d, tt.want)
			}
		})
	}
}

func TestReadBundleErrors(t *testing.T) {
	if _, err := ReadBundle(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing config.json: err = %v", err)
	}
	dir := bundle(t, `{"root":`, "", false)
	if _, err := ReadBundle(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("broken config.json: err = %v, want it to name the file", err)
	}
}

func TestRuncRoot(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flag    string
		set     bool
		euid    int
		xdg     string
		want    string
		wantErr bool
	}{
		{"default for root", "", false, 0, "/run/user/0", "/run/runc", false},
		{"rootless default", "", false, 1000, "/run/user/1000", "/run/user/1000/runc", false},
		{"rootless without XDG", "", false, 1000, "", "/run/runc", false},
		{"given", "/run/containerd/runc/k8s.io", true, 0, "", "/run/containerd/runc/k8s.io", false},
		{"given, uncleaned", "/run/crun/", true, 0, "", "/run/crun", false},
		{"relative", "state", true, 0, "", filepath.Join(cwd, "state"), false},
		{"slash", "/", true, 0, "", "", true},
		{"empty means the working directory, as in runc", "", true, 0, "", cwd, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RuncRoot(tt.flag, tt.set, tt.euid, tt.xdg)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("RuncRoot = %q, %v; want %q, err %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	tests := map[string]string{
		"/run/runc":                   "run-runc",
		"/run/containerd/runc/k8s.io": "run-containerd-runc-k8s.io",
		"/run/containerd/runc/a-b":    `run-containerd-runc-a\x2db`,
		"/run/.hidden":                `run-\x2ehidden`,
		"/run/x y":                    `run-x\x20y`,
	}
	for in, want := range tests {
		if got := Namespace(in); got != want {
			t.Errorf("Namespace(%q) = %q, want %q", in, got, want)
		}
	}
	// Distinct roots must never share a directory.
	roots := []string{"/a/b", "/a-b", `/a\x2db`, "/a/b/c", "/a.b", "/a/.b", "/" + strings.Repeat("x", 300), "/" + strings.Repeat("x", 301)}
	seen := map[string]string{}
	for _, r := range roots {
		n := Namespace(r)
		if prev, ok := seen[n]; ok {
			t.Errorf("Namespace(%q) = Namespace(%q) = %q", r, prev, n)
		}
		seen[n] = r
		if len(n) > 255 || strings.Contains(n, "/") || n == "." || n == ".." {
			t.Errorf("Namespace(%q) = %q is not a usable directory name", r, n)
		}
	}
}

func TestOwned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), Namespace("/run/runc"))
	if HasAny(dir) {
		t.Error("HasAny of a missing directory")
	}
	if err := os.MkdirAll(filepath.Join(dir, "zic1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !HasAny(dir) {
		t.Error("HasAny of an existing directory = false")
	}
	for id, want := range map[string]bool{"zic1": true, "other": false, "file": false, "": false, ".": false, "..": false, "zic1/../zic1": false} {
		if got := Owned(dir, id); got != want {
			t.Errorf("Owned(%q) = %v, want %v", id, got, want)
		}
	}
}
