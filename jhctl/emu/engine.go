package emu

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Engine gives serialised access to one emulated hypervisor and publishes
// its sysfs tree after every change.
type Engine interface {
	// Update runs fn on the hypervisor. A change fn made is kept and
	// published even when fn fails (a failed operation may have printed).
	// fn's error is returned as is (joined with a publishing error).
	Update(fn func(*Hypervisor) error) error
	// View runs fn on the hypervisor; changes are not kept.
	View(fn func(*Hypervisor) error) error
}

// Shared is an Engine for one in-memory hypervisor, safe for concurrent
// use.
type Shared struct {
	mu    sync.Mutex
	h     *Hypervisor
	sysfs string
}

// NewShared serves h, rendering its sysfs tree under sysfs (none if empty).
func NewShared(h *Hypervisor, sysfs string) (*Shared, error) {
	s := &Shared{h: h, sysfs: sysfs}
	if sysfs != "" {
		if err := h.WriteSysfs(sysfs); err != nil {
			return nil, fmt.Errorf("sysfs %s: %w", sysfs, err)
		}
	}
	return s, nil
}

// Update implements Engine.
func (s *Shared) Update(fn func(*Hypervisor) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := s.h.Generation()
	err := fn(s.h)
	if s.h.Generation() != gen && s.sysfs != "" {
		if werr := s.h.WriteSysfs(s.sysfs); werr != nil {
			return errors.Join(err, fmt.Errorf("sysfs %s: %w", s.sysfs, werr))
		}
	}
	return err
}

// View implements Engine. fn must not change the hypervisor.
func (s *Shared) View(fn func(*Hypervisor) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.h)
}

// Dir is an Engine that keeps the hypervisor in a directory, so that
// separate processes share it:
//
//	DIR/state  the saved state (JSON, replaced atomically)
//	DIR/lock   flock'ed around every operation (shared for View)
//	DIR/sysfs  the rendered sysfs tree, for jailhouse.Paths.Sysfs
type Dir struct {
	path string
}

// Paths inside a Dir.
const (
	dirState = "state"
	dirLock  = "lock"
	dirSysfs = "sysfs"
)

// InitDir creates (or resets) an emulator directory with a hypervisor that
// has never been enabled, and renders its sysfs tree.
func InitDir(path string, opts Options) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	d := &Dir{path: path}
	err := d.locked(unix.LOCK_EX, func() error {
		h := New(opts)
		if err := d.save(h); err != nil {
			return err
		}
		return h.WriteSysfs(d.Sysfs())
	})
	if err != nil {
		return nil, fmt.Errorf("emulator %s: %w", path, err)
	}
	return d, nil
}

// OpenDir opens an emulator directory made by InitDir.
func OpenDir(path string) (*Dir, error) {
	if _, err := os.Stat(filepath.Join(path, dirState)); err != nil {
		return nil, fmt.Errorf("emulator %s: %w (create it with emu.InitDir)", path, err)
	}
	return &Dir{path: path}, nil
}

// Sysfs returns the directory of the rendered sysfs tree.
func (d *Dir) Sysfs() string { return filepath.Join(d.path, dirSysfs) }

// Update implements Engine.
func (d *Dir) Update(fn func(*Hypervisor) error) error {
	var ferr error
	err := d.locked(unix.LOCK_EX, func() error {
		h, err := d.load()
		if err != nil {
			return err
		}
		gen := h.Generation()
		ferr = fn(h)
		if h.Generation() == gen {
			return nil
		}
		if err := d.save(h); err != nil {
			return err
		}
		return h.WriteSysfs(d.Sysfs())
	})
	if err != nil {
		return errors.Join(ferr, fmt.Errorf("emulator %s: %w", d.path, err))
	}
	return ferr
}

// View implements Engine.
func (d *Dir) View(fn func(*Hypervisor) error) error {
	var ferr error
	err := d.locked(unix.LOCK_SH, func() error {
		h, err := d.load()
		if err != nil {
			return err
		}
		ferr = fn(h)
		return nil
	})
	if err != nil {
		return fmt.Errorf("emulator %s: %w", d.path, err)
	}
	return ferr
}

// locked runs fn holding an flock of the lock file. The lock file is never
// replaced, so the lock always guards the current state file.
func (d *Dir) locked(how int, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(d.path, dirLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// Closing the file releases the lock.
	return fn()
}

func (d *Dir) load() (*Hypervisor, error) {
	data, err := os.ReadFile(filepath.Join(d.path, dirState))
	if err != nil {
		return nil, err
	}
	return UnmarshalState(data)
}

// save replaces the state file atomically: temporary file, fsync, rename.
func (d *Dir) save(h *Hypervisor) error {
	data, err := h.MarshalState()
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.path, ".state.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(d.path, dirState))
	}
	if werr != nil {
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			werr = errors.Join(werr, err)
		}
	}
	return werr
}
