package jailhouse

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"github.com/runphi-go/runphi/cellgen/cell"
)

const defaultCreateWait = 500 * time.Millisecond

func newClient(p Paths, opts []Option) *Client {
	if p.Device == "" {
		p.Device = DefaultDevice
	}
	if p.Sysfs == "" {
		p.Sysfs = DefaultSysfs
	}
	c := &Client{
		paths:      p,
		open:       OpenDevice,
		createWait: defaultCreateWait,
		configs:    make(map[string]*cell.Cell),
	}
	c.arch, c.archSet = hostArch(runtime.GOARCH)
	for _, o := range opts {
		o(c)
	}
	return c
}

// hostArch maps a GOARCH to the configuration architecture the driver of
// that architecture accepts.
func hostArch(goarch string) (cell.Arch, bool) {
	switch goarch {
	case "arm64":
		return cell.ArchARM64, true
	case "arm":
		return cell.ArchARM, true
	case "amd64":
		return cell.ArchX86, true
	}
	return 0, false
}

func (c *Client) rememberLocked(cfg *cell.Cell) {
	if cfg != nil && cfg.Name != "" {
		c.configs[cfg.Name] = cfg
	}
}

// configFor returns the known configuration of the cell ref addresses, or
// nil. An id is resolved to a name through sysfs.
func (c *Client) configFor(ref CellRef) *cell.Cell {
	name := ref.Name
	if ref.ID >= 0 {
		info, err := c.cell(ref)
		if err != nil {
			return nil
		}
		name = info.Name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.configs[name]
}

// withDevice opens the device, runs fn and closes the device.
func (c *Client) withDevice(op Op, fn func(Device) error) error {
	dev, err := c.open(c.paths.Device)
	if err != nil {
		return c.openError(op, err)
	}
	ferr := fn(dev)
	cerr := dev.Close()
	if ferr != nil {
		return ferr
	}
	if cerr != nil {
		return &Error{Op: op, Msg: "closing " + c.paths.Device, Err: cerr}
	}
	return nil
}

func (c *Client) openError(op Op, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Op: op, Kind: ErrDriverMissing, Err: err,
			Msg: fmt.Sprintf("jailhouse driver not loaded (%s missing)", c.paths.Device)}
	case errors.Is(err, fs.ErrPermission):
		return &Error{Op: op, Err: err,
			Msg: fmt.Sprintf("permission denied opening %s (root needed)", c.paths.Device)}
	}
	return &Error{Op: op, Err: err, Msg: "cannot open " + c.paths.Device}
}

// addr is the user address of the first byte of b, which the caller keeps
// pinned for the duration of the ioctl.
func addr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// pinAll pins the backing arrays of bufs so the addresses stored in ioctl
// records stay valid; the caller must Unpin after the ioctl.
func pinAll(p *runtime.Pinner, bufs ...[]byte) {
	for _, b := range bufs {
		if len(b) > 0 {
			p.Pin(&b[0])
		}
	}
}

func (c *Client) enable(data []byte) error {
	sys, err := cell.UnmarshalSystem(data)
	if err != nil {
		return configError(OpEnable, "system", data, err)
	}
	if c.archSet && sys.Arch != c.arch {
		return &Error{Op: OpEnable, Kind: ErrBadConfig,
			Msg: fmt.Sprintf("system configuration is for %s, this machine's driver expects %s",
				sys.Arch.String(), c.arch.String())}
	}
	return c.withDevice(OpEnable, func(dev Device) error {
		var pin runtime.Pinner
		pinAll(&pin, data)
		// ENABLE takes the address of the configuration itself, no record.
		err := dev.Ioctl(uint(reqEnable), unsafe.Pointer(&data[0]))
		pin.Unpin()
		runtime.KeepAlive(data)
		if err != nil {
			return c.enableError(err, sys)
		}
		return nil
	})
}

func (c *Client) disable() error {
	return c.withDevice(OpDisable, func(dev Device) error {
		if err := dev.Ioctl(uint(reqDisable), nil); err != nil {
			return c.disableError(err)
		}
		return nil
	})
}

func (c *Client) createCell(data []byte) (int, error) {
	cfg, err := cell.UnmarshalCell(data)
	if err != nil {
		return -1, configError(OpCreate, "cell", data, err)
	}
	name := cfg.Name
	bad := func(format string, args ...any) (int, error) {
		return -1, &Error{Op: OpCreate, Cell: "'" + name + "'", Kind: ErrBadConfig, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.archSet && cfg.Arch != c.arch:
		// The driver would return success without creating anything.
		return bad("cell configuration %q is for %s, this machine's driver expects %s",
			name, cfg.Arch.String(), c.arch.String())
	case name == "":
		return bad("cell configuration has an empty name")
	case len(name) > cell.MaxNameLen:
		return bad("cell name %q is longer than %d bytes", name, cell.MaxNameLen)
	case len(data) > math.MaxUint32:
		return bad("cell configuration of %d bytes is too large", len(data))
	}
	err = c.withDevice(OpCreate, func(dev Device) error {
		var pin runtime.Pinner
		pinAll(&pin, data)
		rec := &cellCreate{ConfigAddress: addr(data), ConfigSize: uint32(len(data))}
		err := dev.Ioctl(uint(reqCellCreate), unsafe.Pointer(rec))
		pin.Unpin()
		runtime.KeepAlive(data)
		runtime.KeepAlive(rec)
		if err != nil {
			return c.createError(err, cfg, len(data))
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	c.mu.Lock()
	c.rememberLocked(cfg)
	c.mu.Unlock()
	return c.confirmCreated(name)
}

// confirmCreated finds the id of the new cell in sysfs: CELL_CREATE does
// not report it, and a driver that skipped the creation (architecture
// mismatch) also reports success.
func (c *Client) confirmCreated(name string) (int, error) {
	ref := CellRef{ID: -1, Name: name}
	deadline := time.Now().Add(c.createWait)
	for {
		info, err := c.cell(ref)
		if err == nil {
			return info.ID, nil
		}
		if !errors.Is(err, ErrNoCell) || !time.Now().Before(deadline) {
			return -1, &Error{Op: OpCreate, Cell: ref.String(), Kind: ErrNotCreated, Err: err,
				Msg: fmt.Sprintf("cell '%s' was not created (the driver reported success but %s does not list it; see the kernel log)",
					name, c.sysfs("cells"))}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *Client) loadCell(ref CellRef, images []Image) error { return c.load(OpLoad, ref, images) }

func (c *Client) shutdownCell(ref CellRef) error { return c.load(OpShutdown, ref, nil) }

// load issues one CELL_LOAD carrying all images (none: shut down).
func (c *Client) load(op Op, ref CellRef, images []Image) error {
	id, err := ref.record()
	if err != nil {
		return &Error{Op: op, Cell: ref.String(), Kind: ErrBadName, Msg: err.Error(), Err: err}
	}
	var cfg *cell.Cell
	if len(images) > 0 {
		cfg = c.configFor(ref)
		if cfg != nil {
			if err := checkImages(cfg, images); err != nil {
				return err
			}
		}
	}
	return c.withDevice(op, func(dev Device) error {
		buf := newLoadBuffer(id, len(images))
		var pin runtime.Pinner
		recs := buf.images()
		for i, img := range images {
			pinAll(&pin, img.Data)
			recs[i] = preloadImage{
				SourceAddress: addr(img.Data),
				Size:          uint64(len(img.Data)),
				TargetAddress: img.Address,
			}
		}
		err := dev.Ioctl(uint(reqCellLoad), buf.ptr())
		pin.Unpin()
		runtime.KeepAlive(images)
		runtime.KeepAlive(buf)
		if err != nil {
			return c.cellOpError(op, ref, err, cfg, images)
		}
		return nil
	})
}

// simple issues CELL_START or CELL_DESTROY.
func (c *Client) simple(op Op, req request, ref CellRef) error {
	id, err := ref.record()
	if err != nil {
		return &Error{Op: op, Cell: ref.String(), Kind: ErrBadName, Msg: err.Error(), Err: err}
	}
	name := ref.Name
	if req == reqCellDestroy && ref.ID >= 0 {
		if info, err := c.cell(ref); err == nil {
			name = info.Name
		}
	}
	err = c.withDevice(op, func(dev Device) error {
		rec := &id
		err := dev.Ioctl(uint(req), unsafe.Pointer(rec))
		runtime.KeepAlive(rec)
		if err != nil {
			return c.cellOpError(op, ref, err, nil, nil)
		}
		return nil
	})
	if err == nil && req == reqCellDestroy {
		// A later cell of the same name may have another configuration.
		c.mu.Lock()
		delete(c.configs, name)
		c.mu.Unlock()
	}
	return err
}

// errno extracts the errno of a failed ioctl or read.
func errno(err error) (syscall.Errno, bool) {
	var e syscall.Errno
	ok := errors.As(err, &e)
	return e, ok
}
