package initramfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"
)

type rec struct {
	Name   string
	Mode   uint64
	Data   string
	Rdev   [2]uint64
	Unique bool // inode differs from every earlier record's
}

// readAll parses a newc stream starting at off, up to its trailer.
func readAll(t *testing.T, data []byte) []rec {
	t.Helper()
	rs, err := cpio.ReadAllRecords(cpio.EOFReader{RecordReader: cpio.Newc.Reader(bytes.NewReader(data))})
	if err != nil {
		t.Fatalf("reading archive back: %v", err)
	}
	seen := map[uint64]bool{}
	var out []rec
	for _, r := range rs {
		b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec{Name: r.Name, Mode: r.Mode, Data: string(b), Rdev: [2]uint64{r.Rmajor, r.Rminor}, Unique: !seen[r.Ino] && r.Ino != 0})
		seen[r.Ino] = true
	}
	return out
}

func TestWriteTo(t *testing.T) {
	host := t.TempDir()
	bin := filepath.Join(host, "tool")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := New()
	steps := []error{
		a.CharDev("dev/console", 0o600, 5, 1),
		a.File("/etc/runphi-test/config.json", []byte("{}"), 0o644),
		a.HostFile("usr/bin/tool", bin),
		a.Symlink("bin", "usr/bin"),
		a.Dir("usr", 0o700),                                             // added after its child: the mode must still apply
		a.File("etc/runphi-test/config.json", []byte(`{"x":1}`), 0o600), // replaces
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var buf bytes.Buffer
	n, err := a.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	want := []rec{
		{Name: "dev", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "dev/console", Mode: cpio.S_IFCHR | 0o600, Rdev: [2]uint64{5, 1}, Unique: true},
		{Name: "etc", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "etc/runphi-test", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "etc/runphi-test/config.json", Mode: cpio.S_IFREG | 0o600, Data: `{"x":1}`, Unique: true},
		{Name: "usr", Mode: cpio.S_IFDIR | 0o700, Unique: true},
		{Name: "usr/bin", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "usr/bin/tool", Mode: cpio.S_IFREG | 0o755, Data: "#!binary", Unique: true},
		{Name: "bin", Mode: cpio.S_IFLNK | 0o777, Data: "usr/bin", Unique: true},
	}
	if diff := cmp.Diff(want, readAll(t, buf.Bytes())); diff != "" {
		t.Errorf("archive mismatch (-want +got):\n%s", diff)
	}
	if !a.Has("/usr/bin/tool") || a.Has("usr/bin/other") {
		t.Errorf("Has: tool=%v other=%v", a.Has("/usr/bin/tool"), a.Has("usr/bin/other"))
	}
}

func TestHostTree(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "lib/aarch64-linux-gnu"), 0o755))
	must(os.WriteFile(filepath.Join(src, "lib/aarch64-linux-gnu/libc.so.6"), []byte("libc"), 0o755))
	must(os.Symlink("aarch64-linux-gnu/libc.so.6", filepath.Join(src, "lib/libc.so")))
	a := New()
	must(a.HostTree("usr", src))
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	want := []rec{
		{Name: "usr", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "usr/lib", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "usr/lib/aarch64-linux-gnu", Mode: cpio.S_IFDIR | 0o755, Unique: true},
		{Name: "usr/lib/aarch64-linux-gnu/libc.so.6", Mode: cpio.S_IFREG | 0o755, Data: "libc", Unique: true},
		{Name: "usr/lib/libc.so", Mode: cpio.S_IFLNK | 0o777, Data: "aarch64-linux-gnu/libc.so.6", Unique: true},
	}
	if diff := cmp.Diff(want, readAll(t, buf.Bytes())); diff != "" {
		t.Errorf("archive mismatch (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	a := New()
	for _, name := range []string{"", "/", "..", "../etc/passwd"} {
		if err := a.File(name, nil, 0o644); !errors.Is(err, ErrBadName) {
			t.Errorf("File(%q) error = %v, want ErrBadName", name, err)
		}
	}
	if err := a.HostFile("x", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("HostFile of a missing file: %v, want ErrNotExist", err)
	}
	if err := a.HostFile("x", t.TempDir()); err == nil {
		t.Error("HostFile of a directory succeeded")
	}
	// A host file that changes size after being added would corrupt the
	// archive; WriteTo must refuse.
	p := filepath.Join(t.TempDir(), "grows")
	if err := os.WriteFile(p, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := New()
	if err := b.HostFile("grows", p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteTo(io.Discard); err == nil || !strings.Contains(err.Error(), "changed size") {
		t.Errorf("WriteTo after the file grew: %v, want a size error", err)
	}
}

func TestAppendAndIndex(t *testing.T) {
	dir := t.TempDir()
	base := New()
	if err := base.File("lib/firmware/jailhouse.bin", []byte("hv!"), 0o644); err != nil { // odd length: padding matters
		t.Fatal(err)
	}
	if err := base.File("init", []byte("theirs"), 0o755); err != nil {
		t.Fatal(err)
	}
	basePath := filepath.Join(dir, "rootfs.cpio")
	if err := base.WriteFile(basePath, None); err != nil {
		t.Fatal(err)
	}
	idx, err := Index(basePath)
	if err != nil {
		t.Fatal(err)
	}
	wantIdx := map[string]fs.FileMode{"lib": fs.ModeDir, "lib/firmware": fs.ModeDir, "lib/firmware/jailhouse.bin": 0, "init": 0}
	if diff := cmp.Diff(wantIdx, idx); diff != "" {
		t.Errorf("Index mismatch (-want +got):\n%s", diff)
	}

	ours := New()
	if err := ours.File("init", []byte("ours"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "combined.cpio")
	if err := Append(out, basePath, ours); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	baseData, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, baseData) {
		t.Fatal("combined archive does not start with the base archive")
	}
	// The kernel skips zero padding between archives; the second must
	// start on a four-byte boundary with the newc magic.
	rest := bytes.TrimLeft(data[len(baseData):], "\x00")
	off := len(data) - len(rest)
	if off%4 != 0 || !bytes.HasPrefix(rest, []byte(newcMagic)) {
		t.Fatalf("second archive at offset %d starts with %q", off, rest[:min(len(rest), 6)])
	}
	got := readAll(t, rest)
	if len(got) != 1 || got[0].Name != "init" || got[0].Data != "ours" {
		t.Errorf("appended archive = %+v, want our init", got)
	}

	gz := filepath.Join(dir, "base.cpio.gz")
	if err := base.WriteFile(gz, Gzip); err != nil {
		t.Fatal(err)
	}
	if err := Append(out, gz, ours); err == nil || !strings.Contains(err.Error(), "not an uncompressed newc") {
		t.Errorf("Append onto a gzip base: %v, want a format error", err)
	}
}

func TestWriteFileGzip(t *testing.T) {
	a := New()
	if err := a.File("init", bytes.Repeat([]byte("x"), 4096), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "i.cpio.gz")
	if err := a.WriteFile(p, Gzip); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Fatalf("gzip archive starts with % x", data[:2])
	}
	if len(data) > 1024 {
		t.Errorf("4 KiB of one byte compressed to %d bytes", len(data))
	}
}

func TestAssume(t *testing.T) {
	a := New()
	a.Assume("lib", "etc")
	for _, err := range []error{
		a.Symlink("lib/ld-linux-aarch64.so.1", "/usr/lib/ld-linux-aarch64.so.1"),
		a.File("etc/runphi-test/config.json", nil, 0o644),
		a.Dir("etc", 0o700), // explicit entries are still written
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range readAll(t, buf.Bytes()) {
		names = append(names, r.Name)
	}
	want := []string{"lib/ld-linux-aarch64.so.1", "etc", "etc/runphi-test", "etc/runphi-test/config.json"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("names mismatch (-want +got):\n%s", diff)
	}
}

func FuzzIndex(f *testing.F) {
	a := New()
	_ = a.File("init", []byte("x"), 0o755)
	_ = a.Symlink("lib", "usr/lib")
	var seed bytes.Buffer
	if _, err := a.WriteTo(&seed); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Add([]byte(newcMagic))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "in.cpio")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		idx, err := Index(p)
		if err != nil {
			return
		}
		for name := range idx {
			if name == "" || strings.HasPrefix(name, "/") {
				t.Errorf("Index returned unnormalised name %q", name)
			}
		}
	})
}
