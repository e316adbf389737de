package jailhouse

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

func consoleError(err error) error {
	n, _ := errno(err)
	switch n {
	case syscall.EPERM:
		return &Error{Op: OpConsole, Kind: ErrConsoleDenied, Err: err,
			Msg: "the system configuration does not permit reading the hypervisor console"}
	case syscall.EAGAIN:
		return &Error{Op: OpConsole, Kind: ErrNeverEnabled, Err: err,
			Msg: "jailhouse has not been enabled since boot"}
	}
	return &Error{Op: OpConsole, Err: err, Msg: "reading the hypervisor console: " + genericMsg(n, err)}
}

func (c *Client) console(follow bool) (io.ReadCloser, error) {
	dev, err := c.open(c.paths.Device)
	if err != nil {
		return nil, c.openError(OpConsole, err)
	}
	if !follow {
		// Like the C tool: a non-blocking read returns 0 once the stream
		// has caught up, which ends the snapshot.
		if err := dev.SetNonblock(true); err != nil {
			_ = dev.Close()
			return nil, &Error{Op: OpConsole, Err: err, Msg: "cannot set O_NONBLOCK on " + c.paths.Device}
		}
	}
	return &consoleReader{dev: dev, follow: follow}, nil
}

// consoleReader reads the console stream of one open device.
type consoleReader struct {
	dev    Device
	follow bool
}

func (r *consoleReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := r.dev.Read(p)
		if n > 0 {
			return n, nil
		}
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return 0, consoleError(err)
		case !r.follow:
			return 0, io.EOF
		}
		// A blocking read waits inside the driver until data arrives, so
		// an empty one is not expected; just read again.
	}
}

func (r *consoleReader) Close() error { return r.dev.Close() }

func (c *Client) consoleSnapshot() ([]byte, error) {
	path := c.sysfs("console")
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, &Error{Op: OpConsole, Kind: ErrDriverMissing, Err: err,
			Msg: "jailhouse driver not loaded (" + path + " missing)"}
	}
	if n, _ := errno(err); n == syscall.EPERM {
		return nil, consoleError(n)
	}
	return nil, &Error{Op: OpConsole, Err: err, Msg: "cannot read " + path}
}
