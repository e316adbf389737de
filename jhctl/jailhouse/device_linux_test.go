package jailhouse

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestOpenDeviceMissing(t *testing.T) {
	_, err := OpenDevice(filepath.Join(t.TempDir(), "jailhouse"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
	c := New(Paths{Device: filepath.Join(t.TempDir(), "jailhouse"), Sysfs: t.TempDir()})
	wantError(t, c.Disable(), "jailhouse driver not loaded", ErrDriverMissing)
}

// TestFileDevice drives the real device code against /dev/null, which
// rejects every ioctl with ENOTTY and reads as empty.
func TestFileDevice(t *testing.T) {
	dev, err := OpenDevice("/dev/null")
	if err != nil {
		t.Skipf("no /dev/null: %v", err)
	}
	defer dev.Close()
	rec := cellID{ID: 1}
	err = dev.Ioctl(uint(reqCellStart), unsafe.Pointer(&rec))
	if n, ok := errno(err); !ok || n != unix.ENOTTY {
		t.Errorf("ioctl on /dev/null: %v, want a bare ENOTTY", err)
	}
	if err := dev.SetNonblock(true); err != nil {
		t.Errorf("SetNonblock: %v", err)
	}
	n, err := dev.Read(make([]byte, 128))
	if n != 0 || (err != nil && !errors.Is(err, io.EOF)) {
		t.Errorf("read = %d, %v; want 0 bytes", n, err)
	}
}

// TestRealDriver only reads: it lists cells when a driver is loaded.
func TestRealDriver(t *testing.T) {
	if _, err := os.Stat(DefaultDevice); err != nil {
		t.Skipf("no jailhouse driver: %v", err)
	}
	c := New(Paths{})
	if _, err := c.Enabled(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cells(); err != nil {
		t.Fatal(err)
	}
}
