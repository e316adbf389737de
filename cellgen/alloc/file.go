package alloc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// ErrDone is returned by a Reservation that was already committed or
// rolled back.
var ErrDone = errors.New("reservation already finished")

// Allocator is the node-wide allocation table, kept in a state file. Its
// methods may be called from any number of goroutines and processes.
//
// A process holding a Reservation must finish it before calling other
// methods on the same state file: flock locks are per open file, so the
// process would wait for itself.
type Allocator struct {
	path string
	pool *board.Pool
	// beforeRename, if set, runs between writing the temporary file and
	// renaming it (tests use it to interrupt a write).
	beforeRename func(tmp string) error
}

// Open returns the allocator for the state file at statePath and the pool
// it allocates from. Nothing is read until the first call; a missing state
// file is an empty table. The lock file is statePath + ".lock".
//
// The state belongs on a file system that is emptied at boot, such as
// /run: cells do not survive a reboot, and neither should their grants.
func Open(statePath string, pool *board.Pool) *Allocator {
	return &Allocator{path: statePath, pool: pool}
}

// Path returns the state file's path.
func (a *Allocator) Path() string { return a.path }

// Allocate grants req to name and records it as committed: the caller
// creates the cell next and calls Release if that fails. On error nothing
// changes.
func (a *Allocator) Allocate(name string, req Request) (Grant, error) {
	var g Grant
	err := a.update(func(s *State) (bool, error) {
		var err error
		g, err = s.Allocate(a.pool, name, req)
		return err == nil, err
	})
	if err != nil {
		return Grant{}, err
	}
	return g, nil
}

// Reservation is a grant recorded as reserved while its holder keeps the
// state locked: no other process can allocate, release or reconcile until
// Commit or Rollback, so the holder can create the cell with nothing
// changing under it. If the holder dies, the lock goes with it and the
// reserved grant stays until Reconcile finds whether the cell exists.
type Reservation struct {
	a     *Allocator
	lock  int // file descriptor, -1 once finished
	state *State
	grant Grant
}

// Reserve allocates req for name, records it as reserved and keeps the
// state locked until Commit or Rollback. On error nothing changes and no
// lock is held.
func (a *Allocator) Reserve(name string, req Request) (*Reservation, error) {
	lock, err := a.lock(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	s, err := a.load()
	if err == nil {
		var g Grant
		if g, err = s.Allocate(a.pool, name, req); err == nil {
			g.Reserved = true
			s.Grants[name] = g
			if err = a.save(s); err == nil {
				return &Reservation{a: a, lock: lock, state: s, grant: g}, nil
			}
		}
	}
	unlock(lock)
	return nil, err
}

// Grant returns the reserved grant.
func (r *Reservation) Grant() Grant { return r.grant }

// Commit records the grant as in use by a created cell and unlocks.
func (r *Reservation) Commit() error {
	return r.finish(func(s *State) {
		r.grant.Reserved = false
		s.Grants[r.grant.Name] = r.grant
	})
}

// Rollback frees the grant and unlocks.
func (r *Reservation) Rollback() error {
	return r.finish(func(s *State) { s.Release(r.grant.Name) })
}

func (r *Reservation) finish(change func(*State)) error {
	if r.lock < 0 {
		return ErrDone
	}
	defer func() {
		unlock(r.lock)
		r.lock = -1
	}()
	// The lock has been held since Reserve, so the table in memory is
	// the one on disk.
	change(r.state)
	return r.a.save(r.state)
}

// Release frees name's grant. Releasing a name without a grant does
// nothing and succeeds, so cleanup paths can always call it.
func (a *Allocator) Release(name string) error {
	return a.update(func(s *State) (bool, error) { return s.Release(name), nil })
}

// Reconcile repairs the table after a crash, given the names of the cells
// that exist: grants of other names are released (and returned, sorted),
// reserved grants of existing cells become committed.
func (a *Allocator) Reconcile(live []string) ([]string, error) {
	var released []string
	err := a.update(func(s *State) (bool, error) {
		changed := false
		for name, g := range s.Grants {
			switch {
			case !slices.Contains(live, name):
				delete(s.Grants, name)
				released = append(released, name)
				changed = true
			case g.Reserved:
				g.Reserved = false
				s.Grants[name] = g
				changed = true
			}
		}
		return changed, nil
	})
	slices.Sort(released)
	return released, err
}

// Grants returns every grant by name.
func (a *Allocator) Grants() (map[string]Grant, error) {
	lock, err := a.lock(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock(lock)
	s, err := a.load()
	if err != nil {
		return nil, err
	}
	return s.Grants, nil
}

// update runs change on the table under the exclusive lock and writes the
// table back if change reports a change and no error.
func (a *Allocator) update(change func(*State) (bool, error)) error {
	lock, err := a.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock(lock)
	s, err := a.load()
	if err != nil {
		return err
	}
	changed, err := change(s)
	if err != nil || !changed {
		return err
	}
	return a.save(s)
}

// The state file is read and written through plain file descriptors:
// os.File's poller registration and blocking-mode switches would double
// the system calls of an allocation.

// lock opens the lock file beside the state file and flocks it, returning
// the descriptor. The state file itself is never locked: renaming a new
// file over it would leave the lock on the old inode.
func (a *Allocator) lock(how int) (int, error) {
	path := a.path + ".lock"
	fd, err := retry(func() (int, error) { return unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600) })
	if err != nil {
		return -1, fmt.Errorf("allocator lock: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	if _, err := retry(func() (int, error) { return 0, unix.Flock(fd, how) }); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("allocator lock: %w", &fs.PathError{Op: "flock", Path: path, Err: err})
	}
	return fd, nil
}

// unlock drops the lock by closing its descriptor.
func unlock(fd int) { unix.Close(fd) }

// retry repeats a system call interrupted by a signal.
func retry(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

// readFile reads a whole file.
func readFile(path string) ([]byte, error) {
	fd, err := retry(func() (int, error) { return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0) })
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := retry(func() (int, error) { return unix.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// writeFile creates or truncates path, writes data and syncs it.
func writeFile(path string, data []byte) error {
	fd, err := retry(func() (int, error) {
		return unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for len(data) > 0 && err == nil {
		var n int
		n, err = retry(func() (int, error) { return unix.Write(fd, data) })
		data = data[n:]
	}
	if err == nil {
		_, err = retry(func() (int, error) { return 0, unix.Fsync(fd) })
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// load reads the state file; a missing file is an empty table. The caller
// holds the lock.
func (a *Allocator) load() (*State, error) {
	data, err := readFile(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("allocator state: %w", err)
	}
	s, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("allocator state %s: %w", a.path, err)
	}
	return s, nil
}

// save replaces the state file atomically. The caller holds the exclusive
// lock, which is why one fixed temporary name is enough: a leftover from a
// crashed writer is simply overwritten, and readers never look at it.
//
// The temporary file is synced before the rename so the new name never
// points at unwritten data. The directory is not synced: after a power
// loss either table is acceptable, as no cell survives one anyway.
func (a *Allocator) save(s *State) error {
	data, err := encodeState(s)
	if err != nil {
		return err
	}
	tmp := a.path + ".tmp"
	err = writeFile(tmp, data)
	if err == nil && a.beforeRename != nil {
		err = a.beforeRename(tmp)
	}
	if err == nil {
		if err = unix.Rename(tmp, a.path); err != nil {
			err = &os.LinkError{Op: "rename", Old: tmp, New: a.path, Err: err}
		}
	}
	if err != nil {
		unix.Unlink(tmp)
		return fmt.Errorf("allocator state %s: %w", a.path, err)
	}
	return nil
}

// The JSON shape of the state file. Addresses are hex strings.
type (
	stateJSON struct {
		Version int                  `json:"version"`
		Grants  map[string]grantJSON `json:"grants"`
	}
	grantJSON struct {
		State  string     `json:"state"`
		CPUs   cpuset.Set `json:"cpus"`
		RAM    rangeJSON  `json:"ram"`
		Loader rangeJSON  `json:"loader"`
		Net    *netJSON   `json:"net,omitempty"`
	}
	rangeJSON struct {
		Start string `json:"start"`
		Size  string `json:"size"`
	}
	netJSON struct {
		BDF         string `json:"bdf"`
		Window      string `json:"window"`
		VPCIIrqBase uint32 `json:"vpci_irq_base"`
		INTx        uint32 `json:"intx"`
		RootINTx    uint32 `json:"root_intx"`
	}
)

// Grant states in the file.
const (
	stateReserved  = "reserved"
	stateCommitted = "committed"
)

func toRangeJSON(r board.Range) rangeJSON {
	return rangeJSON{Start: board.FormatHex(r.Start), Size: board.FormatHex(r.Size)}
}

func encodeState(s *State) ([]byte, error) {
	out := stateJSON{Version: stateVersion, Grants: make(map[string]grantJSON, len(s.Grants))}
	for name, g := range s.Grants {
		gj := grantJSON{
			State:  stateCommitted,
			CPUs:   g.CPUs,
			RAM:    toRangeJSON(g.RAM),
			Loader: toRangeJSON(g.Loader),
		}
		if g.Reserved {
			gj.State = stateReserved
		}
		if n := g.Net; n != nil {
			gj.Net = &netJSON{BDF: cell.FormatBDF(n.BDF), Window: board.FormatHex(n.Window),
				VPCIIrqBase: n.VPCIIrqBase, INTx: n.INTx, RootINTx: n.RootINTx}
		}
		out.Grants[name] = gj
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("allocator state: %w", err)
	}
	return append(data, '\n'), nil
}

func decodeState(data []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in stateJSON
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if in.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, in.Version, stateVersion)
	}
	s := &State{Grants: make(map[string]Grant, len(in.Grants))}
	for name, gj := range in.Grants {
		fail := func(field string, err error) error {
			return fmt.Errorf("%w: grant %q: %s: %w", ErrCorrupt, name, field, err)
		}
		if err := checkName(name); err != nil {
			return nil, fail("name", err)
		}
		g := Grant{Name: name, CPUs: gj.CPUs}
		switch gj.State {
		case stateReserved:
			g.Reserved = true
		case stateCommitted:
		default:
			return nil, fail("state", fmt.Errorf("%q is neither %q nor %q", gj.State, stateReserved, stateCommitted))
		}
		var err error
		if g.RAM, err = parseRange(gj.RAM); err != nil {
			return nil, fail("ram", err)
		}
		if g.Loader, err = parseRange(gj.Loader); err != nil {
			return nil, fail("loader", err)
		}
		if n := gj.Net; n != nil {
			slot := board.NetSlot{VPCIIrqBase: n.VPCIIrqBase, INTx: n.INTx, RootINTx: n.RootINTx}
			if slot.BDF, err = cell.ParseBDF(n.BDF); err != nil {
				return nil, fail("net.bdf", err)
			}
			if slot.Window, err = board.ParseHex(n.Window); err != nil {
				return nil, fail("net.window", err)
			}
			g.Net = &slot
		}
		s.Grants[name] = g
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func parseRange(r rangeJSON) (board.Range, error) {
	start, err := board.ParseHex(r.Start)
	if err != nil {
		return board.Range{}, err
	}
	size, err := board.ParseHex(r.Size)
	if err != nil {
		return board.Range{}, err
	}
	return board.Range{Start: start, Size: size}, nil
}
