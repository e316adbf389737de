package emu

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record and element sizes of the revision-14 ABI (jailhouse-abi.md §1, §3.3).
const (
	cellDescSize   = 132
	sysHeaderSize  = 488
	rootDescOffset = sysHeaderSize - cellDescSize // 356
	memRegionSize  = 32
	cacheSize      = 12
	irqchipSize    = 32
	pioSize        = 4
	pciDeviceSize  = 56
	pciCapSize     = 8
	streamIDSize   = 4

	createRecSize = 16
	cellIDSize    = 40
	loadHdrSize   = 48
	imageRecSize  = 32

	nameFieldSize = 32
	revision      = 14
	archARM64     = 2
)

// Signatures compared by the driver (5 bytes, no terminator).
const (
	sigCell   = "JHCLL"
	sigSystem = "JHSYS"
)

// Flags the emulator acts on.
const (
	cellPassiveCommReg     = 0x00000001
	cellConsolePermitted   = 0x40000000
	cellConsoleActive      = 0x80000000
	sysVirtualDebugConsole = 0x0001

	memWrite      = 0x0002
	memCommRegion = 0x0020
	memLoadable   = 0x0040
	memRootShared = 0x0080

	pciTypeIvshmem = 0x03
)

var le = binary.LittleEndian

// desc holds the fields of a cell descriptor that the driver and the
// hypervisor read. Decoding is as lenient as theirs: padding, reserved bits
// and unknown flags are ignored, only the counts decide the layout.
type desc struct {
	sig        string
	arch       uint8
	revision   uint16
	name       string // up to the first NUL, byte 31 treated as NUL
	flags      uint32
	cpuSetSize uint32
	numMem     uint32
	numCache   uint32
	numIrq     uint32
	numPIO     uint32
	numPCI     uint32
	numCaps    uint32
	numStream  uint32
}

// parseDesc decodes a descriptor from the first cellDescSize bytes of b.
func parseDesc(b []byte) desc {
	return desc{
		sig:        string(b[0:5]),
		arch:       b[5],
		revision:   le.Uint16(b[6:]),
		name:       cName(b[8 : 8+nameFieldSize]),
		flags:      le.Uint32(b[44:]),
		cpuSetSize: le.Uint32(b[48:]),
		numMem:     le.Uint32(b[52:]),
		numCache:   le.Uint32(b[56:]),
		numIrq:     le.Uint32(b[60:]),
		numPIO:     le.Uint32(b[64:]),
		numPCI:     le.Uint32(b[68:]),
		numCaps:    le.Uint32(b[72:]),
		numStream:  le.Uint32(b[76:]),
	}
}

// cName reads a fixed name field the way the driver does after forcing its
// last byte to NUL: up to the first NUL, at most len(b)-1 bytes.
func cName(b []byte) string {
	b = b[:len(b)-1]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// size is the configuration size the counts imply (jailhouse-abi.md §1.7).
// Counts are 32-bit and elements at most 56 bytes, so it cannot overflow.
func (d desc) size() uint64 {
	return cellDescSize + uint64(d.cpuSetSize) +
		memRegionSize*uint64(d.numMem) + cacheSize*uint64(d.numCache) +
		irqchipSize*uint64(d.numIrq) + pioSize*uint64(d.numPIO) +
		pciDeviceSize*uint64(d.numPCI) + pciCapSize*uint64(d.numCaps) +
		streamIDSize*uint64(d.numStream)
}

type memRegion struct {
	phys, virt, size, flags uint64
}

// contains reports whether guest-physical address a lies in the region,
// with the driver's unsigned arithmetic.
func (m memRegion) contains(a uint64) bool { return a >= m.virt && a-m.virt < m.size }

type irqchip struct {
	address uint64
	pinBase uint32
}

type pciDevice struct {
	typ        uint8
	bdf        uint16
	numMSIX    uint16
	shmemStart uint32
	shmemDevID uint8
	shmemPeers uint8
}

// cellConfig is a decoded cell configuration: a cell file, or the root cell
// of a system file (then without signature, architecture and revision).
type cellConfig struct {
	desc
	raw      []byte // exactly desc.size() bytes
	bitmap   []byte
	mems     []memRegion
	irqchips []irqchip
	pcis     []pciDevice
}

// errShort reports a buffer shorter than the size its counts imply.
var errShort = errors.New("configuration is shorter than its counts imply")

// parseCellConfig decodes the configuration at the start of b. b may be
// longer (the driver never checks the length); the excess is ignored.
func parseCellConfig(b []byte) (*cellConfig, error) {
	if len(b) < cellDescSize {
		return nil, errShort
	}
	d := parseDesc(b)
	size := d.size()
	if uint64(len(b)) < size {
		return nil, fmt.Errorf("%w: %d bytes, counts imply %d", errShort, len(b), size)
	}
	c := &cellConfig{desc: d, raw: b[:size:size]}
	off := uint64(cellDescSize)
	c.bitmap = b[off : off+uint64(d.cpuSetSize)]
	off += uint64(d.cpuSetSize)
	for i := range uint64(d.numMem) {
		r := b[off+i*memRegionSize:]
		c.mems = append(c.mems, memRegion{
			phys: le.Uint64(r[0:]), virt: le.Uint64(r[8:]),
			size: le.Uint64(r[16:]), flags: le.Uint64(r[24:]),
		})
	}
	off += memRegionSize*uint64(d.numMem) + cacheSize*uint64(d.numCache)
	for i := range uint64(d.numIrq) {
		r := b[off+i*irqchipSize:]
		c.irqchips = append(c.irqchips, irqchip{address: le.Uint64(r[0:]), pinBase: le.Uint32(r[12:])})
	}
	off += irqchipSize*uint64(d.numIrq) + pioSize*uint64(d.numPIO)
	for i := range uint64(d.numPCI) {
		r := b[off+i*pciDeviceSize:]
		c.pcis = append(c.pcis, pciDevice{
			typ:        r[0],
			bdf:        le.Uint16(r[4:]),
			numMSIX:    le.Uint16(r[36:]),
			shmemStart: le.Uint32(r[48:]),
			shmemDevID: r[52],
			shmemPeers: r[53],
		})
	}
	return c, nil
}

// cpus returns the CPUs of the bitmap below limit (all of them if limit < 0).
func (c *cellConfig) cpus(limit int) []int {
	var out []int
	for i, v := range c.bitmap {
		for bit := range 8 {
			cpu := i*8 + bit
			if limit >= 0 && cpu >= limit {
				return out
			}
			if v&(1<<bit) != 0 {
				out = append(out, cpu)
			}
		}
	}
	return out
}

// sysConfig is a decoded system configuration.
type sysConfig struct {
	raw      []byte
	flags    uint32
	hvSize   uint64
	gicdBase uint64
	maintIRQ uint8
	root     *cellConfig
}

// systemSize is the size a system header implies: the platform part plus
// the root cell configuration.
func systemSize(hdr []byte) uint64 {
	return rootDescOffset + parseDesc(hdr[rootDescOffset:]).size()
}

func parseSystemConfig(b []byte) (*sysConfig, error) {
	if len(b) < sysHeaderSize {
		return nil, errShort
	}
	root, err := parseCellConfig(b[rootDescOffset:])
	if err != nil {
		return nil, err
	}
	return &sysConfig{
		raw:      b[:rootDescOffset+len(root.raw)],
		flags:    le.Uint32(b[8:]),
		hvSize:   le.Uint64(b[28:]),
		maintIRQ: b[312],
		gicdBase: le.Uint64(b[316:]),
		root:     root,
	}, nil
}

// cellID is a decoded cell-id record (40 bytes): id -1 means by name.
type cellID struct {
	id   int32
	name string
}

func parseCellID(b []byte) cellID {
	return cellID{id: int32(le.Uint32(b[0:])), name: cName(b[8 : 8+nameFieldSize])}
}

// encodeCellID builds a cell-id record as a caller would: the name is
// copied raw into the 32-byte field, without a terminator if it is longer.
func encodeCellID(id int32, name string) []byte {
	b := make([]byte, cellIDSize)
	le.PutUint32(b[0:], uint32(id))
	copy(b[8:8+nameFieldSize], name)
	return b
}
