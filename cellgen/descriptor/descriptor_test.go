package descriptor

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// base is the descriptor of an image that sets nothing.
func base() Descriptor {
	return Descriptor{OS: OSBaremetal, Inmate: DefaultInmate, Net: true, Console: ConsoleUART}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		json string
		want func(d *Descriptor)
	}{
		{"empty object takes the defaults", `{}`, func(d *Descriptor) {}},
		{"prototype zephyr example",
			`{"os_var":"zephyr","inmate":"/boot/zephyr.bin","starting_vaddress":"0x70000000"}`,
			func(d *Descriptor) {
				d.OS, d.Inmate, d.LoadAddress, d.HasLoadAddress = OSZephyr, "/boot/zephyr.bin", 0x70000000, true
			}},
		{"upper-case hex prefix and digits", `{"starting_vaddress":"0X7FFF0000"}`,
			func(d *Descriptor) { d.LoadAddress, d.HasLoadAddress = 0x7fff0000, true }},
		{"decimal address string, leading zero is not octal", `{"starting_vaddress":"010"}`,
			func(d *Descriptor) { d.LoadAddress, d.HasLoadAddress = 10, true }},
		{"address as a JSON number", `{"starting_vaddress":1879048192}`,
			func(d *Descriptor) { d.LoadAddress, d.HasLoadAddress = 0x70000000, true }},
		{"address zero is explicit", `{"starting_vaddress":"0x0"}`,
			func(d *Descriptor) { d.HasLoadAddress = true }},
		{"freertos", `{"os_var":"freertos"}`, func(d *Descriptor) { d.OS = OSFreeRTOS }},
		{"inmate path is cleaned", `{"inmate":"//boot/./sub//app.bin"}`,
			func(d *Descriptor) { d.Inmate = "/boot/sub/app.bin" }},
		{"null means absent", `{"os_var":null,"inmate":null,"net":null,"memory":null}`, func(d *Descriptor) {}},
		{"net none disables", `{"net":"none"}`, func(d *Descriptor) { d.Net = false }},
		{"net false disables", `{"net":false}`, func(d *Descriptor) { d.Net = false }},
		{"net NONE disables", `{"net":"NONE"}`, func(d *Descriptor) { d.Net = false }},
		{"net true enables", `{"net":true}`, func(d *Descriptor) {}},
		{"net empty string enables (runPHI)", `{"net":""}`, func(d *Descriptor) {}},
		{"net other string enables (runPHI)", `{"net":"ivshmem"}`, func(d *Descriptor) {}},
		{"rpu_req", `{"rpu_req":true}`, func(d *Descriptor) { d.RPU = true }},
		{"linux with everything",
			`{"os_var":"linux","kernel":"/boot/Image","dtb":"/boot/cell.dtb","initrd":"/boot/rootfs.cpio.gz",` +
				`"cmdline":"console=ttyAMA0 ip=192.0.2.10","cpus":2,"memory":"256M","console":"virtual","net":"none"}`,
			func(d *Descriptor) {
				*d = Descriptor{OS: OSLinux, Kernel: "/boot/Image", DTB: "/boot/cell.dtb",
					Initrd: "/boot/rootfs.cpio.gz", Cmdline: "console=ttyAMA0 ip=192.0.2.10",
					CPUs: 2, Memory: 256 << 20, Console: ConsoleVirtual}
			}},
		{"linux cpio alias", `{"os_var":"linux","kernel":"/boot/Image","dtb":"/boot/c.dtb","cpio":"/boot/r.cpio"}`,
			func(d *Descriptor) {
				*d = Descriptor{OS: OSLinux, Kernel: "/boot/Image", DTB: "/boot/c.dtb", Initrd: "/boot/r.cpio",
					Net: true, Console: ConsoleUART}
			}},
		{"linux ramdisk alias, no initrd", `{"os_var":"linux","kernel":"/k","dtb":"/d","ramdisk":"/r"}`,
			func(d *Descriptor) {
				*d = Descriptor{OS: OSLinux, Kernel: "/k", DTB: "/d", Initrd: "/r", Net: true, Console: ConsoleUART}
			}},
		{"cmdline for an inmate", `{"cmdline":"con-type=PL011"}`, func(d *Descriptor) { d.Cmdline = "con-type=PL011" }},
		{"netconf accepted and ignored", `{"netconf":"whatever"}`, func(d *Descriptor) {}},
		{"memory units", `{"memory":"512K"}`, func(d *Descriptor) { d.Memory = 512 << 10 }},
		{"memory lower case with iB", `{"memory":"1gib"}`, func(d *Descriptor) { d.Memory = 1 << 30 }},
		{"memory MB is binary", `{"memory":"64MB"}`, func(d *Descriptor) { d.Memory = 64 << 20 }},
		{"memory plain bytes", `{"memory":"67108864"}`, func(d *Descriptor) { d.Memory = 64 << 20 }},
		{"memory at the limit", `{"memory":"1T"}`, func(d *Descriptor) { d.Memory = 1 << 40 }},
		{"console none", `{"console":"none"}`, func(d *Descriptor) { d.Console = ConsoleNone }},
		{"cpus max", `{"cpus":32768}`, func(d *Descriptor) { d.CPUs = MaxCPUs }},
		{"white space around the object", " \n{ \"cpus\" : 1 }\n", func(d *Descriptor) { d.CPUs = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.json))
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.json, err)
			}
			want := base()
			tt.want(&want)
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("Parse(%s) mismatch (-want +got):\n%s", tt.json, diff)
			}
			// The canonical form reads back to the same descriptor.
			canon, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(canon)
			if err != nil {
				t.Fatalf("Parse(canonical %s): %v", canon, err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("canonical %s does not round-trip (-first +again):\n%s", canon, diff)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	const linux = `"os_var":"linux","kernel":"/boot/Image","dtb":"/boot/cell.dtb"`
	tests := []struct {
		name string
		json string
		want string // substring of the error
	}{
		{"empty input", ``, "unexpected end"},
		{"not an object", `["os_var"]`, "want a JSON object"},
		{"syntax error", `{"os_var":"zephyr",}`, "bad JSON at byte"},
		{"truncated", `{"os_var":"zephyr"`, "unexpected end"},
		{"trailing data", `{} {}`, "data after the JSON object"},
		{"unknown key", `{"os_var":"zephyr","colour":"blue"}`, `"colour": unknown key`},
		{"key case matters", `{"OS_VAR":"zephyr"}`, `did you mean "os_var"`},
		{"runPHI Xen key", `{"vcpus":2}`, `"vcpus": a runPHI 0.5.8 Xen/KVM key`},
		{"duplicate key", `{"cpus":1,"cpus":8}`, "cpus: duplicate key"},
		{"unknown os", `{"os_var":"windows"}`, `os_var: "windows" is not one of`},
		{"empty os", `{"os_var":""}`, `os_var: "" is not one of`},
		{"os wrong type", `{"os_var":1}`, "os_var: want a string, got a number"},
		{"empty inmate", `{"inmate":""}`, "inmate: empty path"},
		{"relative inmate", `{"inmate":"boot/boot.bin"}`, "inmate: path \"boot/boot.bin\" must be absolute"},
		{"inmate climbing out", `{"inmate":"/boot/../../etc/shadow"}`, `inmate: path "/boot/../../etc/shadow" must not contain ".."`},
		{"inmate with harmless dots is still refused", `{"inmate":"/boot/../boot/x.bin"}`, `must not contain ".."`},
		{"inmate is the root", `{"inmate":"/."}`, "names the image root"},
		{"inmate with NUL", `{"inmate":"/boot/a\u0000b"}`, "contains a NUL byte"},
		{"inmate too long", `{"inmate":"/` + strings.Repeat("a", MaxPath) + `"}`, "longer than 4095"},
		{"inmate wrong type", `{"inmate":["/boot/boot.bin"]}`, "inmate: want a string, got an array"},
		{"address overflows 64 bits", `{"starting_vaddress":"0x1ffffffffffffffff"}`, "does not fit in 64 bits"},
		{"address number overflows", `{"starting_vaddress":99999999999999999999999}`, "does not fit in 64 bits"},
		{"address beyond 52 bits", `{"starting_vaddress":"0x10000000000000"}`, "beyond the 52-bit"},
		{"address negative", `{"starting_vaddress":-1}`, "is not a hex (0x...) or decimal address"},
		{"address garbage", `{"starting_vaddress":"0x7000_0000"}`, "is not a hex (0x...) or decimal address"},
		{"address bare 0x", `{"starting_vaddress":"0x"}`, "is not a hex"},
		{"address empty", `{"starting_vaddress":""}`, "starting_vaddress: \"\" is not a hex"},
		{"address fraction", `{"starting_vaddress":1.5}`, "is not a hex"},
		{"address wrong type", `{"starting_vaddress":true}`, "starting_vaddress: want a string"},
		{"net ambiguous off", `{"net":"off"}`, `net: "off" is ambiguous`},
		{"net ambiguous false string", `{"net":"False"}`, `net: "False" is ambiguous`},
		{"net wrong type", `{"net":0}`, "net: want true, false or a string"},
		{"rpu_req as string", `{"rpu_req":"yes"}`, "rpu_req: want true or false, got a string"},
		{"negative cpus", `{"cpus":-1}`, "cpus: -1 is out of range 1..32768"},
		{"zero cpus", `{"cpus":0}`, "cpus: 0 is out of range"},
		{"too many cpus", `{"cpus":32769}`, "cpus: 32769 is out of range"},
		{"huge cpus", `{"cpus":1e30}`, "cpus: 1e30 is not a whole number"},
		{"cpus overflow", `{"cpus":99999999999999999999}`, "is out of range"},
		{"fractional cpus", `{"cpus":1.5}`, "cpus: 1.5 is not a whole number"},
		{"cpus as string", `{"cpus":"2"}`, "cpus: want a whole number, got a string"},
		{"absurd memory", `{"memory":"99999999T"}`, `memory: "99999999T" is larger than the 1T limit`},
		{"memory digits overflow", `{"memory":"999999999999999999999999"}`, "larger than the 1T limit"},
		{"memory just over the limit", `{"memory":"1099511627777"}`, `memory: "1099511627777" is larger than the 1T limit`},
		{"memory zero", `{"memory":"0M"}`, "memory: size must not be zero"},
		{"memory without unit is bytes", `{"memory":"64"}`, "memory: 64 bytes is less than one 4K page (missing unit?)"},
		{"memory bad unit", `{"memory":"64X"}`, `memory: "64X" is not a size`},
		{"memory negative", `{"memory":"-64M"}`, "is not a size"},
		{"memory with space", `{"memory":"64 M"}`, "is not a size"},
		{"memory empty", `{"memory":""}`, `memory: "" is not a size`},
		{"memory bare number", `{"memory":64}`, "memory: a bare number is ambiguous"},
		{"memory wrong type", `{"memory":{}}`, "memory: want a string, got an object"},
		{"console unknown", `{"console":"serial"}`, `console: "serial" is not one of uart, virtual, none`},
		{"cmdline too long", `{"cmdline":"` + strings.Repeat("x", 2048) + `"}`, "cmdline: 2048 bytes is longer than 2047"},
		{"netconf wrong type", `{"netconf":3}`, "netconf: want a string"},
		{"linux without kernel", `{"os_var":"linux","dtb":"/boot/c.dtb"}`, "kernel: required"},
		{"linux without dtb", `{"os_var":"linux","kernel":"/boot/Image"}`, "dtb: required"},
		{"linux with inmate", `{` + linux + `,"inmate":"/boot/boot.bin"}`, "inmate: not used when os_var is \"linux\""},
		{"linux with load address", `{` + linux + `,"starting_vaddress":"0x0"}`, "starting_vaddress: not used"},
		{"linux on the RPU", `{` + linux + `,"rpu_req":true}`, "rpu_req: Linux cannot run on Cortex-R cores"},
		{"linux kernel escaping", `{"os_var":"linux","kernel":"/../vmlinuz","dtb":"/d"}`, `kernel: path "/../vmlinuz" must not contain ".."`},
		{"linux host-relative dtb", `{"os_var":"linux","kernel":"/k","dtb":"dts/x.dtb"}`, "dtb: path \"dts/x.dtb\" must be absolute"},
		{"kernel for zephyr", `{"os_var":"zephyr","kernel":"/boot/Image"}`, `kernel: only used when os_var is "linux" (os_var is "zephyr")`},
		{"initrd without os_var", `{"cpio":"/boot/r.cpio"}`, `cpio: only used when os_var is "linux"`},
		{"duplicate initrd aliases", `{` + linux + `,"initrd":"/a","cpio":"/b"}`, "initrd, cpio: aliases of one another"},
		{"three initrd aliases", `{` + linux + `,"initrd":"/a","cpio":"/a","ramdisk":"/a"}`, "initrd, cpio, ramdisk: aliases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("Parse(%.80s) = %+v, want error containing %q", tt.json, d, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseSizeFormatSize(t *testing.T) {
	for _, n := range []uint64{MinMemory, 4097, 64 << 20, 3 << 30, 1 << 40, 1<<40 - 4096} {
		s := FormatSize(n)
		got, err := ParseSize(s)
		if err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, got, err)
		}
	}
}

func TestCheckBoard(t *testing.T) {
	rpu := &Descriptor{RPU: true}
	apu := &Descriptor{}
	if err := rpu.CheckBoard(false); err == nil || !strings.Contains(err.Error(), "rpu_req: Cortex-R cores are not supported on this board") {
		t.Errorf("rpu_req on a board without RPU: err = %v", err)
	}
	if err := rpu.CheckBoard(true); err != nil {
		t.Errorf("rpu_req on an RPU board: %v", err)
	}
	if err := apu.CheckBoard(false); err != nil {
		t.Errorf("no rpu_req: %v", err)
	}
}
