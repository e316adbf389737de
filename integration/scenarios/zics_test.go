package scenarios

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runphi-go/runphi/integration/ociimage"
	"github.com/runphi-go/runphi/runphi/config"
	"github.com/runphi-go/runphi/runphi/container"
)

func TestParseTasks(t *testing.T) {
	tests := []struct {
		name, out string
		want      map[string]task
		err       string
	}{
		{"none", "TASK    PID    STATUS    \n", map[string]task{}, ""},
		{"two", "TASK      PID    STATUS    \nzic-d1    626    RUNNING\nzic-d2    680    STOPPED\n",
			map[string]task{"zic-d1": {626, "RUNNING"}, "zic-d2": {680, "STOPPED"}}, ""},
		{"no header", "zic 1 RUNNING\n", nil, "no header"},
		{"bad pid", "TASK PID STATUS\nzic x RUNNING\n", nil, "invalid syntax"},
		{"short line", "TASK PID STATUS\nzic 12\n", nil, "want ID PID STATUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTasks(tt.out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseTasks error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tasks mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaultStepsMatchRunphi(t *testing.T) {
	// Scenario f must kill create at every step runphi offers, in order.
	var steps []string
	for _, s := range faultSteps() {
		steps = append(steps, s.step)
	}
	if diff := cmp.Diff(container.FaultSteps, steps); diff != "" {
		t.Errorf("fault steps differ from runphi/container.FaultSteps (-runphi +scenario f):\n%s", diff)
	}
}

func TestConsoleImageLine(t *testing.T) {
	// The format jhctl/emu documents for a started cell's images.
	sum := strings.Repeat("0123456789abcdef", 4)
	line := `emu: cell "zic-b" (id 1) region 5 at 0x0: 4096 bytes sha256 ` + sum
	m := consoleImage.FindStringSubmatch(line)
	if diff := cmp.Diff([]string{line, "zic-b", "0x0", "4096", sum}, m); diff != "" {
		t.Errorf("match mismatch (-want +got):\n%s", diff)
	}
	if consoleImage.MatchString(`emu: cell "zic-b" (id 1) has no images loaded`) {
		t.Error("a cell without images matched")
	}
}

func TestZICImage(t *testing.T) {
	img := zicImage("zic-x", `{"os_var":"baremetal"}`, ociimage.File("/boot/boot.bin", []byte("inmate"), 0o644))
	if img.Name != "docker.io/runphi/zic-x:latest" || len(img.Config.Cmd) == 0 {
		t.Errorf("image %s, cmd %v: want a full name and a command for ctr", img.Name, img.Config.Cmd)
	}
	layer, err := img.Layer()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[hdr.Name] = string(data)
	}
	want := map[string]string{"boot/": "", "boot/boot.bin": "inmate", "boot/config.json": `{"os_var":"baremetal"}` + "\n"}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("layer mismatch (-want +got):\n%s", diff)
	}
}

func TestReadPool(t *testing.T) {
	p, err := readPool(filepath.Join("..", "..", "boards", ZICBoard))
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	for _, want := range []string{"CPUs 1-15", "246 MiB at 0x70000000", "loader slots of 64 KiB", "3 ivshmem-net links"} {
		if !strings.Contains(got, want) {
			t.Errorf("pool summary %q lacks %q", got, want)
		}
	}
}

func TestRunphiConfigAccepted(t *testing.T) {
	// runphi's configuration parser is strict about keys and paths; the
	// file the scenarios write must pass it and say what they mean.
	for _, mode := range []Mode{Emulated, Real} {
		t.Run(string(mode), func(t *testing.T) {
			jh := Jailhouse{Device: DeviceNode, Sysfs: JhemuSysfs}
			if mode == Real {
				jh.Sysfs = RealSysfs
			}
			data, err := runphiConfig(jh, "/usr/sbin/runc", "/tmp/runphi.log")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			// Loaded as runphi loads it, with no RUNPHI_* overrides.
			cfg, err := config.Load(func(k string) string {
				if k == config.PathEnv {
					return path
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			want := config.Config{
				BoardDir: BoardsDir + "/qemu-arm64", Runc: "/usr/sbin/runc", StateRoot: RunphiStateRoot, AllocState: AllocStatePath,
				JailhouseDevice: DeviceNode, JailhouseSysfs: jh.Sysfs,
				LinuxLoader: config.Default().LinuxLoader, LogFile: "/tmp/runphi.log",
			}
			if diff := cmp.Diff(want, cfg); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMonitorPids(t *testing.T) {
	// A process with a monitor's argv (runphi __monitor STATE-DIR) is
	// found by the id its state directory ends in. "; :" keeps the shell
	// from exec'ing sleep, which would replace the argv.
	dir := filepath.Join(t.TempDir(), "run-runc", "zic-t")
	cmd := exec.Command("/bin/sh", "-c", "sleep 30; :", "runphi", monitorVerb, dir)
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if !slices.Contains(monitorPids("zic-t"), cmd.Process.Pid) {
		t.Errorf("monitorPids(zic-t) = %v, lacks %d", monitorPids("zic-t"), cmd.Process.Pid)
	}
	if !slices.Contains(monitorPids(""), cmd.Process.Pid) {
		t.Errorf("monitorPids() = %v, lacks %d", monitorPids(""), cmd.Process.Pid)
	}
	if slices.Contains(monitorPids("other"), cmd.Process.Pid) {
		t.Error("monitorPids(other) lists zic-t's monitor")
	}
}
