/*
 * Test stand-in for Jailhouse's <jailhouse/cell-config.h>, written for
 * cellgen's csrc tests from the layout tables of the configuration ABI
 * (revision 14). It has the record layouts and the macros the C emitter
 * uses, under upstream's names, and nothing else.
 */
#ifndef CELLGEN_TEST_CELL_CONFIG_H
#define CELLGEN_TEST_CELL_CONFIG_H

#include <jailhouse/console.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define JAILHOUSE_X86	0
#define JAILHOUSE_ARM	1
#define JAILHOUSE_ARM64	2

#define JAILHOUSE_CONFIG_REVISION	14
#define JAILHOUSE_CELL_DESC_SIGNATURE	"JHCLL"
#define JAILHOUSE_SYSTEM_SIGNATURE	"JHSYS"

#define JAILHOUSE_CELL_PASSIVE_COMMREG			0x00000001
#define JAILHOUSE_CELL_TEST_DEVICE			0x00000002
#define JAILHOUSE_CELL_AARCH32				0x00000004
#define JAILHOUSE_CELL_VIRTUAL_CONSOLE_PERMITTED	0x40000000
#define JAILHOUSE_CELL_VIRTUAL_CONSOLE_ACTIVE		0x80000000

#define JAILHOUSE_SYS_VIRTUAL_DEBUG_CONSOLE	0x0001

#define JAILHOUSE_MEM_READ		0x0001
#define JAILHOUSE_MEM_WRITE		0x0002
#define JAILHOUSE_MEM_EXECUTE		0x0004
#define JAILHOUSE_MEM_DMA		0x0008
#define JAILHOUSE_MEM_IO		0x0010
#define JAILHOUSE_MEM_COMM_REGION	0x0020
#define JAILHOUSE_MEM_LOADABLE		0x0040
#define JAILHOUSE_MEM_ROOTSHARED	0x0080
#define JAILHOUSE_MEM_NO_HUGEPAGES	0x0100
#define JAILHOUSE_MEM_IO_UNALIGNED	0x8000
#define JAILHOUSE_MEM_IO_8		0x10000
#define JAILHOUSE_MEM_IO_16		0x20000
#define JAILHOUSE_MEM_IO_32		0x40000
#define JAILHOUSE_MEM_IO_64		0x80000

#define JAILHOUSE_CACHE_L3_CODE		0x01
#define JAILHOUSE_CACHE_L3_DATA		0x02
#define JAILHOUSE_CACHE_L3		0x03
#define JAILHOUSE_CACHE_ROOTSHARED	0x0001

#define JAILHOUSE_PCI_TYPE_DEVICE	0x01
#define JAILHOUSE_PCI_TYPE_BRIDGE	0x02
#define JAILHOUSE_PCI_TYPE_IVSHMEM	0x03

#define JAILHOUSE_SHMEM_PROTO_UNDEFINED		0x0000
#define JAILHOUSE_SHMEM_PROTO_VETH		0x0001
#define JAILHOUSE_SHMEM_PROTO_CUSTOM		0x4000
#define JAILHOUSE_SHMEM_PROTO_VIRTIO_FRONT	0x8000
#define JAILHOUSE_SHMEM_PROTO_VIRTIO_BACK	0xc000
#define VIRTIO_DEV_NET		1
#define VIRTIO_DEV_BLOCK	2
#define VIRTIO_DEV_CONSOLE	3

#define JAILHOUSE_PCI_EXT_CAP		0x8000
#define JAILHOUSE_PCICAPS_WRITE		0x0001

#define JAILHOUSE_APIC_MODE_AUTO	0
#define JAILHOUSE_APIC_MODE_XAPIC	1
#define JAILHOUSE_APIC_MODE_X2APIC	2

#define JAILHOUSE_MAX_IOMMU_UNITS	8
#define JAILHOUSE_IOMMU_AMD		1
#define JAILHOUSE_IOMMU_INTEL		2
#define JAILHOUSE_IOMMU_SMMUV3		3
#define JAILHOUSE_IOMMU_PVU		4
#define JAILHOUSE_IOMMU_ARM_MMU500	5

/* ivshmem BAR masks: six words each. */
#define JAILHOUSE_IVSHMEM_BAR_MASK_INTX		{ 0xfffff000, 0, 0, 0, 0, 0 }
#define JAILHOUSE_IVSHMEM_BAR_MASK_MSIX		{ 0xfffff000, 0xfffff000, 0, 0, 0, 0 }
#define JAILHOUSE_IVSHMEM_BAR_MASK_INTX_64K	{ 0xffff0000, 0, 0, 0, 0, 0 }
#define JAILHOUSE_IVSHMEM_BAR_MASK_MSIX_64K	{ 0xffff0000, 0xffff0000, 0, 0, 0, 0 }

struct jailhouse_memory {		/* 32 bytes */
	__u64 phys_start;
	__u64 virt_start;
	__u64 size;
	__u64 flags;
} __attribute__((packed));

/*
 * The four regions of an ivshmem-net device at base b for local peer d:
 * state table, empty common section, then one output section per peer,
 * writable only for its owner.
 */
#define JAILHOUSE_SHMEM_NET_REGIONS(b, d)				\
	{ .phys_start = (b), .virt_start = (b), .size = 0x1000,		\
	  .flags = JAILHOUSE_MEM_READ | JAILHOUSE_MEM_ROOTSHARED },	\
	{ 0 },								\
	{ .phys_start = (b) + 0x1000, .virt_start = (b) + 0x1000,	\
	  .size = 0x7f000,						\
	  .flags = JAILHOUSE_MEM_READ | JAILHOUSE_MEM_ROOTSHARED |	\
		   ((d) == 0 ? JAILHOUSE_MEM_WRITE : 0) },		\
	{ .phys_start = (b) + 0x80000, .virt_start = (b) + 0x80000,	\
	  .size = 0x7f000,						\
	  .flags = JAILHOUSE_MEM_READ | JAILHOUSE_MEM_ROOTSHARED |	\
		   ((d) == 1 ? JAILHOUSE_MEM_WRITE : 0) }

struct jailhouse_cache {		/* 12 bytes */
	__u32 start;
	__u32 size;
	__u8 type;
	__u8 padding;
	__u16 flags;
} __attribute__((packed));

struct jailhouse_irqchip {		/* 32 bytes */
	__u64 address;
	__u32 id;
	__u32 pin_base;
	__u32 pin_bitmap[4];
} __attribute__((packed));

struct jailhouse_pio {			/* 4 bytes */
	__u16 base;
	__u16 length;
} __attribute__((packed));

#define PIO_RANGE(b, l)	{ .base = (b), .length = (l) }

struct jailhouse_pci_device {		/* 56 bytes */
	__u8 type;			/* @0 */
	__u8 iommu;
	__u16 domain;
	__u16 bdf;
	__u32 bar_mask[6];		/* @6 */
	__u16 caps_start;		/* @30 */
	__u16 num_caps;
	__u8 num_msi_vectors;		/* @34 */
	__u8 msi_64bits:1;		/* @35, bit 0 */
	__u8 msi_maskable:1;		/* @35, bit 1 */
	__u16 num_msix_vectors;		/* @36 */
	__u16 msix_region_size;
	__u64 msix_address;		/* @40 */
	__u32 shmem_regions_start;	/* @48 */
	__u8 shmem_dev_id;
	__u8 shmem_peers;
	__u16 shmem_protocol;		/* @54 */
} __attribute__((packed));

struct jailhouse_pci_capability {	/* 8 bytes */
	__u16 id;
	__u16 start;
	__u16 len;
	__u16 flags;
} __attribute__((packed));

struct jailhouse_iommu {		/* 28 bytes */
	__u32 type;
	__u64 base;
	__u32 size;
	union {				/* @16, 12 bytes */
		struct {
			__u16 bdf;
			__u8 base_cap;
			__u8 msi_cap;
			__u32 features;
		} __attribute__((packed)) amd;
		struct {
			__u64 tlb_base;
			__u32 tlb_size;
		} __attribute__((packed)) tipvu;
	};
} __attribute__((packed));

/* A stream id is one u32, or an id/mask pair for the MMU-500. */
union jailhouse_stream_id {
	__u32 id;
	struct {
		__u16 id;
		__u16 mask_out;
	} __attribute__((packed)) mmu500;
} __attribute__((packed));

struct jailhouse_cell_desc {		/* 132 bytes */
	char signature[5];
	__u8 architecture;
	__u16 revision;
	char name[32];			/* @8 */
	__u32 id;			/* @40 */
	__u32 flags;
	__u32 cpu_set_size;		/* @48 */
	__u32 num_memory_regions;
	__u32 num_cache_regions;
	__u32 num_irqchips;
	__u32 num_pio_regions;
	__u32 num_pci_devices;
	__u32 num_pci_caps;
	__u32 num_stream_ids;
	__u32 vpci_irq_base;		/* @80 */
	__u64 cpu_reset_address;	/* @84 */
	__u64 msg_reply_timeout;	/* @92 */
	struct jailhouse_console console;	/* @100 */
} __attribute__((packed));

struct jailhouse_system {		/* 356 bytes before the root cell */
	char signature[5];
	__u8 architecture;
	__u16 revision;
	__u32 flags;			/* @8 */
	struct jailhouse_memory hypervisor_memory;	/* @12 */
	struct jailhouse_console debug_console;		/* @44 */
	struct {
		__u64 pci_mmconfig_base;	/* @76 */
		__u8 pci_mmconfig_end_bus;
		__u8 pci_is_virtual;
		__u16 pci_domain;
		struct jailhouse_iommu iommu_units[JAILHOUSE_MAX_IOMMU_UNITS];	/* @88 */
		union {				/* @312, 44 bytes */
			struct {
				__u16 pm_timer_address;
				__u8 apic_mode;
				__u8 padding;
				__u32 vtd_interrupt_limit;
				__u32 tsc_khz;
				__u32 apic_khz;
			} __attribute__((packed)) x86;
			struct {
				u8 maintenance_irq;
				u8 gic_version;
				u8 padding[2];
				u64 gicd_base;
				u64 gicc_base;
				u64 gich_base;
				u64 gicv_base;
				u64 gicr_base;
			} __attribute__((packed)) arm;
		} __attribute__((packed));
	} __attribute__((packed)) platform_info;
	struct jailhouse_cell_desc root_cell;	/* @356 */
} __attribute__((packed));

/* The record sizes of the binary format. */
_Static_assert(sizeof(struct jailhouse_console) == 32, "console");
_Static_assert(sizeof(struct jailhouse_memory) == 32, "memory region");
_Static_assert(sizeof(struct jailhouse_cache) == 12, "cache region");
_Static_assert(sizeof(struct jailhouse_irqchip) == 32, "irqchip");
_Static_assert(sizeof(struct jailhouse_pio) == 4, "pio region");
_Static_assert(sizeof(struct jailhouse_pci_device) == 56, "pci device");
_Static_assert(sizeof(struct jailhouse_pci_capability) == 8, "pci capability");
_Static_assert(sizeof(struct jailhouse_iommu) == 28, "iommu unit");
_Static_assert(sizeof(union jailhouse_stream_id) == 4, "stream id");
_Static_assert(sizeof(struct jailhouse_cell_desc) == 132, "cell descriptor");
_Static_assert(sizeof(struct jailhouse_system) == 488, "system header");

#endif
