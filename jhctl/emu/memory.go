package emu

import (
	"bytes"
	"syscall"
)

// Memory is the calling process's address space as the driver reads it
// with copy_from_user.
//
// Read returns a copy of the n bytes at addr, or an error: syscall.EFAULT
// when the memory cannot be read, or any other error of the transport (for
// example a CUSE server asking to fetch the range first). The emulator
// returns such an error unchanged and changes no state, so the operation can
// simply be repeated once the memory is available.
type Memory interface {
	Read(addr, n uint64) ([]byte, error)
}

// Space is a sparse fake address space, for calling Ioctl with records built
// by hand. Every mapping is followed by an unmapped gap, so reading past the
// end of a buffer faults as it would in a real process.
type Space struct {
	maps []mapping
	next uint64
}

type mapping struct {
	addr uint64
	data []byte
}

// spaceBase is the first address Space hands out; address 0 stays unmapped.
const spaceBase = 0x10000

// Map places a copy of data at a fresh address and returns the address. An
// empty buffer gets an address too, with nothing readable behind it.
func (s *Space) Map(data []byte) uint64 {
	if s.next == 0 {
		s.next = spaceBase
	}
	addr := s.next
	s.maps = append(s.maps, mapping{addr: addr, data: bytes.Clone(data)})
	// Leave at least one unmapped page after every buffer.
	s.next += (uint64(len(data))+0xfff)&^0xfff + 0x1000
	return addr
}

// Read implements Memory: a range must lie within one mapping.
func (s *Space) Read(addr, n uint64) ([]byte, error) {
	for _, m := range s.maps {
		if addr >= m.addr && addr-m.addr <= uint64(len(m.data)) && n <= uint64(len(m.data))-(addr-m.addr) {
			off := addr - m.addr
			return bytes.Clone(m.data[off : off+n]), nil
		}
	}
	if n == 0 {
		return nil, nil
	}
	return nil, syscall.EFAULT
}
