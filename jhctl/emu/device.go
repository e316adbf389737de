package emu

import (
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// consolePoll is how long a blocking console read sleeps between looks, as
// the driver does.
const consolePoll = 100 * time.Millisecond

// Device is an open emulated /dev/jailhouse in this process: a
// jailhouse.Device whose ioctls read their records from this process's
// memory, through the arg pointer and the addresses stored in the records,
// exactly as the driver reads user memory.
type Device struct {
	e         Engine
	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	cur      ConsoleCursor
	nonblock bool
	arg      unsafe.Pointer // the argument of a running ioctl; see Ioctl
}

var _ jailhouse.Device = (*Device)(nil)

// NewDevice opens a device on an engine.
func NewDevice(e Engine) *Device { return &Device{e: e, closed: make(chan struct{})} }

// Open opens the emulated device of an emulator directory made by InitDir.
// Each open has its own console position, as with the driver.
func Open(dir string) (*Device, error) {
	d, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return NewDevice(d), nil
}

// Opener returns a jailhouse.Opener that ignores the device path and opens
// the emulator directory dir instead:
//
//	jailhouse.New(jailhouse.Paths{Device: "emu", Sysfs: filepath.Join(dir, "sysfs")},
//		jailhouse.WithOpener(emu.Opener(dir)))
func Opener(dir string) jailhouse.Opener {
	return func(string) (jailhouse.Device, error) {
		d, err := Open(dir)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}

// EngineOpener is Opener for any engine, e.g. a Shared one in a test.
func EngineOpener(e Engine) jailhouse.Opener {
	return func(string) (jailhouse.Device, error) { return NewDevice(e), nil }
}

func (d *Device) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// Ioctl implements jailhouse.Device. The memory arg points to must stay
// valid during the call, like every buffer whose address a record holds.
func (d *Device) Ioctl(req uint, arg unsafe.Pointer) error {
	if d.isClosed() {
		return os.ErrClosed
	}
	// Storing arg in the heap-allocated device makes it escape, so the
	// caller's record cannot live on a goroutine stack that might move
	// while its address is in use below.
	d.mu.Lock()
	d.arg = arg
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.arg = nil
		d.mu.Unlock()
	}()
	return d.e.Update(func(h *Hypervisor) error {
		return h.Ioctl(req, uint64(uintptr(arg)), processMemory{})
	})
}

// Read implements jailhouse.Device: the console stream. A blocking read
// looks again every 100 ms until there is data or the device is closed
// (then it fails with os.ErrClosed).
func (d *Device) Read(p []byte) (int, error) {
	for {
		if d.isClosed() {
			return 0, os.ErrClosed
		}
		var n int
		var wait bool
		err := d.e.View(func(h *Hypervisor) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			var rerr error
			n, wait, rerr = h.ReadConsole(&d.cur, p, d.nonblock)
			return rerr
		})
		if !wait || err != nil {
			return n, err
		}
		select {
		case <-d.closed:
		case <-time.After(consolePoll):
		}
	}
}

// SetNonblock implements jailhouse.Device.
func (d *Device) SetNonblock(nonblock bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nonblock = nonblock
	return nil
}

// Close implements jailhouse.Device; it ends a blocking Read.
func (d *Device) Close() error {
	err := os.ErrClosed
	d.closeOnce.Do(func() {
		close(d.closed)
		err = nil
	})
	return err
}
