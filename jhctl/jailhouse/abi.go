package jailhouse

import (
	"fmt"
	"unsafe"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// request is an ioctl request number of the jailhouse driver (driver/jailhouse.h).
// The values are written out; abi_test.go recomputes them from the _IOW
// encoding and the record sizes. They are the LP64 (arm64, x86-64) values;
// a 32-bit process would encode a different ENABLE and the driver does not
// translate.
type request uint

const (
	reqEnable      request = 0x40080000 // _IOW(0, 0, void *): address of the system config
	reqDisable     request = 0x00000001 // _IO(0, 1): no argument
	reqCellCreate  request = 0x40100002 // _IOW(0, 2, cellCreate)
	reqCellLoad    request = 0x40300003 // _IOW(0, 3, cellLoad), followed by the images
	reqCellStart   request = 0x40280004 // _IOW(0, 4, cellID)
	reqCellDestroy request = 0x40280005 // _IOW(0, 5, cellID)
)

func (r request) String() string {
	switch r {
	case reqEnable:
		return "JAILHOUSE_ENABLE"
	case reqDisable:
		return "JAILHOUSE_DISABLE"
	case reqCellCreate:
		return "JAILHOUSE_CELL_CREATE"
	case reqCellLoad:
		return "JAILHOUSE_CELL_LOAD"
	case reqCellStart:
		return "JAILHOUSE_CELL_START"
	case reqCellDestroy:
		return "JAILHOUSE_CELL_DESTROY"
	}
	return fmt.Sprintf("ioctl %#x", uint(r))
}

// Argument records, mirroring the driver's structs with explicit padding.
// Addresses are uint64 so the layout is the same for every target; the
// values are user virtual addresses of buffers the caller keeps pinned.

// cellCreate is struct jailhouse_cell_create (16 bytes).
type cellCreate struct {
	ConfigAddress uint64
	ConfigSize    uint32
	_             uint32
}

// cellID is struct jailhouse_cell_id (40 bytes). ID -1 means "by name".
type cellID struct {
	ID   int32
	_    uint32
	Name [cell.MaxNameLen + 1]byte
}

// preloadImage is struct jailhouse_preload_image (32 bytes).
type preloadImage struct {
	SourceAddress uint64
	Size          uint64
	TargetAddress uint64
	_             uint64
}

// cellLoad is the 48-byte header of struct jailhouse_cell_load; the
// preload-image records follow it in the same buffer.
type cellLoad struct {
	Cell      cellID
	NumImages uint32
	_         uint32
}

// Record sizes from the ABI (jailhouse-abi.md §3.3).
const (
	sizeofCellCreate   = 16
	sizeofCellID       = 40
	sizeofPreloadImage = 32
	sizeofCellLoad     = 48
)

// Compile-time layout checks; abi_test.go checks the field offsets.
var (
	_ [sizeofCellCreate - unsafe.Sizeof(cellCreate{})]struct{}
	_ [unsafe.Sizeof(cellCreate{}) - sizeofCellCreate]struct{}
	_ [sizeofCellID - unsafe.Sizeof(cellID{})]struct{}
	_ [unsafe.Sizeof(cellID{}) - sizeofCellID]struct{}
	_ [sizeofPreloadImage - unsafe.Sizeof(preloadImage{})]struct{}
	_ [unsafe.Sizeof(preloadImage{}) - sizeofPreloadImage]struct{}
	_ [sizeofCellLoad - unsafe.Sizeof(cellLoad{})]struct{}
	_ [unsafe.Sizeof(cellLoad{}) - sizeofCellLoad]struct{}
)

// record converts a CellRef into the driver's cell-id record. The name was
// validated when the CellRef was made; an id reference leaves it all-zero,
// as the C tool does.
func (r CellRef) record() (cellID, error) {
	var rec cellID
	if err := r.validate(); err != nil {
		return rec, err
	}
	rec.ID = r.ID
	if r.ID < 0 {
		copy(rec.Name[:], r.Name)
	}
	return rec, nil
}

// loadBuffer holds a CELL_LOAD argument: the header followed by n image
// records in one contiguous, 8-byte aligned allocation.
type loadBuffer struct {
	words []uint64
}

func newLoadBuffer(id cellID, n int) *loadBuffer {
	b := &loadBuffer{words: make([]uint64, (sizeofCellLoad+n*sizeofPreloadImage)/8)}
	h := b.header()
	h.Cell = id
	h.NumImages = uint32(n)
	return b
}

func (b *loadBuffer) ptr() unsafe.Pointer { return unsafe.Pointer(&b.words[0]) }

func (b *loadBuffer) header() *cellLoad { return (*cellLoad)(b.ptr()) }

func (b *loadBuffer) images() []preloadImage {
	n := int(b.header().NumImages)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*preloadImage)(unsafe.Pointer(&b.words[sizeofCellLoad/8])), n)
}
