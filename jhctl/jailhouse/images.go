package jailhouse

import (
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// checkImages applies the hypervisor's per-image rules (jailhouse-abi.md
// §5.4) so a bad load is explained before the driver says only EINVAL.
func checkImages(cfg *cell.Cell, images []Image) error {
	for i, img := range images {
		if len(img.Data) == 0 {
			continue // the driver skips empty images
		}
		prefix := ""
		if len(images) > 1 {
			prefix = fmt.Sprintf("image %d: ", i+1)
		}
		size := uint64(len(img.Data))
		idx := -1
		for j, r := range cfg.MemRegions {
			if img.Address >= r.VirtStart && img.Address-r.VirtStart < r.Size {
				idx = j
				break
			}
		}
		if idx < 0 {
			return imageError(cfg, "%sno memory region of cell '%s' contains address %#x",
				prefix, cfg.Name, img.Address)
		}
		r := cfg.MemRegions[idx]
		if r.Flags&(cell.MemWrite|cell.MemLoadable) != cell.MemWrite|cell.MemLoadable {
			return imageError(cfg, "%sregion %d (%s at %#x), the first one containing address %#x, is not writable and loadable",
				prefix, idx, humanSize(r.Size), r.VirtStart, img.Address)
		}
		if room := r.Size - (img.Address - r.VirtStart); size > room {
			if img.Address == r.VirtStart {
				return imageError(cfg, "%simage of %s does not fit region %d (%s) at %#x",
					prefix, humanSize(size), idx, humanSize(r.Size), img.Address)
			}
			return imageError(cfg, "%simage of %s does not fit region %d (%s at %#x) at %#x: %s left",
				prefix, humanSize(size), idx, humanSize(r.Size), r.VirtStart, img.Address, humanSize(room))
		}
	}
	return nil
}

func imageError(cfg *cell.Cell, format string, args ...any) error {
	return &Error{Op: OpLoad, Cell: "'" + cfg.Name + "'", Kind: ErrImage, Msg: fmt.Sprintf(format, args...)}
}

// humanSize renders a byte count exactly: in MiB or KiB when it is a whole
// number of them, otherwise in bytes.
func humanSize(n uint64) string {
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
