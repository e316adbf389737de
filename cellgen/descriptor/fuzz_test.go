package descriptor

import (
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"os_var":"zephyr","inmate":"/boot/zephyr.bin","starting_vaddress":"0x70000000"}`,
		`{"os_var":"linux","kernel":"/boot/Image","dtb":"/boot/c.dtb","cpio":"/boot/r.cpio","cmdline":"console=ttyAMA0"}`,
		`{"net":"none","rpu_req":true,"cpus":2,"memory":"64M","console":"virtual","netconf":""}`,
		`{"memory":"99999999T","starting_vaddress":"0x1ffffffffffffffff"}`,
		`{"inmate":"/boot/../../etc/shadow"}`,
		`{"cpus":-1,"cpus":1}`,
		`{"starting_vaddress":1879048192,"net":false}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		checkInvariants(t, d)
		canon, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", d, err)
		}
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", canon, err)
		}
		if diff := cmp.Diff(d, again); diff != "" {
			t.Fatalf("canonical form %s does not round-trip (-first +again):\n%s", canon, diff)
		}
	})
}

func checkInvariants(t *testing.T, d *Descriptor) {
	t.Helper()
	switch d.OS {
	case OSZephyr, OSFreeRTOS, OSBaremetal:
		if d.Inmate == "" || d.Kernel != "" || d.DTB != "" || d.Initrd != "" {
			t.Errorf("%s descriptor with inmate %q, kernel %q, dtb %q, initrd %q", d.OS, d.Inmate, d.Kernel, d.DTB, d.Initrd)
		}
	case OSLinux:
		if d.Inmate != "" || d.Kernel == "" || d.DTB == "" || d.HasLoadAddress || d.RPU {
			t.Errorf("linux descriptor %+v", d)
		}
	default:
		t.Errorf("OS %q", d.OS)
	}
	for _, p := range []string{d.Inmate, d.Kernel, d.DTB, d.Initrd} {
		if p != "" && (!strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" ||
			strings.Contains(p+"/", "/../") || strings.IndexByte(p, 0) >= 0) {
			t.Errorf("unsafe path %q", p)
		}
	}
	if d.Memory != 0 && (d.Memory < MinMemory || d.Memory > MaxMemory) {
		t.Errorf("memory %d out of bounds", d.Memory)
	}
	if d.CPUs < 0 || d.CPUs > MaxCPUs {
		t.Errorf("cpus %d out of bounds", d.CPUs)
	}
	if d.LoadAddress >= AddressLimit || !d.HasLoadAddress && d.LoadAddress != 0 {
		t.Errorf("load address %#x (set %v)", d.LoadAddress, d.HasLoadAddress)
	}
	if len(d.Cmdline) > MaxCmdline {
		t.Errorf("cmdline of %d bytes", len(d.Cmdline))
	}
	if d.Console != ConsoleUART && d.Console != ConsoleVirtual && d.Console != ConsoleNone {
		t.Errorf("console %q", d.Console)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64M", "1T", "4096", "0", "99999999T", "1gib", "18446744073709551615k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < MinMemory || n > MaxMemory {
			t.Fatalf("ParseSize(%q) = %d, out of bounds", s, n)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Fatalf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, FormatSize(n), back, err)
		}
	})
}
