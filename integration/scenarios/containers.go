package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Containerd is a containerd daemon started by StartContainerd.
type Containerd struct {
	Daemon  *Daemon
	Address string // the gRPC socket, for ctr --address
	Root    string
	State   string
}

// containerdConfig is a minimal containerd 1.6 configuration: no CRI (it
// wants CNI and slows the start), and none of the snapshotters that cannot
// work in an initramfs.
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q
`

// StartContainerd starts containerd with its root, state and socket in the
// scenario's directory and waits until it answers. It is stopped when the
// scenario ends.
func (e *Env) StartContainerd() (*Containerd, error) {
	c := &Containerd{
		Root:    filepath.Join(e.Dir(), "containerd-root"),
		State:   filepath.Join(e.Dir(), "containerd-state"),
		Address: filepath.Join(e.Dir(), "containerd-state", "containerd.sock"),
	}
	cfg := filepath.Join(e.Dir(), "containerd.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, containerdConfig, c.Root, c.State, c.Address), 0o644); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	d, err := e.Start("containerd", "--config", cfg, "--log-level", "info")
	if err != nil {
		return nil, err
	}
	c.Daemon = d
	start := time.Now()
	err = e.WaitFor("containerd socket "+c.Address, 45*time.Second, func() bool {
		if exited, _ := d.Exited(); exited {
			return true
		}
		_, err := os.Stat(c.Address)
		return err == nil
	})
	if exited, werr := d.Exited(); exited {
		d.DumpLog(e, 30)
		return nil, fmt.Errorf("containerd exited at start: %v", werr)
	}
	if err != nil {
		d.DumpLog(e, 30)
		return nil, err
	}
	e.Logf("containerd socket up after %v", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// containerdSmoke starts containerd and checks that ctr reaches it.
func containerdSmoke(e *Env) error {
	c, err := e.StartContainerd()
	if err != nil {
		return err
	}
	out, err := e.Run("ctr", "--address", c.Address, "version")
	if err != nil {
		c.Daemon.DumpLog(e, 30)
		return err
	}
	// ctr prints a Client: and a Server: section, each with a Version line.
	if !strings.Contains(out, "Client:") || !strings.Contains(out, "Server:") || strings.Count(out, "Version:") < 2 {
		return fmt.Errorf("ctr version: no client and server versions in %q", out)
	}
	return nil
}

// BusyboxSpec returns an OCI runtime spec that runs args in a container
// whose read-only root is rootfs, with its own PID, mount, IPC, UTS and
// network namespaces.
func BusyboxSpec(rootfs string, args ...string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "runphi-test",
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            args,
			Cwd:             "/",
			Env:             []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

// WriteBundle writes spec as config.json of a new bundle directory.
func WriteBundle(dir string, spec *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	return nil
}

// runcSmoke runs a busybox container with runc. --no-pivot is needed
// because the initramfs root cannot be pivot_root'ed.
func runcSmoke(e *Env) error {
	if _, err := os.Stat(filepath.Join(ImageBusybox, "bin", "busybox")); err != nil {
		return Skipf("busybox test image missing: %v", err)
	}
	bundle := filepath.Join(e.Dir(), "bundle")
	const want = "hello from runc-smoke"
	if err := WriteBundle(bundle, BusyboxSpec(ImageBusybox, "/bin/sh", "-c", "echo "+want+"; echo pid $$")); err != nil {
		return err
	}
	out, err := e.Run("runc", "--root", filepath.Join(e.Dir(), "runc-state"), "run", "--no-pivot", "--bundle", bundle, "smoke")
	if err != nil {
		return err
	}
	if !strings.Contains(out, want) {
		return fmt.Errorf("container output %q lacks %q", out, want)
	}
	// A new PID namespace makes the shell PID 1.
	if !strings.Contains(out, "pid 1") {
		return errors.New("container shell is not PID 1 of its own namespace")
	}
	return nil
}
