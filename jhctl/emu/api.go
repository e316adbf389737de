package emu

import "github.com/runphi-go/runphi/jhctl/jailhouse"

// The methods below build the driver's records the way a caller does and
// issue them through Ioctl, so they take exactly the same path. Names are
// copied into records unchecked (the driver truncates at 31 bytes).

// Enable issues ENABLE with the bytes of a system configuration.
func (h *Hypervisor) Enable(config []byte) error {
	var s Space
	return h.Ioctl(ReqEnable, s.Map(config), &s)
}

// Disable issues DISABLE.
func (h *Hypervisor) Disable() error { return h.Ioctl(ReqDisable, 0, &Space{}) }

// CreateCell issues CELL_CREATE with the bytes of a cell configuration.
func (h *Hypervisor) CreateCell(config []byte) error {
	var s Space
	rec := make([]byte, createRecSize)
	le.PutUint64(rec[0:], s.Map(config))
	le.PutUint32(rec[8:], uint32(len(config)))
	return h.Ioctl(ReqCellCreate, s.Map(rec), &s)
}

// LoadCell issues one CELL_LOAD with all images; none means shut down.
func (h *Hypervisor) LoadCell(ref jailhouse.CellRef, images ...jailhouse.Image) error {
	var s Space
	rec := make([]byte, loadHdrSize+imageRecSize*len(images))
	copy(rec, encodeCellID(ref.ID, ref.Name))
	le.PutUint32(rec[40:], uint32(len(images)))
	for i, img := range images {
		r := rec[loadHdrSize+i*imageRecSize:]
		le.PutUint64(r[0:], s.Map(img.Data))
		le.PutUint64(r[8:], uint64(len(img.Data)))
		le.PutUint64(r[16:], img.Address)
	}
	return h.Ioctl(ReqCellLoad, s.Map(rec), &s)
}

// StartCell issues CELL_START.
func (h *Hypervisor) StartCell(ref jailhouse.CellRef) error {
	var s Space
	return h.Ioctl(ReqCellStart, s.Map(encodeCellID(ref.ID, ref.Name)), &s)
}

// DestroyCell issues CELL_DESTROY.
func (h *Hypervisor) DestroyCell(ref jailhouse.CellRef) error {
	var s Space
	return h.Ioctl(ReqCellDestroy, s.Map(encodeCellID(ref.ID, ref.Name)), &s)
}
