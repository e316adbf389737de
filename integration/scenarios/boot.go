package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/runphi-go/runphi/integration/moddep"
)

// bootScenario checks what init promised: file systems, modules and the
// device nodes the other scenarios rely on.
func bootScenario(e *Env) error {
	if e.Boot == nil {
		return errors.New("init left no boot report at " + BootReportPath)
	}
	e.Logf("kernel %s, init started at uptime %.2fs, mode %s", e.Boot.KernelRelease, e.Boot.Uptime, e.Mode())
	var problems []string
	problems = append(problems, e.Boot.Mounts...)

	loaded := map[string]ModuleResult{}
	for _, m := range e.Boot.Modules {
		e.Logf("module %-28s %-8v %s", m.Name, m.Took, m.Error)
		if prev, ok := loaded[m.Name]; !ok || prev.Error == "" {
			loaded[m.Name] = m
		}
	}
	for _, name := range e.Config.Required {
		m, ok := loaded[name]
		switch {
		case !ok:
			problems = append(problems, "module "+name+": not attempted")
		case m.Error != "":
			problems = append(problems, "module "+name+": "+m.Error)
		default:
			if _, err := os.Stat(filepath.Join("/sys/module", moddep.Name(name))); err != nil {
				problems = append(problems, fmt.Sprintf("module %s: loaded but %v", name, err))
			}
		}
	}

	nodes := []string{"/dev/null", "/dev/console", "/proc/self/stat", "/sys/fs/cgroup/cgroup.controllers"}
	switch e.Mode() {
	case Emulated:
		// jhemu serves /dev/jailhouse through CUSE.
		nodes = append(nodes, "/dev/fuse", "/dev/cuse")
	case Real:
		nodes = append(nodes, DeviceNode, FirmwarePath)
	}
	for _, p := range nodes {
		if _, err := os.Stat(p); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if data, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		e.Logf("cgroup2 controllers: %s", strings.TrimSpace(string(data)))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
