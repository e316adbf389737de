package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// containerdConfig is a minimal containerd 1.6 configuration: none of the
// snapshotters that cannot work in an initramfs, and no CRI unless asked
// for (criPlugin).
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = [%s
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

// criPlugin is the CRI plugin's id. Without CNI configuration it starts
// anyway (logging that pod networking is not ready), which is all the
// runphi scenarios need: it loads the runtime handler table.
const criPlugin = "io.containerd.grpc.v1.cri"

// StartContainerd starts containerd with its root, state and socket in the
// scenario's directory and waits until it answers. It is stopped when the
// scenario ends.
func (e *Env) StartContainerd() (*Containerd, error) {
	return e.startContainerd(filepath.Join(e.Dir(), "containerd.toml"), false, "")
}

// criEnabled reports whether ctr lists the CRI plugin as loaded ("ok").
func (e *Env) criEnabled(c *Containerd) (bool, error) {
	cmd, err := e.CtrCommand(c, "plugins", "ls")
	if err != nil {
		return false, err
	}
	out, err := quietOutput(cmd)
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0]+"."+f[1] == criPlugin {
			return f[len(f)-1] == "ok", nil
		}
	}
	return false, nil
}

// ContainerdConfigPath is containerd's default configuration file, which
// the runphi scenarios write as a user would.
const ContainerdConfigPath = "/etc/containerd/config.toml"

// runphiHandler registers runphi as the CRI runtime handler "runphi" (and
// keeps runc's), as docs/containerd.md tells containerd 1.x users to. ctr
// does not read it (it names the shim and binary on its command line), but
// containerd parses it, so a mistake in the documented table shows here.
const runphiHandler = `
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runphi]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["org.runphi.*"]
  container_annotations = ["org.runphi.*"]

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runphi.options]
  BinaryName = "` + BinDir + `/runphi"
`

// StartContainerdRunphi is StartContainerd with the CRI plugin enabled and
// runphi registered as its runtime handler, the configuration written to
// ContainerdConfigPath. It fails unless the CRI plugin loaded it.
func (e *Env) StartContainerdRunphi() (*Containerd, error) {
	c, err := e.startContainerd(ContainerdConfigPath, true, runphiHandler)
	if err != nil {
		return nil, err
	}
	ok, err := e.criEnabled(c)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		c.Daemon.DumpLog(e, 30)
		return nil, fmt.Errorf("containerd's CRI plugin did not load %s (ctr plugins ls)", ContainerdConfigPath)
	}
	e.Logf("containerd's CRI plugin loaded the runtime handlers runc and runphi (BinaryName %s/runphi)", BinDir)
	return c, nil
}

// startContainerd writes the configuration to cfg, with the CRI plugin if
// cri is set and the TOML extra appended, and starts containerd.
func (e *Env) startContainerd(cfg string, cri bool, extra string) (*Containerd, error) {
	c := &Containerd{
		Root:    filepath.Join(e.Dir(), "containerd-root"),
		State:   filepath.Join(e.Dir(), "containerd-state"),
		Address: filepath.Join(e.Dir(), "containerd-state", "containerd.sock"),
	}
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	disabled := "\n  " + strconv.Quote(criPlugin) + ","
	if cri {
		disabled = ""
	}
	data := fmt.Appendf(nil, containerdConfig, c.Root, c.State, disabled, c.Address)
	if err := os.WriteFile(cfg, append(data, extra...), 0o644); err != nil {
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

// CtrCommand returns a ctr command aimed at c through $CONTAINERD_ADDRESS,
// so that the echoed command line reads as a user would type it.
func (e *Env) CtrCommand(c *Containerd, args ...string) (*exec.Cmd, error) {
	cmd, err := e.Command("ctr", args...)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS="+c.Address)
	return cmd, nil
}

// Ctr runs ctr against c like Run does.
func (e *Env) Ctr(c *Containerd, args ...string) (string, error) {
	cmd, err := e.CtrCommand(c, args...)
	if err != nil {
		return "", err
	}
	return e.Output(cmd)
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
