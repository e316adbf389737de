package cell

import (
	"errors"
	"fmt"
)

// ErrLoad is wrapped by every CheckLoad error.
var ErrLoad = errors.New("image cannot be loaded")

// CheckLoad applies the hypervisor's rule for one preload image of size
// bytes at guest-physical addr: the first region (in configuration order)
// containing addr must be writable and loadable, and the image must fit in
// it. It returns the index of that region. Empty images always pass, as
// the driver skips them. The messages name the region and sizes so a user
// learns more than the driver's EINVAL.
func (c *Cell) CheckLoad(addr, size uint64) (int, error) {
	idx := -1
	for j, r := range c.MemRegions {
		if addr >= r.VirtStart && addr-r.VirtStart < r.Size {
			idx = j
			break
		}
	}
	if size == 0 {
		return idx, nil
	}
	if idx < 0 {
		return -1, fmt.Errorf("%w: no memory region of cell '%s' contains address %#x", ErrLoad, c.Name, addr)
	}
	r := c.MemRegions[idx]
	if r.Flags&(MemWrite|MemLoadable) != MemWrite|MemLoadable {
		return idx, fmt.Errorf("%w: region %d (%s at %#x), the first one containing address %#x, is not writable and loadable",
			ErrLoad, idx, HumanSize(r.Size), r.VirtStart, addr)
	}
	if room := r.Size - (addr - r.VirtStart); size > room {
		if addr == r.VirtStart {
			return idx, fmt.Errorf("%w: image of %s does not fit region %d (%s) at %#x",
				ErrLoad, HumanSize(size), idx, HumanSize(r.Size), addr)
		}
		return idx, fmt.Errorf("%w: image of %s does not fit region %d (%s at %#x) at %#x: %s left",
			ErrLoad, HumanSize(size), idx, HumanSize(r.Size), r.VirtStart, addr, HumanSize(room))
	}
	return idx, nil
}

// HumanSize renders a byte count exactly: in GiB, MiB or KiB when it is a
// whole number of them, otherwise in bytes.
func HumanSize(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n == 1:
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
