package check

import (
	"fmt"
	"slices"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// pageSize is the stage-2 mapping granule of the arm64 hypervisor.
const pageSize = 0x1000

// span is an address range with an inclusive end, so a range reaching the
// top of the address space needs no overflowing end value.
type span struct {
	first, last uint64
}

func (s span) String() string { return fmt.Sprintf("0x%x-0x%x", s.first, s.last) }

// spanOf returns [start, start+size) as a span; false for size 0 or a
// range that wraps around.
func spanOf(start, size uint64) (span, bool) {
	if size == 0 || start+size-1 < start {
		return span{}, false
	}
	return span{start, start + size - 1}, true
}

func (s span) overlap(o span) (span, bool) {
	first, last := max(s.first, o.first), min(s.last, o.last)
	if first > last {
		return span{}, false
	}
	return span{first, last}, true
}

func (s span) contains(addr uint64) bool { return addr >= s.first && addr <= s.last }

// uncovered returns the parts of s that no span of cover contains.
func uncovered(s span, cover []span) []span {
	cover = slices.Clone(cover)
	slices.SortFunc(cover, func(a, b span) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	var out []span
	next := s.first // lowest address not yet known to be covered
	for _, c := range cover {
		if c.last < next {
			continue
		}
		if c.first > s.last {
			break
		}
		if c.first > next {
			out = append(out, span{next, c.first - 1})
		}
		if c.last >= s.last {
			return out
		}
		next = c.last + 1
	}
	return append(out, span{next, s.last})
}

// isZero reports the all-zero region entry, which is legal and means
// "nothing" (the empty read/write section of an ivshmem-net group).
func isZero(m cell.MemRegion) bool { return m == cell.MemRegion{} }

func physSpan(m cell.MemRegion) (span, bool) { return spanOf(m.PhysStart, m.Size) }
func virtSpan(m cell.MemRegion) (span, bool) { return spanOf(m.VirtStart, m.Size) }

// backed reports whether a region takes physical memory: not the comm
// region (the hypervisor backs that with its own page) and not empty.
func backed(m cell.MemRegion) bool {
	return m.Flags&cell.MemCommRegion == 0 && m.Size != 0
}

// subpage mirrors the hypervisor's rule: a region whose guest address or
// size is not page aligned is trapped and emulated, not mapped.
func subpage(m cell.MemRegion) bool {
	return (m.VirtStart|m.Size)&(pageSize-1) != 0
}
