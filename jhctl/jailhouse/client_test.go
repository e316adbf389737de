package jailhouse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// cellIDBytes is the 40-byte cell-id record the driver expects.
func cellIDBytes(id int32, name string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(id))
	b = append(b, 0, 0, 0, 0)
	n := make([]byte, 32)
	copy(n, name)
	return append(b, n...)
}

// loadBytes is a CELL_LOAD record with images given as (size, target);
// source addresses are compared separately because they are Go addresses.
func loadBytes(id int32, name string, n int) []byte {
	b := cellIDBytes(id, name)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, 0, 0, 0, 0)
}

func onlyCall(t *testing.T, f *fakeDriver, req request) call {
	t.Helper()
	if len(f.calls) != 1 {
		t.Fatalf("got %d ioctls, want 1", len(f.calls))
	}
	if c := f.calls[0]; request(c.req) != req {
		t.Fatalf("ioctl %v, want %v", request(c.req), req)
	}
	return f.calls[0]
}

// wantError checks the user-facing message and what errors.Is matches.
func wantError(t *testing.T, err error, msg string, is ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", msg)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
	for _, target := range is {
		if !errors.Is(err, target) {
			t.Errorf("error %q is not %v", err, target)
		}
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %q is not an *Error", err)
	}
}

func TestEnable(t *testing.T) {
	s := newSysfs(t).disabled()
	c, f := newTestClient(t, s)
	sys := demoSystem(t, cell.ArchARM64)
	f.enableLen = len(sys)
	if err := c.Enable(sys); err != nil {
		t.Fatal(err)
	}
	got := onlyCall(t, f, reqEnable)
	if !bytes.Equal(got.data[0], sys) {
		t.Error("ENABLE argument does not point at the system configuration")
	}
}

func TestEnableRejectsBeforeIoctl(t *testing.T) {
	good := demoSystem(t, cell.ArchARM64)
	tests := []struct {
		name string
		data []byte
		msg  string
		is   error
	}{
		{"cell file", marshalCell(t, demoCell("x", cpuset.Of(1))), "this is a cell configuration, not a system configuration", cell.ErrBadSignature},
		{"garbage", []byte("hello world"), "not a Jailhouse system configuration", cell.ErrBadSignature},
		{"revision", func() []byte { b := bytes.Clone(good); b[6] = 13; return b }(), "wrong revision (the driver needs 14)", cell.ErrBadRevision},
		{"truncated", good[:len(good)-1], "does not match the size its contents need", cell.ErrTruncated},
		{"trailing bytes", append(bytes.Clone(good), 0), "does not match the size its contents need", cell.ErrSizeMismatch},
		{"architecture", demoSystem(t, cell.ArchX86), "system configuration is for x86, this machine's driver expects arm64", ErrBadConfig},
		{"empty", nil, "system configuration", ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTestClient(t, newSysfs(t).disabled())
			err := c.Enable(tt.data)
			wantError(t, err, tt.msg, tt.is, ErrBadConfig)
			if len(f.calls) != 0 || f.opens != 0 {
				t.Errorf("the device was used (%d ioctls)", len(f.calls))
			}
		})
	}
}

func TestEnableErrors(t *testing.T) {
	tests := []struct {
		errno unix.Errno
		msg   string
		kind  error
	}{
		{unix.EBUSY, "enable: jailhouse is already enabled (EBUSY)", ErrAlreadyEnabled},
		{unix.EINVAL, "root cell's CPUs must be exactly the online CPUs", ErrBadConfig},
		{unix.ENOENT, "jailhouse.bin not found", nil},
		{unix.ENODEV, "no usable virtualisation support", nil},
	}
	for _, tt := range tests {
		t.Run(errnoName(tt.errno), func(t *testing.T) {
			c, f := newTestClient(t, newSysfs(t).disabled())
			sys := demoSystem(t, cell.ArchARM64)
			f.enableLen = len(sys)
			f.errs[reqEnable] = tt.errno
			err := c.Enable(sys)
			is := []error{tt.errno}
			if tt.kind != nil {
				is = append(is, tt.kind)
			}
			wantError(t, err, tt.msg, is...)
		})
	}
}

func TestEnableOnlineCPUs(t *testing.T) {
	s := newSysfs(t).disabled()
	s.write("../system/cpu/online", "0-3\n") // QEMU started with -smp 4
	c, f := newTestClient(t, s)
	sys := demoSystem(t, cell.ArchARM64)
	f.enableLen = len(sys)
	f.errs[reqEnable] = unix.EINVAL
	wantError(t, c.Enable(sys), "the root cell's CPUs (0-15) must be exactly the online CPUs (0-3)", ErrBadConfig, unix.EINVAL)
}

func TestDriverMissing(t *testing.T) {
	c, f := newTestClient(t, newSysfs(t))
	f.openErr = &fs.PathError{Op: "open", Path: "/dev/jailhouse-fake", Err: unix.ENOENT}
	err := c.Disable()
	wantError(t, err, "disable: jailhouse driver not loaded (/dev/jailhouse-fake missing)", ErrDriverMissing, os.ErrNotExist)

	f.openErr = &fs.PathError{Op: "open", Path: "/dev/jailhouse-fake", Err: unix.EACCES}
	wantError(t, c.Disable(), "permission denied opening /dev/jailhouse-fake", os.ErrPermission)
}

func TestDisable(t *testing.T) {
	c, f := newTestClient(t, newSysfs(t).enabled("0-15"))
	if err := c.Disable(); err != nil {
		t.Fatal(err)
	}
	if got := onlyCall(t, f, reqDisable); !got.argNil {
		t.Error("DISABLE got an argument, want none")
	}

	tests := []struct {
		errno unix.Errno
		msg   string
		kind  error
	}{
		{unix.EINVAL, "disable: jailhouse is not enabled", ErrNotEnabled},
		{unix.EBUSY, "a root-cell CPU is offline", nil},
		{unix.EPERM, "a cell refused the shutdown request", ErrRefused},
	}
	for _, tt := range tests {
		t.Run(errnoName(tt.errno), func(t *testing.T) {
			c, f := newTestClient(t, newSysfs(t).disabled())
			f.errs[reqDisable] = tt.errno
			is := []error{tt.errno}
			if tt.kind != nil {
				is = append(is, tt.kind)
			}
			wantError(t, c.Disable(), tt.msg, is...)
		})
	}
}

func TestCreateCell(t *testing.T) {
	s := newSysfs(t).enabled("0-15")
	s.addCell(1, "other", "running", "2", "")
	c, f := newTestClient(t, s)
	cfg := marshalCell(t, demoCell("inmate-demo", cpuset.Of(1)))
	// The driver assigns the lowest free id and creates cells/<id>.
	f.hook = func(req request) error {
		s.addCell(2, "inmate-demo", "shut down", "1", "")
		return nil
	}
	id, err := c.CreateCell(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if id != 2 {
		t.Errorf("id = %d, want 2 (from sysfs)", id)
	}
	got := onlyCall(t, f, reqCellCreate)
	le := binary.LittleEndian
	if le.Uint64(got.record[0:]) == 0 {
		t.Error("config_address is 0")
	}
	if size := le.Uint32(got.record[8:]); size != uint32(len(cfg)) {
		t.Errorf("config_size = %d, want %d", size, len(cfg))
	}
	if pad := le.Uint32(got.record[12:]); pad != 0 {
		t.Errorf("padding = %#x", pad)
	}
	if !bytes.Equal(got.data[0], cfg) {
		t.Error("config_address does not point at the configuration bytes")
	}
}

func TestCreateCellRejectsBeforeIoctl(t *testing.T) {
	good := marshalCell(t, demoCell("inmate-demo", cpuset.Of(1)))
	x86 := demoCell("inmate-demo", cpuset.Of(1))
	x86.Arch = cell.ArchX86
	tests := []struct {
		name string
		data []byte
		msg  string
		is   error
	}{
		// The driver would return success without creating the cell.
		{"architecture", marshalCell(t, x86), `cell configuration "inmate-demo" is for x86, this machine's driver expects arm64`, ErrBadConfig},
		{"signature", func() []byte { b := bytes.Clone(good); b[0] = 'X'; return b }(), "not a Jailhouse cell configuration", cell.ErrBadSignature},
		{"system file", demoSystem(t, cell.ArchARM64), "this is a system configuration, not a cell configuration", cell.ErrBadSignature},
		{"revision", func() []byte { b := bytes.Clone(good); b[6] = 12; return b }(), "wrong revision", cell.ErrBadRevision},
		{"truncated", good[:len(good)-4], "does not match the size", cell.ErrTruncated},
		{"trailing bytes", append(bytes.Clone(good), 0, 0), "does not match the size", cell.ErrSizeMismatch},
		{"unknown architecture", func() []byte { b := bytes.Clone(good); b[5] = 9; return b }(), "unknown architecture", cell.ErrBadArch},
		{"empty name", marshalCell(t, demoCell("", cpuset.Of(1))), "empty name", ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTestClient(t, newSysfs(t).enabled("0-15"))
			id, err := c.CreateCell(tt.data)
			wantError(t, err, tt.msg, tt.is, ErrBadConfig)
			if id != -1 || len(f.calls) != 0 {
				t.Errorf("id %d, %d ioctls; want -1 and none", id, len(f.calls))
			}
		})
	}
}

func TestCreateCellNotCreated(t *testing.T) {
	c, f := newTestClient(t, newSysfs(t).enabled("0-15"))
	id, err := c.CreateCell(marshalCell(t, demoCell("inmate-demo", cpuset.Of(1))))
	wantError(t, err, "cell 'inmate-demo' was not created (the driver reported success", ErrNotCreated)
	if id != -1 || len(f.calls) != 1 {
		t.Errorf("id %d after %d ioctls", id, len(f.calls))
	}
}

func TestCreateCellErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *sysfsTree)
		cpus  cpuset.Set
		errno unix.Errno
		msg   string
		kind  error
	}{
		{
			name:  "not enabled",
			setup: func(s *sysfsTree) { s.disabled() },
			cpus:  cpuset.Of(1), errno: unix.EINVAL,
			msg: "cell create: jailhouse is not enabled (EINVAL)", kind: ErrNotEnabled,
		},
		{
			name:  "module not loaded",
			setup: func(*sysfsTree) {},
			cpus:  cpuset.Of(1), errno: unix.EINVAL,
			msg: "jailhouse is not enabled", kind: ErrNotEnabled,
		},
		{
			name:  "hypervisor rejects",
			setup: func(s *sysfsTree) { s.enabled("0-15") },
			cpus:  cpuset.Of(1), errno: unix.EINVAL,
			msg: "the hypervisor rejected the configuration of cell 'inmate-demo'", kind: ErrBadConfig,
		},
		{
			name: "duplicate name",
			setup: func(s *sysfsTree) {
				s.enabled("0,2-15")
				s.addCell(1, "inmate-demo", "running", "1", "")
			},
			cpus: cpuset.Of(1), errno: unix.EEXIST,
			msg: "a cell named 'inmate-demo' already exists (id 1)", kind: ErrCellExists,
		},
		{
			name: "CPU owned by another cell",
			setup: func(s *sysfsTree) {
				s.enabled("0-2,4-15")
				s.addCell(1, "zic-a", "running", "3", "")
			},
			cpus: cpuset.Of(3), errno: unix.EBUSY,
			msg: "cell create: CPU 3 is not available to the root cell (owned by cell 'zic-a') (EBUSY)", kind: ErrCPUBusy,
		},
		{
			name: "several CPUs",
			setup: func(s *sysfsTree) {
				s.enabled("0-1,4-15")
				s.addCell(1, "zic-a", "running", "2-3", "")
			},
			cpus: cpuset.Of(1, 2, 3, 20), errno: unix.EBUSY,
			msg: "CPUs 2-3 are not available to the root cell (owned by cell 'zic-a'); " +
				"CPU 20 is not available to the root cell (not present or offline)",
			kind: ErrCPUBusy,
		},
		{
			name:  "EBUSY without a CPU conflict",
			setup: func(s *sysfsTree) { s.enabled("0-15") },
			cpus:  cpuset.Of(1), errno: unix.EBUSY,
			msg: "an ivshmem link is already taken",
		},
		{
			name:  "locked",
			setup: func(s *sysfsTree) { s.enabled("0-15") },
			cpus:  cpuset.Of(1), errno: unix.EPERM,
			msg: "a cell is running/locked", kind: ErrRefused,
		},
		{
			name:  "too big",
			setup: func(s *sysfsTree) { s.enabled("0-15") },
			cpus:  cpuset.Of(1), errno: unix.E2BIG,
			msg: "too large for the hypervisor",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysfs(t)
			tt.setup(s)
			c, f := newTestClient(t, s)
			f.errs[reqCellCreate] = tt.errno
			id, err := c.CreateCell(marshalCell(t, demoCell("inmate-demo", tt.cpus)))
			is := []error{tt.errno}
			if tt.kind != nil {
				is = append(is, tt.kind)
			}
			wantError(t, err, tt.msg, is...)
			if id != -1 {
				t.Errorf("id = %d, want -1", id)
			}
		})
	}
}

func TestLoadCellRecord(t *testing.T) {
	s := newSysfs(t).enabled("0,2-15")
	s.addCell(1, "inmate-demo", "shut down", "1", "")
	c, f := newTestClient(t, s)
	ref, err := ParseCellRef("inmate-demo")
	if err != nil {
		t.Fatal(err)
	}
	img := bytes.Repeat([]byte{0xa5}, 0x2000)
	if err := c.LoadCell(ref, Image{Data: img, Address: 0x1000}); err != nil {
		t.Fatal(err)
	}
	got := onlyCall(t, f, reqCellLoad)
	want := loadBytes(-1, "inmate-demo", 1)
	if !bytes.Equal(got.record[:48], want) {
		t.Errorf("header\n got % x\nwant % x", got.record[:48], want)
	}
	le := binary.LittleEndian
	rec := got.record[48:]
	if len(rec) != 32 {
		t.Fatalf("image records are %d bytes, want 32", len(rec))
	}
	if le.Uint64(rec[8:]) != 0x2000 || le.Uint64(rec[16:]) != 0x1000 || le.Uint64(rec[24:]) != 0 {
		t.Errorf("image record % x: want size 0x2000, target 0x1000, zero padding", rec)
	}
	if !bytes.Equal(got.data[0], img) {
		t.Error("source_address does not point at the image bytes")
	}
}

func TestLoadCellByIDSeveralImages(t *testing.T) {
	s := newSysfs(t).enabled("0,2-15")
	s.addCell(1, "inmate-demo", "running", "1", "")
	c, f := newTestClient(t, s)
	ref, _ := ParseCellRef("1")
	images := []Image{
		{Data: []byte("kernel"), Address: 0},
		{Data: nil, Address: 0x4000}, // skipped by the driver, still passed
		{Data: []byte("cmdline\x00"), Address: 0x8000},
	}
	if err := c.LoadCell(ref, images...); err != nil {
		t.Fatal(err)
	}
	got := onlyCall(t, f, reqCellLoad)
	if !bytes.Equal(got.record[:48], loadBytes(1, "", 3)) {
		t.Errorf("header % x: want id 1, zero name, 3 images", got.record[:48])
	}
	le := binary.LittleEndian
	for i, img := range images {
		rec := got.record[48+32*i:]
		if le.Uint64(rec[8:]) != uint64(len(img.Data)) || le.Uint64(rec[16:]) != img.Address {
			t.Errorf("image %d record % x", i, rec[:32])
		}
		if !bytes.Equal(got.data[i], img.Data) {
			t.Errorf("image %d: driver would copy %q, want %q", i, got.data[i], img.Data)
		}
	}
	if le.Uint64(got.record[48+32:]) != 0 {
		t.Error("an empty image has a non-zero source address")
	}
}

func TestShutdownStartDestroy(t *testing.T) {
	tests := []struct {
		name string
		do   func(*Client, CellRef) error
		req  request
		want []byte
	}{
		{"shutdown", (*Client).ShutdownCell, reqCellLoad, loadBytes(1, "", 0)},
		{"start", (*Client).StartCell, reqCellStart, cellIDBytes(1, "")},
		{"destroy", (*Client).DestroyCell, reqCellDestroy, cellIDBytes(1, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysfs(t).enabled("0,2-15")
			s.addCell(1, "inmate-demo", "running", "1", "")
			c, f := newTestClient(t, s)
			if err := tt.do(c, CellRef{ID: 1}); err != nil {
				t.Fatal(err)
			}
			got := onlyCall(t, f, tt.req)
			if !bytes.Equal(got.record, tt.want) {
				t.Errorf("record\n got % x\nwant % x", got.record, tt.want)
			}
		})
	}
}

func TestCellOpErrors(t *testing.T) {
	byName := CellRef{ID: -1, Name: "inmate-demo"}
	tests := []struct {
		name    string
		enabled bool
		do      func(*Client, CellRef) error
		req     request
		ref     CellRef
		errno   unix.Errno
		msg     string
		kind    error
	}{
		{"start not enabled", false, (*Client).StartCell, reqCellStart, byName, unix.EINVAL,
			"cell start: jailhouse is not enabled", ErrNotEnabled},
		{"start root by id", true, (*Client).StartCell, reqCellStart, CellRef{ID: 0}, unix.EINVAL,
			"the root cell cannot be started", ErrRootCell},
		{"destroy root by name", true, (*Client).DestroyCell, reqCellDestroy, CellRef{ID: -1, Name: "qemu-arm64"}, unix.EINVAL,
			"the root cell cannot be destroyed", ErrRootCell},
		{"shutdown root", true, (*Client).ShutdownCell, reqCellLoad, CellRef{ID: 0}, unix.EINVAL,
			"the root cell cannot be shut down", ErrRootCell},
		{"no cell by name", true, (*Client).StartCell, reqCellStart, CellRef{ID: -1, Name: "ghost"}, unix.ENOENT,
			"cell start: no cell 'ghost' (ENOENT)", ErrNoCell},
		{"no cell by id", true, (*Client).DestroyCell, reqCellDestroy, CellRef{ID: 9}, unix.ENOENT,
			"no cell with id 9", ErrNoCell},
		{"refused shutdown", true, (*Client).ShutdownCell, reqCellLoad, byName, unix.EPERM,
			"cell 'inmate-demo' refused the shutdown request", ErrRefused},
		{"refused destroy", true, (*Client).DestroyCell, reqCellDestroy, CellRef{ID: 1}, unix.EPERM,
			"cell 1 refused the shutdown request, or another cell is running/locked", ErrRefused},
		{"interrupted", true, (*Client).StartCell, reqCellStart, byName, unix.EINTR,
			"interrupted by a signal", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysfs(t)
			if tt.enabled {
				s.enabled("0,2-15")
				s.addCell(1, "inmate-demo", "running", "1", "")
			} else {
				s.disabled()
			}
			c, f := newTestClient(t, s)
			f.errs[tt.req] = tt.errno
			is := []error{tt.errno}
			if tt.kind != nil {
				is = append(is, tt.kind)
			}
			wantError(t, tt.do(c, tt.ref), tt.msg, is...)
		})
	}
}

func TestBadRefNeverReachesDriver(t *testing.T) {
	c, f := newTestClient(t, newSysfs(t).enabled("0-15"))
	bad := CellRef{ID: -1, Name: strings.Repeat("n", 40)}
	for _, do := range []func(CellRef) error{c.StartCell, c.DestroyCell, c.ShutdownCell,
		func(r CellRef) error { return c.LoadCell(r, Image{Data: []byte{1}}) }} {
		wantError(t, do(bad), "at most 31", ErrBadName)
	}
	if len(f.calls) != 0 {
		t.Errorf("%d ioctls with an invalid name", len(f.calls))
	}
}

func TestLoadImageChecks(t *testing.T) {
	cfg := demoCell("inmate-demo", cpuset.Of(1))
	tests := []struct {
		name   string
		images []Image
		msg    string
	}{
		{"too big at region start", []Image{{Data: make([]byte, 80<<10), Address: 0}},
			"cell load: image of 80 KiB does not fit region 1 (64 KiB) at 0x0"},
		{"too big at an offset", []Image{{Data: make([]byte, 32<<10), Address: 0x9000}},
			"image of 32 KiB does not fit region 1 (64 KiB at 0x0) at 0x9000: 28 KiB left"},
		{"no region", []Image{{Data: []byte{1}}, {Data: []byte{1}, Address: 0x20000}},
			"image 2: no memory region of cell 'inmate-demo' contains address 0x20000"},
		{"not loadable", []Image{{Data: []byte{1}, Address: 0x10000}},
			"region 2 (16 KiB at 0x10000), the first one containing address 0x10000, is not writable and loadable"},
		{"odd size", []Image{{Data: make([]byte, 0x10001), Address: 0}},
			"image of 65537 bytes does not fit region 1 (64 KiB) at 0x0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysfs(t).enabled("0,2-15")
			s.addCell(1, "inmate-demo", "shut down", "1", "")
			// The configuration is known by name; the cell is addressed by id.
			c, f := newTestClient(t, s, WithCellConfigs(cfg))
			err := c.LoadCell(CellRef{ID: 1}, tt.images...)
			wantError(t, err, tt.msg, ErrImage)
			if len(f.calls) != 0 {
				t.Errorf("%d ioctls for an image that cannot fit", len(f.calls))
			}
			if err := CheckImages(cfg, tt.images); err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("CheckImages = %v, want %q", err, tt.msg)
			}
		})
	}
	if err := CheckImages(cfg, []Image{{Data: make([]byte, 64<<10)}, {Data: make([]byte, 4), Address: 0xfffc}}); err != nil {
		t.Errorf("images that fit exactly: %v", err)
	}
}

func TestLoadRemembersCreatedConfig(t *testing.T) {
	s := newSysfs(t).enabled("0-15")
	c, f := newTestClient(t, s)
	f.hook = func(req request) error {
		if req == reqCellCreate {
			s.addCell(1, "inmate-demo", "shut down", "1", "")
		}
		return nil
	}
	if _, err := c.CreateCell(marshalCell(t, demoCell("inmate-demo", cpuset.Of(1)))); err != nil {
		t.Fatal(err)
	}
	err := c.LoadCell(CellRef{ID: -1, Name: "inmate-demo"}, Image{Data: make([]byte, 80<<10)})
	wantError(t, err, "image of 80 KiB does not fit region 1 (64 KiB) at 0x0", ErrImage)
	if len(f.calls) != 1 {
		t.Errorf("%d ioctls, want only the create", len(f.calls))
	}
}

func TestDestroyForgetsConfig(t *testing.T) {
	s := newSysfs(t).enabled("0,2-15")
	s.addCell(1, "inmate-demo", "shut down", "1", "")
	c, f := newTestClient(t, s, WithCellConfigs(demoCell("inmate-demo", cpuset.Of(1))))
	big := Image{Data: make([]byte, 80<<10)}
	wantError(t, c.LoadCell(CellRef{ID: 1}, big), "does not fit", ErrImage)
	if err := c.DestroyCell(CellRef{ID: 1}); err != nil {
		t.Fatal(err)
	}
	// Re-created elsewhere, maybe from another configuration: no stale check.
	if err := c.LoadCell(CellRef{ID: 1}, big); err != nil {
		t.Fatalf("load after destroy checked against the old configuration: %v", err)
	}
	if len(f.calls) != 2 {
		t.Errorf("%d ioctls, want destroy and load", len(f.calls))
	}
}

func TestLoadEINVALWithoutConfig(t *testing.T) {
	s := newSysfs(t).enabled("0,2-15")
	s.addCell(1, "inmate-demo", "shut down", "1", "")
	c, f := newTestClient(t, s)
	f.errs[reqCellLoad] = unix.EINVAL
	err := c.LoadCell(CellRef{ID: -1, Name: "inmate-demo"}, Image{Data: []byte{1}, Address: 0x20000})
	wantError(t, err, "an image does not fit cell 'inmate-demo'", ErrImage, unix.EINVAL)
}
