/*
 * Test stand-in for Jailhouse's <jailhouse/types.h>, written for cellgen's
 * csrc tests from the layout tables of the configuration ABI. It declares
 * only the fixed-width integer names the configuration headers use.
 */
#ifndef CELLGEN_TEST_TYPES_H
#define CELLGEN_TEST_TYPES_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

typedef u8 __u8;
typedef u16 __u16;
typedef u32 __u32;
typedef u64 __u64;

#endif
