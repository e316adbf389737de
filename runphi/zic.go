package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/config"
)

// zicRuntime is what the verbs need from the ZIC lifecycle manager
// (runphi/container). Its implementation holds every container in one
// state directory, the one for the caller's runc root (route.Dir).
//
// Errors should wrap errNotExist, errNotRunning or errExist where those
// apply: the verbs turn them into runc's wording, which containerd, CRI-O
// and podman match.
type zicRuntime interface {
	Create(ctx context.Context, o createOpts) error
	Start(ctx context.Context, id string) error
	State(ctx context.Context, id string) (containerState, error)
	Kill(ctx context.Context, id string, sig unix.Signal, all bool) error
	Delete(ctx context.Context, id string, force bool) error
	// Ps returns the host pids of the container's processes.
	Ps(ctx context.Context, id string) ([]int, error)
	// List returns the state of every container in the state directory.
	List(ctx context.Context) ([]containerState, error)
}

// zicEnv is what a zicRuntime is built from.
type zicEnv struct {
	cfg config.Config
	// stateDir holds one directory per ZIC: route.Dir(state root, runc root).
	stateDir string
	// runcRoot is runc's --root for this call (made absolute).
	runcRoot      string
	systemdCgroup bool
	log           *slog.Logger
	hypervisor    *jailhouse.Client
	// globalArgs are the call's global flags as given, for the monitor.
	globalArgs []string
}

// createOpts are create's (and run's) options, paths made absolute.
type createOpts struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	PidfdSocket   string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
}

// containerState is runc's `state` and `list --format json` object, field
// for field, so that go-runc, CRI-O and podman decode runphi's output like
// runc's.
type containerState struct {
	Version        string            `json:"ociVersion"`
	ID             string            `json:"id"`
	InitProcessPid int               `json:"pid"`
	Status         string            `json:"status"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Owner          string            `json:"owner"`
}

// The error sentinels carry runc's exact messages.
var (
	errNotExist   = errors.New("container does not exist")
	errNotRunning = errors.New("container not running")
	errExist      = errors.New("container with given ID already exists")
)

// errNotSupported is the error of a runc verb runphi cannot do for a ZIC.
type errNotSupported struct{ verb, id string }

func (e *errNotSupported) Error() string {
	return e.verb + " is not supported for ZICs: container " + e.id + " runs in a Jailhouse cell"
}
