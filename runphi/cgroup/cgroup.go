// Package cgroup puts a ZIC's monitor process into the container's cgroup,
// so that the shim finds the container's process where linux.cgroupsPath
// says (containerd reads /proc/<pid>/cgroup after create, and kubelet's
// metrics come from that cgroup).
//
// Paths are resolved like runc's cgroupfs and systemd drivers:
//
//	cgroupfs, absolute "/a/b"        <mount>/a/b
//	cgroupfs, relative "a/b"         <mount>/<own cgroup>/a/b
//	cgroupfs, empty                  <mount>/<own cgroup>/<id>
//	systemd "slice:prefix:name"      <mount>/<expanded slice>/<prefix>-<name>.scope
//	                                 (a name ending in ".slice" is a slice:
//	                                 <expanded slice>/<name expanded>)
//	systemd, empty                   system.slice:runphi:<id>
//
// where <own cgroup> is the caller's cgroup from /proc/self/cgroup and a
// slice "a-b.slice" expands to "a.slice/a-b.slice" ("-.slice" is the
// root). runphi has no D-Bus client: under --systemd-cgroup it makes the
// scope directory itself instead of asking systemd for a transient unit,
// so systemd does not know the scope (systemctl does not list it) but the
// path, and everything that reads it, is what runc would use.
//
// Only the unified hierarchy (cgroup v2) is joined. On a cgroup v1 or
// hybrid host Join returns ErrV1, which callers treat as a warning: the
// container runs, without cgroup accounting.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRoot is where the cgroup file system is mounted.
const DefaultRoot = "/sys/fs/cgroup"

// DefaultScopePrefix is the scope prefix for an empty cgroupsPath under
// --systemd-cgroup (runc uses "runc").
const DefaultScopePrefix = "runphi"

// Errors.
var (
	// ErrV1 means the mount is not a cgroup v2 (unified) hierarchy.
	ErrV1 = errors.New("cgroup v1 is not supported (only the unified cgroup v2 hierarchy is joined)")
	// ErrInvalidPath is wrapped by Resolve errors about cgroupsPath.
	ErrInvalidPath = errors.New("invalid cgroupsPath")
)

// Resolve turns linux.cgroupsPath into a cgroup path relative to the
// mount, starting with "/". own is the caller's cgroup (as OwnCgroup
// returns it); it is used only by relative and empty cgroupfs paths.
func Resolve(cgroupsPath string, systemd bool, id, own string) (string, error) {
	if systemd {
		return resolveSystemd(cgroupsPath, id)
	}
	if strings.ContainsRune(cgroupsPath, 0) {
		return "", fmt.Errorf("%w %q: NUL byte", ErrInvalidPath, cgroupsPath)
	}
	switch {
	case cgroupsPath == "":
		if id == "" || strings.Contains(id, "/") {
			return "", fmt.Errorf("%w: container id %q cannot name a cgroup", ErrInvalidPath, id)
		}
		return path.Join("/", own, id), nil
	case path.IsAbs(cgroupsPath):
		p := path.Clean(cgroupsPath)
		if p == "/" {
			return "", fmt.Errorf("%w %q: the root cgroup", ErrInvalidPath, cgroupsPath)
		}
		return p, nil
	}
	// Clean against "/" so ".." cannot climb above the own cgroup.
	rel := path.Clean("/" + cgroupsPath)
	if rel == "/" {
		return "", fmt.Errorf("%w %q: names no cgroup", ErrInvalidPath, cgroupsPath)
	}
	return path.Join("/", own, rel), nil
}

func resolveSystemd(cgroupsPath, id string) (string, error) {
	slice, prefix, name := "system.slice", DefaultScopePrefix, id
	if cgroupsPath != "" {
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return "", fmt.Errorf("%w %q: want \"slice:prefix:name\" for systemd cgroups", ErrInvalidPath, cgroupsPath)
		}
		slice, prefix, name = parts[0], parts[1], parts[2]
		if slice == "" {
			slice = "system.slice"
		}
	}
	for _, p := range []string{slice, prefix, name} {
		if strings.ContainsAny(p, "/\x00") {
			return "", fmt.Errorf("%w %q: %q contains '/' or NUL", ErrInvalidPath, cgroupsPath, p)
		}
	}
	parent, err := ExpandSlice(slice)
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrInvalidPath, cgroupsPath, err)
	}
	if name == "" {
		return "", fmt.Errorf("%w %q: empty name", ErrInvalidPath, cgroupsPath)
	}
	if strings.HasSuffix(name, ".slice") {
		// A slice as the container's unit: it must be a child of parent.
		p, err := ExpandSlice(name)
		if err != nil {
			return "", fmt.Errorf("%w %q: %w", ErrInvalidPath, cgroupsPath, err)
		}
		if path.Dir(p) != path.Clean(parent) {
			return "", fmt.Errorf("%w %q: slice %s is not a child of %s", ErrInvalidPath, cgroupsPath, name, slice)
		}
		return p, nil
	}
	unit := name + ".scope"
	if prefix != "" {
		unit = prefix + "-" + unit
	}
	return path.Join(parent, unit), nil
}

// ExpandSlice turns a systemd slice name into its cgroup path:
// "a-b-c.slice" is "/a.slice/a-b.slice/a-b-c.slice", "-.slice" is "/".
func ExpandSlice(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || strings.Contains(slice, "/") {
		return "", fmt.Errorf("slice %q: not a slice name", slice)
	}
	if base == "-" {
		return "/", nil
	}
	if base == "" {
		return "", fmt.Errorf("slice %q: empty name", slice)
	}
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(base, "-") {
		if comp == "" {
			return "", fmt.Errorf("slice %q: empty component", slice)
		}
		b.WriteString("/")
		b.WriteString(prefix + comp + ".slice")
		prefix += comp + "-"
	}
	return b.String(), nil
}

// OwnCgroup returns the calling process's cgroup v2 path from
// /proc/self/cgroup (its "0::" line), "/" if there is none.
func OwnCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("own cgroup: %w", err)
	}
	return ParseProcCgroup(data)
}

// ParseProcCgroup reads the unified-hierarchy path from the content of a
// /proc/<pid>/cgroup file. Without a "0::" line (pure cgroup v1) it is "/".
func ParseProcCgroup(data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			if !path.IsAbs(p) {
				return "", fmt.Errorf("own cgroup: %q is not absolute", p)
			}
			// A deleted cgroup shows " (deleted)"; its path is still the
			// best parent there is.
			p = strings.TrimSuffix(p, " (deleted)")
			return path.Clean(p), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("own cgroup: %w", err)
	}
	return "/", nil
}

// IsV2 reports whether root is a cgroup v2 mount (or a test tree shaped
// like one): it has cgroup.controllers, which only v2 has.
func IsV2(root string) bool {
	_, err := os.Stat(filepath.Join(root, "cgroup.controllers"))
	return err == nil
}

// Join moves process pid into the cgroup rel (a Resolve result) under the
// mount root, creating the directory and its parents if needed. created
// reports whether the leaf directory was made here, so that the caller
// removes only what it made. On a cgroup v1 mount it returns ErrV1 and
// changes nothing.
func Join(root, rel string, pid int) (created bool, err error) {
	if !IsV2(root) {
		return false, fmt.Errorf("cgroup %s: %w", rel, ErrV1)
	}
	dir, err := dirOf(root, rel)
	if err != nil {
		return false, err
	}
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("cgroup %s: %w", rel, err)
		}
		created = true
	}
	procs := filepath.Join(dir, "cgroup.procs")
	// O_CREATE only matters for a plain directory tree standing in for
	// the mount in tests; in cgroupfs the file always exists.
	f, err := os.OpenFile(procs, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err == nil {
		_, err = f.WriteString(strconv.Itoa(pid))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if created {
			rmdir(dir)
		}
		return false, fmt.Errorf("cgroup %s: add pid %d: %w", rel, pid, err)
	}
	return created, nil
}

// Remove deletes the cgroup directory rel (a leaf runphi created). A
// cgroup still holding a process that is exiting is busy for a moment, so
// EBUSY is retried for up to wait. A missing directory is not an error.
func Remove(root, rel string, wait time.Duration) error {
	dir, err := dirOf(root, rel)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		err := rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return fmt.Errorf("cgroup %s: remove: %w", rel, err)
	}
}

// rmdir removes a cgroup directory. In cgroupfs the interface files
// vanish with the directory; in a plain directory tree (tests) they are
// regular files that must be removed first.
func rmdir(dir string) error {
	err := unix.Rmdir(dir)
	if !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	var fsst unix.Statfs_t
	if unix.Statfs(dir, &fsst) != nil || fsst.Type == unix.CGROUP2_SUPER_MAGIC || fsst.Type == unix.CGROUP_SUPER_MAGIC {
		return err
	}
	ents, rerr := os.ReadDir(dir)
	if rerr != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return err
		}
	}
	for _, e := range ents {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	return unix.Rmdir(dir)
}

func dirOf(root, rel string) (string, error) {
	clean := path.Clean("/" + rel)
	if rel == "" || clean == "/" || clean != rel {
		return "", fmt.Errorf("%w %q: want a clean absolute path below the root", ErrInvalidPath, rel)
	}
	return filepath.Join(root, filepath.FromSlash(clean)), nil
}
