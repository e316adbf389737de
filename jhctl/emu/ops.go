package emu

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"syscall"

	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Ioctl is the driver's ioctl entry point: req is the request number, arg
// the argument as the caller passed it (an address in mem, or 0), and mem
// the caller's memory. It returns nil, a syscall.Errno exactly as the driver
// would, or an error of mem, in which case nothing has changed.
//
// Every step that reads memory comes before any change, so an operation
// interrupted by a transport error (a CUSE fetch) can be repeated as a
// whole.
func (h *Hypervisor) Ioctl(req uint, arg uint64, mem Memory) error {
	switch req {
	case ReqEnable:
		return h.enable(arg, mem)
	case ReqDisable:
		return h.disable()
	case ReqCellCreate:
		return h.create(arg, mem)
	case ReqCellLoad:
		return h.load(arg, mem)
	case ReqCellStart:
		return h.start(arg, mem)
	case ReqCellDestroy:
		return h.destroy(arg, mem)
	}
	return syscall.EINVAL
}

// commit records that the state changed.
func (h *Hypervisor) commit() { h.st.Gen++ }

// read is a copy_from_user.
func read(mem Memory, addr, n uint64) ([]byte, error) {
	b, err := mem.Read(addr, n)
	if err == nil && uint64(len(b)) != n {
		return nil, syscall.EFAULT
	}
	return b, err
}

func (h *Hypervisor) enable(arg uint64, mem Memory) error {
	hdr, err := read(mem, arg, sysHeaderSize)
	if err != nil {
		return err
	}
	root := parseDesc(hdr[rootDescOffset:])
	switch {
	case string(hdr[0:5]) != sigSystem:
		return h.driverError(syscall.EINVAL, "jailhouse: Not a system configuration")
	case le.Uint16(hdr[6:]) != revision:
		return h.driverError(syscall.EINVAL, "jailhouse: Configuration revision mismatch")
	case hdr[5] != archARM64:
		return h.driverError(syscall.EINVAL, "jailhouse: Configuration architecture mismatch")
	}
	maxCPUs, err := maxCPUs(mem, arg+sysHeaderSize, root.cpuSetSize)
	if err != nil {
		return err
	}
	if maxCPUs > math.MaxUint32 {
		return syscall.EINVAL
	}
	if h.st.Enabled {
		return syscall.EBUSY
	}
	if h.st.Options.NoFirmware {
		return h.driverError(syscall.ENOENT, "jailhouse: Missing hypervisor image jailhouse.bin")
	}
	hvSize := le.Uint64(hdr[28:])
	size := systemSize(hdr)
	coreAndPerCPU := CoreSize + maxCPUs*perCPUSize
	if CoreSize >= hvSize || coreAndPerCPU >= hvSize || size >= hvSize-coreAndPerCPU {
		return syscall.EINVAL
	}
	if hvSize > maxHypervisorMemory {
		// request_mem_region fails: the emulated machine has no such
		// amount of memory reserved for the hypervisor.
		return h.driverError(syscall.EINVAL, "jailhouse: request_mem_region failed for hypervisor memory.")
	}
	full, err := read(mem, arg, size)
	if errors.Is(err, syscall.EFAULT) {
		// The driver has already dropped the previous log and created
		// sysfs "core" when this copy fails.
		h.st.Last.Valid = false
		h.st.CoreCreated = true
		h.commit()
	}
	if err != nil {
		return err
	}
	sys, err := parseSystemConfig(full)
	if err != nil {
		return syscall.EFAULT // cannot happen: size covers the counts
	}
	return h.enterHypervisor(sys, int(maxCPUs))
}

// maxCPUs is the driver's get_max_cpus: the highest CPU of the root bitmap
// plus one, reading the bitmap from its last byte backwards.
func maxCPUs(mem Memory, bitmap uint64, size uint32) (uint64, error) {
	const chunk = 4096
	for end := uint64(size); end > 0; {
		start := end - min(end, chunk)
		b, err := read(mem, bitmap+start, end-start)
		if err != nil {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return (start+uint64(i))*8 + uint64(bits.Len8(b[i])), nil
			}
		}
		end = start
	}
	return 0, syscall.EINVAL
}

// enterHypervisor is the part of ENABLE after the configuration reached the
// hypervisor: it either runs or fails, and the log of a failure stays
// readable as the last console.
func (h *Hypervisor) enterHypervisor(sys *sysConfig, maxCPUs int) error {
	st := &h.st
	st.Last.Valid = false
	st.CoreCreated = true
	st.System = slices.Clone(sys.raw)
	st.sys, _ = parseSystemConfig(st.System)
	sys = st.sys
	st.Console.init()
	if sys.root.cpuSetSize > pageSize {
		// cell_init of the root cell refuses such a bitmap.
		h.saveLastConsole()
		h.commit()
		return syscall.EINVAL
	}
	possible := maxCPUs
	online := st.Options.CPUs
	rootCPUs := cpuset.Of(sys.root.cpus(-1)...)
	if online.IsEmpty() {
		online = rootCPUs
	} else {
		possible = online.Max() + 1
	}
	st.Possible = possible
	st.CPUs = make([]cpuState, possible)
	h.print("\nInitializing Jailhouse hypervisor (emulated) on CPU %d\n", online.CPUs()[0])
	root := &cellState{ID: 0, Config: slices.Clone(sys.raw[rootDescOffset:]), State: jailhouse.StateRunning, cfg: sys.root}
	root.CPUs = cpuset.Of(sys.root.cpus(possible)...)
	st.Cells = []*cellState{root}
	st.Enabled = true // for the pool figures; reverted on failure
	h.print("%s", h.poolLine("after early setup"))
	h.print("Initializing processors:\n")
	fail := func(err error) error {
		st.Enabled = false
		st.Cells = nil
		h.saveLastConsole()
		h.commit()
		return err
	}
	for _, cpu := range online.CPUs() {
		h.print(" CPU %d... ", cpu)
		// Every online CPU enters the hypervisor, which insists that the
		// root cell names exactly the online CPUs.
		if !online.Equal(rootCPUs) {
			h.print("FAILED\n")
			return fail(syscall.EINVAL)
		}
		h.print("OK\n")
	}
	h.print("Initializing unit: irqchip\n")
	if err := h.irqchipInit(root); err != nil {
		return fail(err)
	}
	h.print("Initializing unit: PCI\n")
	if err := h.pciInit(root); err != nil {
		return fail(err)
	}
	h.print("%s", h.poolLine("after late setup"))
	h.print("Activating hypervisor\n")
	for _, cpu := range online.CPUs() {
		h.countExit(cpu, statManagement)
	}
	h.klog("The Jailhouse is opening.")
	h.commit()
	return nil
}

// saveLastConsole is the driver's update_last_console.
func (h *Hypervisor) saveLastConsole() {
	if !h.consoleAvailable() {
		return
	}
	h.st.Last.Console = consoleRing{Tail: h.st.Console.Tail, Content: slices.Clone(h.st.Console.Content)}
	h.st.Last.ID++
	h.st.Last.Valid = true
}

func (h *Hypervisor) driverError(errno syscall.Errno, msg string) error {
	h.klog("%s", msg)
	h.commit()
	return errno
}

func (h *Hypervisor) disable() error {
	if !h.st.Enabled {
		return syscall.EINVAL
	}
	for len(h.st.Cells) > 1 {
		c := h.st.Cells[1]
		if err := h.destroyCell(c); err != nil {
			h.klog("Jailhouse: failed to destroy cell \"%s\"", c.cfg.name)
			h.commit()
			return err
		}
	}
	h.hypercall()
	h.print("Shutting down hypervisor\n")
	for _, cpu := range h.root().CPUs.CPUs() {
		h.print(" Releasing CPU %d\n", cpu)
	}
	h.saveLastConsole()
	h.st.Enabled = false
	h.st.Cells = nil
	h.klog("The Jailhouse was closed.")
	h.commit()
	return nil
}

func (h *Hypervisor) create(arg uint64, mem Memory) error {
	rec, err := read(mem, arg, createRecSize)
	if err != nil {
		return err
	}
	addr, size := le.Uint64(rec[0:]), uint64(le.Uint32(rec[8:]))
	if size > maxConfigAlloc {
		return syscall.ENOMEM
	}
	data, err := read(mem, addr, size)
	if err != nil {
		return err
	}
	if size < cellDescSize || string(data[0:5]) != sigCell {
		return h.driverError(syscall.EINVAL, "jailhouse: Not a cell configuration")
	}
	d := parseDesc(data)
	if d.revision != revision {
		return h.driverError(syscall.EINVAL, "jailhouse: Configuration revision mismatch")
	}
	if d.arch != archARM64 {
		// The driver logs the mismatch and reports success (pitfall 1).
		h.klog("jailhouse: Configuration architecture mismatch")
		h.commit()
		return nil
	}
	// The driver's own copy: name terminated, ACTIVE implies PERMITTED.
	data[8+nameFieldSize-1] = 0
	flags := le.Uint32(data[44:])
	if flags&cellConsoleActive != 0 {
		le.PutUint32(data[44:], flags|cellConsolePermitted)
	}
	if !h.st.Enabled {
		return syscall.EINVAL
	}
	if h.findCell(cellID{id: -1, name: d.name}) != nil {
		return syscall.EEXIST
	}
	cfg, err := parseCellConfig(data)
	if err != nil {
		// The driver would read past its copy; see the package comment.
		return h.driverError(syscall.EINVAL, "emu: cell configuration is shorter than its counts imply")
	}
	id := h.lowestFreeID()
	le.PutUint32(data[40:], uint32(id))
	c := &cellState{ID: id, Config: slices.Clone(cfg.raw), State: jailhouse.StateShutDown}
	c.cfg, _ = parseCellConfig(c.Config)
	// The driver's mask holds only the kernel's CPUs.
	c.CPUs = cpuset.Of(c.cfg.cpus(h.st.Possible)...)
	root := h.root()
	if !c.CPUs.SubsetOf(root.CPUs) {
		return syscall.EBUSY
	}
	h.hypercall()
	if err := h.hvCreate(c); err != nil {
		h.commit()
		return err
	}
	h.klog("Created Jailhouse cell \"%s\"", c.cfg.name)
	h.commit()
	return nil
}

func (h *Hypervisor) lowestFreeID() int {
	for id := 0; ; id++ {
		if !slices.ContainsFunc(h.st.Cells, func(c *cellState) bool { return c.ID == id }) {
			return id
		}
	}
}

// hvCreate is the hypervisor's cell_create, after the driver took the CPUs
// offline. On failure nothing but console output and counters changed.
func (h *Hypervisor) hvCreate(c *cellState) error {
	if h.lockedCell(nil) {
		return syscall.EPERM
	}
	cfg := c.cfg
	if pages(uint64(len(cfg.raw))) > maxConfigPages {
		return syscall.E2BIG
	}
	if cfg.cpuSetSize > pageSize {
		return syscall.EINVAL
	}
	// The hypervisor checks the whole bitmap, not just the kernel's CPUs.
	full := cfg.cpus(-1)
	root := h.root()
	for _, cpu := range full {
		if !root.CPUs.Has(cpu) {
			return syscall.EBUSY
		}
	}
	if c.ID > maxCellID {
		return syscall.E2BIG
	}
	if err := h.irqchipInit(c); err != nil {
		return err
	}
	h.st.Cells = append(h.st.Cells, c) // visible to pciInit's link search
	if err := h.pciInit(c); err != nil {
		h.st.Cells = h.st.Cells[:len(h.st.Cells)-1]
		return err
	}
	c.CPUs = cpuset.Of(full...)
	root.CPUs = root.CPUs.Minus(c.CPUs)
	for _, cpu := range c.CPUs.CPUs() {
		if cpu < len(h.st.CPUs) {
			h.st.CPUs[cpu] = cpuState{}
		}
	}
	h.print("Created cell \"%s\"\n", cfg.name)
	h.print("%s", h.poolLine("after cell creation"))
	return nil
}

// lockedCell reports whether a non-root cell other than except is
// running/locked, which forbids reconfiguration.
func (h *Hypervisor) lockedCell(except *cellState) bool {
	for _, c := range h.nonRoot() {
		if c != except && c.State == jailhouse.StateRunningLocked {
			return true
		}
	}
	return false
}

// prologue is the driver's cell_management_prologue after the record was
// read: the hypervisor must be enabled and the cell must exist.
func (h *Hypervisor) prologue(id cellID) (*cellState, error) {
	if !h.st.Enabled {
		return nil, syscall.EINVAL
	}
	c := h.findCell(id)
	if c == nil {
		return nil, syscall.ENOENT
	}
	return c, nil
}

// hvPrologue is the hypervisor's cell_management_prologue.
func (h *Hypervisor) hvPrologue(c *cellState, destroy bool) error {
	switch {
	case c.ID == 0:
		return syscall.EINVAL
	case destroy && h.lockedCell(c):
		return syscall.EPERM
	case !h.shutdownOK(c):
		return syscall.EPERM
	}
	return nil
}

// shutdownOK is the hypervisor asking the cell for permission to stop it.
// Passive cells and cells that are not running never refuse.
func (h *Hypervisor) shutdownOK(c *cellState) bool {
	if c.cfg.flags&cellPassiveCommReg != 0 {
		return true
	}
	if c.State == jailhouse.StateShutDown || c.State == jailhouse.StateFailed {
		return true
	}
	return !c.DenyShutdown
}

type plannedImage struct {
	img  Image
	keep bool
}

func (h *Hypervisor) load(arg uint64, mem Memory) error {
	hdr, err := read(mem, arg, loadHdrSize)
	if err != nil {
		return err
	}
	c, err := h.prologue(parseCellID(hdr))
	if err != nil {
		return err
	}
	if err := h.hvPrologue(c, false); err != nil {
		h.hypercall()
		h.commit()
		return err
	}
	images, loadErr := h.readImages(c, mem, arg+loadHdrSize, le.Uint32(hdr[40:]))
	if loadErr != nil && !isErrno(loadErr) {
		return loadErr // a transport error: nothing changed
	}
	h.hypercall()
	h.setLoadable(c)
	for _, img := range images {
		c.Images = slices.DeleteFunc(c.Images, func(old Image) bool { return overlaps(old, img) })
		c.Images = append(c.Images, img)
	}
	h.commit()
	return loadErr
}

func isErrno(err error) bool {
	var e syscall.Errno
	return errors.As(err, &e)
}

func overlaps(a, b Image) bool {
	return a.Address < b.Address+b.Size && b.Address < a.Address+a.Size
}

// readImages reads and checks the preload images like the driver's
// load_image loop; it returns the images loaded before the first error.
func (h *Hypervisor) readImages(c *cellState, mem Memory, recs uint64, n uint32) ([]Image, error) {
	maxImage := h.st.Options.MaxImage
	if maxImage == 0 {
		maxImage = DefaultMaxImage
	}
	var out []Image
	const batch = 128 // records per read; the driver reads them one by one
	var buf []byte
	var bufStart uint64
	for i := range uint64(n) {
		if i%batch == 0 {
			cnt := min(batch, uint64(n)-i)
			b, err := read(mem, recs+i*imageRecSize, cnt*imageRecSize)
			if errors.Is(err, syscall.EFAULT) {
				b, err = nil, nil // fall back to single records to fault where the driver does
			}
			if err != nil {
				return out, err
			}
			buf, bufStart = b, i
		}
		var rec []byte
		if buf != nil {
			off := (i - bufStart) * imageRecSize
			rec = buf[off : off+imageRecSize]
		} else {
			b, err := read(mem, recs+i*imageRecSize, imageRecSize)
			if err != nil {
				return out, err
			}
			rec = b
		}
		src, size, target := le.Uint64(rec[0:]), le.Uint64(rec[8:]), le.Uint64(rec[16:])
		if size == 0 {
			continue
		}
		region := -1
		for r, m := range c.cfg.mems {
			if m.contains(target) {
				region = r
				break
			}
		}
		if region < 0 {
			return out, syscall.EINVAL
		}
		m := c.cfg.mems[region]
		if size > m.size-(target-m.virt) || m.flags&(memWrite|memLoadable) != memWrite|memLoadable {
			return out, syscall.EINVAL
		}
		if size > maxImage {
			h.klog("jailhouse: Unable to map cell RAM at %08x for image loading", m.phys+(target-m.virt))
			return out, syscall.EBUSY
		}
		data, err := read(mem, src, size)
		if err != nil {
			return out, err
		}
		sum := sha256.Sum256(data)
		out = append(out, Image{Region: region, Address: target, Size: size, SHA256: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// setLoadable is the hypervisor's cell_set_loadable after its checks.
func (h *Hypervisor) setLoadable(c *cellState) {
	for _, cpu := range c.CPUs.CPUs() {
		if cpu < len(h.st.CPUs) {
			h.st.CPUs[cpu].Failed = false
		}
	}
	if c.Loadable {
		return
	}
	c.State = jailhouse.StateShutDown
	c.Loadable = true
	h.print("Cell \"%s\" can be loaded\n", c.cfg.name)
}

func (h *Hypervisor) readID(arg uint64, mem Memory) (*cellState, error) {
	rec, err := read(mem, arg, cellIDSize)
	if err != nil {
		return nil, err
	}
	return h.prologue(parseCellID(rec))
}

func (h *Hypervisor) start(arg uint64, mem Memory) error {
	c, err := h.readID(arg, mem)
	if err != nil {
		return err
	}
	h.hypercall()
	if err := h.hvPrologue(c, false); err != nil {
		h.commit()
		return err
	}
	c.Loadable = false
	c.State = jailhouse.StateRunning
	for _, cpu := range c.CPUs.CPUs() {
		if cpu < len(h.st.CPUs) {
			h.st.CPUs[cpu].Failed = false
			h.countExit(cpu, statManagement) // the reset request
		}
	}
	if cpus := c.CPUs.CPUs(); len(cpus) > 0 {
		h.countExit(cpus[0], statPSCI) // the first CPU comes up through PSCI
	}
	h.print("Started cell \"%s\"\n", c.cfg.name)
	h.print("%s", startLines(c))
	h.commit()
	return nil
}

// startLines are the emulator's lines about the images a started cell runs
// (see the package comment).
func startLines(c *cellState) string {
	var b strings.Builder
	if len(c.Images) == 0 {
		fmt.Fprintf(&b, "emu: cell %q (id %d) has no images loaded\n", c.cfg.name, c.ID)
	}
	for _, img := range c.Images {
		fmt.Fprintf(&b, "emu: cell %q (id %d) region %d at %#x: %d bytes sha256 %s\n",
			c.cfg.name, c.ID, img.Region, img.Address, img.Size, img.SHA256)
	}
	return b.String()
}

func (h *Hypervisor) destroy(arg uint64, mem Memory) error {
	c, err := h.readID(arg, mem)
	if err != nil {
		return err
	}
	err = h.destroyCell(c)
	h.commit()
	return err
}

// destroyCell is the driver's cell_destroy: the hypercall, then the CPUs go
// back to the root cell.
func (h *Hypervisor) destroyCell(c *cellState) error {
	h.hypercall()
	if err := h.hvPrologue(c, true); err != nil {
		return err
	}
	h.print("Closing cell \"%s\"\n", c.cfg.name)
	root := h.root()
	root.CPUs = root.CPUs.Union(c.CPUs)
	for _, cpu := range c.CPUs.CPUs() {
		if cpu < len(h.st.CPUs) {
			h.st.CPUs[cpu] = cpuState{}
		}
	}
	h.st.Cells = slices.DeleteFunc(h.st.Cells, func(x *cellState) bool { return x == c })
	h.print("%s", h.poolLine("after cell destruction"))
	h.klog("Destroyed Jailhouse cell \"%s\"", c.cfg.name)
	return nil
}
