package descriptor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// MaxDescriptorSize bounds /boot/config.json; a real one is a few hundred
// bytes.
const MaxDescriptorSize = 64 << 10

// ErrNoDescriptor means the image has no /boot/config.json: it is not a
// ZIC. A descriptor that exists but cannot be read or parsed is a
// different error.
var ErrNoDescriptor = errors.New("no ZIC descriptor " + DescriptorPath)

// Image is a container root filesystem holding a ZIC descriptor. All of
// its file access goes through an os.Root, so nothing in the image can
// make it read outside the root filesystem.
type Image struct {
	root   *os.Root
	rootfs string
	// Desc is the image's parsed descriptor.
	Desc *Descriptor
}

// IsZIC reports whether the root filesystem at rootfs (a host path, the
// bundle's root.path made absolute) has a /boot/config.json. It only
// looks: a descriptor that is a dangling or escaping symlink still counts,
// so that Open reports the problem instead of the container silently
// running as an ordinary one.
func IsZIC(rootfs string) (bool, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return false, fmt.Errorf("container root filesystem: %w", err)
	}
	defer root.Close()
	ok, err := hasDescriptor(root)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", rootfs, err)
	}
	return ok, nil
}

func hasDescriptor(root *os.Root) (bool, error) {
	_, err := root.Lstat(rel(DescriptorPath))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return false, nil
	}
	return false, fmt.Errorf("%s: %w", DescriptorPath, err)
}

// Open opens the root filesystem at rootfs and parses its descriptor. It
// returns an error wrapping ErrNoDescriptor if there is none. The caller
// must Close the Image.
func Open(rootfs string) (*Image, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, fmt.Errorf("container root filesystem: %w", err)
	}
	im := &Image{root: root, rootfs: rootfs}
	if err := im.load(); err != nil {
		root.Close()
		return nil, fmt.Errorf("image %s: %w", rootfs, err)
	}
	return im, nil
}

func (im *Image) load() error {
	ok, err := hasDescriptor(im.root)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoDescriptor
	}
	data, err := im.ReadFile(DescriptorPath, MaxDescriptorSize)
	if err != nil {
		return err
	}
	if im.Desc, err = Parse(data); err != nil {
		return fmt.Errorf("%s: %w", DescriptorPath, err)
	}
	return nil
}

// Rootfs returns the host path the image was opened at.
func (im *Image) Rootfs() string { return im.rootfs }

// Close releases the root filesystem.
func (im *Image) Close() error { return im.root.Close() }

// rel turns a clean image path into a name relative to the root.
func rel(clean string) string {
	if clean == "/" {
		return "."
	}
	return strings.TrimPrefix(clean, "/")
}

// ReadFile reads the regular file at name, an absolute path inside the
// image, of at most limit bytes. It follows symbolic links only while
// they stay inside the image and are relative (os.Root refuses absolute
// ones). Directories, devices, FIFOs and sockets are refused before being
// opened for reading, and a file larger than limit is refused by its size
// without being read. Errors name the path.
func (im *Image) ReadFile(name string, limit int64) ([]byte, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, fmt.Errorf("image file: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("image file %s: read limit %d is not positive", clean, limit)
	}
	r := rel(clean)
	fi, err := im.root.Stat(r)
	if err != nil {
		return nil, im.fileError(clean, err)
	}
	if err := checkFile(clean, fi, limit); err != nil {
		return nil, err
	}
	// O_NONBLOCK keeps a FIFO swapped in after the Stat from blocking the
	// open; O_NOCTTY keeps a terminal from becoming ours. The Stat of the
	// open file below then refuses it.
	f, err := im.root.OpenFile(r, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, im.fileError(clean, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("image file %s: %w", clean, err)
	}
	if err := checkFile(clean, fi, limit); err != nil {
		return nil, err
	}
	buf := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("image file %s: read: %w", clean, err)
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n != 0 {
		return nil, fmt.Errorf("image file %s: grew while being read", clean)
	}
	return buf, nil
}

func checkFile(name string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("image file %s: not a regular file (%s)", name, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		return fmt.Errorf("image file %s: %d bytes is larger than the %d-byte limit", name, fi.Size(), limit)
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}

// fileError describes a failed lookup, naming the symlink target when the
// path itself is a link, since a link pointing out of the image is the
// usual reason.
func (im *Image) fileError(name string, err error) error {
	r := rel(name)
	if fi, lerr := im.root.Lstat(r); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if target, rerr := im.root.Readlink(r); rerr == nil {
			hint := ""
			// os.Root's "path escapes from parent" has no exported
			// sentinel; it is what remains after these.
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.ELOOP) {
				hint = "; links must be relative and stay inside the image"
			}
			return fmt.Errorf("image file %s (symlink to %q%s): %w", name, target, hint, err)
		}
	}
	return fmt.Errorf("image file %s: %w", name, err)
}
