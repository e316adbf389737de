package celllinux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/u-root/u-root/pkg/dt"
)

// Range is a guest-physical address range.
type Range struct {
	Start uint64
	Size  uint64
}

// DTBEdit is what booting Linux in a cell changes in its device tree.
type DTBEdit struct {
	// Memory becomes /memory's reg; /memory's device_type is set to
	// "memory". Both are written even when Memory is empty.
	Memory []Range
	// Bootargs, when not empty, becomes /chosen/bootargs.
	Bootargs string
	// Initrd, when set, becomes /chosen/linux,initrd-start and
	// linux,initrd-end (start + size).
	Initrd *Range
}

// Flattened device tree constants (Devicetree Specification, chapter 5).
const (
	fdtMagic       = 0xd00dfeed
	fdtHeaderSize  = 40
	fdtBeginNode   = 1
	fdtEndNode     = 2
	fdtProp        = 3
	fdtNop         = 4
	fdtEnd         = 9
	fdtVersion     = 17
	fdtLastCompat  = 16
	maxNodeNameLen = 256 // far above any real name; bounds the parser's per-byte name building
)

// EditDTB applies e to the flattened device tree dtb and returns the new
// tree. Nodes are looked up by their exact name ("memory", not
// "memory@..."), as upstream does, and created under the root if missing;
// properties are replaced in place or appended. Address and size widths
// follow the root's #address-cells and #size-cells: 2 means 64 bits,
// anything else 32 bits. A malformed tree, a missing width property, or a
// node or property that appears twice fails with ErrInvalidDTB.
func EditDTB(dtb []byte, e DTBEdit) ([]byte, error) {
	if err := checkFDT(dtb); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDTB, err)
	}
	fdt, err := dt.ReadFDT(bytes.NewReader(dtb))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDTB, err)
	}
	root := fdt.RootNode

	addrCells, err := cellsProp(root, "#address-cells")
	if err != nil {
		return nil, err
	}
	sizeCells, err := cellsProp(root, "#size-cells")
	if err != nil {
		return nil, err
	}

	memory, err := child(root, "memory")
	if err != nil {
		return nil, err
	}
	if err := setProp(memory, "device_type", []byte("memory\x00")); err != nil {
		return nil, err
	}
	var reg []byte
	for i, r := range e.Memory {
		if reg, err = appendCells(reg, r.Start, addrCells); err != nil {
			return nil, fmt.Errorf("/memory range %d: address: %w", i, err)
		}
		if reg, err = appendCells(reg, r.Size, sizeCells); err != nil {
			return nil, fmt.Errorf("/memory range %d: size: %w", i, err)
		}
	}
	if err := setProp(memory, "reg", reg); err != nil {
		return nil, err
	}

	if e.Bootargs != "" || e.Initrd != nil {
		chosen, err := child(root, "chosen")
		if err != nil {
			return nil, err
		}
		if e.Bootargs != "" {
			if err := setProp(chosen, "bootargs", append([]byte(e.Bootargs), 0)); err != nil {
				return nil, err
			}
		}
		if e.Initrd != nil {
			start, err := appendCells(nil, e.Initrd.Start, addrCells)
			if err != nil {
				return nil, fmt.Errorf("/chosen/linux,initrd-start: %w", err)
			}
			end, err := appendCells(nil, e.Initrd.Start+e.Initrd.Size, addrCells)
			if err != nil {
				return nil, fmt.Errorf("/chosen/linux,initrd-end: %w", err)
			}
			if err := setProp(chosen, "linux,initrd-start", start); err != nil {
				return nil, err
			}
			if err := setProp(chosen, "linux,initrd-end", end); err != nil {
				return nil, err
			}
		}
	}

	// The written tree carries size_dt_struct, a version 17 field.
	fdt.Header.Version = fdtVersion
	fdt.Header.LastCompVersion = fdtLastCompat
	var out bytes.Buffer
	if _, err := fdt.Write(&out); err != nil {
		return nil, fmt.Errorf("writing device tree: %w", err)
	}
	return out.Bytes(), nil
}

// cellsProp reads a root width property; only its first cell counts.
func cellsProp(root *dt.Node, name string) (int, error) {
	p, err := prop(root, name)
	if err != nil {
		return 0, err
	}
	if p == nil {
		return 0, fmt.Errorf("%w: the root node has no %s", ErrInvalidDTB, name)
	}
	if len(p.Value) < 4 {
		return 0, fmt.Errorf("%w: root %s is %d bytes long", ErrInvalidDTB, name, len(p.Value))
	}
	return int(binary.BigEndian.Uint32(p.Value)), nil
}

// appendCells appends v as one (32-bit) or two (64-bit) big-endian cells.
func appendCells(b []byte, v uint64, cells int) ([]byte, error) {
	if cells == 2 {
		return binary.BigEndian.AppendUint64(b, v), nil
	}
	if v > 0xffffffff {
		return nil, fmt.Errorf("%#x does not fit in one 32-bit cell (the root's cell count is %d)", v, cells)
	}
	return binary.BigEndian.AppendUint32(b, uint32(v)), nil
}

// child returns the direct child called name, adding it if absent.
func child(n *dt.Node, name string) (*dt.Node, error) {
	var found *dt.Node
	for _, c := range n.Children {
		if c.Name == name {
			if found != nil {
				return nil, fmt.Errorf("%w: two nodes named /%s", ErrInvalidDTB, name)
			}
			found = c
		}
	}
	if found == nil {
		found = dt.NewNode(name)
		n.Children = append(n.Children, found)
	}
	return found, nil
}

// prop returns n's property called name, nil if absent.
func prop(n *dt.Node, name string) (*dt.Property, error) {
	var found *dt.Property
	for i := range n.Properties {
		if n.Properties[i].Name == name {
			if found != nil {
				return nil, fmt.Errorf("%w: node %q has two %s properties", ErrInvalidDTB, n.Name, name)
			}
			found = &n.Properties[i]
		}
	}
	return found, nil
}

func setProp(n *dt.Node, name string, value []byte) error {
	p, err := prop(n, name)
	if err != nil {
		return err
	}
	if p != nil {
		p.Value = value
		return nil
	}
	n.Properties = append(n.Properties, dt.Property{Name: name, Value: value})
	return nil
}

// checkFDT bounds-checks a flattened device tree before the full parse, so
// that lengths in a corrupt or hostile file can never make the parser
// allocate more than the file holds or read past it.
func checkFDT(b []byte) error {
	if len(b) < fdtHeaderSize {
		return fmt.Errorf("%d bytes is shorter than the %d-byte header", len(b), fdtHeaderSize)
	}
	u32 := func(off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }
	if m := u32(0); m != fdtMagic {
		return fmt.Errorf("bad magic %#08x", m)
	}
	total := uint64(u32(4))
	if total > uint64(len(b)) {
		return fmt.Errorf("header size %d exceeds the %d bytes given", total, len(b))
	}
	if total < fdtHeaderSize {
		return fmt.Errorf("header size %d is below %d", total, fdtHeaderSize)
	}
	offStruct, offStrings, offRsv := uint64(u32(8)), uint64(u32(12)), uint64(u32(16))
	sizeStrings, sizeStruct := uint64(u32(32)), uint64(u32(36))
	if offStruct+sizeStruct > total || offStrings+sizeStrings > total || offRsv > total {
		return errors.New("a block lies outside the tree")
	}
	if offStruct%4 != 0 {
		return fmt.Errorf("struct block offset %#x is not 4-byte aligned", offStruct)
	}

	// Memory reservation map: 16-byte entries up to one with size 0 and
	// address 0.
	for p := offRsv; ; p += 16 {
		if p+16 > total {
			return errors.New("memory reservation map is not terminated")
		}
		if binary.BigEndian.Uint64(b[p:]) == 0 && binary.BigEndian.Uint64(b[p+8:]) == 0 {
			break
		}
	}

	p, end, depth := offStruct, offStruct+sizeStruct, 0
	for {
		if p+4 > end {
			return errors.New("struct block ends without an end token")
		}
		tok := u32(int(p))
		p += 4
		switch tok {
		case fdtBeginNode:
			n := bytes.IndexByte(b[p:end], 0)
			if n < 0 {
				return fmt.Errorf("node name at %#x is not terminated", p)
			}
			if n > maxNodeNameLen {
				return fmt.Errorf("node name at %#x is %d bytes long", p, n)
			}
			p = (p + uint64(n) + 1 + 3) &^ 3
			depth++
		case fdtEndNode:
			if depth == 0 {
				return fmt.Errorf("unbalanced end of node at %#x", p-4)
			}
			depth--
		case fdtProp:
			if p+8 > end {
				return fmt.Errorf("property at %#x is truncated", p-4)
			}
			n, nameOff := uint64(u32(int(p))), uint64(u32(int(p+4)))
			p += 8
			if n > end-p {
				return fmt.Errorf("property at %#x is %d bytes long, past the struct block", p-12, n)
			}
			if nameOff >= sizeStrings {
				return fmt.Errorf("property at %#x names string %#x, past the strings block", p-12, nameOff)
			}
			p = (p + n + 3) &^ 3
		case fdtNop:
		case fdtEnd:
			if depth != 0 {
				return errors.New("struct block ends inside a node")
			}
			return nil
		default:
			return fmt.Errorf("unknown token %#x at %#x", tok, p-4)
		}
	}
}
