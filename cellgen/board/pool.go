package board

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Fixed sizes of the ZIC layout.
const (
	// PageSize is the stage-2 page size every mapped region is a
	// multiple of.
	PageSize = 0x1000
	// NetWindowSize is the physical window of one ivshmem-net link: the
	// state table, then one 0x7f000-byte output section per peer at +0x1000
	// and +0x80000 (abi §1.5).
	NetWindowSize = 0x100000
	// CommRegionSize is the size of the communication region.
	CommRegionSize = 0x1000
	// MinLoaderSlot is the smallest loader slot: the reset code page and
	// the command-line page at +0x1000 the inmate library expects.
	MinLoaderSlot = 0x2000
)

// ErrInvalidPool is wrapped by every error about a pool's content.
var ErrInvalidPool = errors.New("invalid pool")

// Range is a span of physical or guest-physical memory.
type Range struct {
	Start uint64
	Size  uint64
}

// End is the first address after the range.
func (r Range) End() uint64 { return r.Start + r.Size }

// Overlaps reports whether both ranges share an address.
func (r Range) Overlaps(o Range) bool {
	return r.Size > 0 && o.Size > 0 && r.Start < o.End() && o.Start < r.End()
}

// Contains reports whether o lies entirely inside r.
func (r Range) Contains(o Range) bool {
	return o.Start >= r.Start && o.End() <= r.End()
}

// String formats the range as "0x70000000-0x77ffffff" (inclusive end).
func (r Range) String() string {
	if r.Size == 0 {
		return fmt.Sprintf("0x%x (empty)", r.Start)
	}
	return fmt.Sprintf("0x%x-0x%x", r.Start, r.End()-1)
}

// Pool is the set of resources a board hands out to ZICs, read from
// boards/<board>/pool.json. The JSON form (all keys required, unknown keys
// rejected, addresses as "0x..." strings):
//
//	board        board name, e.g. "qemu-arm64"
//	root         file name of the root cell the pool belongs to, beside
//	             pool.json: "system.json" (the upstream reference) or a
//	             derived root such as "system-zic.json"
//	cpus         CPU range list ZICs may receive, e.g. "1-15"
//	memory       {alignment, ranges: [{start, size}]}: ZIC main RAM.
//	             Requests are rounded up to alignment (a power of two, at
//	             least 4 KiB; 2 MiB lets stage 2 use block mappings) and
//	             placed best-fit; ranges are aligned
//	loader       {start, size, slot_size}: an area cut into slots, one per
//	             ZIC, mapped at guest.loader for reset code and the
//	             command line at +0x1000
//	guest        {loader, ram, comm_region}: guest-physical addresses of
//	             the loader slot, of main RAM and of the communication
//	             region, the same in every ZIC of the board
//	gicd         GIC distributor base the irqchip entries name
//	console      {address, size, irq, type, flags}: the UART ZICs share
//	             with the root cell (type and flags use the cell JSON
//	             names, e.g. "pl011", ["mmio", "regdist4"])
//	ivshmem_net  list of {bdf, window, vpci_irq_base, intx, root_intx}: one
//	             ivshmem-net link to the root cell per entry, the ZIC being
//	             peer 1. intx = 32 + vpci_irq_base + ((bdf >> 3) & 3) is the
//	             line the ZIC receives (it rotates with the slot);
//	             root_intx is the same line seen from the root cell
//	rpus         list of {id, name}: Cortex-R cores for rpu_req (may be empty)
type Pool struct {
	Board string
	// Root is the file name of the root cell configuration this pool is
	// consistent with.
	Root string
	CPUs cpuset.Set
	// Alignment is the allocation unit of main RAM.
	Alignment uint64
	Memory    []Range
	Loader    LoaderArea
	Guest     GuestLayout
	GICD      uint64
	Console   UART
	Net       []NetSlot
	RPUs      []RPU
}

// LoaderArea is the physical area the loader slots are cut from.
type LoaderArea struct {
	Range
	SlotSize uint64
}

// Slots is the number of loader slots.
func (l LoaderArea) Slots() int { return int(l.Size / l.SlotSize) }

// Slot returns the physical range of loader slot i.
func (l LoaderArea) Slot(i int) Range {
	return Range{Start: l.Start + uint64(i)*l.SlotSize, Size: l.SlotSize}
}

// GuestLayout holds the guest-physical addresses shared by every ZIC.
type GuestLayout struct {
	// Loader is where the loader slot appears (0: upstream inmates and
	// the Linux loader are linked there).
	Loader uint64
	// RAM is where main RAM appears, whatever its physical address, so
	// an image linked for it runs in any allocation.
	RAM uint64
	// CommRegion is the communication region's address.
	CommRegion uint64
}

// UART is the console UART ZICs share with the root cell.
type UART struct {
	Address uint64
	Size    uint64
	// IRQ is the UART's interrupt id. It stays with the root cell: a
	// shared UART is written by polling.
	IRQ   uint32
	Type  cell.ConsoleType
	Flags cell.ConsoleFlags
}

// Region returns the UART's MMIO region.
func (u UART) Region() Range { return Range{Start: u.Address, Size: u.Size} }

// NetSlot is one ivshmem-net link between the root cell (peer 0) and a ZIC
// (peer 1).
type NetSlot struct {
	BDF    uint16
	Window uint64
	// VPCIIrqBase is the ZIC's vpci_irq_base.
	VPCIIrqBase uint32
	// INTx is the interrupt id the link raises in the ZIC:
	// 32 + VPCIIrqBase + ((BDF >> 3) & 3).
	INTx uint32
	// RootINTx is the interrupt id the link raises in the root cell.
	RootINTx uint32
}

// WindowRange returns the slot's physical window.
func (s NetSlot) WindowRange() Range { return Range{Start: s.Window, Size: NetWindowSize} }

// RPU is a Cortex-R core a ZIC may receive.
type RPU struct {
	ID   int
	Name string
}

// INTx returns the interrupt id an ivshmem device at bdf raises in a cell
// with the given vpci_irq_base: the INTx pin rotates with the device
// number (abi §2.3).
func INTx(vpciIrqBase uint32, bdf uint16) uint32 {
	return 32 + vpciIrqBase + uint32((bdf>>3)&3)
}

// NetRegions returns the four memory regions of an ivshmem-net link with
// its window at base, as seen by peer (0 or 1): state table, empty common
// section, output of peer 0, output of peer 1; only the own output section
// is writable (abi §1.5).
func NetRegions(base uint64, peer int) [4]cell.MemRegion {
	ro := cell.MemRead | cell.MemRootShared
	out := [2]cell.MemFlags{ro, ro}
	out[peer&1] |= cell.MemWrite
	return [4]cell.MemRegion{
		{PhysStart: base, VirtStart: base, Size: 0x1000, Flags: ro},
		{},
		{PhysStart: base + 0x1000, VirtStart: base + 0x1000, Size: 0x7f000, Flags: out[0]},
		{PhysStart: base + 0x80000, VirtStart: base + 0x80000, Size: 0x7f000, Flags: out[1]},
	}
}

// ParseHex reads a "0x..." address.
func ParseHex(s string) (uint64, error) {
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok || digits == "" || strings.ContainsAny(digits, "+-_") {
		return 0, fmt.Errorf("%q is not a hex number such as \"0x1000\"", s)
	}
	v, err := strconv.ParseUint(digits, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a 64-bit hex number", s)
	}
	return v, nil
}

// FormatHex formats v as "0x..." in lower case.
func FormatHex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// Console type and flag names, as in the cell JSON form.
var (
	consoleTypes = map[string]cell.ConsoleType{
		"8250": cell.Console8250, "pl011": cell.ConsolePL011, "xuartps": cell.ConsoleXUARTPS,
		"mvebu": cell.ConsoleMVEBU, "hscif": cell.ConsoleHSCIF, "scifa": cell.ConsoleSCIFA,
		"imx": cell.ConsoleIMX, "imx_lpuart": cell.ConsoleIMXLPUART, "scif": cell.ConsoleSCIF,
	}
	consoleFlags = map[string]cell.ConsoleFlags{
		"mmio": cell.ConsoleAccessMMIO, "regdist4": cell.ConsoleRegDist4,
		"inverted_gate": cell.ConsoleInvertedClock, "mdr_quirk": cell.ConsoleMDRQuirk,
	}
)

// The JSON shape of pool.json. Pointers tell a missing key from a zero.
type (
	poolJSON struct {
		Board   *string      `json:"board"`
		Root    *string      `json:"root"`
		CPUs    *string      `json:"cpus"`
		Memory  *memoryJSON  `json:"memory"`
		Loader  *loaderJSON  `json:"loader"`
		Guest   *guestJSON   `json:"guest"`
		GICD    *string      `json:"gicd"`
		Console *consoleJSON `json:"console"`
		Net     *[]netJSON   `json:"ivshmem_net"`
		RPUs    *[]rpuJSON   `json:"rpus"`
	}
	memoryJSON struct {
		Alignment *string     `json:"alignment"`
		Ranges    []rangeJSON `json:"ranges"`
	}
	rangeJSON struct {
		Start *string `json:"start"`
		Size  *string `json:"size"`
	}
	loaderJSON struct {
		Start    *string `json:"start"`
		Size     *string `json:"size"`
		SlotSize *string `json:"slot_size"`
	}
	guestJSON struct {
		Loader     *string `json:"loader"`
		RAM        *string `json:"ram"`
		CommRegion *string `json:"comm_region"`
	}
	consoleJSON struct {
		Address *string  `json:"address"`
		Size    *string  `json:"size"`
		IRQ     *uint32  `json:"irq"`
		Type    *string  `json:"type"`
		Flags   []string `json:"flags"`
	}
	netJSON struct {
		BDF         *string `json:"bdf"`
		Window      *string `json:"window"`
		VPCIIrqBase *uint32 `json:"vpci_irq_base"`
		INTx        *uint32 `json:"intx"`
		RootINTx    *uint32 `json:"root_intx"`
	}
	rpuJSON struct {
		ID   *int    `json:"id"`
		Name *string `json:"name"`
	}
)

// poolParser keeps the first error, so conversions read straight through.
type poolParser struct{ err error }

func (p *poolParser) fail(field, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s: %s", ErrInvalidPool, field, fmt.Sprintf(format, args...))
	}
}

func (p *poolParser) str(field string, v *string) string {
	if v == nil {
		p.fail(field, "missing")
		return ""
	}
	return *v
}

func (p *poolParser) hex(field string, v *string) uint64 {
	if v == nil {
		p.fail(field, "missing")
		return 0
	}
	n, err := ParseHex(*v)
	if err != nil {
		p.fail(field, "%v", err)
	}
	return n
}

func (p *poolParser) num(field string, v *uint32) uint32 {
	if v == nil {
		p.fail(field, "missing")
		return 0
	}
	return *v
}

// ParsePool reads and validates pool.json. Errors wrap ErrInvalidPool and
// name the field, e.g. "memory.ranges[1].size: ...". It checks the pool on
// its own; Validate checks it against the root cell.
func ParsePool(data []byte) (*Pool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw poolJSON
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPool, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidPool)
	}
	var p poolParser
	pool := &Pool{
		Board: p.str("board", raw.Board),
		Root:  p.str("root", raw.Root),
		GICD:  p.hex("gicd", raw.GICD),
	}
	if cpus := p.str("cpus", raw.CPUs); p.err == nil {
		set, err := cpuset.Parse(cpus)
		if err != nil {
			p.fail("cpus", "%v", err)
		}
		pool.CPUs = set
	}
	if raw.Memory == nil {
		p.fail("memory", "missing")
	} else {
		pool.Alignment = p.hex("memory.alignment", raw.Memory.Alignment)
		if raw.Memory.Ranges == nil {
			p.fail("memory.ranges", "missing")
		}
		for i, r := range raw.Memory.Ranges {
			f := fmt.Sprintf("memory.ranges[%d]", i)
			pool.Memory = append(pool.Memory, Range{Start: p.hex(f+".start", r.Start), Size: p.hex(f+".size", r.Size)})
		}
	}
	if raw.Loader == nil {
		p.fail("loader", "missing")
	} else {
		pool.Loader = LoaderArea{
			Range:    Range{Start: p.hex("loader.start", raw.Loader.Start), Size: p.hex("loader.size", raw.Loader.Size)},
			SlotSize: p.hex("loader.slot_size", raw.Loader.SlotSize),
		}
	}
	if raw.Guest == nil {
		p.fail("guest", "missing")
	} else {
		pool.Guest = GuestLayout{
			Loader:     p.hex("guest.loader", raw.Guest.Loader),
			RAM:        p.hex("guest.ram", raw.Guest.RAM),
			CommRegion: p.hex("guest.comm_region", raw.Guest.CommRegion),
		}
	}
	if raw.Console == nil {
		p.fail("console", "missing")
	} else {
		c := raw.Console
		pool.Console = UART{
			Address: p.hex("console.address", c.Address),
			Size:    p.hex("console.size", c.Size),
			IRQ:     p.num("console.irq", c.IRQ),
		}
		if t := p.str("console.type", c.Type); p.err == nil {
			typ, ok := consoleTypes[t]
			if !ok {
				p.fail("console.type", "unknown UART type %q", t)
			}
			pool.Console.Type = typ
		}
		if c.Flags == nil {
			p.fail("console.flags", "missing")
		}
		for i, f := range c.Flags {
			bit, ok := consoleFlags[f]
			if !ok {
				p.fail(fmt.Sprintf("console.flags[%d]", i), "unknown console flag %q", f)
			}
			pool.Console.Flags |= bit
		}
	}
	if raw.Net == nil {
		p.fail("ivshmem_net", "missing")
	} else {
		for i, s := range *raw.Net {
			f := fmt.Sprintf("ivshmem_net[%d]", i)
			slot := NetSlot{
				Window:      p.hex(f+".window", s.Window),
				VPCIIrqBase: p.num(f+".vpci_irq_base", s.VPCIIrqBase),
				INTx:        p.num(f+".intx", s.INTx),
				RootINTx:    p.num(f+".root_intx", s.RootINTx),
			}
			if b := p.str(f+".bdf", s.BDF); p.err == nil {
				bdf, err := cell.ParseBDF(b)
				if err != nil {
					p.fail(f+".bdf", "%v", err)
				}
				slot.BDF = bdf
			}
			pool.Net = append(pool.Net, slot)
		}
	}
	if raw.RPUs == nil {
		p.fail("rpus", "missing")
	} else {
		for i, r := range *raw.RPUs {
			f := fmt.Sprintf("rpus[%d]", i)
			rpu := RPU{Name: p.str(f+".name", r.Name)}
			if r.ID == nil {
				p.fail(f+".id", "missing")
			} else {
				rpu.ID = *r.ID
			}
			pool.RPUs = append(pool.RPUs, rpu)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := pool.check(); err != nil {
		return nil, err
	}
	return pool, nil
}

// check validates the pool on its own: alignment, sizes, overlaps, the
// INTx rotation and the guest layout.
func (pool *Pool) check() error {
	var p poolParser
	if pool.Board == "" {
		p.fail("board", "empty")
	}
	if pool.Root == "" || strings.ContainsAny(pool.Root, `/\`) || pool.Root == "." || pool.Root == ".." {
		p.fail("root", "%q is not a file name beside pool.json", pool.Root)
	}
	if pool.CPUs.IsEmpty() {
		p.fail("cpus", "no CPU")
	}
	a := pool.Alignment
	if a < PageSize || bits.OnesCount64(a) != 1 {
		p.fail("memory.alignment", "0x%x is not a power of two of at least 0x%x", a, PageSize)
		return p.err
	}
	if len(pool.Memory) == 0 {
		p.fail("memory.ranges", "no range")
	}
	for i, r := range pool.Memory {
		f := fmt.Sprintf("memory.ranges[%d]", i)
		switch {
		case r.Size == 0:
			p.fail(f+".size", "zero")
		case r.Start%a != 0 || r.Size%a != 0:
			p.fail(f, "%v is not aligned to 0x%x", r, a)
		case r.End() < r.Start:
			p.fail(f, "wraps around")
		}
		for j, o := range pool.Memory[:i] {
			if r.Overlaps(o) {
				p.fail(f, "%v overlaps memory.ranges[%d] %v", r, j, o)
			}
		}
	}
	l := pool.Loader
	switch {
	case l.SlotSize < MinLoaderSlot || l.SlotSize%PageSize != 0:
		p.fail("loader.slot_size", "0x%x is not a multiple of 0x%x of at least 0x%x", l.SlotSize, PageSize, MinLoaderSlot)
	case l.Start%PageSize != 0 || l.Size == 0 || l.Size%l.SlotSize != 0 || l.End() < l.Start:
		p.fail("loader", "%v is not a page-aligned whole number of 0x%x-byte slots", l.Range, l.SlotSize)
	}
	for i, r := range pool.Memory {
		if r.Overlaps(l.Range) {
			p.fail("loader", "%v overlaps memory.ranges[%d] %v", l.Range, i, r)
		}
	}
	if pool.Guest.RAM%a != 0 {
		// Equal offsets modulo the alignment let stage 2 map main RAM
		// with blocks.
		p.fail("guest.ram", "0x%x is not aligned to memory.alignment 0x%x", pool.Guest.RAM, a)
	}
	if pool.Guest.Loader%PageSize != 0 || pool.Guest.CommRegion%PageSize != 0 {
		p.fail("guest", "loader 0x%x and comm_region 0x%x must be page-aligned", pool.Guest.Loader, pool.Guest.CommRegion)
	}
	c := pool.Console
	if c.Address%PageSize != 0 || c.Size == 0 || c.Size%PageSize != 0 {
		p.fail("console", "UART region %v is not whole pages", c.Region())
	}
	if c.IRQ < 32 || c.IRQ > 1019 {
		p.fail("console.irq", "%d is not an SPI (32..1019)", c.IRQ)
	}
	for i, s := range pool.Net {
		f := fmt.Sprintf("ivshmem_net[%d]", i)
		dev := (s.BDF >> 3) & 0x1f
		switch {
		case s.BDF>>8 != 0 || s.BDF&7 != 0 || dev == 0:
			// The virtual host bridge has bus 0 only, and slot 0
			// is the upstream ivshmem demo.
			p.fail(f+".bdf", "%s: want bus 00, function 0 and a device number of 1 or more", cell.FormatBDF(s.BDF))
		case s.Window%NetWindowSize != 0:
			p.fail(f+".window", "0x%x is not aligned to 0x%x", s.Window, NetWindowSize)
		case s.INTx != INTx(s.VPCIIrqBase, s.BDF):
			p.fail(f+".intx", "%d, but slot %s with vpci_irq_base %d raises %d (32 + base + (device & 3))",
				s.INTx, cell.FormatBDF(s.BDF), s.VPCIIrqBase, INTx(s.VPCIIrqBase, s.BDF))
		case s.INTx > 1019 || s.RootINTx < 32 || s.RootINTx > 1019:
			p.fail(f, "interrupt ids %d and %d must be SPIs (32..1019)", s.INTx, s.RootINTx)
		case s.INTx == c.IRQ || s.RootINTx == c.IRQ:
			p.fail(f, "interrupt id of the link is the console UART's %d", c.IRQ)
		case s.INTx == s.RootINTx:
			p.fail(f+".intx", "%d is also the root cell's line for the link", s.INTx)
		}
		for j, o := range pool.Net[:i] {
			switch {
			case o.BDF == s.BDF:
				p.fail(f+".bdf", "%s repeats ivshmem_net[%d]", cell.FormatBDF(s.BDF), j)
			case o.WindowRange().Overlaps(s.WindowRange()):
				p.fail(f+".window", "0x%x overlaps ivshmem_net[%d]", s.Window, j)
			case o.INTx == s.INTx || o.INTx == s.RootINTx || o.RootINTx == s.INTx:
				p.fail(f, "interrupt ids %d/%d collide with ivshmem_net[%d] (%d/%d)", s.INTx, s.RootINTx, j, o.INTx, o.RootINTx)
			}
		}
		for j, r := range pool.Memory {
			if r.Overlaps(s.WindowRange()) {
				p.fail(f+".window", "%v overlaps memory.ranges[%d]", s.WindowRange(), j)
			}
		}
		if l.Overlaps(s.WindowRange()) {
			p.fail(f+".window", "%v overlaps the loader area", s.WindowRange())
		}
	}
	for i, r := range pool.RPUs {
		if r.ID < 0 || r.Name == "" || slices.ContainsFunc(pool.RPUs[:i], func(o RPU) bool { return o.ID == r.ID }) {
			p.fail(fmt.Sprintf("rpus[%d]", i), "id %d must be unique and not negative, name not empty", r.ID)
		}
	}
	if p.err != nil {
		return p.err
	}
	return pool.checkGuest()
}

// checkGuest makes sure no two regions of a ZIC can overlap in its guest
// address space, whatever it is granted: main RAM may be as large as the
// largest memory range.
func (pool *Pool) checkGuest() error {
	var largest uint64
	for _, r := range pool.Memory {
		largest = max(largest, r.Size)
	}
	type span struct {
		what string
		r    Range
	}
	spans := []span{
		{"loader slot (guest.loader)", Range{pool.Guest.Loader, pool.Loader.SlotSize}},
		{"main RAM (guest.ram, up to the largest memory range)", Range{pool.Guest.RAM, largest}},
		{"communication region (guest.comm_region)", Range{pool.Guest.CommRegion, CommRegionSize}},
		{"console UART", pool.Console.Region()},
	}
	for i, s := range pool.Net {
		// ivshmem windows are mapped at their physical address.
		spans = append(spans, span{fmt.Sprintf("ivshmem_net[%d] window", i), s.WindowRange()})
	}
	for i, s := range spans {
		if s.r.End() < s.r.Start {
			return fmt.Errorf("%w: guest: %s wraps around", ErrInvalidPool, s.what)
		}
		for _, o := range spans[:i] {
			if s.r.Overlaps(o.r) {
				return fmt.Errorf("%w: guest: %s %v overlaps %s %v", ErrInvalidPool, s.what, s.r, o.what, o.r)
			}
		}
	}
	return nil
}

// Slot returns the pool's ivshmem-net slot with the given bdf.
func (pool *Pool) Slot(bdf uint16) (NetSlot, bool) {
	i := slices.IndexFunc(pool.Net, func(s NetSlot) bool { return s.BDF == bdf })
	if i < 0 {
		return NetSlot{}, false
	}
	return pool.Net[i], true
}
