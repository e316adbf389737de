package emu

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestProcessMemory(t *testing.T) {
	buf := []byte("caller memory")
	addr := uint64(uintptr(unsafe.Pointer(&buf[0])))
	got, err := processMemory{}.Read(addr+7, 6)
	if err != nil || !bytes.Equal(got, []byte("memory")) {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if _, err := (processMemory{}).Read(0, 8); err != syscall.EFAULT {
		t.Errorf("null address: %v, want EFAULT", err)
	}
	// Unmapped memory faults instead of crashing where process_vm_readv
	// is allowed.
	probe := make([]byte, 1)
	_, err = unix.ProcessVMReadv(os.Getpid(), []unix.Iovec{{Base: &probe[0], Len: 1}},
		[]unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&buf[0])), Len: 1}}, 0)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("process_vm_readv not permitted: %v", err)
	}
	if _, err := (processMemory{}).Read(0x1000, 8); err != syscall.EFAULT {
		t.Errorf("unmapped address: %v, want EFAULT", err)
	}
}
