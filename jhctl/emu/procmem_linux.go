package emu

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// processMemory reads this process's own memory like copy_from_user: with
// process_vm_readv, which reports an unmapped address as EFAULT instead of
// crashing. Where that system call is not permitted (some seccomp
// profiles), it falls back to reading directly, which trusts the address.
type processMemory struct{}

func (processMemory) Read(addr, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if addr == 0 || addr+n < addr || n > 1<<40 {
		return nil, syscall.EFAULT
	}
	buf := make([]byte, n)
	got, err := unix.ProcessVMReadv(os.Getpid(),
		[]unix.Iovec{{Base: &buf[0], Len: n}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: int(n)}}, 0)
	switch {
	case err == unix.ENOSYS || err == unix.EPERM:
		return readDirect(addr, n), nil
	case err != nil:
		return nil, syscall.EFAULT
	case uint64(got) != n:
		return nil, syscall.EFAULT
	}
	return buf, nil
}
