package cuse

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcodes of the FUSE protocol that a CUSE device receives
// (include/uapi/linux/fuse.h).
const (
	OpOpen      = 14
	OpRead      = 15
	OpWrite     = 16
	OpRelease   = 18
	OpFsync     = 20
	OpFlush     = 25
	OpInterrupt = 36
	OpIoctl     = 39
	OpPoll      = 40
	OpCuseInit  = 4096
)

// Protocol version. The kernel requires major 7 and minor >= 11 in the
// CUSE_INIT reply; retry iovecs in the fuse_ioctl_iovec form need 7.16.
const (
	KernelVersion = 7
	MinMinor      = 16
	MaxMinor      = 31
)

// Flags.
const (
	CuseUnrestrictedIoctl = 1 << 0 // cuse_init flags

	IoctlCompat       = 1 << 0 // fuse_ioctl_in.flags: 32-bit caller
	IoctlUnrestricted = 1 << 1
	IoctlRetry        = 1 << 2 // fuse_ioctl_out.flags
	IoctlMaxIovecs    = 256    // FUSE_IOCTL_MAX_IOV

	oNonblock = 0o4000 // O_NONBLOCK in fuse_read_in.flags (asm-generic)
)

// Message sizes.
const (
	InHeaderSize    = 40
	OutHeaderSize   = 16
	cuseInitInSize  = 16
	CuseInitOutSize = 72
	openInSize      = 8
	openOutSize     = 16
	readInSize      = 40
	releaseInSize   = 24
	interruptInSize = 8
	IoctlInSize     = 32
	IoctlOutSize    = 16
	IovecSize       = 16
	// InitInfoMax bounds the device-info strings after cuse_init_out.
	InitInfoMax = 4096
)

var le = binary.LittleEndian

// InHeader is struct fuse_in_header.
type InHeader struct {
	Len    uint32
	Opcode uint32
	Unique uint64
	NodeID uint64
	UID    uint32
	GID    uint32
	PID    uint32
}

// errShortMessage reports a request shorter than its opcode needs.
var errShortMessage = errors.New("cuse: short message")

// ParseInHeader decodes the header of a request and checks its length
// against the bytes read.
func ParseInHeader(b []byte) (InHeader, error) {
	if len(b) < InHeaderSize {
		return InHeader{}, fmt.Errorf("%w: %d bytes", errShortMessage, len(b))
	}
	h := InHeader{
		Len:    le.Uint32(b[0:]),
		Opcode: le.Uint32(b[4:]),
		Unique: le.Uint64(b[8:]),
		NodeID: le.Uint64(b[16:]),
		UID:    le.Uint32(b[24:]),
		GID:    le.Uint32(b[28:]),
		PID:    le.Uint32(b[32:]),
	}
	if int(h.Len) != len(b) {
		return h, fmt.Errorf("cuse: header says %d bytes, read %d", h.Len, len(b))
	}
	return h, nil
}

// AppendInHeader encodes a request header (for tests and fake kernels).
func AppendInHeader(b []byte, h InHeader) []byte {
	b = le.AppendUint32(b, h.Len)
	b = le.AppendUint32(b, h.Opcode)
	b = le.AppendUint64(b, h.Unique)
	b = le.AppendUint64(b, h.NodeID)
	b = le.AppendUint32(b, h.UID)
	b = le.AppendUint32(b, h.GID)
	b = le.AppendUint32(b, h.PID)
	return le.AppendUint32(b, 0) // total_extlen, padding
}

// reply encodes a reply: fuse_out_header with status 0 or a negative
// errno, followed by the payload.
func reply(unique uint64, status int32, payload ...[]byte) []byte {
	n := OutHeaderSize
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = le.AppendUint32(b, uint32(n))
	b = le.AppendUint32(b, uint32(status))
	b = le.AppendUint64(b, unique)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// OutHeader is struct fuse_out_header; Error is 0 or a negative errno.
type OutHeader struct {
	Len    uint32
	Error  int32
	Unique uint64
}

// ParseOutHeader decodes the header of a reply (for fake kernels).
func ParseOutHeader(b []byte) (OutHeader, error) {
	if len(b) < OutHeaderSize {
		return OutHeader{}, fmt.Errorf("%w: reply of %d bytes", errShortMessage, len(b))
	}
	h := OutHeader{Len: le.Uint32(b[0:]), Error: int32(le.Uint32(b[4:])), Unique: le.Uint64(b[8:])}
	if int(h.Len) != len(b) {
		return h, fmt.Errorf("cuse: reply header says %d bytes, got %d", h.Len, len(b))
	}
	return h, nil
}

// InitOut is struct cuse_init_out.
type InitOut struct {
	Major, Minor       uint32
	Flags              uint32
	MaxRead, MaxWrite  uint32
	DevMajor, DevMinor uint32
}

func (o InitOut) append(b []byte) []byte {
	for _, v := range []uint32{o.Major, o.Minor, 0, o.Flags, o.MaxRead, o.MaxWrite, o.DevMajor, o.DevMinor} {
		b = le.AppendUint32(b, v)
	}
	return append(b, make([]byte, 40)...) // spare[10]
}

// ParseInitOut decodes cuse_init_out (for fake kernels).
func ParseInitOut(b []byte) (InitOut, error) {
	if len(b) < CuseInitOutSize {
		return InitOut{}, errShortMessage
	}
	return InitOut{
		Major: le.Uint32(b[0:]), Minor: le.Uint32(b[4:]), Flags: le.Uint32(b[12:]),
		MaxRead: le.Uint32(b[16:]), MaxWrite: le.Uint32(b[20:]),
		DevMajor: le.Uint32(b[24:]), DevMinor: le.Uint32(b[28:]),
	}, nil
}

// IoctlIn is struct fuse_ioctl_in.
type IoctlIn struct {
	FH      uint64
	Flags   uint32
	Cmd     uint32
	Arg     uint64
	InSize  uint32
	OutSize uint32
}

func parseIoctlIn(b []byte) IoctlIn {
	return IoctlIn{
		FH: le.Uint64(b[0:]), Flags: le.Uint32(b[8:]), Cmd: le.Uint32(b[12:]),
		Arg: le.Uint64(b[16:]), InSize: le.Uint32(b[24:]), OutSize: le.Uint32(b[28:]),
	}
}

// Append encodes the structure (for fake kernels).
func (in IoctlIn) Append(b []byte) []byte {
	b = le.AppendUint64(b, in.FH)
	b = le.AppendUint32(b, in.Flags)
	b = le.AppendUint32(b, in.Cmd)
	b = le.AppendUint64(b, in.Arg)
	b = le.AppendUint32(b, in.InSize)
	return le.AppendUint32(b, in.OutSize)
}

// Iovec is struct fuse_ioctl_iovec: a range of the caller's memory.
type Iovec struct {
	Base, Len uint64
}

// IoctlOut is struct fuse_ioctl_out, followed (on retry) by the in and out
// iovecs.
type IoctlOut struct {
	Result  int32
	Flags   uint32
	InIovs  []Iovec
	OutIovs []Iovec
}

func (o IoctlOut) encode() []byte {
	b := make([]byte, 0, IoctlOutSize+IovecSize*(len(o.InIovs)+len(o.OutIovs)))
	b = le.AppendUint32(b, uint32(o.Result))
	b = le.AppendUint32(b, o.Flags)
	b = le.AppendUint32(b, uint32(len(o.InIovs)))
	b = le.AppendUint32(b, uint32(len(o.OutIovs)))
	for _, v := range append(o.InIovs, o.OutIovs...) {
		b = le.AppendUint64(b, v.Base)
		b = le.AppendUint64(b, v.Len)
	}
	return b
}

// ParseIoctlOut decodes fuse_ioctl_out and its iovecs, with the kernel's
// checks: at most 256 iovecs, and exactly their bytes after the header.
func ParseIoctlOut(b []byte) (IoctlOut, error) {
	if len(b) < IoctlOutSize {
		return IoctlOut{}, errShortMessage
	}
	o := IoctlOut{Result: int32(le.Uint32(b[0:])), Flags: le.Uint32(b[4:])}
	nin, nout := le.Uint32(b[8:]), le.Uint32(b[12:])
	if o.Flags&IoctlRetry == 0 {
		return o, nil
	}
	if nin > IoctlMaxIovecs || nout > IoctlMaxIovecs || nin+nout > IoctlMaxIovecs {
		return o, errors.New("cuse: too many iovecs")
	}
	rest := b[IoctlOutSize:]
	if uint64(len(rest)) != uint64(nin+nout)*IovecSize {
		return o, fmt.Errorf("cuse: %d bytes of iovecs for %d entries", len(rest), nin+nout)
	}
	for i := range nin + nout {
		v := Iovec{Base: le.Uint64(rest[i*IovecSize:]), Len: le.Uint64(rest[i*IovecSize+8:])}
		if i < nin {
			o.InIovs = append(o.InIovs, v)
		} else {
			o.OutIovs = append(o.OutIovs, v)
		}
	}
	return o, nil
}
