package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/runphi-go/runphi/internal/atomicfile"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	bundlepkg "github.com/runphi-go/runphi/cellgen/bundle"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/descriptor"
	"github.com/runphi-go/runphi/cellgen/zic"
	"github.com/runphi-go/runphi/jhctl/celllinux"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/cgroup"
	"github.com/runphi-go/runphi/runphi/monitor"
	"github.com/runphi-go/runphi/runphi/state"
)

// Fault-injection steps of create.
const (
	FaultAfterMkdir      = "after-mkdir"
	FaultAfterAlloc      = "after-alloc"
	FaultAfterCellCreate = "after-cellcreate"
	FaultAfterLoad       = "after-load"
	FaultAfterMonitor    = "after-monitor"
	FaultAfterPidFile    = "after-pidfile"
)

// FaultSteps lists the create steps in order.
var FaultSteps = []string{FaultAfterMkdir, FaultAfterAlloc, FaultAfterCellCreate, FaultAfterLoad, FaultAfterMonitor, FaultAfterPidFile}

// CreateOpts are the arguments of create.
type CreateOpts struct {
	ID     string
	Bundle string
	// Spec is the bundle's config.json; nil means read it from Bundle.
	Spec *specs.Spec
	// PidFile receives the monitor's pid (no newline); empty means none.
	PidFile string
	// ConsoleSocket, if set, is a unix socket that receives the master of
	// a new pty (SCM_RIGHTS), whose slave becomes the container's stdio.
	ConsoleSocket string
	// SystemdCgroup selects the "slice:prefix:name" form of cgroupsPath.
	SystemdCgroup bool
	// Stdin, Stdout and Stderr are the container's stdio, given to the
	// monitor; nil means this process's own.
	Stdin, Stdout, Stderr *os.File
}

// payload is everything read for the cell, before anything is allocated.
type payload struct {
	files  *bundlepkg.Payload
	loader []byte // linux-loader.bin, for Linux ZICs
}

// undo is a rollback list, run in reverse.
type undo []func() error

func (u *undo) add(f func() error) { *u = append(*u, f) }

func (u undo) run() error {
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Create creates the ZIC o.ID (see the package comment for the steps). On
// error nothing is left: no state, cell, grant, cgroup or monitor.
func (m *Manager) Create(ctx context.Context, o CreateOpts) (err error) {
	if err := state.ValidateID(o.ID); err != nil {
		return err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return fmt.Errorf("container %s: bundle: %w", o.ID, err)
	}
	spec := o.Spec
	if spec == nil {
		if spec, err = bundlepkg.ReadSpec(filepath.Join(bundle, "config.json")); err != nil {
			return fmt.Errorf("container %s: bundle: %w", o.ID, err)
		}
	}
	rootfs, err := bundlepkg.Rootfs(bundle, spec)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	pidFile := o.PidFile
	if pidFile != "" {
		if pidFile, err = filepath.Abs(pidFile); err != nil {
			return fmt.Errorf("container %s: pid file: %w", o.ID, err)
		}
	}
	b, err := m.loadBoard()
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	self, err := state.Self()
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}

	h, err := m.store.Create(o.ID)
	if err != nil {
		return err
	}
	var rb undo
	rb.add(h.Remove)
	defer func() {
		if err != nil {
			if rerr := rb.run(); rerr != nil {
				m.log.Error("rollback incomplete", "id", o.ID, "error", rerr)
				err = fmt.Errorf("%w (rollback: %v)", err, rerr)
			}
		}
		h.Unlock()
	}()

	rec := &state.Container{
		Version:     state.Version,
		OCIVersion:  spec.Version,
		ID:          o.ID,
		Bundle:      bundle,
		Rootfs:      rootfs,
		Created:     time.Now().UTC(),
		Annotations: spec.Annotations,
		Phase:       state.PhaseCreating,
		Creator:     self,
		Cell:        state.Cell{Name: state.CellName(o.ID), ID: -1},
		PidFile:     pidFile,
	}
	if err := h.Save(rec); err != nil {
		return err
	}
	m.fault(FaultAfterMkdir)

	z, err := bundlepkg.Open(bundle, spec, b)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	defer z.Close()
	p, err := m.readPayload(z)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	rec.OS, rec.Console = string(z.Desc.OS), string(z.Desc.Console)
	if err := ctx.Err(); err != nil {
		return err
	}

	al := m.allocator(b.Pool)
	grant, err := al.Allocate(o.ID, z.Request)
	if err != nil {
		return fmt.Errorf("container %s: allocate: %w", o.ID, err)
	}
	rb.add(func() error { return al.Release(o.ID) })
	m.fault(FaultAfterAlloc)

	cfg, images, err := m.plan(b, grant, rec.Cell.Name, z, p)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	data, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("container %s: cell configuration: %w", o.ID, err)
	}
	// For inspection only: nothing reads it back, so no sync.
	if err := os.WriteFile(h.Path(CellFile), data, 0o600); err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	ref, err := jailhouse.ByName(rec.Cell.Name)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	cellID, err := m.o.Hypervisor.CreateCell(data)
	// A failed create may still have left the cell behind (the driver
	// succeeded but the cell did not show in sysfs in time), so the
	// rollback destroys it by name, unless the name was already taken by
	// a cell that is not ours.
	if err == nil || !errors.Is(err, jailhouse.ErrCellExists) {
		rb.add(func() error { return ignoreGone(m.o.Hypervisor.DestroyCell(ref)) })
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	// The id is recorded with the monitor below; until then delete
	// finds the cell by its name, which state.json already holds.
	rec.Cell.ID = cellID
	m.fault(FaultAfterCellCreate)

	if err := m.o.Hypervisor.LoadCell(ref, images...); err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	m.fault(FaultAfterLoad)

	cgPath, err := m.cgroupPath(spec, o)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	mon, err := m.spawn(h, rec, o, &rb)
	if err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	if cgPath != "" {
		created, err := cgroup.Join(m.o.CgroupRoot, cgPath, mon.proc.PID)
		switch {
		case errors.Is(err, cgroup.ErrV1):
			m.log.Warn("container process not put in a cgroup", "id", o.ID, "error", err)
		case err != nil:
			return fmt.Errorf("container %s: %w", o.ID, err)
		default:
			rec.Cgroup = &state.Cgroup{Path: cgPath, Created: created}
			if created {
				// The monitor must be gone before its cgroup can go.
				rb.add(func() error {
					m.killChild(o.ID)
					return cgroup.Remove(m.o.CgroupRoot, cgPath, time.Second)
				})
			}
		}
	}
	rec.Monitor = &mon.proc
	if err := h.Save(rec); err != nil {
		return err
	}
	if err := mon.release(); err != nil {
		return fmt.Errorf("container %s: %w", o.ID, err)
	}
	m.fault(FaultAfterMonitor)

	if pidFile != "" {
		if err := atomicfile.WriteFile(pidFile, []byte(strconv.Itoa(mon.proc.PID)), 0o644); err != nil {
			return fmt.Errorf("container %s: pid file: %w", o.ID, err)
		}
		rb.add(func() error { return ignoreNotExist(os.Remove(pidFile)) })
	}
	m.fault(FaultAfterPidFile)

	rec.Phase = state.PhaseCreated
	if err := h.Save(rec); err != nil {
		return err
	}
	m.log.Debug("created", "id", o.ID, "cell", rec.Cell.Name, "cell_id", cellID, "pid", mon.proc.PID,
		"cpus", grant.CPUs.String(), "ram", grant.RAM.String())
	return nil
}

// readPayload reads the image's payload and, for a Linux ZIC, the
// configured linux-loader.
func (m *Manager) readPayload(z *bundlepkg.ZIC) (*payload, error) {
	files, err := z.ReadPayload()
	if err != nil {
		return nil, err
	}
	p := &payload{files: files}
	if z.Desc.OS != descriptor.OSLinux {
		return p, nil
	}
	if m.o.LinuxLoader == "" {
		return nil, errors.New("Linux ZIC: no linux-loader configured")
	}
	if p.loader, err = os.ReadFile(m.o.LinuxLoader); err != nil {
		return nil, fmt.Errorf("Linux ZIC: linux-loader: %w", err)
	}
	return p, nil
}

// plan generates the cell and the images to load, and checks that every
// image fits the cell before anything reaches the hypervisor.
func (m *Manager) plan(b *board.Board, g alloc.Grant, name string, z *bundlepkg.ZIC, p *payload) (*cell.Cell, []jailhouse.Image, error) {
	opts := z.Options
	opts.Name = name
	cfg, err := zic.Generate(b, g, opts)
	if err != nil {
		return nil, nil, err
	}
	var images []jailhouse.Image
	if z.Desc.OS == descriptor.OSLinux {
		layout, err := celllinux.Plan(cfg, p.files.Kernel, p.files.DTB, p.files.Initrd, z.Desc.Cmdline, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("Linux ZIC: %w", err)
		}
		for _, img := range layout.Images(p.loader) {
			images = append(images, jailhouse.Image{Data: img.Data, Address: img.Address})
		}
	} else {
		placed, err := z.Images(cfg, p.files)
		if err != nil {
			return nil, nil, err
		}
		for _, img := range placed {
			images = append(images, jailhouse.Image{Data: img.Data, Address: img.Address})
		}
	}
	if err := jailhouse.CheckImages(cfg, images); err != nil {
		return nil, nil, err
	}
	return cfg, images, nil
}

// cgroupPath resolves linux.cgroupsPath, "" when there is no cgroup to join
// (the mount is not cgroup v2).
func (m *Manager) cgroupPath(spec *specs.Spec, o CreateOpts) (string, error) {
	if !cgroup.IsV2(m.o.CgroupRoot) {
		m.log.Warn("cgroup v2 not mounted; the container process joins no cgroup", "id", o.ID, "root", m.o.CgroupRoot)
		return "", nil
	}
	var cgPath string
	if spec.Linux != nil {
		cgPath = spec.Linux.CgroupsPath
	}
	own := "/"
	if !o.SystemdCgroup && (cgPath == "" || !filepath.IsAbs(cgPath)) {
		var err error
		if own, err = cgroup.OwnCgroup(); err != nil {
			return "", err
		}
	}
	return cgroup.Resolve(cgPath, o.SystemdCgroup, o.ID, own)
}

// fault kills this process at step if fault injection asks for it.
func (m *Manager) fault(step string) {
	if m.o.Fault != "create:"+step {
		return
	}
	m.log.Warn("fault injection: killing create", "step", step)
	_ = unix.Kill(os.Getpid(), unix.SIGKILL)
	// SIGKILL to oneself is delivered before kill returns to user space;
	// never go on if it somehow is not.
	for {
		time.Sleep(time.Second)
	}
}

// ignoreGone treats a cell that does not exist (or a hypervisor that is
// not running, which means no cell exists) as destroyed.
func ignoreGone(err error) error {
	if errors.Is(err, jailhouse.ErrNoCell) || errors.Is(err, jailhouse.ErrNotEnabled) || errors.Is(err, jailhouse.ErrDriverMissing) {
		return nil
	}
	return err
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// monitorConfig is the monitor's configuration for rec.
func monitorConfig(h *state.Handle, rec *state.Container) monitor.Config {
	return monitor.Config{ID: rec.ID, CellName: rec.Cell.Name, CellID: rec.Cell.ID,
		Console: rec.Console, Fifo: h.Path(state.FifoFile)}
}
