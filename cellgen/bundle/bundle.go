// Package bundle reads an OCI bundle whose root filesystem holds a ZIC
// image and turns it into what the allocator and the cell generator need:
// the resource request, the generator options and the payload to load.
// It is shared by `cellgen zic` and runphi's create, so both read images
// the same way: every file through os.Root inside the rootfs, bounded.
package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/descriptor"
	"github.com/runphi-go/runphi/cellgen/zic"
)

// MaxSpecSize bounds a bundle's config.json; real ones are a few KiB.
const MaxSpecSize = 4 << 20

// CmdlineAddress is where non-Linux payloads find their parameter string
// (the inmate library's command-line buffer at base + 0x1000).
const CmdlineAddress = 0x1000

// ZIC is an opened ZIC bundle. Close releases the image's root.
type ZIC struct {
	Dir     string
	Spec    *specs.Spec
	Rootfs  string
	Image   *descriptor.Image
	Desc    *descriptor.Descriptor
	Request alloc.Request
	Options zic.Options
}

// ReadSpec reads and decodes an OCI bundle's config.json (at most
// MaxSpecSize bytes).
func ReadSpec(path string) (*specs.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxSpecSize)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &spec, nil
}

// Rootfs returns the bundle's root filesystem path: root.path, relative
// paths resolved against the bundle directory.
func Rootfs(dir string, spec *specs.Spec) (string, error) {
	if spec.Root == nil || spec.Root.Path == "" {
		return "", fmt.Errorf("bundle %s: config.json has no root.path", dir)
	}
	if filepath.IsAbs(spec.Root.Path) {
		return spec.Root.Path, nil
	}
	return filepath.Join(dir, spec.Root.Path), nil
}

// Open reads the bundle in dir (its config.json, or spec if not nil) and
// its image's descriptor, checks the descriptor against board b and
// derives the request and generator options.
func Open(dir string, spec *specs.Spec, b *board.Board) (*ZIC, error) {
	if spec == nil {
		var err error
		if spec, err = ReadSpec(filepath.Join(dir, "config.json")); err != nil {
			return nil, err
		}
	}
	rootfs, err := Rootfs(dir, spec)
	if err != nil {
		return nil, err
	}
	im, err := descriptor.Open(rootfs)
	if err != nil {
		return nil, err
	}
	z := &ZIC{Dir: dir, Spec: spec, Rootfs: rootfs, Image: im, Desc: im.Desc}
	if err := z.derive(b); err != nil {
		im.Close()
		return nil, err
	}
	return z, nil
}

func (z *ZIC) derive(b *board.Board) error {
	d := z.Desc
	if err := d.CheckBoard(len(b.Pool.RPUs) > 0); err != nil {
		return err
	}
	if d.RPU {
		return errors.New("rpu_req: Cortex-R cells are not supported yet")
	}
	res, err := descriptor.Resources(z.Spec, d)
	if err != nil {
		return err
	}
	z.Request = alloc.Request{CPUs: res.CPUs, CPUCount: res.NumCPUs, Memory: res.Memory, Net: d.Net}
	z.Options = zic.Options{Console: zic.Console(d.Console)}
	// Linux starts through the loader at guest address 0; other payloads
	// start where they are loaded.
	if d.OS != descriptor.OSLinux {
		z.Options.ResetAddress = d.LoadAddress
	}
	return nil
}

// Close releases the image.
func (z *ZIC) Close() error { return z.Image.Close() }

// Image is one preload image: Data goes to guest-physical Address.
type Image struct {
	Name    string // what it is, for messages: the path in the image, or "cmdline"
	Data    []byte
	Address uint64
}

// Payload reads what a non-Linux ZIC loads into cell c: the inmate at its
// load address and, if the descriptor has a cmdline, the parameter string
// (NUL-terminated, as the jailhouse tool's -s loads it) at CmdlineAddress.
// Each image must fit its region (cell.CheckLoad); files are read through
// the image's root, so they cannot be outside the rootfs, and no larger
// than their region.
func (z *ZIC) Payload(c *cell.Cell) ([]Image, error) {
	if z.Desc.OS == descriptor.OSLinux {
		return nil, errors.New("payload: Linux images are loaded through the Linux loader (LinuxFiles)")
	}
	addr := z.Desc.LoadAddress
	limit, err := room(c, addr, z.Desc.Inmate)
	if err != nil {
		return nil, err
	}
	data, err := z.Image.ReadFile(z.Desc.Inmate, limit)
	if err != nil {
		return nil, err
	}
	images := []Image{{Name: z.Desc.Inmate, Data: data, Address: addr}}
	if z.Desc.Cmdline != "" {
		images = append(images, Image{Name: "cmdline", Data: append([]byte(z.Desc.Cmdline), 0), Address: CmdlineAddress})
	}
	for _, im := range images {
		if _, err := c.CheckLoad(im.Address, uint64(len(im.Data))); err != nil {
			return nil, fmt.Errorf("%s: %w", im.Name, err)
		}
	}
	return images, nil
}

// LinuxFiles reads a Linux ZIC's kernel, device tree and optional initrd,
// each bounded by the size of cell c's main RAM.
func (z *ZIC) LinuxFiles(c *cell.Cell) (kernel, dtb, initrd []byte, err error) {
	if z.Desc.OS != descriptor.OSLinux {
		return nil, nil, nil, fmt.Errorf("linux files: image is %s, not linux", z.Desc.OS)
	}
	var ram uint64
	for _, r := range c.MemRegions {
		if r.Flags&cell.MemDMA != 0 && r.Size > ram {
			ram = r.Size
		}
	}
	if ram == 0 {
		return nil, nil, nil, fmt.Errorf("linux files: cell '%s' has no RAM region", c.Name)
	}
	limit := int64(min(ram, 1<<62))
	if kernel, err = z.Image.ReadFile(z.Desc.Kernel, limit); err != nil {
		return nil, nil, nil, err
	}
	if dtb, err = z.Image.ReadFile(z.Desc.DTB, limit); err != nil {
		return nil, nil, nil, err
	}
	if z.Desc.Initrd != "" {
		if initrd, err = z.Image.ReadFile(z.Desc.Initrd, limit); err != nil {
			return nil, nil, nil, err
		}
	}
	return kernel, dtb, initrd, nil
}

// room is the number of bytes a payload may have at addr in c.
func room(c *cell.Cell, addr uint64, what string) (int64, error) {
	idx, err := c.CheckLoad(addr, 1)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	r := c.MemRegions[idx]
	return int64(min(r.Size-(addr-r.VirtStart), 1<<62)), nil
}
