package emu

import (
	"bytes"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// FuzzParseCellConfig checks that the lenient decoder never panics and
// agrees with the strict codec on every configuration the codec accepts.
func FuzzParseCellConfig(f *testing.F) {
	for _, demo := range []string{"inmate-demo", "linux-demo", "zephyr-demo"} {
		f.Add(demoCell(f, demo, nil))
	}
	f.Add(tinyCell(f, "tiny", cpuset.Set{}, nil))
	f.Add([]byte("JHCLL"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseCellConfig(data)
		strict, serr := cell.UnmarshalCell(data)
		if serr != nil {
			return
		}
		if err != nil {
			t.Fatalf("strict codec accepts, emulator rejects: %v", err)
		}
		if cfg.name != strict.Name || len(cfg.mems) != len(strict.MemRegions) ||
			len(cfg.pcis) != len(strict.PCIDevices) || len(cfg.irqchips) != len(strict.Irqchips) {
			t.Fatalf("decoders disagree: %+v vs %+v", cfg.desc, strict)
		}
		if got := cpuset.Of(cfg.cpus(-1)...); !got.Equal(strict.CPUs) {
			t.Fatalf("CPUs %v, codec says %v", got, strict.CPUs)
		}
		for i, m := range strict.MemRegions {
			if cfg.mems[i] != (memRegion{m.PhysStart, m.VirtStart, m.Size, uint64(m.Flags)}) {
				t.Fatalf("region %d differs", i)
			}
		}
	})
}

// FuzzIoctl feeds arbitrary records and buffers to every request of an
// enabled hypervisor with a created cell; it must never panic, and CPU
// ownership must stay a partition of the machine's CPUs.
func FuzzIoctl(f *testing.F) {
	inmate := demoCell(f, "inmate-demo", nil)
	id := encodeCellID(1, "")
	load := append(bytes.Clone(id), make([]byte, 8)...)
	f.Add(uint8(0), qemuSystem(f, nil), []byte{})
	f.Add(uint8(2), make([]byte, createRecSize), inmate)
	f.Add(uint8(3), load, []byte("image"))
	f.Add(uint8(4), id, []byte{})
	f.Add(uint8(5), id, []byte{})
	f.Add(uint8(1), []byte{}, []byte{})
	sys := qemuSystem(f, nil)
	reqs := []uint{ReqEnable, ReqDisable, ReqCellCreate, ReqCellLoad, ReqCellStart, ReqCellDestroy}
	f.Fuzz(func(t *testing.T, which uint8, record, payload []byte) {
		h := New(Options{CPUs: cpuset.Range(0, 15), MaxImage: 1 << 20})
		if err := h.Enable(sys); err != nil {
			t.Fatal(err)
		}
		if err := h.CreateCell(inmate); err != nil {
			t.Fatal(err)
		}
		var s Space
		// Point the record's address fields at the payload, so that the
		// fuzzer reaches the code behind the copies.
		payloadAddr := s.Map(payload)
		rec := bytes.Clone(record)
		req := reqs[int(which)%len(reqs)]
		switch req {
		case ReqCellCreate:
			if len(rec) >= 8 {
				le.PutUint64(rec, payloadAddr)
			}
		case ReqCellLoad:
			for off := loadHdrSize; off+8 <= len(rec); off += imageRecSize {
				le.PutUint64(rec[off:], payloadAddr)
			}
		}
		arg := s.Map(rec)
		if req == ReqEnable && which >= 128 {
			arg = payloadAddr
		}
		_ = h.Ioctl(req, arg, &s)
		if !h.Enabled() {
			return
		}
		all := cpuset.Set{}
		total := 0
		for _, c := range h.Cells() {
			all = all.Union(c.CPUs)
			total += c.CPUs.Len()
		}
		if !all.Equal(cpuset.Range(0, 15)) || total != 16 {
			t.Fatalf("CPUs no longer partitioned: %v", h.Cells())
		}
	})
}
