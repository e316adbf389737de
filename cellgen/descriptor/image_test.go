package descriptor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree describes files to create: a value starting with "->" makes a
// symlink, "dir" a directory, "fifo" a FIFO, anything else a file with
// that content. "@OUT" in a link target is replaced by the outside
// directory.
type tree map[string]string

const secret = "host secret, must never be read"

// makeImage builds a root filesystem and, beside it, an "outside"
// directory standing for the host, holding a secret and a valid
// descriptor. It returns the rootfs path and the outside path.
func makeImage(t *testing.T, files tree) (string, string) {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{rootfs, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"secret": secret, "config.json": `{"os_var":"zephyr"}`} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range files {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(v, "->"):
			err = os.Symlink(strings.ReplaceAll(v[2:], "@OUT", outside), p)
		case v == "dir":
			err = os.Mkdir(p, 0o755)
		case v == "fifo":
			err = syscall.Mkfifo(p, 0o644)
		default:
			err = os.WriteFile(p, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return rootfs, outside
}

func TestReadFile(t *testing.T) {
	files := tree{
		"boot/config.json":    `{}`,
		"boot/zephyr.bin":     "ZEPHYR",
		"payload/app.bin":     "APP",
		"boot/rel-link":       "->zephyr.bin",
		"boot/up-link":        "->../payload/app.bin",
		"boot/chain":          "->rel-link",
		"boot/abs-host":       "->/etc/passwd",
		"boot/abs-outside":    "->@OUT/secret",
		"boot/abs-inside":     "->/boot/zephyr.bin",
		"boot/climb-host":     "->../../../../etc/passwd",
		"boot/climb-outside":  "->../../outside/secret",
		"boot/dev-null":       "->/dev/null",
		"boot/dir":            "dir",
		"boot/fifo":           "fifo",
		"boot/fifo-link":      "->fifo",
		"boot/loop-a":         "->loop-b",
		"boot/loop-b":         "->loop-a",
		"boot/ten":            "0123456789",
		"escape-dir":          "->../outside",
		"boot/via-escape-dir": "->../escape-dir/secret",
	}
	rootfs, _ := makeImage(t, files)
	// A sparse 1 TiB file: refusing it must not depend on reading it.
	if f, err := os.Create(filepath.Join(rootfs, "boot/huge")); err != nil {
		t.Fatal(err)
	} else {
		if err := f.Truncate(1 << 40); err != nil {
			t.Skipf("cannot make a sparse file here: %v", err)
		}
		f.Close()
	}
	im, err := Open(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()

	tests := []struct {
		name  string
		path  string
		limit int64
		want  string // content, or for errors a substring of the message
		fails bool
	}{
		{"regular file", "/boot/zephyr.bin", 1 << 20, "ZEPHYR", false},
		{"uncleaned path", "//boot/./zephyr.bin", 1 << 20, "ZEPHYR", false},
		{"relative symlink inside", "/boot/rel-link", 1 << 20, "ZEPHYR", false},
		{"symlink to another directory inside", "/boot/up-link", 1 << 20, "APP", false},
		{"symlink chain inside", "/boot/chain", 1 << 20, "ZEPHYR", false},
		{"exactly at the limit", "/boot/ten", 10, "0123456789", false},

		{"absolute symlink to a host file", "/boot/abs-host", 1 << 20, `image file /boot/abs-host (symlink to "/etc/passwd"`, true},
		{"absolute symlink to the outside", "/boot/abs-outside", 1 << 20, "image file /boot/abs-outside (symlink to", true},
		{"absolute symlink even to inside", "/boot/abs-inside", 1 << 20, "links must be relative", true},
		{"relative symlink climbing to the host", "/boot/climb-host", 1 << 20, "image file /boot/climb-host", true},
		{"relative symlink climbing onto an existing host file", "/boot/climb-outside", 1 << 20, "image file /boot/climb-outside", true},
		{"directory symlink out of the image", "/escape-dir/secret", 1 << 20, "image file /escape-dir/secret", true},
		{"link through an escaping directory", "/boot/via-escape-dir", 1 << 20, "image file /boot/via-escape-dir", true},
		{"dot-dot path", "/boot/../../etc/shadow", 1 << 20, `path "/boot/../../etc/shadow" must not contain ".."`, true},
		{"relative path", "boot/zephyr.bin", 1 << 20, "must be absolute", true},
		{"host device", "/boot/dev-null", 1 << 20, "image file /boot/dev-null", true},
		{"directory", "/boot/dir", 1 << 20, "image file /boot/dir: not a regular file (a directory)", true},
		{"FIFO", "/boot/fifo", 1 << 20, "image file /boot/fifo: not a regular file (a FIFO)", true},
		{"symlink to a FIFO", "/boot/fifo-link", 1 << 20, "image file /boot/fifo-link: not a regular file (a FIFO)", true},
		{"symlink loop", "/boot/loop-a", 1 << 20, "image file /boot/loop-a (symlink to \"loop-b\"): ", true},
		{"missing", "/boot/nothing", 1 << 20, "image file /boot/nothing: ", true},
		{"one byte over the limit", "/boot/ten", 9, "image file /boot/ten: 10 bytes is larger than the 9-byte limit", true},
		{"huge sparse file", "/boot/huge", 64 << 20, "image file /boot/huge: 1099511627776 bytes is larger", true},
		{"zero limit", "/boot/ten", 0, "read limit 0 is not positive", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := im.ReadFile(tt.path, tt.limit)
			if !tt.fails {
				if err != nil || string(data) != tt.want {
					t.Fatalf("ReadFile(%q) = %q, %v; want %q", tt.path, data, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadFile(%q) = %q, want an error", tt.path, data)
			}
			if data != nil {
				t.Errorf("ReadFile(%q) returned data %q with its error", tt.path, data)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFile(%q) error %q does not contain %q", tt.path, err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks host content: %q", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name   string
		files  tree
		isZIC  bool   // IsZIC's answer when it does not fail
		zicErr string // IsZIC error substring, "" for none
		none   bool   // Open must fail with ErrNoDescriptor
		err    string // Open error substring, "" for success
	}{
		{name: "descriptor", files: tree{"boot/config.json": `{"os_var":"zephyr","cpus":2}`}, isZIC: true},
		{name: "descriptor symlinked inside", files: tree{"boot/config.json": "->../etc/zic.json", "etc/zic.json": `{"cpus":2}`}, isZIC: true},
		{name: "no boot directory", files: tree{"etc/hostname": "x"}, none: true},
		{name: "empty boot directory", files: tree{"boot": "dir"}, none: true},
		{name: "boot is a file", files: tree{"boot": "kernel?"}, none: true},
		{name: "descriptor escapes by relative symlink",
			files: tree{"boot/config.json": "->../../outside/config.json"}, isZIC: true,
			err: "image file /boot/config.json (symlink to \"../../outside/config.json\""},
		{name: "descriptor escapes by absolute symlink",
			files: tree{"boot/config.json": "->@OUT/config.json"}, isZIC: true,
			err: "image file /boot/config.json (symlink to"},
		{name: "boot directory escapes", files: tree{"boot": "->../outside"},
			zicErr: "/boot/config.json: statat boot/config.json: path escapes", err: "/boot/config.json: statat boot/config.json: path escapes"},
		{name: "boot directory absolute link to host", files: tree{"boot": "->@OUT"},
			zicErr: "/boot/config.json: statat boot/config.json: path escapes", err: "/boot/config.json: statat boot/config.json: path escapes"},
		{name: "dangling descriptor link", files: tree{"boot/config.json": "->missing.json"}, isZIC: true,
			err: "image file /boot/config.json (symlink to \"missing.json\"): statat boot/config.json: no such file"},
		{name: "descriptor is a directory", files: tree{"boot/config.json": "dir"}, isZIC: true,
			err: "not a regular file (a directory)"},
		{name: "descriptor is a FIFO", files: tree{"boot/config.json": "fifo"}, isZIC: true,
			err: "not a regular file (a FIFO)"},
		{name: "descriptor too large", files: tree{"boot/config.json": `{"cmdline":"` + strings.Repeat(" ", MaxDescriptorSize) + `"}`},
			isZIC: true, err: "image file /boot/config.json: 65550 bytes is larger than the 65536-byte limit"},
		{name: "invalid descriptor", files: tree{"boot/config.json": `{"os_var":"dos"}`}, isZIC: true,
			err: `/boot/config.json: invalid ZIC descriptor: os_var: "dos"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs, _ := makeImage(t, tt.files)
			zic, err := IsZIC(rootfs)
			switch {
			case tt.zicErr != "" && (err == nil || !strings.Contains(err.Error(), tt.zicErr)):
				t.Errorf("IsZIC = %v, %v; want error containing %q", zic, err, tt.zicErr)
			case tt.zicErr == "" && err != nil:
				t.Errorf("IsZIC: %v", err)
			case tt.zicErr == "" && zic != tt.isZIC:
				t.Errorf("IsZIC = %v, want %v", zic, tt.isZIC)
			}

			im, err := Open(rootfs)
			if err == nil {
				defer im.Close()
			}
			switch {
			case tt.none:
				if !errors.Is(err, ErrNoDescriptor) {
					t.Errorf("Open error = %v, want ErrNoDescriptor", err)
				}
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Open error = %v, want one containing %q", err, tt.err)
				}
				if errors.Is(err, ErrNoDescriptor) {
					t.Errorf("Open error %q wraps ErrNoDescriptor, but a descriptor exists", err)
				}
			default:
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if im.Desc == nil || im.Desc.CPUs == 0 && im.Desc.OS != OSZephyr {
					t.Errorf("Open parsed %+v", im.Desc)
				}
			}
		})
	}
}

func TestOpenInvalidDescriptorWrapsErrInvalid(t *testing.T) {
	rootfs, _ := makeImage(t, tree{"boot/config.json": `{"memory":"99999999T"}`})
	_, err := Open(rootfs)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "memory:") {
		t.Errorf("Open error = %v, want ErrInvalid naming memory", err)
	}
}

func TestMissingRootfs(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := IsZIC(missing); err == nil {
		t.Error("IsZIC on a missing rootfs succeeded")
	}
	_, err := Open(missing)
	if err == nil || errors.Is(err, ErrNoDescriptor) {
		t.Errorf("Open on a missing rootfs: %v, want an error other than ErrNoDescriptor", err)
	}
}
