package emu

import "syscall"

// irqchipInit is the hypervisor's irqchip check of a new cell: entries for
// the GIC distributor must have a pin base that is a multiple of 32 and
// leaves room for 128 interrupts below 1024. Entries for other addresses
// are ignored. The arithmetic is 32-bit, as in the hypervisor.
func (h *Hypervisor) irqchipInit(c *cellState) error {
	for _, chip := range c.cfg.irqchips {
		if chip.address != h.st.sys.gicdBase {
			continue
		}
		if chip.pinBase%32 != 0 || chip.pinBase+128 > irqBitmapBits {
			return syscall.EINVAL
		}
	}
	return nil
}

// links returns the ivshmem links of the existing cells: for every bdf the
// endpoints by shmem_dev_id. The domain does not take part in linking.
func (h *Hypervisor) links() map[uint16]*[ivshmemMaxPeers]*cellState {
	links := map[uint16]*[ivshmemMaxPeers]*cellState{}
	for _, c := range h.st.Cells {
		for _, d := range c.cfg.pcis {
			if d.typ == pciTypeIvshmem && d.shmemDevID < ivshmemMaxPeers {
				addEndpoint(links, d.bdf, d.shmemDevID, c)
			}
		}
	}
	return links
}

func addEndpoint(links map[uint16]*[ivshmemMaxPeers]*cellState, bdf uint16, id uint8, c *cellState) {
	l := links[bdf]
	if l == nil {
		l = new([ivshmemMaxPeers]*cellState)
		links[bdf] = l
	}
	l[id] = c
}

// pciInit is the hypervisor's PCI unit for a new cell (c is already in the
// cell list): every ivshmem device joins the link of its bdf.
func (h *Hypervisor) pciInit(c *cellState) error {
	links := map[uint16]*[ivshmemMaxPeers]*cellState{}
	for _, other := range h.st.Cells {
		if other == c {
			continue
		}
		for _, d := range other.cfg.pcis {
			if d.typ == pciTypeIvshmem && d.shmemDevID < ivshmemMaxPeers {
				addEndpoint(links, d.bdf, d.shmemDevID, other)
			}
		}
	}
	for _, d := range c.cfg.pcis {
		if d.typ != pciTypeIvshmem {
			continue
		}
		h.print("Adding virtual PCI device %02x:%02x.%x to cell \"%s\"\n",
			d.bdf>>8, (d.bdf>>3)&0x1f, d.bdf&7, c.cfg.name)
		// 32-bit sum, as in the hypervisor.
		if d.shmemStart+2+uint32(d.shmemPeers) > c.cfg.numMem || d.numMSIX > ivshmemMaxMSIX {
			return syscall.EINVAL
		}
		link := links[d.bdf]
		if d.shmemDevID >= ivshmemMaxPeers {
			return syscall.EINVAL
		}
		if link != nil {
			if link[d.shmemDevID] != nil {
				return syscall.EBUSY
			}
			h.print("Shared memory connection established, peer cells:\n")
			for _, peer := range link {
				if peer != nil {
					h.print(" \"%s\"\n", peer.cfg.name)
				}
			}
		}
		addEndpoint(links, d.bdf, d.shmemDevID, c)
	}
	return nil
}
