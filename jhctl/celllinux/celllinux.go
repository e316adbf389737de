// Package celllinux plans how to boot an arm64 Linux kernel in a Jailhouse
// cell, the work of `jailhouse cell linux`: it finds room for the kernel,
// device tree and initrd in the cell's RAM, computes their guest-physical
// addresses with the same rules as the upstream script (so the same inputs
// give the same addresses), edits the device tree's /memory and /chosen
// nodes, and builds the parameter string for the linux-loader inmate.
//
// The package is pure: it takes bytes and a cell model and returns bytes and
// addresses. Loading them into a cell is the caller's job.
package celllinux

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// Sizes and alignments the address computation uses.
const (
	pageSize        = 0x1000
	kernelAlignment = 0x200000 // arm64 kernels start on a 2 MiB boundary
	loaderRoom      = 0x2000   // loader plus its parameter page at virt 0
	paramsOffset    = 0x1000   // parameters sit one page after the loader
	// loaderRegionMax is the size up to which a RAM region at virt 0 is
	// taken to be the loader's and is kept out of /memory.
	loaderRegionMax = 0x10000
	// defaultFactor is the arm64 default for the space left between the
	// kernel and the initrd, in multiples of the kernel size.
	defaultFactor = 1
)

// ramMask selects the flags that decide whether a region is RAM; ramFlags
// is the value they must have. LOAD and the hint flags may be set too.
const (
	ramMask = cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemDMA |
		cell.MemIO | cell.MemCommRegion | cell.MemRootShared
	ramFlags = cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemDMA
)

// Errors a plan can fail with; they are wrapped with detail.
var (
	// ErrNoSpace means no RAM region is large enough for all images.
	ErrNoSpace = errors.New("No space found to load all images") //nolint:staticcheck // upstream's wording
	// ErrInvalidDTB means the device tree cannot be parsed or lacks the
	// root #address-cells and #size-cells properties.
	ErrInvalidDTB = errors.New("Invalid DTB") //nolint:staticcheck // upstream's wording
	// ErrBadKernel means the kernel is not an arm64 Image.
	ErrBadKernel = errors.New("not an arm64 kernel Image")
)

// Image is one piece of data to load into the cell.
type Image struct {
	// Name says what the image is: loader, kernel, dtb, initrd or params.
	Name    string
	Data    []byte
	Address uint64
}

// Layout is the result of Plan: where everything goes and what is loaded.
type Layout struct {
	// Kernel is the Image to load, decompressed if the input was gzip.
	Kernel []byte
	// KernelGzip reports that the input kernel was gzip-compressed.
	KernelGzip bool
	// TextOffset is the Image header's text_offset (0 since Linux 5.8).
	TextOffset uint64
	// KernelSize is the page-aligned Image size plus, with an initrd, the
	// decompression space left before the initrd.
	KernelSize uint64
	// DTBSize is the space reserved for the device tree.
	DTBSize uint64
	// ImageSize is the space a RAM region must offer.
	ImageSize uint64
	// Region is the index of the chosen memory region in the cell config.
	Region int

	LoaderAddr  uint64
	KernelAddr  uint64
	DTBAddr     uint64
	RamdiskAddr uint64 // meaningful only with an initrd
	ParamsAddr  uint64

	// DTB is the edited device tree.
	DTB []byte
	// Initrd is the initrd as given; nil means none.
	Initrd []byte
	// Params is the loader's command line, loaded without a NUL.
	Params string
}

// Images returns the images in the order they are loaded: the loader at the
// cell's reset address, the kernel, the device tree, the initrd (if any)
// and the loader parameters.
func (l *Layout) Images(loader []byte) []Image {
	imgs := []Image{
		{Name: "loader", Data: loader, Address: l.LoaderAddr},
		{Name: "kernel", Data: l.Kernel, Address: l.KernelAddr},
		{Name: "dtb", Data: l.DTB, Address: l.DTBAddr},
	}
	if l.Initrd != nil {
		imgs = append(imgs, Image{Name: "initrd", Data: l.Initrd, Address: l.RamdiskAddr})
	}
	return append(imgs, Image{Name: "params", Data: []byte(l.Params), Address: l.ParamsAddr})
}

// IsRAM reports whether a memory region counts as RAM for Linux: readable,
// writable, executable and DMA-capable, and neither I/O, the communication
// region nor shared with the root cell.
func IsRAM(r cell.MemRegion) bool { return r.Flags&ramMask == ramFlags }

// Plan computes the layout for booting kernel with the device tree dtb (and
// initrd unless nil) in the cell cfg. cmdline, when not empty, becomes
// /chosen/bootargs. factor is the initrd decompression factor; 0 selects
// the arm64 default of 1.
func Plan(cfg *cell.Cell, kernel, dtb, initrd []byte, cmdline string, factor int) (*Layout, error) {
	if cfg == nil {
		return nil, errors.New("no cell configuration")
	}
	if factor < 0 {
		return nil, fmt.Errorf("decompression factor %d is negative", factor)
	}
	if factor == 0 {
		factor = defaultFactor
	}
	if dtb == nil {
		return nil, errors.New("no device tree specified")
	}

	img, gz, err := decodeKernel(kernel, maxRAM(cfg))
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	textOffset, err := textOffset(img)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}

	l := &Layout{Kernel: img, KernelGzip: gz, TextOffset: textOffset, Initrd: initrd}
	var a adder
	l.KernelSize = a.pageAlign(uint64(len(img)))
	l.ImageSize = a.add(textOffset, l.KernelSize, kernelAlignment)
	if initrd != nil {
		hi, space := bits.Mul64(uint64(factor), l.KernelSize)
		if hi != 0 {
			a.overflow = true
		}
		l.KernelSize = a.add(l.KernelSize, space)
		l.ImageSize = a.add(l.ImageSize, space)
	}
	l.DTBSize = a.add(a.pageAlign(uint64(len(dtb))), pageSize)
	l.ImageSize = a.add(l.ImageSize, l.DTBSize, loaderRoom)
	if a.overflow {
		return nil, fmt.Errorf("%w: the images' size overflows", ErrNoSpace)
	}

	l.Region = -1
	for i, r := range cfg.MemRegions {
		if IsRAM(r) && r.Size >= l.ImageSize {
			l.Region = i
			break
		}
	}
	if l.Region < 0 {
		return nil, fmt.Errorf("%w (need %#x bytes of RAM)", ErrNoSpace, l.ImageSize)
	}
	region := cfg.MemRegions[l.Region]

	l.DTBAddr = region.VirtStart
	if l.DTBAddr == 0 {
		l.DTBAddr = loaderRoom
	}
	l.KernelAddr = a.add(a.alignUp(a.add(l.DTBAddr, l.DTBSize), kernelAlignment), textOffset)
	l.RamdiskAddr = a.add(l.KernelAddr, l.KernelSize)
	l.LoaderAddr = cfg.CPUResetAddress
	l.ParamsAddr = a.add(cfg.CPUResetAddress, paramsOffset)
	if a.overflow {
		return nil, fmt.Errorf("memory region %d: addresses overflow", l.Region)
	}
	// The hypervisor loads each image into a single region; an initrd
	// running past the region's end would be refused at load time.
	if initrd != nil {
		end := a.add(l.RamdiskAddr, uint64(len(initrd)))
		if a.overflow || end > region.VirtStart+region.Size {
			return nil, fmt.Errorf("%w: initrd (%d bytes at %#x) runs past the end of memory region %d at %#x",
				ErrNoSpace, len(initrd), l.RamdiskAddr, l.Region, region.VirtStart+region.Size)
		}
	}
	l.Params = fmt.Sprintf("kernel=0x%x dtb=0x%x", l.KernelAddr, l.DTBAddr)

	edit := DTBEdit{Memory: MemoryRanges(cfg), Bootargs: cmdline}
	if initrd != nil {
		edit.Initrd = &Range{Start: l.RamdiskAddr, Size: uint64(len(initrd))}
	}
	l.DTB, err = EditDTB(dtb, edit)
	if err != nil {
		return nil, fmt.Errorf("device tree: %w", err)
	}
	if uint64(len(l.DTB)) > l.KernelAddr-l.DTBAddr {
		return nil, fmt.Errorf("device tree: edited tree (%d bytes) would overlap the kernel at %#x",
			len(l.DTB), l.KernelAddr)
	}
	return l, nil
}

// MemoryRanges returns what /memory lists: every RAM region of cfg except a
// small one at virt 0, which holds the loader.
func MemoryRanges(cfg *cell.Cell) []Range {
	var rs []Range
	for _, r := range cfg.MemRegions {
		if IsRAM(r) && (r.VirtStart > 0 || r.Size > loaderRegionMax) {
			rs = append(rs, Range{Start: r.VirtStart, Size: r.Size})
		}
	}
	return rs
}

// maxRAM is the largest RAM region of cfg; no kernel larger than that can
// be placed, which bounds decompression.
func maxRAM(cfg *cell.Cell) uint64 {
	var m uint64
	for _, r := range cfg.MemRegions {
		if IsRAM(r) {
			m = max(m, r.Size)
		}
	}
	return m
}

// adder does unsigned arithmetic on addresses and sizes, remembering
// whether any step wrapped around so hostile headers (a huge text_offset)
// cannot produce small, plausible addresses.
type adder struct{ overflow bool }

func (a *adder) add(vs ...uint64) uint64 {
	var sum uint64
	for _, v := range vs {
		var carry uint64
		sum, carry = bits.Add64(sum, v, 0)
		if carry != 0 {
			a.overflow = true
		}
	}
	return sum
}

func (a *adder) alignUp(v, align uint64) uint64 {
	return a.add(v, align-1) &^ (align - 1)
}

func (a *adder) pageAlign(v uint64) uint64 { return a.alignUp(v, pageSize) }
