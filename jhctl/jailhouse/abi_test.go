package jailhouse

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// ioc mirrors the asm-generic _IOC encoding: dir<<30 | size<<16 | type<<8 | nr.
func ioc(dir, typ, nr, size uint) uint { return dir<<30 | size<<16 | typ<<8 | nr }

const (
	iocNone  = 0
	iocWrite = 1
)

func TestRequestNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  request
		want uint
	}{
		// ENABLE is declared with a pointer argument: its size is the
		// pointer size of the (64-bit) process.
		{"ENABLE", reqEnable, ioc(iocWrite, 0, 0, uint(unsafe.Sizeof(uintptr(0))))},
		{"DISABLE", reqDisable, ioc(iocNone, 0, 1, 0)},
		{"CELL_CREATE", reqCellCreate, ioc(iocWrite, 0, 2, uint(unsafe.Sizeof(cellCreate{})))},
		{"CELL_LOAD", reqCellLoad, ioc(iocWrite, 0, 3, uint(unsafe.Sizeof(cellLoad{})))},
		{"CELL_START", reqCellStart, ioc(iocWrite, 0, 4, uint(unsafe.Sizeof(cellID{})))},
		{"CELL_DESTROY", reqCellDestroy, ioc(iocWrite, 0, 5, uint(unsafe.Sizeof(cellID{})))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint(tt.got) != tt.want {
				t.Errorf("request = %#x, _IOW gives %#x", uint(tt.got), tt.want)
			}
			if tt.got.String() != "JAILHOUSE_"+tt.name {
				t.Errorf("String() = %q", tt.got.String())
			}
		})
	}
}

func TestRecordLayout(t *testing.T) {
	var create cellCreate
	var id cellID
	var img preloadImage
	var load cellLoad
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof cell_create", unsafe.Sizeof(create), 16},
		{"cell_create.config_address", unsafe.Offsetof(create.ConfigAddress), 0},
		{"cell_create.config_size", unsafe.Offsetof(create.ConfigSize), 8},
		{"sizeof cell_id", unsafe.Sizeof(id), 40},
		{"cell_id.id", unsafe.Offsetof(id.ID), 0},
		{"cell_id.name", unsafe.Offsetof(id.Name), 8},
		{"sizeof cell_id.name", unsafe.Sizeof(id.Name), 32},
		{"sizeof preload_image", unsafe.Sizeof(img), 32},
		{"preload_image.source_address", unsafe.Offsetof(img.SourceAddress), 0},
		{"preload_image.size", unsafe.Offsetof(img.Size), 8},
		{"preload_image.target_address", unsafe.Offsetof(img.TargetAddress), 16},
		{"sizeof cell_load", unsafe.Sizeof(load), 48},
		{"cell_load.cell_id", unsafe.Offsetof(load.Cell), 0},
		{"cell_load.num_preload_images", unsafe.Offsetof(load.NumImages), 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
}

// TestLoadBufferBytes checks the packed CELL_LOAD argument against the
// Python helper's struct format "i4x32sI4xQQQ8x" (80 bytes for one image).
func TestLoadBufferBytes(t *testing.T) {
	ref, err := ByName("inmate-demo")
	if err != nil {
		t.Fatal(err)
	}
	id, err := ref.record()
	if err != nil {
		t.Fatal(err)
	}
	buf := newLoadBuffer(id, 1)
	buf.images()[0] = preloadImage{SourceAddress: 0x1122334455667788, Size: 0x2000, TargetAddress: 0x1000}
	got := unsafe.Slice((*byte)(buf.ptr()), len(buf.words)*8)
	// The image records hold u64 fields; the C struct is 8-byte aligned.
	if uintptr(buf.ptr())%8 != 0 {
		t.Errorf("load buffer at %p is not 8-byte aligned", buf.ptr())
	}

	want := make([]byte, 0, 80)
	want = binary.LittleEndian.AppendUint32(want, 0xffffffff) // id -1
	want = append(want, 0, 0, 0, 0)
	name := make([]byte, 32)
	copy(name, "inmate-demo")
	want = append(want, name...)
	want = binary.LittleEndian.AppendUint32(want, 1)
	want = append(want, 0, 0, 0, 0)
	want = binary.LittleEndian.AppendUint64(want, 0x1122334455667788)
	want = binary.LittleEndian.AppendUint64(want, 0x2000)
	want = binary.LittleEndian.AppendUint64(want, 0x1000)
	want = append(want, make([]byte, 8)...)
	if string(got) != string(want) {
		t.Errorf("load buffer\n got % x\nwant % x", got, want)
	}
	if len(newLoadBuffer(id, 0).words)*8 != sizeofCellLoad {
		t.Error("a shutdown (zero-image) load buffer is not 48 bytes")
	}
}
