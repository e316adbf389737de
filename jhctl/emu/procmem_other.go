//go:build !linux

package emu

import "syscall"

// processMemory reads this process's own memory directly; the address is
// trusted (only a null address faults).
type processMemory struct{}

func (processMemory) Read(addr, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if addr == 0 || addr+n < addr {
		return nil, syscall.EFAULT
	}
	return readDirect(addr, n), nil
}
