package cell

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Binary codec.
//
// Only configuration revision 14 (Jailhouse master and next since 2021) is
// read and written. Revision 12 (release v0.12) and the revision-13 fork
// layout carry the 6-byte signatures "JHCELL"/"JHSYST"; they are
// recognised and rejected with ErrBadSignature and a hint to regenerate the
// file, never misread. Decoding is strict so that a decoded configuration
// encodes back to the identical bytes: padding, reserved bits and unused
// union bytes must be zero, names must be NUL-terminated and NUL-padded,
// and the file length must equal the size its counts describe.

// sigRev1213 are the 6-byte signatures of revisions 12 and 13.
const (
	sigCellRev1213   = "JHCELL"
	sigSystemRev1213 = "JHSYST"
)

// archKnown reports whether a is a defined architecture byte.
func archKnown(a Arch) bool { return a <= ArchARM64 }

// cpuSetBytes is the CPU bitmap size Marshal writes.
func (c *Cell) cpuSetBytes() int {
	if c.CPUSetSize != 0 {
		return int(c.CPUSetSize)
	}
	return c.CPUs.BitmapSize()
}

// Size is the size in bytes of c as a stand-alone cell configuration: the
// descriptor followed by the CPU bitmap and every array.
func (c *Cell) Size() int {
	return cellDescSize + c.cpuSetBytes() +
		memRegionSize*len(c.MemRegions) +
		cacheRegionSize*len(c.CacheRegions) +
		irqchipSize*len(c.Irqchips) +
		pioRegionSize*len(c.PIORegions) +
		pciDeviceSize*len(c.PCIDevices) +
		pciCapSize*len(c.PCICaps) +
		streamIDSize*len(c.StreamIDs)
}

// Size is the size in bytes of the system configuration: the header up to
// the root cell, plus the root cell with its arrays.
func (s *System) Size() int { return systemPrefixSize + s.RootCell.Size() }

// Marshal encodes c as a cell configuration file ("JHCLL", c.Arch,
// revision 14). Counts and the CPU bitmap size are derived from the model.
func (c *Cell) Marshal() ([]byte, error) {
	if !archKnown(c.Arch) {
		return nil, fmt.Errorf("cell %q: architecture %d is not x86 (0), arm (1) or arm64 (2)", c.Name, c.Arch)
	}
	return c.marshal(CellSignature, c.Arch, Revision)
}

// MarshalRoot encodes c the way a root cell is embedded in a system
// configuration: signature, architecture and revision are zero (c.Arch is
// not stored) and the id is written as given. The result is the tail of
// System.Marshal from the root cell descriptor on.
func (c *Cell) MarshalRoot() ([]byte, error) { return c.marshal("", 0, 0) }

func (c *Cell) marshal(sig string, arch Arch, rev uint16) ([]byte, error) {
	d, bitmap, err := c.descriptor(sig, arch, rev)
	if err != nil {
		return nil, fmt.Errorf("cell %q: %w", c.Name, err)
	}
	size := c.Size()
	e := encoder{buf: make([]byte, 0, size)}
	e.put(&d)
	c.appendArrays(&e, bitmap)
	return e.finish(size)
}

// Marshal encodes s as a system configuration file ("JHSYS", s.Arch,
// revision 14) with the root cell embedded as MarshalRoot does.
func (s *System) Marshal() ([]byte, error) {
	if !archKnown(s.Arch) {
		return nil, fmt.Errorf("system configuration: architecture %d is not x86 (0), arm (1) or arm64 (2)", s.Arch)
	}
	w := wireSystem{
		Arch:              uint8(s.Arch),
		Revision:          Revision,
		Flags:             uint32(s.Flags),
		HypervisorMemory:  memRegionToWire(s.HypervisorMemory),
		DebugConsole:      consoleToWire(s.DebugConsole),
		PCIMMConfigBase:   s.PCIMMConfigBase,
		PCIMMConfigEndBus: s.PCIMMConfigEndBus,
		PCIDomain:         s.PCIDomain,
	}
	copy(w.Signature[:], SystemSignature)
	if s.PCIIsVirtual {
		w.PCIIsVirtual = 1
	}
	if len(s.IOMMUs) > MaxIOMMUUnits {
		return nil, fmt.Errorf("system configuration: %d IOMMU units, at most %d fit", len(s.IOMMUs), MaxIOMMUUnits)
	}
	for i, u := range s.IOMMUs {
		wu, err := u.wire()
		if err != nil {
			return nil, fmt.Errorf("system configuration: IOMMU unit %d: %w", i, err)
		}
		w.IOMMUs[i] = wu
	}
	if err := s.encodePlatform(&w.Platform); err != nil {
		return nil, fmt.Errorf("system configuration: %w", err)
	}
	d, bitmap, err := s.RootCell.descriptor("", 0, 0)
	if err != nil {
		return nil, fmt.Errorf("system configuration: root cell %q: %w", s.RootCell.Name, err)
	}
	w.RootCell = d
	size := s.Size()
	e := encoder{buf: make([]byte, 0, size)}
	e.put(&w)
	s.RootCell.appendArrays(&e, bitmap)
	return e.finish(size)
}

// encodePlatform writes the view of the platform union that s.Arch selects
// and refuses data in the other view, which would otherwise be dropped.
func (s *System) encodePlatform(dst *[platformSize]byte) error {
	var view any
	if s.Arch == ArchX86 {
		if s.ARM != (ARMPlatform{}) {
			return fmt.Errorf("ARM platform data set in an x86 configuration")
		}
		view = s.X86.wire()
	} else {
		if s.X86 != (X86Platform{}) {
			return fmt.Errorf("x86 platform data set in an ARM configuration")
		}
		view = s.ARM.wire()
	}
	_, err := binary.Encode(dst[:], binary.LittleEndian, view)
	return err
}

// wire encodes an IOMMU unit, filling the union by type. Union fields of
// the wrong type are an error because they could not be stored.
func (u IOMMU) wire() (wireIOMMU, error) {
	w := wireIOMMU{Type: uint32(u.Type), Base: u.Base, Size: u.Size}
	amd := u.AMDBDF != 0 || u.AMDBaseCap != 0 || u.AMDMSICap != 0 || u.AMDFeatures != 0
	pvu := u.TLBBase != 0 || u.TLBSize != 0
	var view any
	switch u.Type {
	case IOMMUAMD:
		if pvu {
			return w, fmt.Errorf("TLB fields are for PVU units (type %d), not AMD (type %d)", IOMMUPVU, u.Type)
		}
		view = wireIOMMUAMD{BDF: u.AMDBDF, BaseCap: u.AMDBaseCap, MSICap: u.AMDMSICap, Features: u.AMDFeatures}
	case IOMMUPVU:
		if amd {
			return w, fmt.Errorf("AMD fields are for AMD units (type %d), not PVU (type %d)", IOMMUAMD, u.Type)
		}
		view = wireIOMMUPVU{TLBBase: u.TLBBase, TLBSize: u.TLBSize}
	default:
		if amd || pvu {
			return w, fmt.Errorf("type %d has no AMD or TLB fields, but they are set", u.Type)
		}
		return w, nil
	}
	_, err := binary.Encode(w.Union[:], binary.LittleEndian, view)
	return w, err
}

// descriptor builds the cell descriptor and the CPU bitmap.
func (c *Cell) descriptor(sig string, arch Arch, rev uint16) (wireCellDesc, []byte, error) {
	d := wireCellDesc{
		Arch:            uint8(arch),
		Revision:        rev,
		ID:              c.ID,
		Flags:           uint32(c.Flags),
		VPCIIrqBase:     c.VPCIIrqBase,
		CPUResetAddress: c.CPUResetAddress,
		MsgReplyTimeout: c.MsgReplyTimeout,
		Console:         consoleToWire(c.Console),
	}
	copy(d.Signature[:], sig)
	var err error
	if d.Name, err = encodeName(c.Name); err != nil {
		return d, nil, err
	}
	if c.CPUSetSize > MaxCPUSetSize {
		return d, nil, fmt.Errorf("CPU set size %d is larger than %d bytes", c.CPUSetSize, MaxCPUSetSize)
	}
	size := c.cpuSetBytes()
	bitmap, err := c.CPUs.Bitmap(size)
	if err != nil {
		return d, nil, fmt.Errorf("CPUs %s: %w", c.CPUs, err)
	}
	d.CPUSetSize = uint32(size)
	counts := []struct {
		dst  *uint32
		n    int
		what string
	}{
		{&d.NumMemRegions, len(c.MemRegions), "memory regions"},
		{&d.NumCacheRegions, len(c.CacheRegions), "cache regions"},
		{&d.NumIrqchips, len(c.Irqchips), "irqchips"},
		{&d.NumPIORegions, len(c.PIORegions), "PIO regions"},
		{&d.NumPCIDevices, len(c.PCIDevices), "PCI devices"},
		{&d.NumPCICaps, len(c.PCICaps), "PCI capabilities"},
		{&d.NumStreamIDs, len(c.StreamIDs), "stream ids"},
	}
	for _, k := range counts {
		if uint64(k.n) > math.MaxUint32 {
			return d, nil, fmt.Errorf("%d %s do not fit a 32-bit count", k.n, k.what)
		}
		*k.dst = uint32(k.n)
	}
	return d, bitmap, nil
}

// appendArrays appends the CPU bitmap and the arrays in file order.
func (c *Cell) appendArrays(e *encoder, bitmap []byte) {
	e.buf = append(e.buf, bitmap...)
	e.put(toWire(c.MemRegions, memRegionToWire))
	e.put(toWire(c.CacheRegions, cacheRegionToWire))
	e.put(toWire(c.Irqchips, irqchipToWire))
	e.put(toWire(c.PIORegions, pioRegionToWire))
	e.put(toWire(c.PCIDevices, pciDeviceToWire))
	e.put(toWire(c.PCICaps, pciCapToWire))
	e.put(c.StreamIDs)
}

func toWire[M, W any](ms []M, conv func(M) W) []W {
	ws := make([]W, len(ms))
	for i, m := range ms {
		ws[i] = conv(m)
	}
	return ws
}

func encodeName(name string) ([nameFieldSize]byte, error) {
	var out [nameFieldSize]byte
	switch {
	case len(name) > MaxNameLen:
		return out, fmt.Errorf("name is %d bytes long, at most %d fit", len(name), MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return out, fmt.Errorf("name contains a NUL byte")
	case !utf8.ValidString(name):
		return out, fmt.Errorf("name is not valid UTF-8")
	}
	copy(out[:], name)
	return out, nil
}

// encoder appends little-endian records and keeps the first error.
type encoder struct {
	buf []byte
	err error
}

func (e *encoder) put(v any) {
	if e.err == nil {
		e.buf, e.err = binary.Append(e.buf, binary.LittleEndian, v)
	}
}

// finish checks that exactly the computed size was written, so a header
// can never describe more or less than the file holds.
func (e *encoder) finish(want int) ([]byte, error) {
	if e.err != nil {
		return nil, fmt.Errorf("encoding configuration: %w", e.err)
	}
	if len(e.buf) != want {
		return nil, fmt.Errorf("encoding configuration: wrote %d bytes, computed size is %d", len(e.buf), want)
	}
	return e.buf, nil
}

// UnmarshalCell decodes a revision-14 cell configuration file. It never
// panics; every failure is a *FormatError wrapping ErrTruncated,
// ErrBadSignature (also for revision-12/13 files), ErrBadRevision,
// ErrBadArch, ErrSizeMismatch (trailing bytes) or ErrBadField (non-zero
// padding or reserved bits, a bad name, cpu_set_size 0 or above 4096).
// A decoded cell re-encodes to exactly data.
func UnmarshalCell(data []byte) (*Cell, error) {
	if err := checkIdent(data, false); err != nil {
		return nil, err
	}
	if len(data) < cellDescSize {
		return nil, truncated(data, cellDescSize, headerField(len(data), false))
	}
	var w wireCellDesc
	if err := decodeAt(data, 0, &w, "cell descriptor"); err != nil {
		return nil, err
	}
	c, err := decodeCell(data, 0, &w, false)
	if err != nil {
		return nil, err
	}
	c.Arch = Arch(w.Arch)
	return c, nil
}

// UnmarshalSystem decodes a revision-14 system configuration file with the
// same checks as UnmarshalCell, plus: the root cell's signature,
// architecture and revision must be zero, unused bytes of the IOMMU and
// platform unions must be zero and pci_is_virtual must be 0 or 1. IOMMU
// slots after the last non-zero one are dropped. A decoded system
// re-encodes to exactly data.
func UnmarshalSystem(data []byte) (*System, error) {
	if err := checkIdent(data, true); err != nil {
		return nil, err
	}
	if len(data) < systemHeaderSize {
		return nil, truncated(data, systemHeaderSize, headerField(len(data), true))
	}
	var w wireSystem
	if err := decodeAt(data, 0, &w, "system header"); err != nil {
		return nil, err
	}
	s := &System{
		Arch:              Arch(w.Arch),
		Flags:             SystemFlags(w.Flags),
		HypervisorMemory:  w.HypervisorMemory.model(),
		DebugConsole:      w.DebugConsole.model(),
		PCIMMConfigBase:   w.PCIMMConfigBase,
		PCIMMConfigEndBus: w.PCIMMConfigEndBus,
		PCIIsVirtual:      w.PCIIsVirtual == 1,
		PCIDomain:         w.PCIDomain,
	}
	if w.PCIIsVirtual > 1 {
		return nil, formatErr(offPCIIsVirtual, "pci_is_virtual", ErrBadField, "value %d is neither 0 nor 1", w.PCIIsVirtual)
	}
	var err error
	if s.IOMMUs, err = decodeIOMMUs(&w.IOMMUs); err != nil {
		return nil, err
	}
	if err := s.decodePlatform(&w.Platform); err != nil {
		return nil, err
	}
	root, err := decodeCell(data, systemPrefixSize, &w.RootCell, true)
	if err != nil {
		return nil, err
	}
	s.RootCell = *root
	return s, nil
}

// checkIdent checks signature, revision and architecture, each only after
// checking that the input holds it.
func checkIdent(data []byte, system bool) error {
	sig, other, kind, otherKind, header := CellSignature, SystemSignature, "cell", "system", cellDescSize
	if system {
		sig, other, kind, otherKind, header = SystemSignature, CellSignature, "system", "cell", systemHeaderSize
	}
	for _, old := range []string{sigCellRev1213, sigSystemRev1213} {
		if bytes.HasPrefix(data, []byte(old)) {
			return formatErr(offSignature, "signature", ErrBadSignature,
				"revision 12/13 configuration (signature %s) is not supported: regenerate it for revision %d", old, Revision)
		}
	}
	n := min(len(data), len(sig))
	if string(data[:n]) != sig[:n] {
		if bytes.HasPrefix(data, []byte(other)) {
			return formatErr(offSignature, "signature", ErrBadSignature,
				"this is a %s configuration (%s), not a %s configuration (%s)", otherKind, other, kind, sig)
		}
		return formatErr(offSignature, "signature", ErrBadSignature,
			"got %q, want %q for a %s configuration", data[:n], sig, kind)
	}
	if len(data) < offRevision+2 {
		return truncated(data, uint64(header), headerField(len(data), system))
	}
	if rev := binary.LittleEndian.Uint16(data[offRevision:]); rev != Revision {
		return formatErr(offRevision, "revision", ErrBadRevision, "revision %d, only revision %d is supported", rev, Revision)
	}
	if a := Arch(data[offArch]); !archKnown(a) {
		return formatErr(offArch, "architecture", ErrBadArch, "%d is not x86 (0), arm (1) or arm64 (2)", a)
	}
	return nil
}

func truncated(data []byte, need uint64, field string) *FormatError {
	return formatErr(len(data), field, ErrTruncated, "need %d bytes, got %d", need, len(data))
}

// decodeAt decodes one fixed-size value at off. Callers check the length
// first; the check here only keeps a layout bug from panicking.
func decodeAt(data []byte, off int, v any, what string) error {
	if off > len(data) {
		return formatErr(len(data), what, ErrTruncated, "need more than %d bytes", len(data))
	}
	if _, err := binary.Decode(data[off:], binary.LittleEndian, v); err != nil {
		return formatErr(off, what, ErrTruncated, "%v", err)
	}
	return nil
}

// cellArray is one array of the cell layout, in file order.
type cellArray struct {
	name string
	n    uint64
	size uint64
}

// decodeCell decodes the cell whose descriptor w sits at base in data,
// together with its arrays, which must end exactly at the end of data.
func decodeCell(data []byte, base int, w *wireCellDesc, embedded bool) (*Cell, error) {
	pfx := ""
	if embedded {
		pfx = "root_cell."
		zero := []struct {
			off   int
			name  string
			isSet bool
		}{
			{offSignature, "signature", w.Signature != [5]byte{}},
			{offArch, "architecture", w.Arch != 0},
			{offRevision, "revision", w.Revision != 0},
		}
		for _, z := range zero {
			if z.isSet {
				return nil, formatErr(base+z.off, pfx+z.name, ErrBadField, "must be zero for the root cell of a system configuration")
			}
		}
	}
	name, nameAt, msg := decodeName(&w.Name)
	if msg != "" {
		return nil, formatErr(base+offName+nameAt, pfx+"name", ErrBadField, "%s", msg)
	}
	if w.CPUSetSize == 0 || w.CPUSetSize > MaxCPUSetSize {
		return nil, formatErr(base+offCPUSetSize, pfx+"cpu_set_size", ErrBadField,
			"%d bytes, must be 1 to %d", w.CPUSetSize, MaxCPUSetSize)
	}

	// Counts are at most 2^32-1 and element sizes at most 56, so the sum
	// cannot overflow a uint64.
	arrays := [...]cellArray{
		{"cpu_set", uint64(w.CPUSetSize), 1},
		{"memory_regions", uint64(w.NumMemRegions), memRegionSize},
		{"cache_regions", uint64(w.NumCacheRegions), cacheRegionSize},
		{"irqchips", uint64(w.NumIrqchips), irqchipSize},
		{"pio_regions", uint64(w.NumPIORegions), pioRegionSize},
		{"pci_devices", uint64(w.NumPCIDevices), pciDeviceSize},
		{"pci_caps", uint64(w.NumPCICaps), pciCapSize},
		{"stream_ids", uint64(w.NumStreamIDs), streamIDSize},
	}
	var start [len(arrays)]uint64
	end := uint64(base) + cellDescSize
	for i, a := range arrays {
		start[i] = end
		end += a.n * a.size
	}
	have := uint64(len(data))
	if have < end {
		return nil, truncated(data, end, pfx+arrayElemAt(arrays[:], start[0], have))
	}
	if have > end {
		return nil, formatErr(int(end), "end of configuration", ErrSizeMismatch,
			"%d trailing bytes after the %d bytes the header describes", have-end, end)
	}

	// Every array now lies inside data, so its offset fits an int.
	var at [len(arrays)]int
	for i, v := range start {
		at[i] = int(v)
	}

	c := &Cell{
		Name:            name,
		ID:              w.ID,
		Flags:           CellFlags(w.Flags),
		VPCIIrqBase:     w.VPCIIrqBase,
		CPUResetAddress: w.CPUResetAddress,
		MsgReplyTimeout: w.MsgReplyTimeout,
		Console:         w.Console.model(),
	}
	cpus, err := cpuset.FromBitmap(data[at[0] : at[0]+int(w.CPUSetSize)])
	if err != nil {
		return nil, formatErr(at[0], pfx+"cpu_set", ErrBadField, "%v", err)
	}
	c.CPUs = cpus
	// Keep a non-minimal bitmap size so that re-encoding is lossless.
	if int(w.CPUSetSize) != cpus.BitmapSize() {
		c.CPUSetSize = w.CPUSetSize
	}

	mems, err := decodeWire[wireMemRegion](data, at[1], w.NumMemRegions, pfx+"memory_regions")
	if err != nil {
		return nil, err
	}
	caches, err := decodeWire[wireCacheRegion](data, at[2], w.NumCacheRegions, pfx+"cache_regions")
	if err != nil {
		return nil, err
	}
	for i, r := range caches {
		if r.Padding != 0 {
			return nil, formatErr(at[2]+i*cacheRegionSize+offCachePadding,
				fmt.Sprintf("%scache_regions[%d].padding", pfx, i), ErrBadField, "padding byte is %#x, must be zero", r.Padding)
		}
	}
	irqchips, err := decodeWire[wireIrqchip](data, at[3], w.NumIrqchips, pfx+"irqchips")
	if err != nil {
		return nil, err
	}
	pios, err := decodeWire[wirePIORegion](data, at[4], w.NumPIORegions, pfx+"pio_regions")
	if err != nil {
		return nil, err
	}
	pcis, err := decodeWire[wirePCIDevice](data, at[5], w.NumPCIDevices, pfx+"pci_devices")
	if err != nil {
		return nil, err
	}
	for i, d := range pcis {
		if d.MSIFlags&msiFlagsReserved != 0 {
			return nil, formatErr(at[5]+i*pciDeviceSize+offPCIMSIFlags,
				fmt.Sprintf("%spci_devices[%d].msi_flags", pfx, i), ErrBadField,
				"reserved bits 2-7 are set (%#x), only 64-bit (0x1) and maskable (0x2) are defined", d.MSIFlags)
		}
	}
	caps, err := decodeWire[wirePCICap](data, at[6], w.NumPCICaps, pfx+"pci_caps")
	if err != nil {
		return nil, err
	}
	c.StreamIDs, err = decodeWire[uint32](data, at[7], w.NumStreamIDs, pfx+"stream_ids")
	if err != nil {
		return nil, err
	}
	c.MemRegions = toModel[MemRegion](mems)
	c.CacheRegions = toModel[CacheRegion](caches)
	c.Irqchips = toModel[Irqchip](irqchips)
	c.PIORegions = toModel[PIORegion](pios)
	c.PCIDevices = toModel[PCIDevice](pcis)
	c.PCICaps = toModel[PCICap](caps)
	return c, nil
}

// arrayElemAt names the array element that contains byte offset off, for
// truncation errors; first is where the first array starts.
func arrayElemAt(arrays []cellArray, first, off uint64) string {
	pos := first
	for _, a := range arrays {
		next := pos + a.n*a.size
		if off < next {
			if a.size == 1 {
				return a.name
			}
			return fmt.Sprintf("%s[%d]", a.name, (off-pos)/a.size)
		}
		pos = next
	}
	return "end of configuration"
}

// decodeWire decodes n consecutive records at off; nil when n is 0 so that
// decoded models compare equal to literals that leave a slice out.
func decodeWire[W any](data []byte, off int, n uint32, what string) ([]W, error) {
	if n == 0 {
		return nil, nil
	}
	out := make([]W, n)
	if err := decodeAt(data, off, out, what); err != nil {
		return nil, err
	}
	return out, nil
}

func toModel[M any, W interface{ model() M }](ws []W) []M {
	if ws == nil {
		return nil
	}
	out := make([]M, len(ws))
	for i, w := range ws {
		out[i] = w.model()
	}
	return out
}

// decodeName returns the name in a 32-byte name field, or the offset inside
// the field and a description of what is wrong with it.
func decodeName(raw *[nameFieldSize]byte) (string, int, string) {
	n := bytes.IndexByte(raw[:], 0)
	if n < 0 {
		return "", MaxNameLen, fmt.Sprintf("no NUL terminator in %d bytes: a name holds at most %d bytes", nameFieldSize, MaxNameLen)
	}
	for i := n + 1; i < nameFieldSize; i++ {
		if raw[i] != 0 {
			return "", i, fmt.Sprintf("byte %d after the NUL terminator is %#x, must be zero", i, raw[i])
		}
	}
	if !utf8.Valid(raw[:n]) {
		return "", 0, fmt.Sprintf("name %q is not valid UTF-8", raw[:n])
	}
	return string(raw[:n]), 0, ""
}

// decodeIOMMUs decodes the IOMMU slots up to the last non-zero one.
func decodeIOMMUs(units *[MaxIOMMUUnits]wireIOMMU) ([]IOMMU, error) {
	last := -1
	for i, u := range units {
		if u != (wireIOMMU{}) {
			last = i
		}
	}
	if last < 0 {
		return nil, nil
	}
	out := make([]IOMMU, last+1)
	for i := range out {
		u := units[i]
		m := IOMMU{Type: IOMMUType(u.Type), Base: u.Base, Size: u.Size}
		off := offIOMMUUnits + i*iommuSize + offIOMMUUnion
		name := fmt.Sprintf("iommu_units[%d]", i)
		switch m.Type {
		case IOMMUAMD:
			var a wireIOMMUAMD
			if err := decodeAt(u.Union[:], 0, &a, name); err != nil {
				return nil, err
			}
			if a.Unused != [4]byte{} {
				return nil, formatErr(off+8, name+".amd", ErrBadField, "bytes 8-11 of the union are unused by AMD units and must be zero")
			}
			m.AMDBDF, m.AMDBaseCap, m.AMDMSICap, m.AMDFeatures = a.BDF, a.BaseCap, a.MSICap, a.Features
		case IOMMUPVU:
			var p wireIOMMUPVU
			if err := decodeAt(u.Union[:], 0, &p, name); err != nil {
				return nil, err
			}
			m.TLBBase, m.TLBSize = p.TLBBase, p.TLBSize
		default:
			if i := firstNonZero(u.Union[:]); i >= 0 {
				return nil, formatErr(off+i, name, ErrBadField, "type %d has no union fields, bytes 16-27 must be zero", m.Type)
			}
		}
		out[i] = m
	}
	return out, nil
}

// decodePlatform reads the platform union as s.Arch selects.
func (s *System) decodePlatform(raw *[platformSize]byte) error {
	if s.Arch == ArchX86 {
		var x wireX86Platform
		if err := decodeAt(raw[:], 0, &x, "platform.x86"); err != nil {
			return err
		}
		if x.Padding != 0 {
			return formatErr(offPlatform+offX86Padding, "platform.x86.padding", ErrBadField, "padding byte is %#x, must be zero", x.Padding)
		}
		if i := firstNonZero(x.Unused[:]); i >= 0 {
			return formatErr(offPlatform+offX86Unused+i, "platform.x86", ErrBadField, "bytes after apic_khz are unused on x86 and must be zero")
		}
		s.X86 = x.model()
		return nil
	}
	var a wireARMPlatform
	if err := decodeAt(raw[:], 0, &a, "platform.arm"); err != nil {
		return err
	}
	if i := firstNonZero(a.Padding[:]); i >= 0 {
		return formatErr(offPlatform+offARMPadding+i, "platform.arm.padding", ErrBadField, "padding must be zero")
	}
	s.ARM = a.model()
	return nil
}

func firstNonZero(b []byte) int {
	for i, v := range b {
		if v != 0 {
			return i
		}
	}
	return -1
}
