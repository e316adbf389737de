package jailhouse

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileDevice is the jailhouse character device. An *os.File keeps reads
// and Close safe against each other (a follow-mode console read can block
// while another goroutine closes).
type fileDevice struct {
	f *os.File
}

// OpenDevice opens the jailhouse device read/write (close-on-exec), as the
// C tool does. A missing node gives an error wrapping os.ErrNotExist.
//
// The descriptor is opened with unix.Open and wrapped with os.NewFile so
// it stays blocking and out of Go's poller: os.OpenFile would register a
// device that supports poll (an emulated one served through CUSE) with
// epoll and make it non-blocking, turning a following console read into
// a busy loop of empty reads. The real driver has no poll method, so both
// behave the same there.
func OpenDevice(path string) (Device, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &fileDevice{f: os.NewFile(uintptr(fd), path)}, nil
}

func (d *fileDevice) Ioctl(req uint, arg unsafe.Pointer) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	cerr := rc.Control(func(fd uintptr) {
		for {
			// arg is converted in the call expression, so it stays valid for
			// the syscall; buffers it refers to are pinned by the caller.
			_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
			// The driver waits for its mutex interruptibly and fails with
			// EINTR before doing anything, so the call can be repeated.
			if errno != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

func (d *fileDevice) Read(p []byte) (int, error) {
	// os.File retries EINTR, which the console read returns whenever a
	// signal (such as the runtime's preemption signal) arrives while it waits.
	n, err := d.f.Read(p)
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // keep the bare errno for the caller's mapping
	}
	return n, err
}

func (d *fileDevice) SetNonblock(nonblock bool) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), nonblock) }); err != nil {
		return err
	}
	return serr
}

func (d *fileDevice) Close() error { return d.f.Close() }
