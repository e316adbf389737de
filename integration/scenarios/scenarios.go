// Package scenarios holds the integration scenarios that run inside the arm64
// guest, the registry that names them, and the contract between the host
// harness and the guest's init: the Config the host writes into the
// initramfs and the BootReport init leaves for the scenarios.
//
// A scenario is a Go function of *Env. It passes by returning nil, is skipped
// by returning Skipf(...), and fails with any other error. Run prints the
// console markers of package marker around each one; the host turns them
// into one Go subtest per scenario.
package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/runphi-go/runphi/integration/marker"
)

// Mode tells the scenarios which Jailhouse they talk to.
type Mode string

// Modes.
const (
	// Emulated: /dev/jailhouse is served by jhemu over CUSE, with an
	// emulated sysfs tree.
	Emulated Mode = "emulated"
	// Real: the Jailhouse driver (jailhouse.ko) and hypervisor run in the
	// guest.
	Real Mode = "real"
)

// Guest paths shared by the host (which writes the initramfs) and the guest.
const (
	ConfigPath     = "/etc/runphi-test/config.json"
	BootReportPath = "/run/runphi-test/boot.json"
	BinDir         = "/usr/bin"                      // our static binaries
	BoardsDir      = "/usr/share/runphi/boards"      // boards/ of the repository
	ImagesDir      = "/usr/share/runphi-test/images" // test images (ImageBusybox, ...)
	ScratchDir     = "/tmp/runphi-test"              // per-scenario scratch directories
	ImageBusybox   = ImagesDir + "/busybox-rootfs"   // a root filesystem with a static busybox
	JhemuSysfs     = "/run/jhemu/sysfs"              // emulated sysfs tree in Emulated mode
	KernelArgRun   = "runphi.run"                    // kernel argument: comma-separated scenario names
	RealSysfs      = "/sys/devices/jailhouse"        // the driver's sysfs tree in Real mode
	DeviceNode     = "/dev/jailhouse"                // in both modes
	FirmwarePath   = "/lib/firmware/jailhouse.bin"   // Real mode
	DemoInmatesDir = "/usr/libexec/jailhouse/demos"  // Real mode: upstream demo inmates
	LinuxLoader    = "/usr/libexec/jailhouse/linux-loader.bin"
)

// Config is what the host tells the guest, as JSON at ConfigPath.
type Config struct {
	Mode Mode `json:"mode"`
	// Modules are module names to load at boot, each with its
	// dependencies (resolved from /lib/modules/<release>/modules.dep),
	// in order.
	Modules []string `json:"modules"`
	// Required are the modules whose failure fails the boot scenario.
	Required []string `json:"required"`
	// Binaries maps the names of our binaries to their guest paths; Missing
	// maps the ones that are absent to the reason (no main package yet, or
	// the build failed).
	Binaries map[string]string `json:"binaries"`
	Missing  map[string]string `json:"missing,omitempty"`
	// ScenarioTimeout bounds a scenario without its own Timeout.
	ScenarioTimeout Duration `json:"scenarioTimeout"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseConfig decodes and checks a Config.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("test config: %w", err)
	}
	switch c.Mode {
	case Emulated, Real:
	default:
		return nil, fmt.Errorf("test config: mode %q is neither %q nor %q", c.Mode, Emulated, Real)
	}
	for _, r := range c.Required {
		if !slices.Contains(c.Modules, r) {
			return nil, fmt.Errorf("test config: required module %s is not in modules", r)
		}
	}
	if c.ScenarioTimeout <= 0 {
		c.ScenarioTimeout = Duration(DefaultTimeout)
	}
	return &c, nil
}

// ReadConfig reads the Config at path.
func ReadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("test config: %w", err)
	}
	return ParseConfig(data)
}

// BootReport is what init did before the scenarios ran.
type BootReport struct {
	KernelRelease string         `json:"kernelRelease"`
	Uptime        float64        `json:"uptime"` // seconds, when init started
	Mounts        []string       `json:"mounts"` // mount and loopback errors, empty when all succeeded
	Modules       []ModuleResult `json:"modules"`
}

// ModuleResult is the outcome of loading one module file.
type ModuleResult struct {
	Name  string `json:"name"`           // as asked for in Config.Modules
	Path  string `json:"path,omitempty"` // the file loaded
	Took  Duration
	Error string `json:"error,omitempty"`
}

// ReadBootReport reads the report init wrote.
func ReadBootReport(path string) (*BootReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("boot report: %w", err)
	}
	var r BootReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("boot report %s: %w", path, err)
	}
	return &r, nil
}

// DefaultTimeout bounds a scenario that sets no Timeout.
const DefaultTimeout = 2 * time.Minute

// Scenario is one named test run in the guest.
type Scenario struct {
	Name    string
	Doc     string        // one line: what it shows
	Needs   []string      // binaries (Config.Binaries keys) without which it skips
	Modes   []Mode        // modes it runs in; empty means all
	Timeout time.Duration // zero means Config.ScenarioTimeout
	// Explicit scenarios run only when named (RUNPHI_SCENARIOS, the
	// kernel argument runphi.run), never as part of the default set.
	Explicit bool
	Run      func(*Env) error
}

// All returns every scenario in the order they run.
func All() []Scenario {
	return []Scenario{
		{
			Name: "boot", Doc: "init ran, file systems mounted, modules loaded, device nodes present",
			Timeout: 30 * time.Second, Run: bootScenario,
		},
		{
			Name: "containerd-smoke", Doc: "containerd starts with a minimal config and ctr version reaches it",
			Needs: []string{"containerd", "ctr"}, Timeout: 90 * time.Second, Run: containerdSmoke,
		},
		{
			Name: "runc-smoke", Doc: "runc runs a busybox container from the initramfs (--no-pivot)",
			Needs: []string{"runc"}, Timeout: 60 * time.Second, Run: runcSmoke,
		},
		{
			Name: "a-jhctl-demo", Doc: "jhctl drives the upstream demo flow: enable, cell create/load/start/list/stats/shutdown/destroy, disable",
			Needs: []string{"jhctl"}, Run: jhctlDemo,
		},
		{
			Name: "b-containerd-zic", Doc: "containerd runs a ZIC image through runphi: import, run -d, running task and cell, kill (exit 143), rm; nothing left",
			Needs: zicNeeds(), Run: containerdZIC,
		},
		{
			Name: "c-containerd-busybox", Doc: "a regular busybox container through the runphi runtime is forwarded to runc and its output reaches ctr",
			Needs: zicNeeds(), Run: containerdBusybox,
		},
		{
			Name: "d-two-zics", Doc: "two networked ZICs get distinct CPUs, RAM and ivshmem devices; a third that does not fit fails cleanly",
			Needs: zicNeeds(), Run: twoZICs,
		},
		{
			Name: "e-hostile-images", Doc: "hostile descriptors (escaping paths, absurd memory, unknown keys) fail at create with a clear message; nothing left",
			Needs: zicNeeds(), Run: hostileImages,
		},
		{
			Name: "f-killed-create", Doc: "runphi create killed at each step, then delete --force, leaves no cell, grant, state or monitor",
			Needs: []string{"runphi", "jhctl"}, Run: killedCreate,
		},
		{
			Name: "demo", Doc: "the narrated main job: a ZIC through containerd and runphi, step by step (run it by name)",
			Needs: zicNeeds(), Explicit: true, Run: demo,
		},
	}
}

// zicNeeds are the binaries the containerd ZIC scenarios use.
func zicNeeds() []string {
	return []string{"runphi", "jhctl", "containerd", "ctr", "containerd-shim-runc-v2", "runc"}
}

// Names returns the names of scenarios, in order.
func Names(s []Scenario) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].Name
	}
	return out
}

// Defaults returns the scenarios that run when none are named: all but
// the Explicit ones.
func Defaults(all []Scenario) []Scenario {
	var out []Scenario
	for _, s := range all {
		if !s.Explicit {
			out = append(out, s)
		}
	}
	return out
}

// Select returns the scenarios named, in registry order; no names selects
// the defaults (Defaults). An unknown name is an error.
func Select(all []Scenario, names []string) ([]Scenario, error) {
	if len(names) == 0 {
		return Defaults(all), nil
	}
	var unknown []string
	for _, n := range names {
		if !slices.ContainsFunc(all, func(s Scenario) bool { return s.Name == n }) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown scenario(s) %s; known: %s", strings.Join(unknown, ", "), strings.Join(Names(all), ", "))
	}
	var out []Scenario
	for _, s := range all {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Check reports registry mistakes: invalid or duplicate names, no function.
func Check(all []Scenario) error {
	seen := map[string]bool{}
	for i, s := range all {
		if !marker.ValidName(s.Name) {
			return fmt.Errorf("scenario %d: invalid name %q", i, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("scenario %s: registered twice", s.Name)
		}
		seen[s.Name] = true
		if s.Run == nil {
			return fmt.Errorf("scenario %s: no Run function", s.Name)
		}
	}
	return nil
}

// SkipError marks a scenario as skipped.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skipf returns a *SkipError with a formatted reason.
func Skipf(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

// IsSkip reports whether err is (or wraps) a *SkipError and returns it.
func IsSkip(err error) (*SkipError, bool) {
	var s *SkipError
	ok := errors.As(err, &s)
	return s, ok
}

// String formats the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }
