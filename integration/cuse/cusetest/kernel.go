// Package cusetest stands in for the kernel side of CUSE, so that a CUSE
// server can be tested on hosts without /dev/cuse. A Kernel hands the
// server a Conn and offers the calls a process would make on the device
// (open, read, ioctl, close), following the kernel's protocol: the
// CUSE_INIT checks, unrestricted ioctls with FUSE_IOCTL_RETRY (the memory
// copy faults with EFAULT, more than 256 iovecs or more data than 32 pages
// fail with ENOMEM), and FUSE_INTERRUPT for a read whose caller gives up.
package cusetest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/runphi-go/runphi/integration/cuse"
)

var le = binary.LittleEndian

// UserMemory is the memory of the calling process.
type UserMemory interface {
	Read(addr, n uint64) ([]byte, error)
}

// Kernel is the fake kernel. Its methods are safe for concurrent use.
type Kernel struct {
	// Minor is the FUSE minor version the kernel offers (default 36).
	Minor uint32
	// MaxData is the most caller memory one ioctl round may carry
	// (default 32 pages of 4 KiB).
	MaxData int
	// Caller is the process the requests come from.
	Caller cuse.Caller

	requests chan []byte
	closed   chan struct{}
	once     sync.Once

	mu      sync.Mutex
	unique  uint64
	waiting map[uint64]chan []byte
	sent    map[uint32]int
}

// New returns a kernel whose caller is pid 1000.
func New() *Kernel {
	return &Kernel{
		Minor:    36,
		MaxData:  32 * 4096,
		Caller:   cuse.Caller{PID: 1000},
		requests: make(chan []byte),
		closed:   make(chan struct{}),
		waiting:  map[uint64]chan []byte{},
		sent:     map[uint32]int{},
	}
}

// Conn returns the server's end of the connection.
func (k *Kernel) Conn() cuse.Conn { return (*conn)(k) }

// Close aborts the connection, as when the CUSE connection is aborted:
// the server's reads then fail with ENODEV.
func (k *Kernel) Close() { k.once.Do(func() { close(k.closed) }) }

// Sent counts the requests of an opcode sent so far.
func (k *Kernel) Sent(opcode uint32) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sent[opcode]
}

type conn Kernel

func (c *conn) Read(p []byte) (int, error) {
	select {
	case req := <-c.requests:
		if len(p) < len(req) {
			return 0, fmt.Errorf("cusetest: read buffer of %d bytes for a %d-byte request", len(p), len(req))
		}
		return copy(p, req), nil
	case <-c.closed:
		return 0, syscall.ENODEV
	}
}

func (c *conn) Write(p []byte) (int, error) {
	h, err := cuse.ParseOutHeader(p)
	if err != nil {
		return 0, syscall.EINVAL
	}
	c.mu.Lock()
	ch := c.waiting[h.Unique]
	delete(c.waiting, h.Unique)
	c.mu.Unlock()
	if ch == nil {
		return 0, syscall.ENOENT
	}
	ch <- append([]byte(nil), p...)
	return len(p), nil
}

func (c *conn) Close() error {
	(*Kernel)(c).Close()
	return nil
}

// errClosed reports a call on an aborted connection.
var errClosed = errors.New("cusetest: connection closed")

// submit queues a request and returns the channel its reply arrives on.
func (k *Kernel) submit(opcode uint32, body []byte) (uint64, chan []byte, error) {
	return k.submitFrom(k.Caller, opcode, body)
}

func (k *Kernel) submitFrom(c cuse.Caller, opcode uint32, body []byte) (uint64, chan []byte, error) {
	k.mu.Lock()
	k.unique += 2 // the kernel keeps odd uniques for interrupts
	unique := k.unique
	ch := make(chan []byte, 1)
	k.waiting[unique] = ch
	k.sent[opcode]++
	k.mu.Unlock()
	hdr := cuse.InHeader{Len: uint32(cuse.InHeaderSize + len(body)), Opcode: opcode, Unique: unique, NodeID: 1,
		UID: c.UID, GID: c.GID, PID: c.PID}
	msg := append(cuse.AppendInHeader(nil, hdr), body...)
	select {
	case k.requests <- msg:
		return unique, ch, nil
	case <-k.closed:
		return 0, nil, errClosed
	}
}

// call sends a request and waits for its reply; it returns the payload or
// the errno the server replied.
func (k *Kernel) call(opcode uint32, body []byte) ([]byte, error) {
	_, ch, err := k.submit(opcode, body)
	if err != nil {
		return nil, err
	}
	return k.await(ch)
}

func (k *Kernel) await(ch chan []byte) ([]byte, error) {
	select {
	case msg := <-ch:
		return parseReply(msg)
	case <-k.closed:
		return nil, errClosed
	}
}

func parseReply(msg []byte) ([]byte, error) {
	h, err := cuse.ParseOutHeader(msg)
	if err != nil {
		return nil, err
	}
	if h.Error != 0 {
		return nil, syscall.Errno(-h.Error)
	}
	return msg[cuse.OutHeaderSize:], nil
}

// InitReply is what the server answered to CUSE_INIT.
type InitReply struct {
	Out     cuse.InitOut
	DevName string
}

// Init sends CUSE_INIT and checks the reply as the kernel does.
func (k *Kernel) Init() (InitReply, error) {
	body := make([]byte, 16)
	le.PutUint32(body[0:], cuse.KernelVersion)
	le.PutUint32(body[4:], k.Minor)
	le.PutUint32(body[12:], cuse.CuseUnrestrictedIoctl)
	payload, err := k.call(cuse.OpCuseInit, body)
	if err != nil {
		return InitReply{}, err
	}
	out, err := cuse.ParseInitOut(payload)
	if err != nil {
		return InitReply{}, err
	}
	if out.Major != cuse.KernelVersion || out.Minor < 11 {
		return InitReply{}, fmt.Errorf("cusetest: init reply %d.%d", out.Major, out.Minor)
	}
	info := payload[cuse.CuseInitOutSize:]
	if len(info) > cuse.InitInfoMax {
		return InitReply{}, errors.New("cusetest: device info too long")
	}
	r := InitReply{Out: out}
	for _, kv := range strings.Split(string(info), "\x00") {
		if name, ok := strings.CutPrefix(kv, "DEVNAME="); ok {
			r.DevName = name
		}
	}
	if r.DevName == "" {
		return InitReply{}, errors.New("cusetest: DEVNAME unspecified")
	}
	return r, nil
}

// Open opens the device and returns the server's file handle.
func (k *Kernel) Open(flags uint32) (uint64, error) {
	body := le.AppendUint32(nil, flags)
	body = le.AppendUint32(body, 0)
	payload, err := k.call(cuse.OpOpen, body)
	if err != nil {
		return 0, err
	}
	if len(payload) < 16 {
		return 0, syscall.EIO
	}
	return le.Uint64(payload), nil
}

// Release closes a file.
func (k *Kernel) Release(fh uint64) error {
	body := make([]byte, 24)
	le.PutUint64(body, fh)
	_, err := k.call(cuse.OpRelease, body)
	return err
}

// Read reads from a file. If ctx ends before the server answers, the
// kernel sends FUSE_INTERRUPT and keeps waiting for the answer, as it does
// for a signal.
func (k *Kernel) Read(ctx context.Context, fh uint64, size uint32, nonblock bool) ([]byte, error) {
	body := make([]byte, 40)
	le.PutUint64(body[0:], fh)
	le.PutUint32(body[16:], size)
	if nonblock {
		le.PutUint32(body[32:], 0o4000)
	}
	unique, ch, err := k.submit(cuse.OpRead, body)
	if err != nil {
		return nil, err
	}
	select {
	case msg := <-ch:
		return parseReply(msg)
	case <-ctx.Done():
		intr := le.AppendUint64(nil, unique)
		k.mu.Lock()
		k.sent[cuse.OpInterrupt]++
		k.mu.Unlock()
		hdr := cuse.InHeader{Len: cuse.InHeaderSize + 8, Opcode: cuse.OpInterrupt, Unique: unique | 1, PID: k.Caller.PID}
		select {
		case k.requests <- append(cuse.AppendInHeader(nil, hdr), intr...):
		case <-k.closed:
			return nil, errClosed
		}
	}
	return k.await(ch)
}

// Write sends data to the device.
func (k *Kernel) Write(fh uint64, data []byte) error {
	body := make([]byte, 40)
	le.PutUint64(body[0:], fh)
	le.PutUint32(body[16:], uint32(len(data)))
	_, err := k.call(cuse.OpWrite, append(body, data...))
	return err
}

// Poll sends FUSE_POLL as epoll_ctl on the file would.
func (k *Kernel) Poll(fh uint64) error {
	body := make([]byte, 24)
	le.PutUint64(body, fh)
	_, err := k.call(cuse.OpPoll, body)
	return err
}

// Ioctl issues an unrestricted ioctl the way the kernel's fuse_do_ioctl
// does, fetching the iovecs the server asks for from mem. It returns the
// ioctl's result as an errno (nil for 0) and how many rounds it took.
func (k *Kernel) Ioctl(fh uint64, cmd uint32, arg uint64, mem UserMemory) (rounds int, err error) {
	return k.IoctlFrom(k.Caller, fh, cmd, arg, mem)
}

// IoctlFrom is Ioctl issued by another caller (thread).
func (k *Kernel) IoctlFrom(c cuse.Caller, fh uint64, cmd uint32, arg uint64, mem UserMemory) (rounds int, err error) {
	var iovs []cuse.Iovec
	for rounds = 1; rounds < 1<<20; rounds++ {
		var data []byte
		total := 0
		for _, v := range iovs {
			total += int(v.Len)
			if v.Len > uint64(k.MaxData) || total > k.MaxData {
				return rounds, syscall.ENOMEM
			}
			b, err := mem.Read(v.Base, v.Len)
			if err != nil || uint64(len(b)) != v.Len {
				return rounds, syscall.EFAULT
			}
			data = append(data, b...)
		}
		in := cuse.IoctlIn{FH: fh, Flags: cuse.IoctlUnrestricted, Cmd: cmd, Arg: arg, InSize: uint32(len(data))}
		_, ch, err := k.submitFrom(c, cuse.OpIoctl, append(in.Append(nil), data...))
		if err != nil {
			return rounds, err
		}
		payload, err := k.await(ch)
		if err != nil {
			return rounds, err
		}
		out, err := cuse.ParseIoctlOut(payload)
		if err != nil {
			return rounds, syscall.EIO
		}
		if out.Flags&cuse.IoctlRetry == 0 {
			if out.Result < 0 {
				return rounds, syscall.Errno(-out.Result)
			}
			return rounds, nil
		}
		if len(out.OutIovs) > 0 {
			return rounds, errors.New("cusetest: out iovecs are not supported")
		}
		iovs = out.InIovs
	}
	return rounds, errors.New("cusetest: ioctl retried too often")
}
