package emu

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// sysfsFile is one attribute: its content and permission bits.
type sysfsFile struct {
	data []byte
	mode fs.FileMode
}

func attr(s string) sysfsFile { return sysfsFile{data: []byte(s), mode: 0o444} }

// WriteSysfs renders the driver's sysfs tree (jailhouse-abi.md §4.1, §4.2)
// under root, creating root if needed. Concurrent readers never see a
// half-written attribute: each changed file is written to a temporary dot
// file and renamed into place, a new cells/<id> or statistics/cpu<n>
// directory is filled under a dot name before it is renamed into place, and
// a vanished one is renamed to a dot name before it is removed (readers such
// as jhctl skip dot entries). Unchanged files are left alone.
//
// Files cannot fail a read with EPERM as the driver's console attribute
// does without the debug-console flag; the emulator then writes it empty
// with mode 0 instead, which only root can read.
func (h *Hypervisor) WriteSysfs(root string) error {
	cells := filepath.Join(root, "cells")
	if err := os.MkdirAll(cells, 0o755); err != nil {
		return err
	}
	for name, f := range h.globalAttrs() {
		if err := writeAttr(filepath.Join(root, name), f); err != nil {
			return err
		}
	}
	core := filepath.Join(root, "core")
	if h.st.CoreCreated {
		if err := writeCore(core); err != nil {
			return err
		}
	} else if err := os.Remove(core); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // a stale tree from an earlier emulator
	}
	want := map[string]*cellState{}
	for _, c := range h.st.Cells {
		want[strconv.Itoa(c.ID)] = c
	}
	if err := removeUnwanted(cells, func(name string) bool { return want[name] != nil }); err != nil {
		return err
	}
	for _, c := range h.st.Cells {
		if err := syncDir(filepath.Join(cells, strconv.Itoa(c.ID)), h.cellTree(c)); err != nil {
			return fmt.Errorf("cell %d: %w", c.ID, err)
		}
	}
	return nil
}

func (h *Hypervisor) globalAttrs() map[string]sysfsFile {
	enabled := "0\n"
	if h.st.Enabled {
		enabled = "1\n"
	}
	console := sysfsFile{mode: 0o444}
	if data, err := h.ConsoleSnapshot(); err != nil {
		console.mode = 0
	} else {
		console.data = data
	}
	size, used, rsize, rused := h.memPool()
	return map[string]sysfsFile{
		"enabled":         attr(enabled),
		"console":         console,
		"mem_pool_size":   attr(fmt.Sprintf("%d\n", size)),
		"mem_pool_used":   attr(fmt.Sprintf("%d\n", used)),
		"remap_pool_size": attr(fmt.Sprintf("%d\n", rsize)),
		"remap_pool_used": attr(fmt.Sprintf("%d\n", rused)),
	}
}

// tree is a directory to render: its files and subdirectories.
type tree struct {
	files map[string]sysfsFile
	dirs  map[string]*tree
}

func (h *Hypervisor) cellTree(c *cellState) *tree {
	failed := h.failedCPUs(c)
	t := &tree{files: map[string]sysfsFile{
		"name":               attr(c.cfg.name + "\n"),
		"state":              attr(string(c.State) + "\n"),
		"cpus_assigned":      attr(KernelMask(c.CPUs, h.st.Possible) + "\n"),
		"cpus_assigned_list": attr(c.CPUs.String() + "\n"),
		"cpus_failed":        attr(KernelMask(failed, h.st.Possible) + "\n"),
		"cpus_failed_list":   attr(failed.String() + "\n"),
	}}
	stats := &tree{files: map[string]sysfsFile{}, dirs: map[string]*tree{}}
	var sums [numStats]uint64
	for _, cpu := range c.CPUs.CPUs() {
		if cpu >= len(h.st.CPUs) {
			continue
		}
		dir := &tree{files: map[string]sysfsFile{}}
		for i, r := range reasons() {
			v := h.st.CPUs[cpu].Stats[i] & 0x7fffffff
			sums[i] += uint64(v)
			dir.files["vmexits_"+r] = attr(fmt.Sprintf("%d\n", v))
		}
		stats.dirs["cpu"+strconv.Itoa(cpu)] = dir
	}
	for i, r := range reasons() {
		stats.files["vmexits_"+r] = attr(fmt.Sprintf("%d\n", sums[i]))
	}
	t.dirs = map[string]*tree{"statistics": stats}
	return t
}

// KernelMask formats a CPU set like the kernel's %*pb for a mask of nbits
// bits: comma-separated 32-bit groups of 8 hex digits, most significant
// first, the first group only as wide as the remaining bits need ("ffff" and
// "fffd" for 16 CPUs).
func KernelMask(s cpuset.Set, nbits int) string {
	if nbits <= 0 {
		return ""
	}
	var b strings.Builder
	chunk := nbits % 32
	if chunk == 0 {
		chunk = 32
	}
	for lo := (nbits+31)/32*32 - 32; lo >= 0; lo -= 32 {
		var v uint32
		for bit := range chunk {
			if s.Has(lo + bit) {
				v |= 1 << bit
			}
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%0*x", (chunk+3)/4, v)
		chunk = 32
	}
	return b.String()
}

// syncDir makes dir hold t. A missing directory is built under a dot name
// and renamed into place whole.
func syncDir(dir string, t *tree) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		tmp := filepath.Join(filepath.Dir(dir), ".new-"+filepath.Base(dir))
		if err := os.RemoveAll(tmp); err != nil {
			return err
		}
		if err := os.Mkdir(tmp, 0o755); err != nil {
			return err
		}
		if err := fillDir(tmp, t); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	} else if err != nil {
		return err
	}
	for name, f := range t.files {
		if err := writeAttr(filepath.Join(dir, name), f); err != nil {
			return err
		}
	}
	if err := removeUnwanted(dir, func(name string) bool {
		_, isFile := t.files[name]
		return isFile || t.dirs[name] != nil
	}); err != nil {
		return err
	}
	for name, sub := range t.dirs {
		if err := syncDir(filepath.Join(dir, name), sub); err != nil {
			return err
		}
	}
	return nil
}

// fillDir writes t into a new, still invisible directory.
func fillDir(dir string, t *tree) error {
	for name, f := range t.files {
		if err := os.WriteFile(filepath.Join(dir, name), f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(dir, name), f.mode); err != nil {
			return err
		}
	}
	for name, sub := range t.dirs {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := fillDir(p, sub); err != nil {
			return err
		}
	}
	return nil
}

// removeUnwanted removes the entries of dir that keep rejects, and any
// leftovers of an interrupted render (dot entries): each is first renamed
// to a dot name so that it vanishes at once.
func removeUnwanted(dir string, keep func(name string) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".") {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			continue
		}
		if keep(name) {
			continue
		}
		gone := filepath.Join(dir, ".gone-"+name)
		if err := os.RemoveAll(gone); err != nil {
			return err
		}
		if err := os.Rename(p, gone); err != nil {
			return err
		}
		if err := os.RemoveAll(gone); err != nil {
			return err
		}
	}
	return nil
}

// writeAttr replaces path with f unless it already holds exactly that.
func writeAttr(path string, f sysfsFile) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == f.mode {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.data) {
			return nil
		}
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	// A leftover of an interrupted render may be read-only.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, f.mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeCore creates the binary "core" attribute once: a sparse file of the
// hypervisor core's size, readable by root only.
func writeCore(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Size() == CoreSize {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-core")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return err
	}
	terr := f.Truncate(CoreSize)
	if err := f.Close(); terr == nil {
		terr = err
	}
	if terr != nil {
		return terr
	}
	return os.Rename(tmp, path)
}
