package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/cgroup"
	"github.com/runphi-go/runphi/runphi/monitor"
	"github.com/runphi-go/runphi/runphi/state"
)

// How long delete waits for a monitor to exit by itself (its cell has
// stopped, so it is about to exit with the container's status) before
// killing it, and then for the killed monitor to be gone.
const (
	exitGrace = time.Second
	killWait  = time.Second
)

// State is a container's state as `runphi state` prints it: the OCI state
// with runc's extra fields, in runc's key order.
type State struct {
	OCIVersion  string               `json:"ociVersion"`
	ID          string               `json:"id"`
	Pid         int                  `json:"pid"`
	Status      specs.ContainerState `json:"status"`
	Bundle      string               `json:"bundle"`
	Rootfs      string               `json:"rootfs"`
	Created     time.Time            `json:"created"`
	Annotations map[string]string    `json:"annotations,omitempty"`
	Owner       string               `json:"owner"`

	// Cell is the Jailhouse cell name (not printed by state).
	Cell string `json:"-"`
}

// Spec returns the state as the runtime-spec type.
func (s *State) Spec() specs.State {
	return specs.State{Version: s.OCIVersion, ID: s.ID, Status: s.Status, Pid: s.Pid,
		Bundle: s.Bundle, Annotations: s.Annotations}
}

// facts observes what the status of c is derived from.
func (m *Manager) facts(dir string, c *state.Container) state.Facts {
	f := state.Facts{
		CreatorAlive: c.Phase == state.PhaseCreating && c.Creator.Alive(),
		MonitorAlive: c.Monitor != nil && c.Monitor.Alive(),
	}
	if !f.MonitorAlive || c.Phase != state.PhaseCreated {
		return f
	}
	if _, err := os.Lstat(filepath.Join(dir, state.FifoFile)); err == nil {
		f.FifoExists = true
		return f
	}
	f.Cell = m.cellState(c)
	return f
}

// cellState reads the cell's state. A cell that cannot be read counts as
// missing; the monitor, which watches the same files, ends the container
// then too.
func (m *Manager) cellState(c *state.Container) state.CellState {
	info, err := m.cellInfo(c)
	if err != nil {
		return state.CellMissing
	}
	switch info.State {
	case jailhouse.StateRunning, jailhouse.StateRunningLocked:
		return state.CellRunning
	}
	return state.CellStopped
}

// cellInfo finds the container's cell by its recorded id, checking the
// name (ids are reused), else by name.
func (m *Manager) cellInfo(c *state.Container) (jailhouse.CellInfo, error) {
	if c.Cell.ID > 0 {
		ref, err := jailhouse.ByID(c.Cell.ID)
		if err != nil {
			return jailhouse.CellInfo{}, err
		}
		info, err := m.o.Hypervisor.Cell(ref)
		if err == nil && info.Name == c.Cell.Name {
			return info, nil
		}
	}
	ref, err := jailhouse.ByName(c.Cell.Name)
	if err != nil {
		return jailhouse.CellInfo{}, err
	}
	return m.o.Hypervisor.Cell(ref)
}

func (m *Manager) status(dir string, c *state.Container) specs.ContainerState {
	return state.Derive(c, m.facts(dir, c))
}

func (m *Manager) describe(c *state.Container, st specs.ContainerState) *State {
	s := &State{
		OCIVersion: c.OCIVersion, ID: c.ID, Status: st, Bundle: c.Bundle, Rootfs: c.Rootfs,
		Created: c.Created, Annotations: c.Annotations, Owner: c.Owner, Cell: c.Cell.Name,
	}
	if s.OCIVersion == "" {
		s.OCIVersion = specs.Version
	}
	if c.Monitor != nil && (st == specs.StateCreated || st == specs.StateRunning || st == specs.StateCreating) {
		s.Pid = c.Monitor.PID
	}
	return s
}

// State returns the state of id, derived from live facts. It takes no
// lock, so it never waits for another verb.
func (m *Manager) State(id string) (*State, error) {
	c, err := m.store.Read(id)
	if err != nil {
		return nil, err
	}
	return m.describe(c, m.status(m.store.Dir(id), c)), nil
}

// List returns the state of every container in the store, by id. A
// directory left by a create that died before writing its state, or with
// unreadable state, shows as stopped.
func (m *Manager) List() ([]*State, error) {
	ids, err := m.store.IDs()
	if err != nil {
		return nil, err
	}
	out := make([]*State, 0, len(ids))
	for _, id := range ids {
		s, err := m.State(id)
		switch {
		case errors.Is(err, state.ErrNoState):
			s = &State{OCIVersion: specs.Version, ID: id, Status: specs.StateStopped, Cell: state.CellName(id)}
		case errors.Is(err, state.ErrNotExist):
			continue // deleted meanwhile
		case err != nil:
			// Listed as stopped so that delete --force can be aimed at it.
			m.log.Warn("container state unreadable", "id", id, "error", err)
			s = &State{OCIVersion: specs.Version, ID: id, Status: specs.StateStopped, Cell: state.CellName(id)}
		}
		out = append(out, s)
	}
	return out, nil
}

// Ps returns the container's host pids: the monitor's while it runs.
func (m *Manager) Ps(id string) ([]int, error) {
	s, err := m.State(id)
	if err != nil {
		return nil, err
	}
	if s.Pid == 0 {
		return []int{}, nil
	}
	return []int{s.Pid}, nil
}

// lock locks id and loads its state.
func (m *Manager) lock(id string) (*state.Handle, *state.Container, error) {
	h, err := m.store.Lock(id)
	if err != nil {
		return nil, nil, err
	}
	c, err := h.Load()
	if err != nil {
		h.Unlock()
		return nil, nil, err
	}
	return h, c, nil
}

// Start starts the cell of a created container and releases its monitor.
func (m *Manager) Start(id string) error {
	h, c, err := m.lock(id)
	if err != nil {
		return err
	}
	defer h.Unlock()
	switch st := m.status(h.Dir(), c); st {
	case specs.StateCreated:
	case specs.StateStopped:
		return fmt.Errorf("container %s: cannot start a container that has stopped: %w", id, ErrNotCreated)
	default:
		return fmt.Errorf("container %s: cannot start a container that is %s: %w", id, st, ErrNotCreated)
	}
	// Opening for writing without blocking succeeds only while a reader
	// holds the fifo: the monitor, waiting for this byte.
	fifo := h.Path(state.FifoFile)
	fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("container %s: the monitor is not waiting for start: %w", id, ErrNotRunning)
		}
		return fmt.Errorf("container %s: exec fifo: %w", id, err)
	}
	defer unix.Close(fd)
	ref, err := jailhouse.ByName(c.Cell.Name)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if err := m.o.Hypervisor.StartCell(ref); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	// The fifo goes first, so that from the moment the monitor watches
	// the cell, state says running.
	if err := unix.Unlink(fifo); err != nil {
		return fmt.Errorf("container %s: exec fifo: %w", id, err)
	}
	if _, err := unix.Write(fd, []byte{monitor.StartByte}); err != nil {
		return fmt.Errorf("container %s: releasing the monitor: %w", id, err)
	}
	m.log.Debug("started", "id", id, "cell", c.Cell.Name)
	return nil
}

// stopSignal reports whether sig asks a ZIC to stop gracefully.
func stopSignal(sig unix.Signal) bool {
	switch sig {
	case unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT:
		return true
	}
	return false
}

// Kill delivers sig to the container (see the package comment for what
// each signal does to a cell). all is accepted for runc compatibility: a
// ZIC has one process; on a stopped container it makes kill succeed.
func (m *Manager) Kill(id string, sig unix.Signal, all bool) error {
	h, c, err := m.lock(id)
	if err != nil {
		return err
	}
	defer h.Unlock()
	st := m.status(h.Dir(), c)
	if st == specs.StateStopped || st == specs.StateCreating {
		if all {
			return nil
		}
		return fmt.Errorf("container %s: %w", id, ErrNotRunning)
	}
	ref, err := jailhouse.ByName(c.Cell.Name)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	switch {
	case sig == 0:
		return nil
	case sig == unix.SIGKILL:
		// The monitor first, so its status is 137 and not whatever it
		// would make of the cell vanishing.
		if err := c.Monitor.Signal(unix.SIGKILL); err != nil && !errors.Is(err, state.ErrNoProcess) {
			return fmt.Errorf("container %s: %w", id, err)
		}
		if err := ignoreGone(m.o.Hypervisor.DestroyCell(ref)); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
		return nil
	case stopSignal(sig):
		// The monitor first: it then knows the shutdown it is about to see
		// was asked for (it exits 128+sig, with no "shut down outside
		// runphi" complaint) and shuts the cell down itself. The shutdown
		// below repeats that, which the hypervisor treats as a no-op, so a
		// cell that refuses is still reported to the caller.
		if err := c.Monitor.Signal(sig); err != nil {
			if errors.Is(err, state.ErrNoProcess) {
				return fmt.Errorf("container %s: %w", id, ErrNotRunning)
			}
			return fmt.Errorf("container %s: %w", id, err)
		}
		if st == specs.StateRunning {
			if err := ignoreGone(m.o.Hypervisor.ShutdownCell(ref)); err != nil {
				return fmt.Errorf("container %s: %w", id, err)
			}
		}
		return nil
	}
	return fmt.Errorf("container %s: signal %d (%s): %w", id, int(sig), unix.SignalName(sig), ErrNotSupported)
}

// Delete removes a created or stopped container; with force also a running
// one (killing it first), and an unknown id succeeds.
func (m *Manager) Delete(id string, force bool) error {
	h, err := m.store.Lock(id)
	if err != nil {
		if force && errors.Is(err, state.ErrNotExist) {
			return nil
		}
		return err
	}
	defer h.Unlock()
	c, err := h.Load()
	switch {
	case errors.Is(err, state.ErrNoState):
		// Create died before writing any state: nothing else exists
		// but, possibly, a grant (never: allocation comes after the
		// first state write) — remove the directory.
		if rerr := h.Remove(); rerr != nil {
			return rerr
		}
		if force {
			return nil
		}
		return err
	case err != nil && !force:
		return err
	case err != nil:
		// Unreadable state: clean up by what the id determines.
		m.log.Warn("deleting a container with unreadable state", "id", id, "error", err)
		c = &state.Container{ID: id, Cell: state.Cell{Name: state.CellName(id), ID: -1}}
	}
	st := m.status(h.Dir(), c)
	if (st == specs.StateRunning || st == specs.StateCreating) && !force {
		return fmt.Errorf("container %s: cannot delete a container that is not stopped (%s): %w", id, st, ErrRunning)
	}
	if err := m.teardown(c, st); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if err := h.Remove(); err != nil {
		return err
	}
	m.log.Debug("deleted", "id", id)
	return nil
}

// teardown undoes everything create did, except the state directory: the
// monitor, the cell, the grant and the cgroup. Each step tolerates its
// object being gone, so it can be repeated after a failure.
func (m *Manager) teardown(c *state.Container, st specs.ContainerState) error {
	if c.Monitor != nil {
		m.stopMonitor(c, st)
	}
	ref, err := jailhouse.ByName(c.Cell.Name)
	if err != nil {
		return err
	}
	if err := ignoreGone(m.o.Hypervisor.DestroyCell(ref)); err != nil {
		return err
	}
	if err := alloc.Open(m.o.AllocState, nil).Release(c.ID); err != nil {
		return err
	}
	if cg := c.Cgroup; cg != nil && cg.Created {
		if err := cgroup.Remove(m.o.CgroupRoot, cg.Path, killWait); err != nil {
			m.log.Warn("cgroup not removed", "id", c.ID, "error", err)
		}
	}
	return nil
}

// stopMonitor makes sure the monitor is gone. A monitor whose cell has
// stopped is given a moment to exit with the container's status first.
func (m *Manager) stopMonitor(c *state.Container, st specs.ContainerState) {
	p := *c.Monitor
	if st == specs.StateStopped && waitGone(p, exitGrace) {
		m.reap(c.ID)
		return
	}
	if err := p.Signal(unix.SIGKILL); err == nil {
		waitGone(p, killWait)
	}
	m.reap(c.ID)
}

// waitGone polls until p is no longer alive, up to d.
func waitGone(p state.Process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
