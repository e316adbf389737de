package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Version is the version of the state.json format.
const Version = 1

// Phase is how far create got, as recorded. It is never shown to callers
// as a status: Derive turns it and the live facts into one.
type Phase string

// Phases.
const (
	// PhaseCreating is written first, right after the state directory
	// exists, so a create that dies at any later step leaves evidence.
	PhaseCreating Phase = "creating"
	// PhaseCreated is written last, when create has succeeded.
	PhaseCreated Phase = "created"
)

// Cell is the Jailhouse cell of a container.
type Cell struct {
	// Name is the cell name (CellName of the id), fixed at create.
	Name string `json:"name"`
	// ID is the id the driver assigned, -1 before the cell exists.
	ID int `json:"id"`
}

// Cgroup is the cgroup the container's process was put in.
type Cgroup struct {
	// Path is relative to the cgroup mount, e.g. "/system.slice/x.scope".
	Path string `json:"path"`
	// Created is true if runphi made the directory (and removes it).
	Created bool `json:"created,omitempty"`
}

// Container is the content of StateRoot/<id>/state.json: what create
// decided and recorded. Whether the container runs is never stored; it is
// derived from the processes and the cell each time (Derive).
type Container struct {
	Version int `json:"version"`
	// OCIVersion is the bundle's ociVersion, which state reports.
	OCIVersion  string            `json:"oci_version"`
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Phase       Phase             `json:"phase"`
	// Creator is the create process, to tell a create in progress
	// (creating) from one that died (stopped).
	Creator Process `json:"creator"`
	// Monitor is the container's process, once started.
	Monitor *Process `json:"monitor,omitempty"`
	Cell    Cell     `json:"cell"`
	// OS and Console come from the image's descriptor.
	OS      string  `json:"os,omitempty"`
	Console string  `json:"console,omitempty"`
	Cgroup  *Cgroup `json:"cgroup,omitempty"`
	// PidFile is the --pid-file path given to create, if any.
	PidFile string `json:"pid_file,omitempty"`
}

// ErrCorrupt is wrapped by Decode errors.
var ErrCorrupt = errors.New("corrupt container state")

// Encode renders c as state.json (indented, with a trailing newline).
func Encode(c *Container) ([]byte, error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("container %s: state: %w", c.ID, err)
	}
	return append(data, '\n'), nil
}

// Decode reads state.json strictly: unknown keys, a wrong version, an
// invalid id or phase are errors wrapping ErrCorrupt.
func Decode(data []byte) (*Container, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Container
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	switch {
	case c.Version != Version:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, c.Version, Version)
	case c.Phase != PhaseCreating && c.Phase != PhaseCreated:
		return nil, fmt.Errorf("%w: phase %q", ErrCorrupt, c.Phase)
	case c.Cell.Name == "" || len(c.Cell.Name) > MaxCellNameLen:
		return nil, fmt.Errorf("%w: cell name %q", ErrCorrupt, c.Cell.Name)
	}
	if err := ValidateID(c.ID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return &c, nil
}

// CellState is the cell's state as far as status derivation cares.
type CellState int

// Cell states.
const (
	CellMissing CellState = iota // no cell of that name
	CellRunning                  // "running" or "running/locked"
	CellStopped                  // "shut down", "failed" or any other state
)

// Facts are the live observations a status is derived from.
type Facts struct {
	CreatorAlive bool // the recorded create process still runs
	MonitorAlive bool // the recorded monitor runs (same start time, not a zombie)
	FifoExists   bool // exec.fifo is still there: start has not happened
	Cell         CellState
}

// Derive returns the status of c given the facts, like runc's
// refreshState:
//
//   - phase creating: creating while the creator lives, else stopped (a
//     create that died never made a usable container);
//   - monitor dead (or never started): stopped;
//   - exec.fifo present: created (start removes it);
//   - the cell running: running;
//   - otherwise stopped: the cell has shut down, failed or gone and the
//     monitor is about to exit with its status.
func Derive(c *Container, f Facts) specs.ContainerState {
	switch {
	case c.Phase == PhaseCreating && f.CreatorAlive:
		return specs.StateCreating
	case c.Phase == PhaseCreating, !f.MonitorAlive:
		return specs.StateStopped
	case f.FifoExists:
		return specs.StateCreated
	case f.Cell == CellRunning:
		return specs.StateRunning
	}
	return specs.StateStopped
}
