package cell

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckLoad(t *testing.T) {
	c := &Cell{Name: "inmate-demo", MemRegions: []MemRegion{
		{PhysStart: 0x9000000, VirtStart: 0x9000000, Size: 0x1000, Flags: MemRead | MemWrite | MemIO},
		{PhysStart: 0x7fa00000, VirtStart: 0, Size: 0x10000, Flags: MemRead | MemWrite | MemExecute | MemLoadable},
		{VirtStart: 0x80000000, Size: 0x1000, Flags: MemRead | MemWrite | MemCommRegion},
	}}
	tests := []struct {
		name       string
		addr, size uint64
		region     int
		msg        string
	}{
		{"fits at start", 0, 0x10000, 1, ""},
		{"cmdline at 0x1000", 0x1000, 257, 1, ""},
		{"empty image anywhere", 0x12345678, 0, -1, ""},
		{"too big", 0, 80 << 10, 1, "image of 80 KiB does not fit region 1 (64 KiB) at 0x0"},
		{"too big at offset", 0x9000, 0x8000, 1, "image of 32 KiB does not fit region 1 (64 KiB at 0x0) at 0x9000: 28 KiB left"},
		{"no region", 0x20000, 1, -1, "no memory region of cell 'inmate-demo' contains address 0x20000"},
		{"not loadable", 0x9000000, 16, 0, "region 0 (4 KiB at 0x9000000), the first one containing address 0x9000000, is not writable and loadable"},
		{"comm region", 0x80000000, 4, 2, "is not writable and loadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := c.CheckLoad(tt.addr, tt.size)
			if idx != tt.region {
				t.Errorf("region = %d, want %d", idx, tt.region)
			}
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !errors.Is(err, ErrLoad) {
				t.Fatalf("error = %v, want ErrLoad containing %q", err, tt.msg)
			}
		})
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[uint64]string{1: "1 byte", 1000: "1000 bytes", 4096: "4 KiB", 64 << 20: "64 MiB", 2 << 30: "2 GiB", 0x7f000: "508 KiB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBDF(t *testing.T) {
	for _, bdf := range []uint16{0, 0x08, 0x18, 0xff, 0x1234} {
		s := FormatBDF(bdf)
		got, err := ParseBDF(s)
		if err != nil || got != bdf {
			t.Errorf("ParseBDF(%q) = %#x, %v; want %#x", s, got, err, bdf)
		}
	}
	if got, err := ParseBDF("0:1.0"); err != nil || got != 0x08 {
		t.Errorf("ParseBDF(\"0:1.0\") = %#x, %v; want 0x8", got, err)
	}
	for _, s := range []string{"", "00:01", "00:20.0", "00:01.8", "zz:01.0", "100:01.0", "00:-1.0", "0x0:01.0"} {
		if _, err := ParseBDF(s); err == nil {
			t.Errorf("ParseBDF(%q) succeeded", s)
		}
	}
}

func TestArchString(t *testing.T) {
	for a, want := range map[Arch]string{ArchX86: "x86", ArchARM: "arm", ArchARM64: "arm64", 9: "architecture 9"} {
		if got := a.String(); got != want {
			t.Errorf("Arch(%d).String() = %q, want %q", a, got, want)
		}
	}
}
