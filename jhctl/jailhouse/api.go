// Package jailhouse drives the Jailhouse hypervisor from user space: the
// ioctls of /dev/jailhouse (enable, disable, cell create, load, start,
// shutdown, destroy), the sysfs tree under /sys/devices/jailhouse (cells,
// states, CPUs, statistics, memory pools) and the hypervisor console.
//
// It speaks the driver's ABI directly, without the C tool, and turns the
// driver's terse errno values into messages that name the cell, CPU or image
// at fault. Configurations are checked with the cellgen cell codec before
// they reach the driver, because the driver itself checks little (a cell
// file of the wrong architecture is "created" without creating anything).
package jailhouse

import (
	"io"
	"sync"
	"time"
	"unsafe"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Default locations of the device node and the sysfs tree.
const (
	DefaultDevice = "/dev/jailhouse"
	DefaultSysfs  = "/sys/devices/jailhouse"
)

// Paths locates the driver's interfaces. Tests and emulators point them at
// fixture trees; a zero field means the default.
type Paths struct {
	Device string // character device, default DefaultDevice
	Sysfs  string // sysfs directory, default DefaultSysfs
}

// Device is an open jailhouse device. The real one (OpenDevice) wraps a file
// descriptor; tests substitute a fake that records every request.
type Device interface {
	// Ioctl issues request req with argument arg (nil for none). arg and
	// every buffer whose address is stored inside the record it points to
	// stay valid and pinned for the whole call.
	Ioctl(req uint, arg unsafe.Pointer) error
	// Read reads hypervisor console bytes.
	Read(p []byte) (int, error)
	// SetNonblock switches O_NONBLOCK.
	SetNonblock(nonblock bool) error
	Close() error
}

// Opener opens the device at path.
type Opener func(path string) (Device, error)

// Option configures a Client.
type Option func(*Client)

// WithOpener replaces the device opener (default OpenDevice).
func WithOpener(open Opener) Option { return func(c *Client) { c.open = open } }

// WithArch sets the configuration architecture the driver expects. The
// default follows runtime.GOARCH (arm64 → cell.ArchARM64, arm → ArchARM,
// amd64 → ArchX86).
func WithArch(a cell.Arch) Option {
	return func(c *Client) { c.arch, c.archSet = a, true }
}

// WithCreateWait bounds how long CreateCell waits for the new cell to appear
// in sysfs after the driver reported success (default 500ms; the driver
// creates the directory before returning, so this is only a safety margin).
func WithCreateWait(d time.Duration) Option { return func(c *Client) { c.createWait = d } }

// WithCellConfigs tells the client the configurations of cells created
// elsewhere, so that LoadCell can check images against their regions and
// explain a rejected load.
func WithCellConfigs(cfgs ...*cell.Cell) Option {
	return func(c *Client) {
		for _, cfg := range cfgs {
			c.rememberLocked(cfg)
		}
	}
}

// Client talks to one Jailhouse installation. It is safe for concurrent use.
// It opens the device for each operation, like the C tool, and keeps no
// descriptor between calls.
type Client struct {
	paths      Paths
	open       Opener
	arch       cell.Arch
	archSet    bool
	createWait time.Duration

	mu      sync.Mutex
	configs map[string]*cell.Cell // by cell name: configs created or registered in this process
}

// New returns a client for paths.
func New(paths Paths, opts ...Option) *Client { return newClient(paths, opts) }

// Paths returns the effective paths (defaults filled in).
func (c *Client) Paths() Paths { return c.paths }

// AddCellConfig registers the configuration of a cell (see WithCellConfigs).
// Configurations are kept by cell name until DestroyCell through this client.
func (c *Client) AddCellConfig(cfg *cell.Cell) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rememberLocked(cfg)
}

// CellRef addresses a cell the way the driver matches it: by id (ID ≥ 0,
// name ignored; id 0 is always the root cell) or by exact name (ID = -1).
type CellRef struct {
	ID   int32
	Name string
}

// RootID is the id of the root cell; a CellRef with this id always
// addresses the root cell, whatever its name.
const RootID = 0

// ParseCellRef reads a command-line cell argument exactly as the C tool does:
// an integer in C notation (decimal, 0x hex, leading-0 octal) that parses
// completely and is ≥ 0 is an id; anything else is a name. Empty strings and
// names longer than 31 bytes are errors.
func ParseCellRef(s string) (CellRef, error) { return parseCellRef(s) }

// ByName addresses a cell by name, also when the name looks like a number
// (the C tool's --name). Names longer than 31 bytes are rejected, never
// truncated.
func ByName(name string) (CellRef, error) { return byName(name) }

// ByID addresses a cell by id.
func ByID(id int) (CellRef, error) { return byID(id) }

// String renders the reference for messages: "'name'" or "3".
func (r CellRef) String() string { return r.string() }

// Image is one preload image: Data is copied to guest-physical Address of
// the cell. An image with no data is skipped by the driver.
type Image struct {
	Data    []byte
	Address uint64
}

// Enable starts the hypervisor with a system configuration (the bytes of a
// .cell system file). The bytes are decoded and checked (signature,
// revision, architecture, exact size) before the driver sees them.
func (c *Client) Enable(systemConfig []byte) error { return c.enable(systemConfig) }

// Disable destroys every cell and stops the hypervisor.
func (c *Client) Disable() error { return c.disable() }

// CreateCell creates a cell from the bytes of a cell configuration and
// returns the id the driver assigned, found in sysfs. The bytes are checked
// first; the decoded configuration is remembered for LoadCell.
func (c *Client) CreateCell(config []byte) (int, error) { return c.createCell(config) }

// LoadCell stops the cell and loads the images with one CELL_LOAD (with no
// images that is a shutdown). If the cell's configuration is known
// (CreateCell, AddCellConfig, WithCellConfigs), every image is checked
// against its regions first, and nothing reaches the driver if one does not
// fit.
func (c *Client) LoadCell(ref CellRef, images ...Image) error { return c.loadCell(ref, images) }

// StartCell starts the cell at its configured reset address.
func (c *Client) StartCell(ref CellRef) error { return c.simple(OpStart, reqCellStart, ref) }

// ShutdownCell stops the cell (a CELL_LOAD with no images); it stays
// created, keeps its CPUs and can be loaded again.
func (c *Client) ShutdownCell(ref CellRef) error { return c.shutdownCell(ref) }

// DestroyCell destroys the cell and returns its CPUs and memory to the root
// cell.
func (c *Client) DestroyCell(ref CellRef) error { return c.simple(OpDestroy, reqCellDestroy, ref) }

// CheckImages reports the first image that the driver would reject when
// loading cfg: one whose address lies in no region, whose region is not
// writable and loadable, or that overruns its region. The driver picks the
// first region (in configuration order) containing the address.
func CheckImages(cfg *cell.Cell, images []Image) error { return checkImages(cfg, images) }

// State is the state of a cell as sysfs reports it.
type State string

// Cell states.
const (
	StateRunning         State = "running"
	StateRunningLocked   State = "running/locked"
	StateShutDown        State = "shut down"
	StateFailed          State = "failed"
	StateCommABIMismatch State = "Comm ABI mismatch"
	StateInvalid         State = "invalid"
)

// Known reports whether s is one of the states the driver defines.
func (s State) Known() bool { return s.known() }

// CellInfo is a cell as sysfs shows it.
type CellInfo struct {
	ID         int
	Name       string
	State      State
	CPUs       cpuset.Set // cpus_assigned_list
	FailedCPUs cpuset.Set // cpus_failed_list
}

// Cells lists the cells in the order the C tool's "cell list" prints them:
// directory names sorted as strings, so "10" comes before "2". SortByID
// gives numeric order. Without the driver (no sysfs directory) the list is
// empty and the error nil, as with the C tool.
func (c *Client) Cells() ([]CellInfo, error) { return c.cells() }

// SortByID sorts cells by numeric id.
func SortByID(cells []CellInfo) { sortByID(cells) }

// Cell returns one cell, matched like the driver matches: by id, or by
// exact name when ref.ID is -1. An absent cell gives an error wrapping
// ErrNoCell.
func (c *Client) Cell(ref CellRef) (CellInfo, error) { return c.cell(ref) }

// Enabled reports whether the hypervisor runs. Without the driver it is
// false with a nil error.
func (c *Client) Enabled() (bool, error) { return c.enabled() }

// MemPool holds the hypervisor's memory pool figures, in pages. They read 0
// while the hypervisor is disabled.
type MemPool struct {
	MemSize, MemUsed     uint64
	RemapSize, RemapUsed uint64
}

// MemPool reads the memory pool figures.
func (c *Client) MemPool() (MemPool, error) { return c.memPool() }

// Counters maps a VM-exit reason ("total", "mmio", "hypercall", ...) to its
// count. Reasons are whatever the driver exposes (statistics/vmexits_*).
type Counters map[string]uint64

// CPUStats are the counters of one CPU of a cell.
type CPUStats struct {
	CPU      int
	Counters Counters
}

// Stats are a cell's VM-exit counters: the sum over its CPUs and each CPU.
type Stats struct {
	Cell   CellInfo
	Total  Counters
	PerCPU []CPUStats // ascending CPU number
}

// Reasons lists the reasons present in s: the common ones in the driver's
// order (total, mmio, management, hypercall), then architecture-specific
// ones in the driver's order, then any unknown ones alphabetically.
func (s *Stats) Reasons() []string { return s.reasons() }

// Stats reads the VM-exit statistics of a cell.
func (c *Client) Stats(ref CellRef) (*Stats, error) { return c.stats(ref) }

// Console opens the hypervisor console stream (read() on the device; each
// stream starts at the oldest retained byte). Without follow the stream
// ends (io.EOF) when no new data is available; with follow, reads block
// until new output arrives.
func (c *Client) Console(follow bool) (io.ReadCloser, error) { return c.console(follow) }

// ConsoleSnapshot returns the current console ring from sysfs (at most
// 2 KiB).
func (c *Client) ConsoleSnapshot() ([]byte, error) { return c.consoleSnapshot() }
