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

// CmdlineOffset is where a non-Linux payload finds its parameter string,
// relative to its load address (the inmate library's .cmdline section).
const CmdlineOffset = 0x1000

// MaxCmdline is the longest non-Linux parameter string: the inmate
// library's buffer holds 256 bytes including the NUL.
const MaxCmdline = 255

// MaxDTB bounds a Linux ZIC's device tree.
const MaxDTB = 1 << 20

// ZIC is an opened ZIC bundle. Close releases the image's root.
type ZIC struct {
	Dir     string
	Spec    *specs.Spec
	Rootfs  string
	Image   *descriptor.Image
	Desc    *descriptor.Descriptor
	Request alloc.Request
	Options zic.Options

	board *board.Board
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
	z := &ZIC{Dir: dir, Spec: spec, Rootfs: rootfs, Image: im, Desc: im.Desc, board: b}
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
	if d.OS != descriptor.OSLinux && len(d.Cmdline) > MaxCmdline {
		return fmt.Errorf("%w: cmdline: %d bytes, an inmate's parameter buffer holds %d",
			descriptor.ErrInvalid, len(d.Cmdline), MaxCmdline)
	}
	res, err := descriptor.Resources(z.Spec, d)
	if err != nil {
		return err
	}
	z.Request = alloc.Request{CPUs: res.CPUs, CPUCount: res.NumCPUs, Memory: res.Memory, Net: d.Net}
	z.Options = zic.Options{Console: zic.Console(d.Console)}
	// Linux starts through the loader at the pool's loader address; other
	// payloads start where they are loaded (the loader slot by default).
	z.Options.ResetAddress = b.Pool.Guest.Loader
	if d.OS != descriptor.OSLinux && d.HasLoadAddress {
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

// Payload holds the files a ZIC loads, read from its image.
type Payload struct {
	Inmate              []byte // non-Linux
	Kernel, DTB, Initrd []byte // Linux; Initrd may be nil
}

// ReadPayload reads the payload files through the image's root, so they
// cannot be outside the rootfs, before anything is allocated. No file may
// be larger than the RAM the ZIC asks for (rounded to the pool's
// alignment); a device tree is at most MaxDTB.
func (z *ZIC) ReadPayload() (*Payload, error) {
	d := z.Desc
	limit, err := descriptor.RoundUp(z.Request.Memory, z.board.Pool.Alignment)
	if err != nil {
		return nil, err
	}
	lim := int64(min(limit, 1<<62))
	p := &Payload{}
	if d.OS != descriptor.OSLinux {
		lim = max(lim, int64(min(z.board.Pool.Loader.SlotSize, 1<<62)))
		if p.Inmate, err = z.Image.ReadFile(d.Inmate, lim); err != nil {
			return nil, err
		}
		return p, nil
	}
	if p.Kernel, err = z.Image.ReadFile(d.Kernel, lim); err != nil {
		return nil, err
	}
	if p.DTB, err = z.Image.ReadFile(d.DTB, min(lim, MaxDTB)); err != nil {
		return nil, err
	}
	if d.Initrd != "" {
		if p.Initrd, err = z.Image.ReadFile(d.Initrd, lim); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Images places a non-Linux payload in cell c: the inmate at its reset
// address and, if the descriptor has a cmdline, the NUL-terminated
// parameter string (as the jailhouse tool's -s loads it) at
// CmdlineOffset past it, where the inmate library reads it. Each image
// must fit its region (cell.CheckLoad). Linux payloads are placed by the
// Linux loader's planner instead (jhctl/celllinux).
func (z *ZIC) Images(c *cell.Cell, p *Payload) ([]Image, error) {
	if z.Desc.OS == descriptor.OSLinux {
		return nil, errors.New("images: Linux payloads are placed through the Linux loader")
	}
	addr := c.CPUResetAddress
	images := []Image{{Name: z.Desc.Inmate, Data: p.Inmate, Address: addr}}
	if z.Desc.Cmdline != "" {
		images = append(images, Image{Name: "cmdline", Data: append([]byte(z.Desc.Cmdline), 0), Address: addr + CmdlineOffset})
	}
	for _, im := range images {
		if _, err := c.CheckLoad(im.Address, uint64(len(im.Data))); err != nil {
			return nil, fmt.Errorf("%s: %w", im.Name, err)
		}
	}
	return images, nil
}
