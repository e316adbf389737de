// Package emu emulates the Jailhouse driver and hypervisor, so that the
// jhctl library, runphi and configurations can be tested without hardware.
//
// A Hypervisor takes the driver's ioctls as raw records read from the
// caller's memory (Ioctl with a Memory), applies every check of the driver
// and the hypervisor in their order with the same errno (jailhouse-abi.md
// §5), tracks cells, CPU ownership, states, ids and loaded images, keeps the
// 2 KiB console ring with the driver's read() semantics, and renders the
// sysfs tree (WriteSysfs). It performs no I/O of its own and is not safe for
// concurrent use; an Engine serialises access:
//
//   - Shared keeps one Hypervisor in memory (the jhemu CUSE server);
//   - Dir keeps it in a directory (state file, lock file, sysfs tree), so
//     that separate processes share one emulated hypervisor; Open and Opener
//     give them a device for the jhctl library.
//
// Emulator console lines. Besides the hypervisor's own messages, starting a
// cell prints, after the upstream line `Started cell "NAME"`, one line per
// image loaded since the cell was created:
//
//	emu: cell "NAME" (id N) region R at 0xADDR: SIZE bytes sha256 HEX
//
// (R is the index of the memory region in the cell configuration, SIZE is
// decimal, HEX is the 64-digit SHA-256 of the image), or
//
//	emu: cell "NAME" (id N) has no images loaded
//
// An image that overlaps a later one is dropped from the list, since it was
// (partly) overwritten.
//
// Deviations, all for inputs the real driver handles with undefined or
// machine-dependent results: a cell configuration shorter than its counts
// imply fails with EINVAL (the driver reads past its buffer); an image above
// Options.MaxImage fails with EBUSY (the driver cannot map that much
// memory); hypervisor memory above 256 MiB fails ENABLE with EINVAL (the
// memory cannot be reserved); IOMMU units, stream ids, interrupt ownership
// and memory-mapping errors are not emulated.
package emu

import (
	"fmt"
	"slices"

	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Request numbers of the driver (arm64 and x86-64 encodings).
const (
	ReqEnable      = 0x40080000
	ReqDisable     = 0x00000001
	ReqCellCreate  = 0x40100002
	ReqCellLoad    = 0x40300003
	ReqCellStart   = 0x40280004
	ReqCellDestroy = 0x40280005
)

// Emulated hypervisor figures. CoreSize is the observed size of the master
// hypervisor core on qemu-arm64; the per-CPU size is the emulator's choice.
const (
	CoreSize        = 122880
	perCPUSize      = 16384
	pageSize        = 4096
	remapPoolPages  = 4 * pageSize * 8 // NUM_REMAP_BITMAP_PAGES bitmap pages
	consoleSize     = 2048
	maxConfigAlloc  = 4 << 20 // the driver's kmalloc limit for a cell configuration
	maxConfigPages  = 16      // NUM_TEMPORARY_PAGES of the hypervisor
	maxCellID       = 0xff    // the VMID limit on ARM
	irqBitmapBits   = 1024
	ivshmemMaxPeers = 12
	ivshmemMaxMSIX  = 16
	// maxHypervisorMemory is the most memory the emulated machine can
	// reserve for the hypervisor (real boards use a few MiB).
	maxHypervisorMemory = 256 << 20
	// DefaultMaxImage bounds one preload image unless Options says otherwise.
	DefaultMaxImage = 1 << 30
)

// Options describe the emulated machine.
type Options struct {
	// CPUs are the machine's online CPUs. ENABLE fails with EINVAL unless
	// the root cell names exactly these, as on real hardware. Empty means
	// the machine has whatever CPUs the root cell names.
	CPUs cpuset.Set `json:"cpus,omitzero"`
	// NoFirmware makes ENABLE fail with ENOENT, as without jailhouse.bin.
	NoFirmware bool `json:"no_firmware,omitempty"`
	// MaxImage bounds one preload image (0: DefaultMaxImage). A larger
	// image fails with EBUSY, as when the driver cannot map the target.
	MaxImage uint64 `json:"max_image,omitempty"`
}

// reasons are the VM-exit reasons of arm64, in the driver's order
// (statistic codes 0-8).
func reasons() [numStats]string {
	return [numStats]string{"total", "mmio", "management", "hypercall",
		"maintenance", "virt_irq", "virt_sgi", "psci", "smccc"}
}

const (
	statTotal = iota
	statMMIO
	statManagement
	statHypercall
	statMaintenance
	statVirtIRQ
	statVirtSGI
	statPSCI
	statSMCCC
	numStats
)

// Image is a preload image as the emulator remembers it.
type Image struct {
	Region  int    `json:"region"`  // index of the memory region in the cell configuration
	Address uint64 `json:"address"` // guest-physical target address
	Size    uint64 `json:"size"`
	SHA256  string `json:"sha256"` // hex digest of the image
}

// CellInfo is the emulator's view of a cell.
type CellInfo struct {
	ID         int
	Name       string
	State      jailhouse.State
	CPUs       cpuset.Set
	FailedCPUs cpuset.Set
	Loadable   bool
	Images     []Image
}

// Hypervisor is the emulated driver and hypervisor. The zero value is not
// usable; call New.
type Hypervisor struct {
	st state
}

// state is everything the emulator keeps; it is what Dir persists.
type state struct {
	Options     Options      `json:"options"`
	Enabled     bool         `json:"enabled"`
	CoreCreated bool         `json:"core_created,omitempty"` // sysfs "core" exists once an enable got that far
	System      []byte       `json:"system,omitempty"`       // system configuration of the current run
	Possible    int          `json:"possible_cpus,omitempty"`
	Cells       []*cellState `json:"cells,omitempty"` // driver list order, root first
	CPUs        []cpuState   `json:"cpus,omitempty"`  // indexed by CPU number, Possible entries
	Console     consoleRing  `json:"console"`
	Last        lastConsole  `json:"last_console"`
	KernelLog   []string     `json:"kernel_log,omitempty"`
	Gen         uint64       `json:"generation"`
	sys         *sysConfig   // decoded System
}

type cellState struct {
	ID           int             `json:"id"`
	Config       []byte          `json:"config"` // the driver's copy (root: from the system configuration)
	CPUs         cpuset.Set      `json:"cpus"`
	State        jailhouse.State `json:"state"`
	Loadable     bool            `json:"loadable,omitempty"`
	Images       []Image         `json:"images,omitempty"`
	DenyShutdown bool            `json:"deny_shutdown,omitempty"`
	cfg          *cellConfig
}

type cpuState struct {
	Stats  [numStats]uint32 `json:"stats"`
	Failed bool             `json:"failed,omitempty"`
}

// maxKernelLog bounds the emulated kernel log.
const maxKernelLog = 200

// New returns a hypervisor that has never been enabled.
func New(opts Options) *Hypervisor {
	h := &Hypervisor{}
	h.st.Options = opts
	h.st.Console.init()
	h.st.Last.Console.init()
	return h
}

// Generation counts the changes of the emulator's state; it grows whenever
// an operation changed something (including a failed one that printed).
func (h *Hypervisor) Generation() uint64 { return h.st.Gen }

// Enabled reports whether the hypervisor runs.
func (h *Hypervisor) Enabled() bool { return h.st.Enabled }

// KernelLog returns the driver's kernel messages, oldest first.
func (h *Hypervisor) KernelLog() []string { return slices.Clone(h.st.KernelLog) }

// Cells lists the cells in the driver's order (root first).
func (h *Hypervisor) Cells() []CellInfo {
	out := make([]CellInfo, 0, len(h.st.Cells))
	for _, c := range h.st.Cells {
		out = append(out, h.info(c))
	}
	return out
}

// Cell returns the cell with the given id.
func (h *Hypervisor) Cell(id int) (CellInfo, bool) {
	for _, c := range h.st.Cells {
		if c.ID == id {
			return h.info(c), true
		}
	}
	return CellInfo{}, false
}

func (h *Hypervisor) info(c *cellState) CellInfo {
	return CellInfo{
		ID:         c.ID,
		Name:       c.cfg.name,
		State:      c.State,
		CPUs:       c.CPUs,
		FailedCPUs: h.failedCPUs(c),
		Loadable:   c.Loadable,
		Images:     slices.Clone(c.Images),
	}
}

// VMExits returns the VM-exit counters of a CPU by reason, as sysfs shows
// them (masked to 31 bits).
func (h *Hypervisor) VMExits(cpu int) (map[string]uint32, error) {
	if cpu < 0 || cpu >= len(h.st.CPUs) {
		return nil, fmt.Errorf("CPU %d does not exist", cpu)
	}
	out := make(map[string]uint32, numStats)
	for i, r := range reasons() {
		out[r] = h.st.CPUs[cpu].Stats[i] & 0x7fffffff
	}
	return out, nil
}

func (h *Hypervisor) failedCPUs(c *cellState) cpuset.Set {
	var failed []int
	for _, cpu := range c.CPUs.CPUs() {
		if cpu < len(h.st.CPUs) && h.st.CPUs[cpu].Failed {
			failed = append(failed, cpu)
		}
	}
	return cpuset.Of(failed...)
}

func (h *Hypervisor) klog(format string, args ...any) {
	h.st.KernelLog = append(h.st.KernelLog, fmt.Sprintf(format, args...))
	if n := len(h.st.KernelLog); n > maxKernelLog {
		h.st.KernelLog = slices.Delete(h.st.KernelLog, 0, n-maxKernelLog)
	}
}

// root returns the root cell; only while enabled.
func (h *Hypervisor) root() *cellState { return h.st.Cells[0] }

func (h *Hypervisor) nonRoot() []*cellState { return h.st.Cells[1:] }

// findCell matches like the driver: by id, or by exact name when the
// record's id is -1 (so id 0 always means the root cell).
func (h *Hypervisor) findCell(id cellID) *cellState {
	for _, c := range h.st.Cells {
		if int64(id.id) == int64(c.ID) || (id.id == -1 && c.cfg.name == id.name) {
			return c
		}
	}
	return nil
}

// callingCPU is the root CPU the emulated driver issues hypercalls from.
func (h *Hypervisor) callingCPU() int {
	cpus := h.root().CPUs.CPUs()
	if len(cpus) == 0 {
		return 0
	}
	return cpus[0]
}

// countExit adds one VM exit of reason to cpu.
func (h *Hypervisor) countExit(cpu, reason int) {
	if cpu < 0 || cpu >= len(h.st.CPUs) {
		return
	}
	s := &h.st.CPUs[cpu].Stats
	s[reason]++
	if reason != statTotal {
		s[statTotal]++
	}
}

// hypercall counts a management hypercall issued by the driver.
func (h *Hypervisor) hypercall() { h.countExit(h.callingCPU(), statHypercall) }

// Pool figures in pages: plausible and deterministic, derived from the
// configuration and the cells that exist.
func (h *Hypervisor) memPool() (size, used, remapSize, remapUsed uint64) {
	if !h.st.Enabled {
		return 0, 0, 0, 0
	}
	sys := h.st.sys
	size = (sys.hvSize - CoreSize) / pageSize
	used = uint64(h.st.Possible)*perCPUSize/pageSize + pages(uint64(len(sys.raw))) +
		(size+pageSize*8-1)/(pageSize*8) + 4 + 2
	for _, c := range h.nonRoot() {
		used += pages(pageSize+uint64(len(c.Config))) + 2
		if len(c.cfg.pcis) > 0 {
			used += pages(uint64(len(c.cfg.pcis)) * 256)
		}
	}
	used += uint64(len(h.links()))
	return size, used, remapPoolPages, 16 + 4*uint64(len(h.nonRoot()))
}

func pages(n uint64) uint64 { return (n + pageSize - 1) / pageSize }

func (h *Hypervisor) poolLine(when string) string {
	size, used, rsize, rused := h.memPool()
	return fmt.Sprintf("Page pool usage %s: mem %d/%d, remap %d/%d\n", when, used, size, rused, rsize)
}
