package descriptor

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// DefaultCPUPeriod is the CFS period the kernel uses when a bundle gives a
// CPU quota without a period, in microseconds.
const DefaultCPUPeriod = 100000

// Request is what a ZIC asks of the allocator.
type Request struct {
	// CPUs is an explicit set of host CPUs, from the bundle's cpuset;
	// empty when only a count is asked for.
	CPUs cpuset.Set
	// NumCPUs is the number of CPUs, ≥ 1 (CPUs.Len() when CPUs is set).
	NumCPUs int
	// Memory is the RAM size in bytes, not yet rounded to the pool's
	// granularity.
	Memory uint64
}

// Resources derives the request of a ZIC from its OCI bundle and its
// descriptor (either may be nil). The operator's bundle wins over the
// image's descriptor:
//
//   - CPUs: linux.resources.cpu.cpus (a CPU list) if non-empty; else
//     ceil(quota/period) if the quota is positive (a zero or missing
//     period means DefaultCPUPeriod, a negative quota is "unlimited" and
//     ignored); else the descriptor's cpus; else 1.
//   - Memory: linux.resources.memory.limit if positive (-1 is
//     "unlimited"); else the descriptor's memory; else DefaultMemory.
func Resources(spec *specs.Spec, d *Descriptor) (Request, error) {
	var cpu *specs.LinuxCPU
	var mem *specs.LinuxMemory
	if spec != nil && spec.Linux != nil && spec.Linux.Resources != nil {
		cpu = spec.Linux.Resources.CPU
		mem = spec.Linux.Resources.Memory
	}
	if d == nil {
		d = &Descriptor{}
	}

	var req Request
	switch {
	case cpu != nil && strings.TrimSpace(cpu.Cpus) != "":
		set, err := cpuset.Parse(cpu.Cpus)
		if err != nil {
			return Request{}, fmt.Errorf("bundle linux.resources.cpu.cpus: %w", err)
		}
		req.CPUs, req.NumCPUs = set, set.Len()
	case cpu != nil && cpu.Quota != nil && *cpu.Quota > 0:
		quota := uint64(*cpu.Quota)
		period := uint64(DefaultCPUPeriod)
		if cpu.Period != nil && *cpu.Period > 0 {
			period = *cpu.Period
		}
		n := quota / period // ceil without the overflow of (quota+period-1)
		if quota%period != 0 {
			n++
		}
		if n > MaxCPUs {
			return Request{}, fmt.Errorf("bundle linux.resources.cpu quota %d / period %d asks for %d CPUs, more than %d",
				quota, period, n, MaxCPUs)
		}
		req.NumCPUs = int(n)
	case d.CPUs > 0:
		req.NumCPUs = d.CPUs
	default:
		req.NumCPUs = 1
	}

	switch {
	case mem != nil && mem.Limit != nil && *mem.Limit > 0:
		n, err := CheckSize(uint64(*mem.Limit))
		if err != nil {
			return Request{}, fmt.Errorf("bundle linux.resources.memory.limit: %w", err)
		}
		req.Memory = n
	case d.Memory > 0:
		req.Memory = d.Memory
	default:
		req.Memory = DefaultMemory
	}
	return req, nil
}

// RoundUp rounds size up to a multiple of granularity (the memory pool's
// allocation unit, any positive value), failing instead of overflowing.
func RoundUp(size, granularity uint64) (uint64, error) {
	if granularity == 0 {
		return 0, errors.New("round up: granularity is zero")
	}
	r := size % granularity
	if r == 0 {
		return size, nil
	}
	if size > ^uint64(0)-(granularity-r) {
		return 0, fmt.Errorf("round up: %#x to a multiple of %#x overflows", size, granularity)
	}
	return size + granularity - r, nil
}
