package descriptor

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// bundle builds an OCI spec with the given resources; nil leaves a
// section out.
func bundle(cpu *specs.LinuxCPU, mem *specs.LinuxMemory) *specs.Spec {
	return &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: cpu, Memory: mem}}}
}

func i64(v int64) *int64               { return &v }
func u64(v uint64) *uint64             { return &v }
func limit(v int64) *specs.LinuxMemory { return &specs.LinuxMemory{Limit: &v} }

func TestResources(t *testing.T) {
	desc := &Descriptor{CPUs: 3, Memory: 32 << 20}
	tests := []struct {
		name     string
		spec     *specs.Spec
		d        *Descriptor
		wantSet  string
		wantCPUs int
		wantMem  uint64
	}{
		{"nothing at all", nil, nil, "", 1, DefaultMemory},
		{"spec without linux", &specs.Spec{}, nil, "", 1, DefaultMemory},
		{"descriptor only", &specs.Spec{}, desc, "", 3, 32 << 20},
		{"cpuset wins over quota and descriptor",
			bundle(&specs.LinuxCPU{Cpus: "2,4-5", Quota: i64(800000), Period: u64(100000)}, nil), desc, "2,4-5", 3, 32 << 20},
		{"cpuset with surrounding space", bundle(&specs.LinuxCPU{Cpus: " 7\n"}, nil), nil, "7", 1, DefaultMemory},
		{"blank cpuset falls back to quota",
			bundle(&specs.LinuxCPU{Cpus: "  ", Quota: i64(200000), Period: u64(100000)}, nil), desc, "", 2, 32 << 20},
		{"quota rounds up", bundle(&specs.LinuxCPU{Quota: i64(150000), Period: u64(100000)}, nil), desc, "", 2, 32 << 20},
		{"quota exact", bundle(&specs.LinuxCPU{Quota: i64(10000), Period: u64(10000)}, nil), desc, "", 1, 32 << 20},
		{"quota below one CPU", bundle(&specs.LinuxCPU{Quota: i64(1), Period: u64(100000)}, nil), desc, "", 1, 32 << 20},
		{"quota without period uses 100ms", bundle(&specs.LinuxCPU{Quota: i64(250000)}, nil), desc, "", 3, 32 << 20},
		{"zero period uses 100ms", bundle(&specs.LinuxCPU{Quota: i64(400000), Period: u64(0)}, nil), desc, "", 4, 32 << 20},
		{"unlimited quota falls back", bundle(&specs.LinuxCPU{Quota: i64(-1), Period: u64(100000)}, nil), desc, "", 3, 32 << 20},
		{"zero quota falls back", bundle(&specs.LinuxCPU{Quota: i64(0)}, nil), nil, "", 1, DefaultMemory},
		{"huge quota and period do not overflow",
			bundle(&specs.LinuxCPU{Quota: i64(1 << 62), Period: u64(1 << 62)}, nil), nil, "", 1, DefaultMemory},
		{"memory limit wins", bundle(nil, limit(128<<20)), desc, "", 3, 128 << 20},
		{"memory limit is not rounded here", bundle(nil, limit(5000)), nil, "", 1, 5000},
		{"unlimited memory falls back", bundle(nil, limit(-1)), desc, "", 3, 32 << 20},
		{"zero memory falls back", bundle(nil, limit(0)), nil, "", 1, DefaultMemory},
		{"memory section without limit", bundle(nil, &specs.LinuxMemory{}), desc, "", 3, 32 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resources(tt.spec, tt.d)
			if err != nil {
				t.Fatalf("Resources: %v", err)
			}
			want, err := cpuset.Parse(tt.wantSet)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CPUs.Equal(want) || got.NumCPUs != tt.wantCPUs || got.Memory != tt.wantMem {
				t.Errorf("Resources = {CPUs %q, NumCPUs %d, Memory %d}, want {%q, %d, %d}",
					got.CPUs, got.NumCPUs, got.Memory, tt.wantSet, tt.wantCPUs, tt.wantMem)
			}
		})
	}
}

func TestResourcesErrors(t *testing.T) {
	tests := []struct {
		name string
		spec *specs.Spec
		want string
	}{
		{"bad cpuset", bundle(&specs.LinuxCPU{Cpus: "0-"}, nil), "bundle linux.resources.cpu.cpus: invalid CPU list"},
		{"reversed cpuset", bundle(&specs.LinuxCPU{Cpus: "5-2"}, nil), "linux.resources.cpu.cpus"},
		{"cpuset beyond any board", bundle(&specs.LinuxCPU{Cpus: "0-4000000000"}, nil), "out of range"},
		{"quota asks for too many CPUs", bundle(&specs.LinuxCPU{Quota: i64(1 << 40), Period: u64(1000)}, nil),
			"asks for 1099511628 CPUs, more than 32768"},
		{"max quota with tiny period", bundle(&specs.LinuxCPU{Quota: i64(1<<63 - 1), Period: u64(1)}, nil), "more than 32768"},
		{"absurd memory limit", bundle(nil, limit(1<<50)), "bundle linux.resources.memory.limit: 1024T is larger than the 1T limit"},
		{"tiny memory limit", bundle(nil, limit(100)), "memory.limit: 100 bytes is less than one 4K page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resources(tt.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resources = %+v, %v; want error containing %q", got, err, tt.want)
			}
		})
	}
}

func TestRoundUp(t *testing.T) {
	tests := []struct {
		size, gran, want uint64
		fails            bool
	}{
		{0, 4096, 0, false},
		{1, 4096, 4096, false},
		{4096, 4096, 4096, false},
		{4097, 4096, 8192, false},
		{5000, 3000, 6000, false},
		{1<<64 - 4096, 4096, 1<<64 - 4096, false},
		{1<<64 - 4095, 4096, 0, true},
		{1<<64 - 1, 2, 0, true},
		{100, 0, 0, true},
	}
	for _, tt := range tests {
		got, err := RoundUp(tt.size, tt.gran)
		if tt.fails {
			if err == nil {
				t.Errorf("RoundUp(%#x, %#x) = %#x, want an error", tt.size, tt.gran, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RoundUp(%#x, %#x) = %#x, %v; want %#x", tt.size, tt.gran, got, err, tt.want)
		}
	}
}
