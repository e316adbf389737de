// Package container manages the lifecycle of ZICs, containers that run as
// Jailhouse cells, in the manner of runc's libcontainer: Create, Start,
// State, Kill, Delete, Ps and List on a Manager, over a Hypervisor
// interface (satisfied by *jailhouse.Client) and the cellgen allocator,
// cell generator and descriptor reader.
//
// # Create
//
// Create runs one transaction, holding the container's lock:
//
//  1. mkdir <root>/<id> (an existing one is "already exists"), lock,
//     state.json with phase "creating" and the creator's pid and start time
//  2. read the image descriptor and payload, derive the request
//  3. allocate CPUs, RAM, a loader slot and a network link (cellgen/alloc,
//     keyed by the full id)
//  4. generate the cell (cellgen/zic) and check every image against it
//  5. CreateCell, then one LoadCell with all images: the inmate at its load
//     address (starting_vaddress, else the board's loader address) and its
//     cmdline with a NUL at load address + 0x1000 (the inmate library's
//     .cmdline, at most 255 bytes); or, for Linux, the linux-loader at the
//     loader address, kernel, device tree, initrd and loader parameters as
//     jhctl/celllinux plans them
//  6. exec.fifo, monitor.json, then the monitor (runphi __monitor, see
//     package monitor) as a child of create in a new session, with the
//     container's stdio (or a pty sent over --console-socket); create
//     waits for its "ready", puts it in the container's cgroup, records it
//     and lets it go on
//  7. --pid-file, written atomically without a newline
//  8. state.json with phase "created"
//
// Any failure undoes the steps done, in reverse (monitor killed, cell
// destroyed, grant released, cgroup and state directory removed), and
// returns the error; nothing is left behind.
//
// Fault injection: with RUNPHI_FAULT=create:<step> (FaultEnv) the create
// process SIGKILLs itself at that step, to test that a create killed
// anywhere leaves state Delete(force) can clean. Steps: after-mkdir,
// after-alloc, after-cellcreate, after-load, after-monitor, after-pidfile.
//
// # Status
//
// State derives the status from facts (state.Derive): the recorded phase,
// the creator's and monitor's liveness (pid + start time, not a zombie),
// exec.fifo (present until start) and the cell's sysfs state.
//
// # Signals
//
// Kill on a created or running ZIC:
//
//	0                      existence check only
//	TERM, INT, HUP, QUIT   the cell is shut down (ShutdownCell, when
//	                       running), then the signal goes to the monitor,
//	                       which exits with 128+signal (143 for TERM)
//	KILL                   the monitor is SIGKILLed (exit 137), then the
//	                       cell destroyed
//	anything else          error "signal N (NAME) not supported for ZICs";
//	                       a cell has no way to receive a POSIX signal
//
// On a stopped ZIC kill fails with "container not running", except with
// --all, which succeeds.
//
// exec, update, pause, resume, checkpoint and restore have no meaning for
// a cell: the caller reports Unsupported(verb), "<verb>: not supported for
// ZICs". ps lists the monitor's pid.
//
// # Delete
//
// Delete works on created and stopped containers, on running ones only
// with force (which kills first). It stops the monitor if it still runs,
// destroys the cell, releases the grant, removes the cgroup runphi made
// and the state directory. An unknown id is "container does not exist",
// an error callers match; with force it succeeds, so delete is
// idempotent. A directory left by a create that died before writing
// state.json is removed too. With force, even unreadable state is deleted:
// the cell and grant are found by the id (CellName, the grant's key); only
// a cgroup directory runphi made stays, as its path was in the lost state.
package container

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/cgroup"
	"github.com/runphi-go/runphi/runphi/monitor"
	"github.com/runphi-go/runphi/runphi/state"
)

// FaultEnv names the fault-injection variable (see the package comment).
const FaultEnv = "RUNPHI_FAULT"

// Files in the state directory besides state's own.
const (
	// CellFile is the binary cell configuration created for the ZIC,
	// kept for inspection (jhctl cell ... or cellgen decode).
	CellFile = "cell.cell"
)

// Errors. Messages keep runc's wording where callers match on it.
var (
	ErrExist    = state.ErrExist
	ErrNotExist = state.ErrNotExist
	// ErrNotRunning is what kill reports on a stopped container.
	ErrNotRunning = errors.New("container not running")
	// ErrRunning is what delete without force reports on a running one.
	ErrRunning = errors.New("container is running")
	// ErrNotCreated is what start reports unless the container is created.
	ErrNotCreated = errors.New("container is not in created state")
	// ErrNotSupported is wrapped by operations ZICs cannot do.
	ErrNotSupported = errors.New("not supported for ZICs")
)

// Unsupported returns the error for a verb ZICs do not have, e.g.
// Unsupported("exec"): "exec: not supported for ZICs".
func Unsupported(verb string) error { return fmt.Errorf("%s: %w", verb, ErrNotSupported) }

// Hypervisor is what the manager needs of Jailhouse; *jailhouse.Client
// satisfies it (and monitor.Hypervisor).
type Hypervisor interface {
	CreateCell(config []byte) (int, error)
	LoadCell(ref jailhouse.CellRef, images ...jailhouse.Image) error
	StartCell(ref jailhouse.CellRef) error
	ShutdownCell(ref jailhouse.CellRef) error
	DestroyCell(ref jailhouse.CellRef) error
	Cell(ref jailhouse.CellRef) (jailhouse.CellInfo, error)
}

// Options configure a Manager.
type Options struct {
	// StateRoot holds one directory per ZIC (required).
	StateRoot string
	// Board is the target board; if nil, BoardDir is loaded on the first
	// Create (other verbs do not need it).
	Board    *board.Board
	BoardDir string
	// AllocState is the allocator's state file, default
	// <StateRoot>/alloc.json.
	AllocState string
	// Hypervisor is required.
	Hypervisor Hypervisor
	// LinuxLoader is the host path of linux-loader.bin, needed for Linux
	// ZICs only.
	LinuxLoader string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// MonitorCommand is the argv prefix that runs the monitor; create
	// appends the state directory. Default: this executable and
	// monitor.Verb. The main package puts its global flags (--log,
	// --log-format, --root, ...) before the verb.
	MonitorCommand []string
	// MonitorEnv is added to the monitor's environment.
	MonitorEnv []string
	// CgroupRoot is the cgroup mount, default cgroup.DefaultRoot.
	CgroupRoot string
	// ReadyTimeout bounds the wait for the monitor's handshake, default
	// 10s.
	ReadyTimeout time.Duration
	// Fault is the fault-injection setting; empty means $RUNPHI_FAULT.
	Fault string
}

// Manager runs ZIC lifecycles. One Manager may be used from several
// goroutines; separate processes coordinate through the state directory
// locks and the allocator's lock.
type Manager struct {
	o     Options
	store *state.Store
	log   *slog.Logger

	boardOnce sync.Once
	board     *board.Board
	boardErr  error

	mu       sync.Mutex
	children map[string]*child // monitors started by this process, by id
}

// New returns a manager; it creates the state root if needed.
func New(o Options) (*Manager, error) {
	if o.Hypervisor == nil {
		return nil, errors.New("container manager: no hypervisor")
	}
	store, err := state.NewStore(o.StateRoot)
	if err != nil {
		return nil, err
	}
	if o.Board == nil && o.BoardDir == "" {
		return nil, errors.New("container manager: no board")
	}
	if o.AllocState == "" {
		o.AllocState = filepath.Join(store.Root(), "alloc.json")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(o.MonitorCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("container manager: own executable: %w", err)
		}
		o.MonitorCommand = []string{exe, monitor.Verb}
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = cgroup.DefaultRoot
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	if o.Fault == "" {
		o.Fault = os.Getenv(FaultEnv)
	}
	return &Manager{o: o, store: store, log: o.Logger, board: o.Board, children: map[string]*child{}}, nil
}

// Store returns the state store.
func (m *Manager) Store() *state.Store { return m.store }

// Exists reports whether runphi holds state for id, which is how every verb
// after create decides between the ZIC path and forwarding to runc.
func (m *Manager) Exists(id string) bool { return m.store.Exists(id) }

func (m *Manager) loadBoard() (*board.Board, error) {
	m.boardOnce.Do(func() {
		if m.board == nil {
			m.board, m.boardErr = board.Load(m.o.BoardDir)
		}
	})
	return m.board, m.boardErr
}

func (m *Manager) allocator(pool *board.Pool) *alloc.Allocator {
	return alloc.Open(m.o.AllocState, pool)
}
