package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/u-root/u-root/pkg/dt"
)

// arm64Image returns a kernel Image of size bytes with text_offset 0.
func arm64Image(size int) []byte {
	b := make([]byte, size)
	for i := 64; i < size; i++ {
		b[i] = byte(i)
	}
	copy(b[56:], "ARM\x64")
	return b
}

// inmateDTB is a small device tree with the root cell widths of
// inmate-qemu-arm64.dts and a serial node.
func inmateDTB(t *testing.T) []byte {
	t.Helper()
	fdt := &dt.FDT{
		Header: dt.Header{Magic: dt.Magic, Version: 17, LastCompVersion: 16},
		RootNode: dt.NewNode("",
			dt.WithProperty(dt.PropertyString("model", "Jailhouse cell on QEMU ARM64"),
				dt.PropertyU32("#address-cells", 2), dt.PropertyU32("#size-cells", 2)),
			dt.WithChildren(dt.NewNode("serial@9000000",
				dt.WithProperty(dt.PropertyString("compatible", "arm,pl011"), dt.PropertyRegion("reg", 0x09000000, 0x1000))))),
	}
	var buf bytes.Buffer
	if _, err := fdt.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// linuxInputs writes the inputs of a cell linux run into the harness.
type linuxInputs struct {
	config, kernel, dtb, initrd, loader string
	kernelData, initrdData, loaderData  []byte
}

func newLinuxInputs(t *testing.T, h *harness) linuxInputs {
	t.Helper()
	cfg, err := os.ReadFile(qemuLinuxDemoJSON)
	if err != nil {
		t.Fatal(err)
	}
	in := linuxInputs{
		kernelData: arm64Image(0x5000),
		initrdData: bytes.Repeat([]byte("cpio"), 0x300),
		loaderData: []byte("linux-loader code"),
	}
	in.config = h.file("linux-demo.json", cfg)
	in.kernel = h.file("Image", in.kernelData)
	in.dtb = h.file("inmate.dtb", inmateDTB(t))
	in.initrd = h.file("rootfs.cpio", in.initrdData)
	in.loader = h.file("linux-loader.bin", in.loaderData)
	return in
}

func TestCellLinuxBoot(t *testing.T) {
	for _, form := range []string{"json", "binary"} {
		t.Run(form, func(t *testing.T) {
			h := newHarness(t)
			in := newLinuxInputs(t, h)
			if form == "binary" {
				in.config = h.file("linux-demo.cell", marshalCell(t, readCell(t, qemuLinuxDemoJSON)))
			}
			h.mustRun("cell", "linux", in.config, in.kernel, "-d", in.dtb, "-i", in.initrd,
				"-c", "console=ttyAMA0 ip=192.168.19.2", "--loader", in.loader)

			calls := h.drv.calls
			wantReqs := []uint{ioCreate, ioLoad, ioLoad, ioLoad, ioLoad, ioLoad, ioStart}
			if len(calls) != len(wantReqs) {
				t.Fatalf("%d ioctls, want %d: %+v", len(calls), len(wantReqs), calls)
			}
			// Kernel 0x5000 bytes, doubled for the initrd: the initrd
			// follows at 0x70200000 + 0xa000.
			want := []struct {
				name string
				data []byte
				addr uint64
			}{
				{"loader", in.loaderData, 0},
				{"kernel", in.kernelData, 0x70200000},
				{"dtb", nil, 0x70000000},
				{"initrd", in.initrdData, 0x7020a000},
				{"params", []byte("kernel=0x70200000 dtb=0x70000000"), 0x1000},
			}
			for i, c := range calls {
				if c.req != wantReqs[i] {
					t.Errorf("ioctl %d = %#x, want %#x", i, c.req, wantReqs[i])
				}
				if i == 0 {
					continue
				}
				if c.id != -1 || c.name != "qemu-arm64-linux-demo" {
					t.Errorf("ioctl %d addresses id %d name %q, want the cell by name", i, c.id, c.name)
				}
				if c.req != ioLoad {
					continue
				}
				w := want[i-1]
				if len(c.images) != 1 {
					t.Fatalf("%s: CELL_LOAD with %d images, want 1", w.name, len(c.images))
				}
				img := c.images[0]
				if img.addr != w.addr {
					t.Errorf("%s loaded at %#x, want %#x", w.name, img.addr, w.addr)
				}
				if w.data != nil && !bytes.Equal(img.data, w.data) {
					t.Errorf("%s: loaded %d bytes that differ from the input", w.name, len(img.data))
				}
			}
			checkLinuxDTB(t, calls[3].images[0].data)
		})
	}
}

// checkLinuxDTB checks the device tree cell linux produced for the qemu
// linux-demo with the initrd of newLinuxInputs.
func checkLinuxDTB(t *testing.T, b []byte) {
	t.Helper()
	fdt, err := dt.ReadFDT(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("loaded DTB does not parse: %v", err)
	}
	prop := func(node, name string) []byte {
		n, ok := fdt.RootNode.LookupChildByName(node)
		if !ok {
			t.Fatalf("no /%s", node)
		}
		p, ok := n.LookProperty(name)
		if !ok {
			t.Fatalf("no /%s/%s", node, name)
		}
		return p.Value
	}
	u64s := func(v ...uint64) []byte {
		var out []byte
		for _, x := range v {
			out = binary.BigEndian.AppendUint64(out, x)
		}
		return out
	}
	for _, c := range []struct {
		node, name string
		want       []byte
	}{
		{"memory", "device_type", []byte("memory\x00")},
		{"memory", "reg", u64s(0x70000000, 0x8000000)},
		{"chosen", "bootargs", []byte("console=ttyAMA0 ip=192.168.19.2\x00")},
		{"chosen", "linux,initrd-start", u64s(0x7020a000)},
		{"chosen", "linux,initrd-end", u64s(0x7020a000 + 0xc00)},
	} {
		if got := prop(c.node, c.name); !bytes.Equal(got, c.want) {
			t.Errorf("/%s/%s = %q, want %q", c.node, c.name, got, c.want)
		}
	}
	if _, ok := fdt.RootNode.LookupChildByName("serial@9000000"); !ok {
		t.Error("the serial node was lost")
	}
}

func TestCellLinuxExistingCell(t *testing.T) {
	h := newHarness(t)
	in := newLinuxInputs(t, h)
	writeCell(t, h.sysfs, 1, "qemu-arm64-linux-demo", "running", "2-3", "")
	h.drv.errs = map[uint]syscall.Errno{ioCreate: syscall.EEXIST}
	h.mustRun("cell", "linux", in.config, in.kernel, "-d", in.dtb, "--loader", in.loader)
	// No initrd: create, four loads, start.
	if n := len(h.drv.calls); n != 6 || h.drv.calls[5].req != ioStart {
		t.Errorf("%d ioctls, want create, 4 loads and start", n)
	}
}

func TestCellLinuxWriteParams(t *testing.T) {
	h := newHarness(t)
	in := newLinuxInputs(t, h)
	out := filepath.Join(h.dir, "linux.dtb")
	got := h.mustRun("cell", "linux", in.config, in.kernel, "-d", in.dtb, "-i", in.initrd,
		"-c", "console=ttyAMA0 ip=192.168.19.2", "-w", out)
	if len(h.drv.calls) != 0 || h.drv.opened != 0 {
		t.Errorf("-w touched the device: %d ioctls", len(h.drv.calls))
	}
	want := "Modified device tree written. Start Linux with the following commands (adjusting paths as needed):\n\n" +
		"jhctl cell create " + in.config + "\n" +
		"jhctl cell load qemu-arm64-linux-demo /usr/libexec/jailhouse/linux-loader.bin -a 0x0 " +
		`-s "kernel=0x70200000 dtb=0x70000000" -a 0x1000 ` + in.kernel + " -a 0x70200000 " +
		in.initrd + " -a 0x7020a000 " + out + " -a 0x70000000\n" +
		"jhctl cell start qemu-arm64-linux-demo\n"
	if got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
	dtb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkLinuxDTB(t, dtb)

	// The printed load command loads the same images at the same
	// addresses (the -s string with its NUL).
	h.drv.calls = nil
	load := strings.Split(strings.TrimSpace(strings.Split(got, "\n")[3]), " ")
	args := []string{"cell", "load"}
	for i := 3; i < len(load); i++ {
		if load[i] == "/usr/libexec/jailhouse/linux-loader.bin" {
			load[i] = in.loader
		}
		if strings.HasPrefix(load[i], `"`) { // rejoin the quoted -s string
			load[i] = strings.Trim(load[i]+" "+load[i+1], `"`)
			load = append(load[:i+1], load[i+2:]...)
		}
		args = append(args, load[i])
	}
	writeCell(t, h.sysfs, 1, "qemu-arm64-linux-demo", "shut down", "2-3", "")
	h.mustRun(args...)
	if len(h.drv.calls) != 1 || len(h.drv.calls[0].images) != 5 {
		t.Fatalf("printed load command gave %+v", h.drv.calls)
	}
	addrs := map[uint64]string{}
	for _, img := range h.drv.calls[0].images {
		addrs[img.addr] = string(img.data)
	}
	if addrs[0x1000] != "kernel=0x70200000 dtb=0x70000000\x00" || addrs[0x70200000] != string(in.kernelData) ||
		addrs[0x7020a000] != string(in.initrdData) || addrs[0x70000000] != string(dtb) || addrs[0] != string(in.loaderData) {
		t.Error("the printed load command loads different images")
	}
}

func TestCellLinuxGzipKernelNote(t *testing.T) {
	h := newHarness(t)
	in := newLinuxInputs(t, h)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(in.kernelData); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	kernel := h.file("Image.gz", z.Bytes())
	got := h.mustRun("cell", "linux", in.config, kernel, "-d", in.dtb, "-w", filepath.Join(h.dir, "o.dtb"))
	if !strings.Contains(got, " "+kernel+"-unzipped -a 0x70200000 ") ||
		!strings.HasSuffix(got, "\nNote that "+kernel+" is zipped and requires decompression first.\n") {
		t.Errorf("printed\n%s", got)
	}
}

func TestCellLinuxErrors(t *testing.T) {
	h := newHarness(t)
	in := newLinuxInputs(t, h)
	big := h.file("big", arm64Image(4<<20))
	notImage := h.file("notimage", bytes.Repeat([]byte{0x90}, 4096))
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no dtb", []string{in.config, in.kernel}, 2, "device tree"},
		{"no space", []string{in.config, big, "-d", in.dtb, "-i", in.initrd, "-k", "32"}, 1, "No space found to load all images"},
		{"not an Image", []string{in.config, notImage, "-d", in.dtb}, 1, "arm64"},
		{"bad dtb", []string{in.config, in.kernel, "-d", in.kernel}, 1, "Invalid DTB"},
		{"missing loader", []string{in.config, in.kernel, "-d", in.dtb, "--loader", filepath.Join(h.dir, "nope")}, 1, "loader"},
		{"system config", []string{qemuSystemJSON, in.kernel, "-d", in.dtb}, 1, "not a cell configuration"},
		{"other arch", []string{in.config, in.kernel, "-d", in.dtb, "-a", "x86"}, 2, "arm64"},
		{"negative factor", []string{in.config, in.kernel, "-d", in.dtb, "-k", "-1"}, 2, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.drv.calls = nil
			_, errOut, code := h.run(append([]string{"cell", "linux"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.msg)
			}
			if len(h.drv.calls) != 0 {
				t.Errorf("%d ioctls issued for a failing command", len(h.drv.calls))
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/boot/Image":  "/boot/Image",
		"my file":      "'my file'",
		"it's":         `'it'\''s'`,
		"":             "''",
		"a;rm -rf /":   "'a;rm -rf /'",
		"linux-demo-2": "linux-demo-2",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
