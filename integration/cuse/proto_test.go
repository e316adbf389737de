package cuse

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"syscall"
	"testing"
)

func TestInHeaderRoundTrip(t *testing.T) {
	h := InHeader{Len: InHeaderSize + 3, Opcode: OpIoctl, Unique: 42, NodeID: 1, UID: 5, GID: 6, PID: 7}
	b := append(AppendInHeader(nil, h), 1, 2, 3)
	got, err := ParseInHeader(b)
	if err != nil || got != h {
		t.Errorf("ParseInHeader = %+v, %v; want %+v", got, err, h)
	}
	if _, err := ParseInHeader(b[:len(b)-1]); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, err := ParseInHeader(b[:10]); err == nil {
		t.Error("short header accepted")
	}
}

func TestIoctlOutRoundTrip(t *testing.T) {
	out := IoctlOut{Flags: IoctlRetry, InIovs: []Iovec{{0x1000, 16}, {0x2000, 4096}}}
	got, err := ParseIoctlOut(out.encode())
	if err != nil || !reflect.DeepEqual(got, out) {
		t.Errorf("round trip = %+v, %v", got, err)
	}
	plain, err := ParseIoctlOut(IoctlOut{Result: -int32(syscall.EINVAL)}.encode())
	if err != nil || plain.Result != -22 {
		t.Errorf("result = %+v, %v", plain, err)
	}
	many := IoctlOut{Flags: IoctlRetry, InIovs: make([]Iovec, IoctlMaxIovecs+1)}
	if _, err := ParseIoctlOut(many.encode()); err == nil {
		t.Error("257 iovecs accepted")
	}
	if _, err := ParseIoctlOut(out.encode()[:IoctlOutSize+IovecSize]); err == nil {
		t.Error("missing iovec accepted")
	}
}

func TestPendingPlansWithinLimits(t *testing.T) {
	p := &pendingIoctl{}
	for i := range 300 {
		p.want = append(p.want, &fetch{addr: uint64(i) << 12, size: 2})
	}
	p.want = append(p.want, &fetch{addr: 1 << 40, size: 1 << 20})
	iovs := p.next(1 << 17)
	if len(iovs) != IoctlMaxIovecs {
		t.Fatalf("%d iovecs in one retry, want %d", len(iovs), IoctlMaxIovecs)
	}
	if !p.accept(make([]byte, p.askedN)) || len(p.have) != IoctlMaxIovecs || len(p.want) != 45 {
		t.Fatalf("after the first retry: %d complete, %d missing", len(p.have), len(p.want))
	}
	iovs = p.next(1 << 17)
	total := uint64(0)
	for _, v := range iovs {
		total += v.Len
	}
	if total != 1<<17 || iovs[len(iovs)-1].Base != 1<<40 {
		t.Errorf("second retry asks for %d bytes: %v", total, iovs[len(iovs)-3:])
	}
	if p.accept(make([]byte, 5)) {
		t.Error("data of the wrong size accepted")
	}
}

// chanConn is a Conn fed from a channel, for the fuzz target.
type chanConn struct {
	in     chan []byte
	mu     sync.Mutex
	out    [][]byte
	closed chan struct{}
	once   sync.Once
}

func (c *chanConn) Read(p []byte) (int, error) {
	select {
	case m, ok := <-c.in:
		if !ok {
			return 0, syscall.ENODEV
		}
		return copy(p, m), nil
	case <-c.closed:
		return 0, syscall.ENODEV
	}
}

func (c *chanConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, append([]byte(nil), p...))
	return len(p), nil
}

func (c *chanConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

type nopHandler struct{}

func (nopHandler) Open(Caller, uint32) (uint64, error) { return 1, nil }
func (nopHandler) Read(context.Context, Caller, uint64, uint32, bool) ([]byte, error) {
	return []byte("x"), nil
}
func (nopHandler) Ioctl(_ Caller, _ uint64, _ uint32, arg uint64, mem *Memory) error {
	_, err := mem.Read(arg, 48)
	return err
}
func (nopHandler) Release(uint64) {}

// FuzzServe feeds arbitrary requests to a server after CUSE_INIT: it must
// neither panic nor stop serving, and every reply must be well formed.
func FuzzServe(f *testing.F) {
	ioctl := IoctlIn{FH: 1, Flags: IoctlUnrestricted, Cmd: 0x40300003, Arg: 0x1000}.Append(nil)
	f.Add(uint32(OpIoctl), ioctl)
	f.Add(uint32(OpRead), make([]byte, readInSize))
	f.Add(uint32(OpOpen), make([]byte, openInSize))
	f.Add(uint32(OpRelease), make([]byte, releaseInSize))
	f.Add(uint32(OpInterrupt), make([]byte, 8))
	f.Add(uint32(OpIoctl), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, opcode uint32, body []byte) {
		c := &chanConn{in: make(chan []byte, 3), closed: make(chan struct{})}
		init := make([]byte, cuseInitInSize)
		le.PutUint32(init, KernelVersion)
		le.PutUint32(init[4:], 36)
		msg := func(op uint32, unique uint64, body []byte) []byte {
			return append(AppendInHeader(nil, InHeader{Len: uint32(InHeaderSize + len(body)), Opcode: op, Unique: unique}), body...)
		}
		c.in <- msg(OpCuseInit, 2, init)
		c.in <- msg(opcode, 4, body)
		c.in <- msg(OpOpen, 6, make([]byte, openInSize)) // still served afterwards
		close(c.in)
		err := ServeConn(context.Background(), c, Config{DevName: "fuzz"}, nopHandler{})
		if !errors.Is(err, syscall.ENODEV) {
			t.Fatalf("ServeConn: %v", err)
		}
		answeredOpen := false
		for _, r := range c.out {
			h, err := ParseOutHeader(r)
			if err != nil {
				t.Fatalf("malformed reply %x: %v", r, err)
			}
			if h.Unique == 6 && h.Error == 0 {
				answeredOpen = true
			}
		}
		if !answeredOpen {
			t.Fatal("server stopped answering")
		}
	})
}
