package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/integration/moddep"
	"github.com/runphi-go/runphi/integration/scenarios"
)

// Loader loads kernel modules with their dependencies.
type Loader struct {
	Root    string                  // module tree root, normally /lib/modules
	Release string                  // kernel release; its directory holds modules.dep
	Load    func(path string) error // FinitModule in the guest
	// SysModule is the sysfs module directory (default /sys/module), to
	// recognise modules that are built in without a modules.builtin.
	SysModule string
}

// FinitModule loads the module file at path; a module that is already
// loaded is not an error.
func FinitModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

// LoadAll loads each named module and its dependencies, each file once.
// Names come from modules.dep of Root/Release; a module absent from it (an
// out-of-tree jailhouse.ko, for example) is searched for as NAME.ko anywhere
// under Root. Every attempted file gets a result.
func (l *Loader) LoadAll(names []string) []scenarios.ModuleResult {
	dir := filepath.Join(l.Root, l.Release)
	ix, ixErr := moddep.Load(dir)
	sysmod := l.SysModule
	if sysmod == "" {
		sysmod = "/sys/module"
	}
	done := map[string]bool{}
	var out []scenarios.ModuleResult
	load := func(name, path string) bool {
		if done[path] {
			return true
		}
		start := time.Now()
		err := l.Load(path)
		r := scenarios.ModuleResult{Name: name, Path: path, Took: scenarios.Duration(time.Since(start).Round(time.Millisecond))}
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
		done[path] = err == nil
		return err == nil
	}
	for _, name := range names {
		if ix != nil && ix.Builtin(name) {
			out = append(out, scenarios.ModuleResult{Name: name})
			continue
		}
		if ix != nil {
			if _, ok := ix.Path(name); ok {
				order, err := ix.Order(name)
				if err != nil {
					out = append(out, scenarios.ModuleResult{Name: name, Error: err.Error()})
					continue
				}
				for _, rel := range order {
					n := name
					if moddep.Name(rel) != moddep.Name(name) {
						n = moddep.Name(rel)
					}
					if !load(n, filepath.Join(dir, rel)) {
						break
					}
				}
				continue
			}
		}
		if p, ok := findModule(l.Root, name); ok {
			load(name, p)
			continue
		}
		if _, err := os.Stat(filepath.Join(sysmod, moddep.Name(name))); err == nil {
			out = append(out, scenarios.ModuleResult{Name: name}) // built in
			continue
		}
		msg := "not found under " + l.Root
		if ixErr != nil {
			msg += " (" + ixErr.Error() + ")"
		}
		out = append(out, scenarios.ModuleResult{Name: name, Error: msg})
	}
	return out
}

// findModule searches root for the module file of name.
func findModule(root, name string) (string, bool) {
	var found string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if !d.IsDir() && filepath.Ext(p) == ".ko" && moddep.Name(p) == moddep.Name(name) {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	return found, found != ""
}
