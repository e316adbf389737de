package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Request numbers of the driver (jailhouse-abi.md §3.2), written out here
// so the tests check the library's encoding rather than reuse it.
const (
	ioEnable  = 0x40080000
	ioDisable = 0x00000001
	ioCreate  = 0x40100002
	ioLoad    = 0x40300003
	ioStart   = 0x40280004
	ioDestroy = 0x40280005
)

// ioctl is one request the fake driver received, decoded.
type ioctl struct {
	req    uint
	id     int32    // cell-id record (LOAD, START, DESTROY)
	name   string   // cell-id record name
	config []byte   // ENABLE / CREATE data
	images []loaded // LOAD images
}

type loaded struct {
	data []byte
	addr uint64
}

// fakeDriver stands in for /dev/jailhouse and keeps a sysfs fixture tree in
// step with it, as the real driver does.
type fakeDriver struct {
	t      *testing.T
	sysfs  string
	calls  []ioctl
	errs   map[uint]syscall.Errno
	opened int
	reads  [][]byte
	// readEnd is returned once reads are used up (nil: a 0-byte read).
	readEnd  error
	nonblock bool
}

func (f *fakeDriver) open(string) (jailhouse.Device, error) {
	f.opened++
	return &fakeDevice{f: f}, nil
}

type fakeDevice struct{ f *fakeDriver }

// peek copies n bytes at user address a, as copy_from_user does.
func peek(a, n uint64) []byte {
	if n == 0 {
		return nil
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(&a))
	return bytes.Clone(unsafe.Slice((*byte)(p), n))
}

func cellIDRecord(b []byte) (int32, string) {
	name := b[8:40]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return int32(binary.LittleEndian.Uint32(b)), string(name)
}

func (d *fakeDevice) Ioctl(req uint, arg unsafe.Pointer) error {
	f, le := d.f, binary.LittleEndian
	c := ioctl{req: req}
	switch req {
	case ioEnable:
		// The system config starts with its size-defining header; read
		// just the signature, enough to know what was passed.
		c.config = bytes.Clone(unsafe.Slice((*byte)(arg), 5))
	case ioDisable:
	case ioCreate:
		rec := unsafe.Slice((*byte)(arg), 16)
		c.config = peek(le.Uint64(rec), uint64(le.Uint32(rec[8:])))
	case ioLoad:
		hdr := unsafe.Slice((*byte)(arg), 48)
		c.id, c.name = cellIDRecord(hdr)
		n := int(le.Uint32(hdr[40:]))
		all := unsafe.Slice((*byte)(arg), 48+32*n)
		for i := range n {
			img := all[48+32*i:]
			c.images = append(c.images, loaded{data: peek(le.Uint64(img), le.Uint64(img[8:])), addr: le.Uint64(img[16:])})
		}
	case ioStart, ioDestroy:
		c.id, c.name = cellIDRecord(unsafe.Slice((*byte)(arg), 40))
	default:
		f.t.Errorf("unexpected ioctl %#x", req)
	}
	f.calls = append(f.calls, c)
	if e := f.errs[req]; e != 0 {
		return e
	}
	if req == ioCreate {
		f.created(c.config)
	}
	return nil
}

// created adds the sysfs directory of a new cell under the lowest free id.
func (f *fakeDriver) created(config []byte) {
	cfg, err := cell.UnmarshalCell(config)
	if err != nil {
		f.t.Errorf("CELL_CREATE with an invalid config: %v", err)
		return
	}
	id := 0
	for ; ; id++ {
		if _, err := os.Stat(filepath.Join(f.sysfs, "cells", strconv.Itoa(id))); os.IsNotExist(err) {
			break
		}
	}
	writeCell(f.t, f.sysfs, id, cfg.Name, "shut down", cfg.CPUs.String(), "")
}

func (d *fakeDevice) Read(p []byte) (int, error) {
	f := d.f
	if len(f.reads) == 0 {
		return 0, f.readEnd
	}
	n := copy(p, f.reads[0])
	if n < len(f.reads[0]) {
		f.reads[0] = f.reads[0][n:]
	} else {
		f.reads = f.reads[1:]
	}
	return n, nil
}

func (d *fakeDevice) SetNonblock(nb bool) error { d.f.nonblock = nb; return nil }
func (d *fakeDevice) Close() error              { return nil }

// writeFile writes a fixture file, creating its directories.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeCell adds cells/<id> to a sysfs fixture.
func writeCell(t *testing.T, sysfs string, id int, name, state, cpus, failed string) {
	dir := filepath.Join(sysfs, "cells", strconv.Itoa(id))
	writeFile(t, filepath.Join(dir, "name"), name+"\n")
	writeFile(t, filepath.Join(dir, "state"), state+"\n")
	writeFile(t, filepath.Join(dir, "cpus_assigned_list"), cpus+"\n")
	writeFile(t, filepath.Join(dir, "cpus_failed_list"), failed+"\n")
}

// harness runs jhctl in-process against a fake driver and a sysfs fixture.
type harness struct {
	t     *testing.T
	dir   string // scratch directory for input files
	sysfs string
	drv   *fakeDriver
}

// newHarness returns a harness whose sysfs shows an enabled hypervisor with
// the root cell on CPUs 0-1.
func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	sysfs := filepath.Join(dir, "sys", "jailhouse")
	writeFile(t, filepath.Join(sysfs, "enabled"), "1\n")
	writeCell(t, sysfs, 0, "qemu-arm64", "running", "0-1", "")
	return &harness{t: t, dir: dir, sysfs: sysfs, drv: &fakeDriver{t: t, sysfs: sysfs}}
}

// file writes a scratch input file and returns its path.
func (h *harness) file(name string, data []byte) string {
	h.t.Helper()
	path := filepath.Join(h.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// run executes jhctl with args and returns stdout, stderr and the exit
// status main would use.
func (h *harness) run(args ...string) (string, string, int) {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string {
			if k == envSysfs {
				return h.sysfs
			}
			return ""
		},
		// Already interrupted: a watch loop draws once and returns.
		interrupt: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		},
		opts: []jailhouse.Option{
			jailhouse.WithOpener(h.drv.open),
			jailhouse.WithArch(cell.ArchARM64),
			jailhouse.WithCreateWait(0),
		},
	}
	code := exitCode(a.run(args), &stderr)
	return stdout.String(), stderr.String(), code
}

// mustRun runs args and fails the test unless jhctl exits 0.
func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("jhctl %q: exit %d, stderr:\n%s", args, code, errOut)
	}
	return out
}
