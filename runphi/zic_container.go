package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/runphi/container"
	"github.com/runphi-go/runphi/runphi/monitor"
)

// newContainerRuntime builds the ZIC lifecycle manager (runphi/container)
// for one call.
func newContainerRuntime(env zicEnv) (zicRuntime, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	m, err := container.New(container.Options{
		StateRoot: env.stateDir,
		BoardDir:  env.cfg.BoardDir,
		// One allocator for the host, whatever the runc root: cells share
		// the CPUs and memory of one board.
		AllocState:  env.cfg.AllocState,
		Hypervisor:  env.hypervisor,
		LinuxLoader: env.cfg.LinuxLoader,
		Logger:      env.log,
		// The monitor gets this call's global flags, so it logs where the
		// caller asked and finds the same state.
		MonitorCommand: append(append([]string{exe}, env.globalArgs...), monitor.Verb),
	})
	if err != nil {
		return nil, err
	}
	return &containerRuntime{m: m, systemdCgroup: env.systemdCgroup}, nil
}

// containerRuntime adapts *container.Manager to zicRuntime.
type containerRuntime struct {
	m             *container.Manager
	systemdCgroup bool
}

func (r *containerRuntime) Create(ctx context.Context, o createOpts) error {
	// A pidfd of the monitor would mislead: it is not the workload.
	if o.PidfdSocket != "" {
		return errors.New("--pidfd-socket is not supported for ZICs")
	}
	// --preserve-fds passes descriptors to the container's process; a
	// cell has none to receive them, so they are dropped, as are the
	// mount-namespace options --no-pivot and --no-new-keyring.
	return mapErr(r.m.Create(ctx, container.CreateOpts{
		ID:            o.ID,
		Bundle:        o.Bundle,
		PidFile:       o.PidFile,
		ConsoleSocket: o.ConsoleSocket,
		SystemdCgroup: r.systemdCgroup,
	}))
}

func (r *containerRuntime) Start(_ context.Context, id string) error {
	return mapErr(r.m.Start(id))
}

func (r *containerRuntime) State(_ context.Context, id string) (containerState, error) {
	st, err := r.m.State(id)
	if err != nil {
		return containerState{}, mapErr(err)
	}
	return fromContainer(st), nil
}

func (r *containerRuntime) Kill(_ context.Context, id string, sig unix.Signal, all bool) error {
	return mapErr(r.m.Kill(id, sig, all))
}

func (r *containerRuntime) Delete(_ context.Context, id string, force bool) error {
	return mapErr(r.m.Delete(id, force))
}

func (r *containerRuntime) Ps(_ context.Context, id string) ([]int, error) {
	pids, err := r.m.Ps(id)
	return pids, mapErr(err)
}

func (r *containerRuntime) List(context.Context) ([]containerState, error) {
	sts, err := r.m.List()
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]containerState, len(sts))
	for i, st := range sts {
		out[i] = fromContainer(st)
	}
	return out, nil
}

func fromContainer(st *container.State) containerState {
	return containerState{
		Version:        st.OCIVersion,
		ID:             st.ID,
		InitProcessPid: st.Pid,
		Status:         string(st.Status),
		Bundle:         st.Bundle,
		Rootfs:         st.Rootfs,
		Created:        st.Created,
		Annotations:    st.Annotations,
		Owner:          st.Owner,
	}
}

// mappedErr keeps the manager's message and makes errors.Is also match
// main's sentinel for the same condition.
type mappedErr struct {
	err      error
	sentinel error
}

func (e *mappedErr) Error() string   { return e.err.Error() }
func (e *mappedErr) Unwrap() []error { return []error{e.err, e.sentinel} }

func mapErr(err error) error {
	for _, m := range []struct{ theirs, ours error }{
		{container.ErrNotExist, errNotExist},
		{container.ErrNotRunning, errNotRunning},
		{container.ErrExist, errExist},
	} {
		if errors.Is(err, m.theirs) {
			return &mappedErr{err: err, sentinel: m.ours}
		}
	}
	return err
}
