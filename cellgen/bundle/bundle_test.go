package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/descriptor"
	"github.com/runphi-go/runphi/cellgen/zic"
)

func loadBoard(t *testing.T) *board.Board {
	t.Helper()
	b, err := board.Load(filepath.Join("..", "..", "boards", "qemu-arm64"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeBundle writes an OCI bundle with the given config.json and rootfs files.
func makeBundle(t *testing.T, spec string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, content := range files {
		p := filepath.Join(dir, "rootfs", path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// generate opens the bundle and builds its cell from an empty pool.
func generate(t *testing.T, b *board.Board, dir string) (*ZIC, *cell.Cell) {
	t.Helper()
	z, err := Open(dir, nil, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Close() })
	g, err := alloc.NewState().Allocate(b.Pool, "zic", z.Request)
	if err != nil {
		t.Fatal(err)
	}
	c, err := zic.Generate(b, g, z.Options)
	if err != nil {
		t.Fatal(err)
	}
	return z, c
}

const spec = `{"root": {"path": "rootfs"}, "linux": {"resources": {"cpu": {"quota": 150000, "period": 100000}}}}`

func TestOpenDerivesRequest(t *testing.T) {
	b := loadBoard(t)
	dir := makeBundle(t, spec, map[string]string{
		"boot/config.json": `{"os_var": "zephyr", "starting_vaddress": "0x70000000", "memory": "32M", "net": "none", "console": "virtual"}`,
		"boot/boot.bin":    "zephyr",
	})
	z, err := Open(dir, nil, b)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if z.Rootfs != filepath.Join(dir, "rootfs") {
		t.Errorf("rootfs = %s", z.Rootfs)
	}
	want := alloc.Request{CPUCount: 2, Memory: 32 << 20, Net: false}
	if z.Request.CPUCount != want.CPUCount || z.Request.Memory != want.Memory || z.Request.Net || !z.Request.CPUs.IsEmpty() {
		t.Errorf("request = %+v, want %+v (ceil(150000/100000) CPUs)", z.Request, want)
	}
	if z.Options.ResetAddress != 0x70000000 || z.Options.Console != zic.ConsoleVirtual {
		t.Errorf("options = %+v", z.Options)
	}
}

func TestPayload(t *testing.T) {
	b := loadBoard(t)
	dir := makeBundle(t, spec, map[string]string{
		"boot/config.json": `{"os_var": "baremetal", "cmdline": "led-reg=0x1"}`,
		"boot/boot.bin":    "inmate bytes",
	})
	z, c := generate(t, b, dir)
	p, err := z.ReadPayload()
	if err != nil {
		t.Fatal(err)
	}
	images, err := z.Images(c, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 2 || string(images[0].Data) != "inmate bytes" || images[0].Address != 0 {
		t.Fatalf("images = %+v", images)
	}
	if string(images[1].Data) != "led-reg=0x1\x00" || images[1].Address != CmdlineOffset {
		t.Errorf("cmdline image = %q at %#x, want NUL-terminated string at 0x1000", images[1].Data, images[1].Address)
	}
}

func TestCmdlineFollowsLoadAddress(t *testing.T) {
	b := loadBoard(t)
	dir := makeBundle(t, spec, map[string]string{
		"boot/config.json": `{"os_var": "zephyr", "starting_vaddress": "0x70000000", "cmdline": "x=1"}`,
		"boot/boot.bin":    "zephyr",
	})
	z, c := generate(t, b, dir)
	p, err := z.ReadPayload()
	if err != nil {
		t.Fatal(err)
	}
	images, err := z.Images(c, p)
	if err != nil {
		t.Fatal(err)
	}
	if images[0].Address != 0x70000000 || images[1].Address != 0x70001000 {
		t.Errorf("inmate at %#x, cmdline at %#x; want 0x70000000 and 0x70001000", images[0].Address, images[1].Address)
	}
	long := makeBundle(t, spec, map[string]string{
		"boot/config.json": `{"cmdline": "` + strings.Repeat("a", MaxCmdline+1) + `"}`, "boot/boot.bin": "x"})
	if _, err := Open(long, nil, b); err == nil || !strings.Contains(err.Error(), "cmdline") {
		t.Errorf("a cmdline longer than the inmate buffer: %v", err)
	}
}

func TestPayloadRefusals(t *testing.T) {
	b := loadBoard(t)
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"symlink to a host file", map[string]string{
			"boot/config.json": `{}`, "boot/boot.bin": "symlink:/etc/passwd"}, "/boot/boot.bin"},
		{"relative symlink out of the rootfs", map[string]string{
			"boot/config.json": `{}`, "boot/boot.bin": "symlink:../../../../../etc/passwd"}, "/boot/boot.bin"},
		{"missing inmate", map[string]string{"boot/config.json": `{"inmate": "/boot/x.bin"}`}, "/boot/x.bin"},
		{"inmate larger than the loader slot", map[string]string{
			"boot/config.json": `{}`, "boot/boot.bin": strings.Repeat("x", 65<<10)}, "/boot/boot.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, c := generate(t, b, makeBundle(t, spec, tt.files))
			p, err := z.ReadPayload()
			if err == nil {
				_, err = z.Images(c, p)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Payload error = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestLinuxFiles(t *testing.T) {
	b := loadBoard(t)
	dir := makeBundle(t, spec, map[string]string{
		"boot/config.json": `{"os_var": "linux", "kernel": "/boot/Image", "dtb": "/boot/cell.dtb", "initrd": "/boot/rootfs.cpio"}`,
		"boot/Image":       "kernel", "boot/cell.dtb": "dtb", "boot/rootfs.cpio": "initrd",
	})
	z, c := generate(t, b, dir)
	if z.Options.ResetAddress != 0 {
		t.Errorf("Linux reset address = %#x, want 0 (the loader)", z.Options.ResetAddress)
	}
	p, err := z.ReadPayload()
	if err != nil || string(p.Kernel) != "kernel" || string(p.DTB) != "dtb" || string(p.Initrd) != "initrd" {
		t.Fatalf("ReadPayload = %+v, %v", p, err)
	}
	if _, err := z.Images(c, p); err == nil {
		t.Error("Images of a Linux payload should fail: Linux goes through the loader")
	}
}

func TestOpenErrors(t *testing.T) {
	b := loadBoard(t)
	_, err := Open(makeBundle(t, `{"root": {}}`, nil), nil, b)
	if err == nil || !strings.Contains(err.Error(), "root.path") {
		t.Errorf("missing root.path: %v", err)
	}
	_, err = Open(makeBundle(t, spec, map[string]string{"etc/hostname": "x"}), nil, b)
	if !errors.Is(err, descriptor.ErrNoDescriptor) {
		t.Errorf("no descriptor: %v, want ErrNoDescriptor", err)
	}
	_, err = Open(makeBundle(t, spec, map[string]string{"boot/config.json": `{"rpu_req": true}`}), nil, b)
	if err == nil || !strings.Contains(err.Error(), "rpu_req") {
		t.Errorf("rpu_req on a board without RPUs: %v", err)
	}
}
