// Package moddep orders kernel modules for loading, from the modules.dep and
// modules.builtin files that depmod writes. It answers the question
// `modprobe --show-depends` answers, without needing kmod or a module tree of
// the host's architecture, so the host can compute the guest's load order.
package moddep

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Index is a parsed module directory (lib/modules/<version>).
type Index struct {
	deps    map[string][]string // module path (relative) → dependency paths
	byName  map[string]string   // normalised module name → path
	builtin map[string]bool     // normalised names of built-in modules
}

// Name returns the normalised module name of a path or name: the base name
// without .ko (and compression suffixes), with '-' turned into '_' as the
// kernel does.
func Name(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// Parse reads modules.dep content from dep and, if builtin is non-nil,
// modules.builtin content.
func Parse(dep, builtin io.Reader) (*Index, error) {
	ix := &Index{deps: map[string][]string{}, byName: map[string]string{}, builtin: map[string]bool{}}
	sc := bufio.NewScanner(dep)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		if !ok || mod == "" {
			return nil, fmt.Errorf("modules.dep line %d: want \"module: deps\", got %q", n, line)
		}
		ix.deps[mod] = strings.Fields(rest)
		ix.byName[Name(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	if builtin != nil {
		sc := bufio.NewScanner(builtin)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				ix.builtin[Name(l)] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("modules.builtin: %w", err)
		}
	}
	return ix, nil
}

// Load reads dir/modules.dep and, when present, dir/modules.builtin.
func Load(dir string) (*Index, error) {
	dep, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("module index %s (run depmod first): %w", dir, err)
	}
	defer dep.Close()
	var builtin io.Reader
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		defer f.Close()
		builtin = f
	}
	ix, err := Parse(dep, builtin)
	if err != nil {
		return nil, fmt.Errorf("module index %s: %w", dir, err)
	}
	return ix, nil
}

// Builtin reports whether the named module is built into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[Name(name)] }

// Path returns the module file path (relative to the index directory) of the
// named module.
func (ix *Index) Path(name string) (string, bool) {
	p, ok := ix.byName[Name(name)]
	return p, ok
}

// Order returns the relative paths of the named modules and everything they
// depend on, each once, every module after its dependencies, in the order the
// names were given otherwise. Built-in modules are left out. An unknown name
// or a dependency cycle is an error.
func (ix *Index) Order(names ...string) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(p string, chain []string) error
	visit = func(p string, chain []string) error {
		switch state[p] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module %s: dependency cycle through %s", Name(chain[0]), strings.Join(chain, " → "))
		}
		if ix.builtin[Name(p)] {
			return nil
		}
		deps, ok := ix.deps[p]
		if !ok {
			return fmt.Errorf("module %s: dependency %s not in modules.dep", Name(chain[0]), p)
		}
		state[p] = 1
		for _, d := range deps {
			if err := visit(d, append(chain, d)); err != nil {
				return err
			}
		}
		state[p] = 2
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		if ix.Builtin(n) {
			continue
		}
		p, ok := ix.Path(n)
		if !ok {
			return nil, fmt.Errorf("module %s: not in modules.dep and not built in", n)
		}
		if err := visit(p, []string{p}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
