/*
 * Test stand-in for Jailhouse's <jailhouse/console.h>: the console record
 * (32 bytes, packed) and the type and flag values of config revision 14.
 */
#ifndef CELLGEN_TEST_CONSOLE_H
#define CELLGEN_TEST_CONSOLE_H

#define JAILHOUSE_CON_TYPE_NONE		0x0000
#define JAILHOUSE_CON_TYPE_EFIFB	0x0001
#define JAILHOUSE_CON_TYPE_8250		0x0002
#define JAILHOUSE_CON_TYPE_PL011	0x0003
#define JAILHOUSE_CON_TYPE_XUARTPS	0x0004
#define JAILHOUSE_CON_TYPE_MVEBU	0x0005
#define JAILHOUSE_CON_TYPE_HSCIF	0x0006
#define JAILHOUSE_CON_TYPE_SCIFA	0x0007
#define JAILHOUSE_CON_TYPE_IMX		0x0008
#define JAILHOUSE_CON_TYPE_IMX_LPUART	0x0009
#define JAILHOUSE_CON_TYPE_SCIF		0x000a

#define JAILHOUSE_CON_ACCESS_MMIO	0x0001
#define JAILHOUSE_CON_REGDIST_4		0x0002
#define JAILHOUSE_CON_FB_1920x1080	0x0004
#define JAILHOUSE_CON_INVERTED_GATE	0x1000
#define JAILHOUSE_CON_MDR_QUIRK		0x2000

struct jailhouse_console {
	__u64 address;		/* @0 */
	__u32 size;		/* @8 */
	__u16 type;		/* @12 */
	__u16 flags;		/* @14 */
	__u32 divider;		/* @16 */
	__u32 gate_nr;		/* @20 */
	__u64 clock_reg;	/* @24 */
} __attribute__((packed));

#endif
