// Package initramfs builds Linux initramfs images: newc cpio archives written
// with u-root's pkg/cpio. An Archive collects entries (directories, files
// given as bytes or copied from the host, symlinks, device nodes); WriteTo
// emits them with every parent directory before its children, as the kernel's
// unpacker needs. Append writes an existing archive followed by an Archive's
// entries: the kernel unpacks concatenated archives in order, and a later
// entry replaces an earlier one of the same name.
package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

type entry struct {
	info cpio.Info
	data []byte // content of static files and symlink targets
	src  string // host file opened at write time (large binaries stay on disk)
}

// Archive is an initramfs under construction. Names are relative to the
// guest's root ("usr/bin/x" and "/usr/bin/x" are the same entry); adding a
// name again replaces the earlier entry. The zero value is not usable; call
// New.
type Archive struct {
	entries []*entry
	byName  map[string]int
	assumed map[string]bool
}

// New returns an empty archive.
func New() *Archive { return &Archive{byName: map[string]int{}, assumed: map[string]bool{}} }

// Assume declares directories that exist where the archive will be
// unpacked (in an archive it is appended to), so WriteTo does not write
// them as implicit parents. An entry added explicitly is still written.
func (a *Archive) Assume(dirs ...string) {
	for _, d := range dirs {
		if n, err := clean(d); err == nil {
			a.assumed[n] = true
		}
	}
}

// ErrBadName reports an entry name that leaves the archive root.
var ErrBadName = errors.New("invalid archive path")

func clean(name string) (string, error) {
	n := cpio.Normalize(name)
	if n == "." || n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return n, nil
}

func (a *Archive) put(name string, e *entry) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	e.info.Name = n
	if i, ok := a.byName[n]; ok {
		a.entries[i] = e
		return nil
	}
	a.byName[n] = len(a.entries)
	a.entries = append(a.entries, e)
	return nil
}

// Dir adds a directory.
func (a *Archive) Dir(name string, perm os.FileMode) error {
	return a.put(name, &entry{info: cpio.Info{Mode: cpio.S_IFDIR | uint64(perm.Perm()), NLink: 2}})
}

// File adds a regular file with the given content.
func (a *Archive) File(name string, data []byte, perm os.FileMode) error {
	return a.put(name, &entry{
		info: cpio.Info{Mode: cpio.S_IFREG | uint64(perm.Perm()), NLink: 1, FileSize: uint64(len(data))},
		data: data,
	})
}

// Symlink adds a symbolic link to target.
func (a *Archive) Symlink(name, target string) error {
	return a.put(name, &entry{
		info: cpio.Info{Mode: cpio.S_IFLNK | 0o777, NLink: 1, FileSize: uint64(len(target))},
		data: []byte(target),
	})
}

// CharDev adds a character device node.
func (a *Archive) CharDev(name string, perm os.FileMode, major, minor uint64) error {
	return a.put(name, &entry{info: cpio.Info{Mode: cpio.S_IFCHR | uint64(perm.Perm()), NLink: 1, Rmajor: major, Rminor: minor}})
}

// HostFile adds the host file src (following symlinks) as a regular file
// with src's permissions. The content is read when the archive is written.
func (a *Archive) HostFile(name, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("initramfs %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initramfs %s: %s is not a regular file", name, src)
	}
	return a.put(name, &entry{
		info: cpio.Info{Mode: cpio.S_IFREG | uint64(fi.Mode().Perm()), NLink: 1, FileSize: uint64(fi.Size())},
		src:  src,
	})
}

// HostTree adds the host directory tree src under name: directories, regular
// files and symlinks (kept as symlinks). Other file types are an error.
func (a *Archive) HostTree(name, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("initramfs %s: %w", name, err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		dst := path.Join(name, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("initramfs %s: %w", dst, err)
		}
		switch {
		case fi.IsDir():
			return a.Dir(dst, fi.Mode())
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("initramfs %s: %w", dst, err)
			}
			return a.Symlink(dst, target)
		case fi.Mode().IsRegular():
			return a.HostFile(dst, p)
		}
		return fmt.Errorf("initramfs %s: %s has unsupported type %v", dst, p, fi.Mode().Type())
	})
}

// Has reports whether the archive holds an entry named name.
func (a *Archive) Has(name string) bool {
	n, err := clean(name)
	if err != nil {
		return false
	}
	_, ok := a.byName[n]
	return ok
}

// Names returns the entry names in the order they were first added.
func (a *Archive) Names() []string {
	out := make([]string, len(a.entries))
	for i, e := range a.entries {
		out[i] = e.info.Name
	}
	return out
}

// WriteTo writes the archive, including the trailer, to w. Parent
// directories that were not added explicitly are written first with mode
// 0755; each entry gets its own inode number so the kernel never mistakes
// two entries for hard links.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	rw := cpio.Newc.Writer(cw)
	written := map[string]bool{}
	ino := uint64(1)
	write := func(e *entry) error {
		rec := cpio.Record{Info: e.info}
		rec.Ino = ino
		ino++
		switch {
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return err
			}
			// The writer closes readers that are io.Closers; keep the
			// descriptor for the size check below.
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if uint64(fi.Size()) != e.info.FileSize {
				return fmt.Errorf("%s changed size since it was added (%d → %d bytes)", e.src, e.info.FileSize, fi.Size())
			}
			rec.ReaderAt = readerOnly{f}
		case e.data != nil:
			rec.ReaderAt = bytes.NewReader(e.data)
		}
		written[e.info.Name] = true
		return rw.WriteRecord(rec)
	}
	for _, e := range a.entries {
		for _, dir := range parents(e.info.Name) {
			if written[dir] {
				continue
			}
			i, added := a.byName[dir]
			if added && i > a.byName[e.info.Name] {
				// Added later: write that entry now, so its mode is kept.
				if err := write(a.entries[i]); err != nil {
					return cw.n, fmt.Errorf("initramfs %s: %w", dir, err)
				}
				continue
			}
			if !added && a.assumed[dir] {
				continue
			}
			d := &entry{info: cpio.Info{Name: dir, Mode: cpio.S_IFDIR | 0o755, NLink: 2}}
			if err := write(d); err != nil {
				return cw.n, fmt.Errorf("initramfs %s: %w", dir, err)
			}
		}
		if written[e.info.Name] {
			continue
		}
		if err := write(e); err != nil {
			return cw.n, fmt.Errorf("initramfs %s: %w", e.info.Name, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, fmt.Errorf("initramfs trailer: %w", err)
	}
	return cw.n, nil
}

// parents returns "a", "a/b" for "a/b/c".
func parents(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			out = append(out, name[:i])
		}
	}
	return out
}

// readerOnly hides Close so the cpio writer does not close the file it
// reads; WriteTo closes it.
type readerOnly struct{ r io.ReaderAt }

func (r readerOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Compression of the written archive.
type Compression int

// Supported compressions. The kernel detects the format by its magic.
const (
	None Compression = iota
	Gzip
)

// WriteFile writes the archive to path, compressed as asked, atomically.
func (a *Archive) WriteFile(path string, c Compression) error {
	return writeAtomic(path, func(w io.Writer) error {
		if c == Gzip {
			zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
			if err != nil {
				return err
			}
			if _, err := a.WriteTo(zw); err != nil {
				return err
			}
			return zw.Close()
		}
		_, err := a.WriteTo(w)
		return err
	})
}

// newcMagic starts every newc record.
const newcMagic = "070701"

// Append writes base, an uncompressed newc archive, padded with zeros to a
// multiple of four bytes, then a, to path atomically. Linux unpacks both in
// order; entries of a replace same-named entries of base.
func Append(path, base string, a *Archive) error {
	f, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("initramfs base: %w", err)
	}
	defer f.Close()
	magic := make([]byte, len(newcMagic))
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != newcMagic {
		return fmt.Errorf("initramfs base %s: not an uncompressed newc cpio archive (magic %q)", base, magic)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("initramfs base %s: %w", base, err)
	}
	return writeAtomic(path, func(w io.Writer) error {
		n, err := io.Copy(w, f)
		if err != nil {
			return fmt.Errorf("copying %s: %w", base, err)
		}
		if pad := (4 - n%4) % 4; pad != 0 {
			if _, err := w.Write(make([]byte, pad)); err != nil {
				return err
			}
		}
		_, err = a.WriteTo(w)
		return err
	})
}

func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	return nil
}

// Index lists the entries of an uncompressed newc archive (up to its first
// trailer) with their file types, for deciding how to extend it.
func Index(path string) (map[string]fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("initramfs index: %w", err)
	}
	defer f.Close()
	rr, err := cpio.Newc.NewFileReader(f)
	if err != nil {
		return nil, fmt.Errorf("initramfs index %s: %w", path, err)
	}
	out := map[string]fs.FileMode{}
	err = cpio.ForEachRecord(cpio.EOFReader{RecordReader: rr}, func(r cpio.Record) error {
		out[cpio.Normalize(r.Name)] = typeOf(r.Mode)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("initramfs index %s: %w", path, err)
	}
	return out, nil
}

func typeOf(mode uint64) fs.FileMode {
	switch mode & cpio.S_IFMT {
	case cpio.S_IFDIR:
		return fs.ModeDir
	case cpio.S_IFLNK:
		return fs.ModeSymlink
	case cpio.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case cpio.S_IFBLK:
		return fs.ModeDevice
	case cpio.S_IFIFO:
		return fs.ModeNamedPipe
	case cpio.S_IFSOCK:
		return fs.ModeSocket
	}
	return 0
}
