package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/runphi-go/runphi/internal/atomicfile"

	"golang.org/x/sys/unix"
)

// File names inside a container's state directory.
const (
	StateFile = "state.json" // Container, replaced atomically
	LockFile  = "lock"       // flocked by every verb that changes the container
	FifoFile  = "exec.fifo"  // exists from create until start
)

// Sentinels. Their wording is runc's, which callers match on
// ("does not exist" is how containerd recognises a missing container).
var (
	ErrExist    = errors.New("container with given ID already exists")
	ErrNotExist = errors.New("container does not exist")
	// ErrNoState means the directory exists but state.json does not: a
	// create died before writing it. Delete removes such a directory.
	ErrNoState = errors.New("container state was never written")
)

// Store is the state root (runphi's --root for ZICs, /run/runphi by
// default): one directory per container, named by its id.
//
// Locking: every verb that changes a container holds an exclusive flock on
// <dir>/lock for its whole run (Create and Lock return it held). The lock
// file is never replaced, only removed with the directory by Remove; a
// process that was waiting for the lock meanwhile finds its file unlinked
// and reports ErrNotExist. Reading a container's state (Read) takes no
// lock, because state.json is only ever replaced by rename.
type Store struct {
	root string
}

// NewStore returns the store at root, creating the directory (0700) if
// needed.
func NewStore(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("state root: empty path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("state root %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root returns the absolute state root.
func (s *Store) Root() string { return s.root }

// Dir returns the state directory of id (which must be valid).
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

// Exists reports whether runphi holds state for id: its directory exists,
// even if create died before writing state.json. Invalid ids never exist.
func (s *Store) Exists(id string) bool {
	if ValidateID(id) != nil {
		return false
	}
	fi, err := os.Lstat(s.Dir(id))
	return err == nil && fi.IsDir()
}

// IDs lists the containers in the store, sorted. Entries that are not
// directories with valid ids (temporary files, strays) are skipped.
func (s *Store) IDs() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Create makes the state directory of a new container with os.Mkdir (an
// existing one is ErrExist, never reused) and returns it locked.
func (s *Store) Create(id string) (*Handle, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := s.Dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrExist)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	h, err := lockDir(id, dir, os.O_CREATE)
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	return h, nil
}

// Lock locks the state directory of an existing container. It waits for
// another verb holding the lock. A missing directory, or one removed while
// waiting, is ErrNotExist.
func (s *Store) Lock(id string) (*Handle, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := s.Dir(id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
	}
	// A directory without a lock file is a create that died between
	// mkdir and creating the lock: create the lock so it can be cleaned.
	return lockDir(id, dir, os.O_CREATE)
}

func lockDir(id, dir string, flag int) (*Handle, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("container %s: lock: %w", id, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("container %s: lock: %w", id, err)
	}
	// The holder we waited for may have deleted the container: its lock
	// file is then unlinked (no links left).
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("container %s: lock: %w", id, err)
	}
	if st.Nlink == 0 {
		f.Close()
		return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
	}
	return &Handle{id: id, dir: dir, lock: f}, nil
}

// Read returns the recorded state of id without locking. A container
// without state.json is ErrNotExist (wrapped together with ErrNoState when
// the directory exists).
func (s *Store) Read(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	return readState(id, s.Dir(id))
}

func readState(id, dir string) (*Container, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Lstat(dir); derr == nil {
			return nil, fmt.Errorf("container %s: %w (%w)", id, ErrNotExist, ErrNoState)
		}
		return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("container %s: %s: %w", id, StateFile, err)
	}
	if c.ID != id {
		return nil, fmt.Errorf("container %s: %s: %w: records id %q", id, StateFile, ErrCorrupt, c.ID)
	}
	return c, nil
}

// Handle is a locked state directory.
type Handle struct {
	id   string
	dir  string
	lock *os.File
}

// ID returns the container id.
func (h *Handle) ID() string { return h.id }

// Dir returns the state directory.
func (h *Handle) Dir() string { return h.dir }

// Path returns the path of a file in the state directory.
func (h *Handle) Path(name string) string { return filepath.Join(h.dir, name) }

// Load reads state.json; see Store.Read for the errors.
func (h *Handle) Load() (*Container, error) { return readState(h.id, h.dir) }

// Save replaces state.json atomically. The caller holds the lock (it
// holds the Handle).
func (h *Handle) Save(c *Container) error {
	data, err := Encode(c)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(h.Path(StateFile), data, 0o600); err != nil {
		return fmt.Errorf("container %s: %w", h.id, err)
	}
	return nil
}

// Remove deletes the state directory and everything in it, the lock file
// included (the lock itself stays held until Unlock, so waiters see the
// removal). Removing a directory that is already gone succeeds.
func (h *Handle) Remove() error {
	if err := os.RemoveAll(h.dir); err != nil {
		return fmt.Errorf("container %s: remove state: %w", h.id, err)
	}
	return nil
}

// Unlock releases the lock. It may be called more than once.
func (h *Handle) Unlock() error {
	if h.lock == nil {
		return nil
	}
	err := h.lock.Close()
	h.lock = nil
	return err
}
