package cuse_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runphi-go/runphi/integration/cuse"
	"github.com/runphi-go/runphi/integration/cuse/cusetest"
)

// memory is a fake process address space.
type memory map[uint64][]byte

func (m memory) Read(addr, n uint64) ([]byte, error) {
	for base, data := range m {
		if addr >= base && addr-base <= uint64(len(data)) && n <= uint64(len(data))-(addr-base) {
			return bytes.Clone(data[addr-base : addr-base+n]), nil
		}
	}
	return nil, syscall.EFAULT
}

// handler is a scripted device.
type handler struct {
	mu       sync.Mutex
	nextFH   uint64
	released []uint64
	runs     int // Ioctl calls
	ioctl    func(c cuse.Caller, cmd uint32, arg uint64, mem *cuse.Memory) error
	read     func(ctx context.Context, size uint32, nonblock bool) ([]byte, error)
	openErr  error
}

func (h *handler) Open(c cuse.Caller, flags uint32) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.openErr != nil {
		return 0, h.openErr
	}
	h.nextFH++
	return h.nextFH, nil
}

func (h *handler) Read(ctx context.Context, c cuse.Caller, fh uint64, size uint32, nonblock bool) ([]byte, error) {
	return h.read(ctx, size, nonblock)
}

func (h *handler) Ioctl(c cuse.Caller, fh uint64, cmd uint32, arg uint64, mem *cuse.Memory) error {
	h.mu.Lock()
	h.runs++
	h.mu.Unlock()
	return h.ioctl(c, cmd, arg, mem)
}

func (h *handler) Release(fh uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = append(h.released, fh)
}

func (h *handler) ioctlRuns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs
}

// serve starts a server for h on a fake kernel and completes CUSE_INIT.
func serve(t *testing.T, h cuse.Handler, cfg cuse.Config) (*cusetest.Kernel, cusetest.InitReply) {
	t.Helper()
	k := cusetest.New()
	if cfg.DevName == "" {
		cfg.DevName = "jailhouse"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cuse.ServeConn(ctx, k.Conn(), cfg, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	})
	init, err := k.Init()
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	return k, init
}

func TestInit(t *testing.T) {
	ready := make(chan struct{})
	_, init := serve(t, &handler{}, cuse.Config{DevName: "jailhouse", Ready: func() { close(ready) }})
	if init.DevName != "jailhouse" || init.Out.Major != 7 || init.Out.Minor != cuse.MaxMinor ||
		init.Out.Flags&cuse.CuseUnrestrictedIoctl == 0 || init.Out.MaxRead == 0 || init.Out.DevMajor != 0 {
		t.Errorf("init reply: %+v", init)
	}
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Error("Ready not called")
	}
}

func TestInitRefusesOldKernel(t *testing.T) {
	k := cusetest.New()
	k.Minor = 15
	done := make(chan error, 1)
	go func() { done <- cuse.ServeConn(context.Background(), k.Conn(), cuse.Config{DevName: "x"}, &handler{}) }()
	if _, err := k.Init(); !errors.Is(err, syscall.EPROTO) {
		t.Errorf("init with FUSE 7.15: %v, want EPROTO", err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "7.15") {
		t.Errorf("ServeConn: %v", err)
	}
}

// chase is a record {address, length} of a buffer, as in CELL_CREATE.
func chase(got *[]byte) func(cuse.Caller, uint32, uint64, *cuse.Memory) error {
	return func(_ cuse.Caller, _ uint32, arg uint64, mem *cuse.Memory) error {
		rec, err := mem.Read(arg, 16)
		if err != nil {
			return err
		}
		data, err := mem.Read(binary.LittleEndian.Uint64(rec), binary.LittleEndian.Uint64(rec[8:]))
		if err != nil {
			return err
		}
		*got = data
		return nil
	}
}

func record(addr, n uint64) []byte {
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, addr), n)
}

func TestIoctlRetries(t *testing.T) {
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	tests := []struct {
		name       string
		size       int
		maxData    int
		unmapped   bool
		wantRounds int
		wantRuns   int
		want       error
	}{
		// 1: nothing; 2: the record; 3: the buffer.
		{name: "record and buffer", size: 100, wantRounds: 3, wantRuns: 3},
		{name: "empty buffer", size: 0, wantRounds: 2, wantRuns: 2},
		// The buffer takes three rounds of 128 KiB, without running the
		// handler in between.
		{name: "buffer over several rounds", size: 300 << 10, maxData: 128 << 10, wantRounds: 5, wantRuns: 3},
		{name: "exactly one round", size: 128 << 10, maxData: 128 << 10, wantRounds: 3, wantRuns: 3},
		{name: "unreadable buffer", size: 64, unmapped: true, wantRounds: 3, wantRuns: 2, want: syscall.EFAULT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			h := &handler{}
			h.ioctl = chase(&got)
			k, _ := serve(t, h, cuse.Config{MaxIoctlData: tt.maxData})
			k.MaxData = max(tt.maxData, 128<<10)
			fh, err := k.Open(2)
			if err != nil {
				t.Fatal(err)
			}
			data := pattern(tt.size)
			mem := memory{0x1000: record(0x100000, uint64(tt.size))}
			if !tt.unmapped {
				mem[0x100000] = data
			}
			rounds, err := k.Ioctl(fh, 0x40100002, 0x1000, mem)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("ioctl: %v, want %v", err, tt.want)
			}
			if rounds != tt.wantRounds || h.ioctlRuns() != tt.wantRuns {
				t.Errorf("rounds %d, handler runs %d; want %d, %d", rounds, h.ioctlRuns(), tt.wantRounds, tt.wantRuns)
			}
			if tt.want == nil && !bytes.Equal(got, data) {
				t.Errorf("handler got %d bytes, want %d (pattern)", len(got), len(data))
			}
		})
	}
}

func TestIoctlResults(t *testing.T) {
	tests := []struct {
		name   string
		result error
		want   error
	}{
		{"success", nil, nil},
		{"errno", syscall.EBUSY, syscall.EBUSY},
		{"wrapped errno", fmt.Errorf("cell: %w", syscall.EEXIST), syscall.EEXIST},
		{"other error", errors.New("boom"), syscall.EIO},
		{"memory asked without a read", cuse.ErrNeedMemory, syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &handler{ioctl: func(cuse.Caller, uint32, uint64, *cuse.Memory) error { return tt.result }}
			k, _ := serve(t, h, cuse.Config{})
			if _, err := k.Ioctl(1, 1, 0, memory{}); err != tt.want {
				t.Errorf("ioctl: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestIoctlCallersKeptApart runs ioctls of many threads with the same
// argument at once; each must see its own memory.
func TestIoctlCallersKeptApart(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint32][]byte{}
	h := &handler{ioctl: func(c cuse.Caller, _ uint32, arg uint64, mem *cuse.Memory) error {
		var got []byte
		if err := chase(&got)(c, 0, arg, mem); err != nil {
			return err
		}
		mu.Lock()
		seen[c.PID] = got
		mu.Unlock()
		return nil
	}}
	k, _ := serve(t, h, cuse.Config{})
	var wg sync.WaitGroup
	for pid := uint32(100); pid < 116; pid++ {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(pid)}, int(pid))
			mem := memory{0x1000: record(0x2000, uint64(len(data))), 0x2000: data}
			if _, err := k.IoctlFrom(cuse.Caller{PID: pid}, 1, 2, 0x1000, mem); err != nil {
				t.Errorf("pid %d: %v", pid, err)
			}
		})
	}
	wg.Wait()
	for pid := uint32(100); pid < 116; pid++ {
		if want := bytes.Repeat([]byte{byte(pid)}, int(pid)); !bytes.Equal(seen[pid], want) {
			t.Errorf("pid %d saw %v", pid, seen[pid])
		}
	}
}

func TestRead(t *testing.T) {
	var gotSize uint32
	var gotNonblock bool
	h := &handler{read: func(ctx context.Context, size uint32, nonblock bool) ([]byte, error) {
		gotSize, gotNonblock = size, nonblock
		if nonblock {
			return nil, nil
		}
		return []byte("console"), nil
	}}
	k, _ := serve(t, h, cuse.Config{MaxRead: 4096})
	data, err := k.Read(context.Background(), 1, 128, false)
	if err != nil || string(data) != "console" || gotSize != 128 || gotNonblock {
		t.Errorf("blocking read = %q, %v (size %d, nonblock %v)", data, err, gotSize, gotNonblock)
	}
	data, err = k.Read(context.Background(), 1, 1<<20, true)
	if err != nil || len(data) != 0 || gotSize != 4096 || !gotNonblock {
		t.Errorf("non-blocking read = %q, %v (size %d, nonblock %v)", data, err, gotSize, gotNonblock)
	}
}

func TestReadInterrupted(t *testing.T) {
	h := &handler{read: func(ctx context.Context, size uint32, nonblock bool) ([]byte, error) {
		<-ctx.Done()
		return nil, syscall.EINTR
	}}
	k, _ := serve(t, h, cuse.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.Read(ctx, 1, 128, false); err != syscall.EINTR {
		t.Errorf("interrupted read: %v, want EINTR", err)
	}
	if n := k.Sent(cuse.OpInterrupt); n != 1 {
		t.Errorf("%d interrupts sent", n)
	}
}

func TestOpenRelease(t *testing.T) {
	h := &handler{}
	k, _ := serve(t, h, cuse.Config{})
	a, err := k.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Open(0)
	if a == b {
		t.Errorf("two opens share handle %d", a)
	}
	if err := k.Release(a); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	released := h.released
	h.mu.Unlock()
	if len(released) != 1 || released[0] != a {
		t.Errorf("released %v, want [%d]", released, a)
	}
	h.openErr = syscall.EACCES
	if _, err := k.Open(0); err != syscall.EACCES {
		t.Errorf("failing open: %v", err)
	}
}

func TestUnsupportedRequests(t *testing.T) {
	k, _ := serve(t, &handler{}, cuse.Config{})
	if err := k.Poll(1); err != syscall.ENOSYS {
		t.Errorf("poll: %v, want ENOSYS", err)
	}
	if err := k.Write(1, []byte("x")); err != syscall.EINVAL {
		t.Errorf("write: %v, want EINVAL", err)
	}
}

func TestShutdown(t *testing.T) {
	started := make(chan struct{})
	h := &handler{read: func(ctx context.Context, size uint32, nonblock bool) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, syscall.EINTR
	}}
	k := cusetest.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cuse.ServeConn(ctx, k.Conn(), cuse.Config{DevName: "x"}, h) }()
	if _, err := k.Init(); err != nil {
		t.Fatal(err)
	}
	go k.Read(context.Background(), 1, 8, false) //nolint:errcheck // ends with the connection
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeConn after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return")
	}
}

func TestConnectionAborted(t *testing.T) {
	k := cusetest.New()
	done := make(chan error, 1)
	go func() { done <- cuse.ServeConn(context.Background(), k.Conn(), cuse.Config{DevName: "x"}, &handler{}) }()
	if _, err := k.Init(); err != nil {
		t.Fatal(err)
	}
	k.Close()
	if err := <-done; !errors.Is(err, syscall.ENODEV) {
		t.Errorf("ServeConn after abort: %v, want ENODEV", err)
	}
}
